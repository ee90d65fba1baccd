"""symml: declare ODEs in SymPy, solve them with JAX/diffrax, fit, learn and distill them.

symml turns on JAX's float64 mode at import (``SYMML_X64=0`` opts out before importing).
"""

# ruff: noqa: I001  (re-exports are grouped by stage, in the order of the chain, not sorted)

import os as _os

import jax as _jax

if _os.environ.get("SYMML_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)

from . import zoo as zoo

# declare
from ._declare._symbols import Neural as Neural
from ._declare._symbols import Parameter as Parameter
from ._declare._symbols import neural as neural
from ._declare._symbols import parameters as parameters
from ._declare._symbols import states as states
from ._declare._symbols import t as t
from ._declare._model import Model as Model

# compile
from ._compile._codegen import CompiledFunction as CompiledFunction
from ._compile._codegen import CompiledModel as CompiledModel
from ._compile._codegen import compile as compile
from ._compile._codegen import compile_exprs as compile_exprs
from ._compile._functions import register_function as register_function

# solve
from ._trajectory import Trajectory as Trajectory
from ._analytic._closed_form import AnalyticSolution as AnalyticSolution
from ._analytic._bridge import NoClosedForm as NoClosedForm
from ._analytic._closed_form import solve_analytic as solve_analytic
from ._declare._event import Event as Event
from ._solve._stiffness import choose_solver as choose_solver
from ._solve._simulate import simulate as simulate
from ._solve._stiffness import stiffness_index as stiffness_index

# mechanics
from ._mechanics import ImplicitMidpoint as ImplicitMidpoint
from ._mechanics import Leapfrog as Leapfrog
from ._mechanics import Yoshida4 as Yoshida4
from ._mechanics import hamiltonian as hamiltonian
from ._mechanics import lagrangian as lagrangian
from ._mechanics import minimize as minimize
from ._mechanics import steady_state as steady_state

# data and fits
from ._data._dataset import Dataset as Dataset
from ._data._series import Series as Series
from ._fit._result import FitResult as FitResult
from ._fit._fit import fit as fit
from ._fit._inverse import solve_for as solve_for
from ._solve._solver_fn import solver_fn as solver_fn

# learn
from ._train import LBFGS as LBFGS
from ._train import Adam as Adam
from ._train import AdamW as AdamW
from ._train import Checkpoint as Checkpoint
from ._train import Loss as Loss
from ._train import Optax as Optax
from ._train import Shooting as Shooting
from ._train import Solve as Solve
from ._train import Trained as Trained
from ._train import TrainingError as TrainingError
from ._train import TrainingWarning as TrainingWarning
from ._train import train as train

# networks against the equations
from ._pinn import PINNResult as PINNResult
from ._pinn import pinn as pinn
from ._surrogate import Encoder as Encoder
from ._surrogate import Surrogate as Surrogate
from ._surrogate import invert as invert
from ._surrogate import surrogate as surrogate
from ._estimator import Estimate as Estimate
from ._estimator import Estimator as Estimator
from ._estimator import estimator as estimator

# equations from networks and data
from .distill import Distilled as Distilled
from .distill import distill as distill
from ._discover._discover import discover as discover

# equations from images
from ._latent import Autoencoder as Autoencoder
from ._latent import Blob as Blob
from ._latent import Frames as Frames
from ._latent import LatentResult as LatentResult
from ._latent import LatentWeights as LatentWeights
from ._latent import autoencoder as autoencoder
from ._latent import discover_latent as discover_latent
from ._latent import frames as frames

# files
from ._serialize import load as load
from ._serialize import save as save

# errors
from .errors import AlgebraicEquationError as AlgebraicEquationError
from .errors import BackendUnavailableError as BackendUnavailableError
from .errors import DataError as DataError
from .errors import DuplicateEquationError as DuplicateEquationError
from .errors import InvalidValueError as InvalidValueError
from .errors import MissingEquationError as MissingEquationError
from .errors import MissingValueError as MissingValueError
from .errors import ModelError as ModelError
from .errors import NotSolvableError as NotSolvableError
from .errors import SolveError as SolveError
from .errors import SymmlError as SymmlError
from .errors import UndeclaredSymbolError as UndeclaredSymbolError
from .errors import UnknownNameError as UnknownNameError
from .errors import UnsupportedFunctionError as UnsupportedFunctionError

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
    "discover_latent",
    "autoencoder",
    "frames",
    "Autoencoder",
    "Blob",
    "Frames",
    "LatentResult",
    "LatentWeights",
    "Trained",
    "Adam",
    "AdamW",
    "LBFGS",
    "Optax",
    "Loss",
    "Solve",
    "Shooting",
    "Checkpoint",
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
    "InvalidValueError",
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
    "register_function",
    "zoo",
    "pinn",
    "PINNResult",
    "surrogate",
    "Surrogate",
    "invert",
    "Encoder",
    "estimator",
    "Estimator",
    "Estimate",
    "lagrangian",
    "hamiltonian",
    "Leapfrog",
    "Yoshida4",
    "ImplicitMidpoint",
    "minimize",
    "steady_state",
]
