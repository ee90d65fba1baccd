"""Compile: SymPy -> JAX through one table, programs, vector fields, the artefact cache."""

from ._binding import bind as bind
from ._cache import artefact as artefact
from ._cache import peek as peek
from ._codegen import CompiledFunction as CompiledFunction
from ._codegen import CompiledModel as CompiledModel
from ._codegen import build_program as build_program
from ._codegen import compile as compile  # noqa: A004
from ._codegen import compile_exprs as compile_exprs
from ._codegen import label as label
from ._codegen import rhs_program as rhs_program
from ._functions import BOOLEANS as BOOLEANS
from ._functions import FUNCTIONS as FUNCTIONS
from ._functions import register_function as register_function
from ._program import Program as Program
