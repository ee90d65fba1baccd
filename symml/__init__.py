"""symml: declare ODEs in SymPy, solve them with JAX/diffrax, fit, learn and distill them.

symml turns on JAX's float64 mode at import (``SYMML_X64=0`` opts out before importing).
"""

import os as _os

import jax as _jax

if _os.environ.get("SYMML_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)

# The submodule symml.neural must be imported before the function sm.neural is bound:
# a first import of a submodule sets the package attribute of the same name, which would
# otherwise replace the function the moment anything imports symml.neural.
from . import neural as _neural_module  # noqa: F401
from . import zoo
from ._symbols import Neural, Parameter, neural, parameters, states, t
from .analytic import AnalyticSolution, NoClosedForm, solve_analytic
from .codegen import CompiledFunction, CompiledModel, compile, compile_exprs
from .data import Dataset, Series
from .discover import discover
from .distill import Distilled, distill
from .errors import (
    AlgebraicEquationError,
    BackendUnavailableError,
    DataError,
    DuplicateEquationError,
    MissingEquationError,
    MissingValueError,
    ModelError,
    NotSolvableError,
    SolveError,
    SymmlError,
    UndeclaredSymbolError,
    UnknownNameError,
    UnsupportedFunctionError,
)
from .fit import FitResult, fit
from .inverse import solve_for, solver_fn
from .io import load, save
from .model import Model
from .solve import Event, choose_solver, simulate, stiffness_index
from .train import Trained, train
from .trained import TrainingError, TrainingWarning
from .trajectory import Trajectory

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``sm.bench`` is loaded on first use: nothing in the package imports the benchmark harness.
    if name == "bench":
        import importlib

        return importlib.import_module(".bench", __name__)
    raise AttributeError(f"module 'symml' has no attribute {name!r}")


__all__ = [
    "train",
    "solver_fn",
    "solve_for",
    "solve_analytic",
    "fit",
    "distill",
    "discover",
    "Trained",
    "TrainingError",
    "TrainingWarning",
    "NoClosedForm",
    "FitResult",
    "Distilled",
    "AnalyticSolution",
    "AlgebraicEquationError",
    "BackendUnavailableError",
    "CompiledFunction",
    "CompiledModel",
    "DataError",
    "Dataset",
    "DuplicateEquationError",
    "Event",
    "MissingEquationError",
    "MissingValueError",
    "Model",
    "ModelError",
    "Neural",
    "NotSolvableError",
    "Parameter",
    "Series",
    "SolveError",
    "SymmlError",
    "Trajectory",
    "UndeclaredSymbolError",
    "UnknownNameError",
    "UnsupportedFunctionError",
    "choose_solver",
    "compile",
    "compile_exprs",
    "load",
    "neural",
    "parameters",
    "save",
    "simulate",
    "states",
    "stiffness_index",
    "t",
    "zoo",
]
