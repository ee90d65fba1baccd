"""Checks of values that users hand to a model or a solve: real, finite numbers (or numeric
arrays of them) for defaults, parameters, initial values and times, and equations free of
values that would give silent garbage (the imaginary unit, NaN, a Piecewise without default).

The binder (`symml._declare._bind`) runs them where the values enter, so that a NaN, a complex
number or a string is refused with its name instead of coming back as a NaN trajectory or a
silently truncated real part. JAX tracers pass unchecked: their values are not known yet.

>>> check_value(0.5, "params value for k")
0.5
>>> check_value(float("nan"), "params value for k")
Traceback (most recent call last):
    ...
symml.errors.InvalidValueError: params value for k is nan; pass a finite number.
"""

from __future__ import annotations

import math
from typing import Any, cast

import jax
import jax.core
import numpy as np
import sympy as sp

from ..errors import InvalidValueError, ModelError

__all__ = ["check_value", "real_value", "check_equation"]


def check_value(value: Any, what: str) -> Any:
    """``value`` if it is usable as a real value (a finite real number, a numeric array of them
    or a JAX tracer), else an error naming ``what``. SymPy numbers become floats.

    Raises:
        InvalidValueError: NaN or infinity, a complex number, a string, a symbolic expression
            or an array that does not hold numbers.
    """
    if isinstance(value, float):  # the common case first: one check
        if not math.isfinite(value):
            raise InvalidValueError(f"{what} is {value}; pass a finite number.")
        return value
    if isinstance(value, (int, np.integer, jax.core.Tracer)):
        return value
    if isinstance(value, str):
        raise InvalidValueError(f"{what} is the string {value!r}; pass a number (strings are never parsed).")
    if isinstance(value, sp.Basic):
        if not (value.is_number and value.is_real):
            raise InvalidValueError(f"{what} is the SymPy expression {value}; pass a real number.")
        return check_value(float(cast(Any, value)), what)
    if isinstance(value, complex):
        raise InvalidValueError(f"{what} is the complex number {value}; symml solves real ODEs.")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return value  # a container of tracers: checked where it is traced
    if arr.dtype.kind == "c":
        raise InvalidValueError(f"{what} holds complex numbers ({arr.dtype}); symml solves real ODEs.")
    if arr.dtype.kind not in "fiub":
        raise InvalidValueError(
            f"{what} must be a number or an array of numbers, got {type(value).__name__}."
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
        raise InvalidValueError(
            f"{what} holds NaN or infinity (at flat index {', '.join(map(str, bad[:5]))}); "
            "pass finite numbers."
        )
    return value


def real_value(value: Any, what: str) -> float:
    """``value`` as a finite real float, or a `ModelError` naming ``what``."""
    if isinstance(value, (str, bytes)):
        raise ModelError(f"{what} must be a number, got the string {value!r} (strings are never parsed).")
    if isinstance(value, sp.Basic):
        if value.is_number and value.is_real is False:
            raise ModelError(
                f"{what} is the complex number {value}; symml models are real. Pass a real number."
            )
    elif isinstance(value, (complex, np.complexfloating)) or np.iscomplexobj(value):
        raise ModelError(
            f"{what} is the complex number {value!r}; symml models are real. Pass a real number."
        )
    try:
        out = float(cast(Any, value))
    except (TypeError, ValueError):
        raise ModelError(f"{what} must be a number, got {value!r} ({type(value).__name__})") from None
    if not math.isfinite(out):
        raise ModelError(f"{what} is {out}; it must be a finite number.")
    return out


def check_equation(eq: sp.Equality) -> None:
    """Refuse what would later give silent garbage: complex coefficients, an undefined branch."""
    # One traversal for both checks: a model of thousands of equations pays for each walk.
    found = eq.atoms(sp.Piecewise, type(sp.I), type(sp.nan), type(sp.zoo), type(sp.oo), type(-sp.oo))
    if sp.I in found:
        raise ModelError(
            f"The equation {eq} contains the imaginary unit I; symml solves real ODEs. Split a complex "
            "state z = u + I*v into two real states u, v with one equation each."
        )
    undefined = found & {sp.nan, sp.zoo, sp.oo, -sp.oo}
    if undefined:
        raise ModelError(
            f"The equation {eq} contains {', '.join(sorted(map(str, undefined)))} (an undefined or infinite "
            "value, e.g. from 1/0); fix the expression that produced it."
        )
    for pw in found:
        if isinstance(pw, sp.Piecewise) and cast(Any, pw.args[-1]).cond is not sp.true:
            raise ModelError(
                f"The Piecewise {pw} has no default branch, so it is undefined (NaN) where no condition "
                "holds. Add a last branch (expr, True)."
            )
