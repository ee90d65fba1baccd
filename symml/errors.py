"""Exceptions raised by symml.

Every message names what was wrong, what was received and what to do. All of them derive
from `SymmlError` so that callers can catch the whole family at once, and most also from
the matching built-in (`ValueError`, `KeyError`, ...) so that generic handlers still work.

>>> import symml as sm
>>> issubclass(sm.MissingValueError, ValueError)
True
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SymmlError(Exception):
    """Base class of every error symml raises on purpose."""


class ModelError(SymmlError, ValueError):
    """A model's equations cannot be turned into an explicit first-order system."""


class UndeclaredSymbolError(ModelError):
    """An equation uses a symbol that is neither a state, a parameter nor ``t``."""


class AlgebraicEquationError(ModelError):
    """An equation contains no derivative (differential-algebraic systems are unsupported)."""


class DuplicateEquationError(ModelError):
    """Two equations define the same highest derivative."""


class MissingEquationError(ModelError):
    """A state appears in the equations but no equation defines its derivative."""


class NotSolvableError(ModelError):
    """The equations cannot be solved for their highest derivatives."""


class MissingValueError(SymmlError, ValueError):
    """A parameter value or an initial value is needed but was not given."""


class UnknownNameError(SymmlError, KeyError):
    """A name or symbol does not belong to the model or trajectory it was looked up in."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


class UnsupportedFunctionError(SymmlError, ValueError):
    """A SymPy function has no JAX translation in the SymPy -> JAX table (see `register_function`)."""


class SolveError(SymmlError, RuntimeError):
    """The numerical solve failed (too many steps, divergence, non-finite values)."""


class DataError(SymmlError, ValueError):
    """A dataset is malformed: NaN/inf, non-increasing times, mismatched lengths, bad names."""


class BackendUnavailableError(SymmlError, ImportError):
    """An optional backend (e.g. PySR) is not installed or cannot run on this machine."""


def suggest(name: str, candidates: Iterable[str]) -> str:
    """A ``" Did you mean ...?"`` hint for ``name`` among ``candidates``.

    Args:
        name: the name that was not found.
        candidates: the names that exist.

    Returns:
        The hint, with a leading space, or ``""`` when nothing is close.

    >>> suggest("pendulm", ["pendulum", "projectile"])
    " Did you mean 'pendulum'?"
    """
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if close:
        return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    return ""


class InvalidValueError(SymmlError, ValueError):
    """A value given to a solve or a model is unusable: NaN or infinite, complex, not a number,
    of the wrong shape, or a time grid outside its span."""
