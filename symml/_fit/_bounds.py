"""Bounded unknowns by reparametrisation: `Bound` maps an unconstrained z to [lo, hi].

Shared by `symml.fit` (bounds and positivity of parameters) and `symml.solve_for`.
Optimisers then work on z without constraints; the bound is reached only in the limit (one-sided)
or at a finite z (two-sided, MINUIT's sine transform).

>>> b = Bound(0.0, None)
>>> z = b.inverse(2.0, "k")
>>> round(float(b.forward(z)), 12), b.kind
(2.0, 'lower')
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = ["Bound"]


@dataclasses.dataclass(frozen=True)
class Bound:
    """Maps an unconstrained z to a value in [lo, hi].

    One-sided bounds use ``lo + exp(z)`` / ``hi - exp(z)``; two-sided bounds use MINUIT's
    ``lo + (hi - lo)(sin z + 1)/2``, which reaches a bound at a finite z, so that an optimum
    on a bound is approached quadratically instead of crawling towards z = ±∞.

    ``error`` arguments name the exception class raised for bad input (the caller's own:
    ``FitError`` for fits, ``InverseError`` for ``solve_for``).
    """

    lo: float | None = None
    hi: float | None = None

    @classmethod
    def parse(cls, key: Any, spec: Any, error: type[Exception] = ValueError) -> Bound:
        """``None`` (no limit) or a pair ``(lo, hi)`` with None / ±inf for an open side."""
        if spec is None:
            return cls()
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            raise error(f"bounds[{key}] must be a pair (lo, hi) with None for no limit; got {spec!r}.")
        lo = None if spec[0] is None or spec[0] == -np.inf else float(spec[0])
        hi = None if spec[1] is None or spec[1] == np.inf else float(spec[1])
        if lo is not None and hi is not None and not lo < hi:
            raise error(f"bounds[{key}] = {spec!r}: the lower bound must be below the upper bound.")
        return cls(lo, hi)

    @property
    def kind(self) -> str:
        """``"free"``, ``"lower"``, ``"upper"`` or ``"both"``."""
        if self.lo is None:
            return "free" if self.hi is None else "upper"
        return "lower" if self.hi is None else "both"

    @staticmethod
    def apply(kind: str, z, lo, hi):
        """The transform of ``kind`` with (possibly traced) limits ``lo``, ``hi``."""
        if kind == "free":
            return z
        if kind == "lower":
            return lo + jnp.exp(z)
        if kind == "upper":
            return hi - jnp.exp(z)
        return lo + (hi - lo) * (jnp.sin(z) + 1.0) / 2.0

    def forward(self, z):
        """The value for the unconstrained ``z``."""
        return self.apply(self.kind, z, self.lo, self.hi)

    def inverse(self, value: float, label: str, error: type[Exception] = ValueError) -> float:
        """The unconstrained z of a starting ``value`` (which must lie strictly inside)."""
        lo, hi = self.lo, self.hi
        if (lo is not None and value <= lo) or (hi is not None and value >= hi):
            raise error(
                f"The starting value of {label} is {value:g}, not strictly inside its bounds "
                f"({'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}). "
                "Start inside the bounds or widen them."
            )
        if lo is None and hi is None:
            return value
        if hi is None:
            assert lo is not None
            return math.log(value - lo)
        if lo is None:
            return math.log(hi - value)
        return math.asin(2.0 * (value - lo) / (hi - lo) - 1.0)

    @property
    def unbounded(self) -> bool:
        return self.lo is None and self.hi is None

    def at_bound(self, value: float, rtol: float = 1e-6) -> str | None:
        """``"lower bound 0.1"`` / ``"upper bound 0.4"`` when ``value`` sits on a bound."""
        for side, b in (("lower", self.lo), ("upper", self.hi)):
            if b is not None:
                width = (self.hi - self.lo) if (self.lo is not None and self.hi is not None) else abs(b) + 1.0
                if abs(value - b) <= rtol * width:
                    return f"{side} bound {b:g}"
        return None
