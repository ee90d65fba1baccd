"""What the option objects of `symml.train` share: field checks, JSON, descriptions of objects.

An option is a frozen dataclass deriving from `Option`; ``to_json`` writes
``{"type": class name, field: value, ...}``, with callables and diffrax objects named by
`describe` (a JSON file cannot hold them). The checks raise errors of one form:
``Owner(field=value): field must be ..., got value``.

>>> non_negative("Loss", "l2", 0.5, "a penalty weight")
0.5
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any

import equinox as eqx
import optax

__all__ = ["Option", "describe", "is_int", "is_number", "int_at_least", "non_negative"]


def is_int(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def int_at_least(owner: str, name: str, value: Any, low: int, why: str) -> int:
    """``value`` as an int, or a `ValueError` naming ``owner(name=value)``."""
    if not is_int(value) or value < low:
        raise ValueError(f"{owner}({name}={value!r}): {name} must be an int >= {low} ({why}), got {value!r}.")
    return int(value)


def non_negative(owner: str, name: str, value: Any, why: str) -> float:
    """``value`` as a finite float >= 0, or a `ValueError` naming ``owner(name=value)``."""
    if not (is_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{owner}({name}={value!r}): {name} must be a finite number >= 0 ({why}), got {value!r}."
        )
    return float(value)


def _qualname(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{getattr(fn, '__module__', None) or type(fn).__module__}.{name}"


def describe(value: Any) -> Any:
    """``value`` as JSON: numbers, strings and None as they are, option objects by `to_json`,
    everything else by a stable description (a callable cannot be stored, only named).

    >>> import diffrax
    >>> describe(None), describe(0.5), describe(diffrax.Tsit5())
    (None, 0.5, '<Tsit5()>')
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Option):
        return value.to_json()
    if isinstance(value, optax.GradientTransformation):
        return f"<optax transformation {_qualname(value.init)}>"
    if isinstance(value, eqx.Module):  # diffrax solvers and adjoints: their repr lists their fields
        return f"<{value!r}>"
    if callable(value):
        return f"<callable {_qualname(value)}>"
    return repr(value)


class Option:
    """JSON for the option dataclasses: ``{"type": class name, field: value, ...}``."""

    def to_json(self) -> dict[str, Any]:
        """The option as a JSON-safe dict (`option_from_json` reads it back).

        Returns:
            ``{"type": "Adam", "lr": 0.01, ...}``; callables are stored by name only.
        """
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = describe(getattr(self, f.name))
        return out
