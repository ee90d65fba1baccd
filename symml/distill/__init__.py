"""Distillation: arrays in, SymPy expressions out.

Backends share one interface, ``backend.fit(X, y, inputs) -> Expression`` (see
`symml.distill.base`): ``"sindy"`` (sparse regression on SymPy libraries),
``"operon"`` (symbolic regression with pyoperon, offline) and ``"pysr"`` (PySR, where Julia
is available). ``sm.distill(trained, ...)`` applies them to the neural terms of a trained
universal ODE (`symml.distill.distilled`). Whatever can hang (SymPy simplification of a
found expression, Operon's search) runs in the symbolic worker's killable child process under
its time budget (`symml.distill.postprocess`).

>>> from symml.distill import get_backend
>>> get_backend("sindy").name
'sindy'
"""

from .base import (
    Backend,
    Candidate,
    Expression,
    UnknownBackendError,
    backend_names,
    get_backend,
    register_backend,
)
from .distilled import Distilled, DistillError, distill
from .library import (
    Custom,
    Library,
    Polynomial,
    RationalTerms,
    Trig,
    UnknownLibraryError,
    make_library,
)
from .operon import Operon, OperonTimeout
from .pysr import PySR
from .sindy import SINDy

__all__ = [
    "Backend",
    "Candidate",
    "Custom",
    "DistillError",
    "Distilled",
    "Expression",
    "Library",
    "Operon",
    "OperonTimeout",
    "Polynomial",
    "PySR",
    "RationalTerms",
    "SINDy",
    "Trig",
    "UnknownBackendError",
    "UnknownLibraryError",
    "backend_names",
    "distill",
    "get_backend",
    "make_library",
    "register_backend",
]
