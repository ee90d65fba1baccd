"""symml: declare ODEs in SymPy, solve them with JAX/diffrax, fit, learn and distill them.

symml turns on JAX's float64 mode at import (``SYMML_X64=0`` opts out before importing).
"""

import os as _os

import jax as _jax

if _os.environ.get("SYMML_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)

from . import zoo
from ._analytic._closed_form import AnalyticSolution, NoClosedForm, solve_analytic
from ._compile._codegen import CompiledFunction, CompiledModel, compile, compile_exprs
from ._data._dataset import Dataset, Series
from ._declare._model import Model
from ._declare._symbols import Neural, Parameter, neural, parameters, states, t
from ._discover._discover import discover
from ._fit._fit import FitResult, fit
from ._fit._inverse import solve_for, solver_fn
from ._serialize import load, save
from ._solve._simulate import Event, choose_solver, simulate, stiffness_index
from ._train._train import Trained, train
from ._train._trained import TrainingError, TrainingWarning
from ._trajectory import Trajectory
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
