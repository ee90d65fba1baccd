"""Distillation: arrays in, SymPy expressions out.

Backends share one interface, ``backend.fit(X, y, inputs) -> Expression`` (see
:mod:`symml.distill.base`): ``"sindy"`` (sparse regression on SymPy libraries),
``"operon"`` (symbolic regression with pyoperon, offline) and ``"pysr"`` (PySR, where Julia
is available). ``sm.distill(trained, ...)`` (being written) applies them to the neural terms
of a trained universal ODE.

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
from .library import Custom, Library, Polynomial, Trig, UnknownLibraryError, make_library
from .operon import Operon
from .pysr import PySR
from .sindy import SINDy


class Distilled:
    """Result of :func:`distill` (being written: issue 6)."""


def distill(trained, backend="sindy", **kwargs):
    """Distill the neural terms of a trained universal ODE into SymPy (being written)."""
    raise NotImplementedError(
        "sm.distill(trained, ...) is not implemented yet (it needs sm.train). To fit SymPy "
        "expressions to arrays now, use symml.distill.get_backend(name).fit(X, y, inputs); to "
        "discover equations from data, use sm.discover."
    )


__all__ = [
    "Backend",
    "Candidate",
    "Custom",
    "Distilled",
    "Expression",
    "Library",
    "Operon",
    "Polynomial",
    "PySR",
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
