"""What `symml.lagrangian` and `symml.hamiltonian` share: checking coordinates, finding invariants.

Invariants are found by cheap exact tests only (an expression that SymPy's ``cancel`` reduces to
zero), never by ``simplify``: a conserved quantity is reported when it is certainly conserved,
and a model is never slow to build because a test could not decide.

* energy: always reported (the Hamiltonian, or the energy function ``sum v dL/dv - L``); it is
  conserved when the energy does not depend on ``t`` explicitly and no forces act.
* the momentum of a cyclic coordinate (one the energy does not depend on).
* angular momentum ``q_i p_j - q_j p_i`` for each pair of coordinates whose rotation leaves the
  Lagrangian (or the Hamiltonian) unchanged, for up to `MAX_PAIRS_COORDS` coordinates.

>>> import symml as sm
>>> x, y = sm.states("x y")
>>> check_coordinates([x, y], "coords")
(x(t), y(t))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from .._declare._symbols import is_state, state_name
from ..errors import ModelError

__all__ = ["check_coordinates", "is_zero", "rotation_pairs", "MAX_PAIRS_COORDS"]

#: Pairs of coordinates are tested for rotation invariance up to this many coordinates
#: (the tests grow as n^2; a chain of 1000 masses is not a rotation problem).
MAX_PAIRS_COORDS = 6


def check_coordinates(coords: Any, what: str) -> tuple[sp.Expr, ...]:
    """``coords`` as a tuple of distinct states, or a `ModelError` naming ``what``."""
    if isinstance(coords, (sp.Basic, str)) or not isinstance(coords, Sequence):
        coords = [coords]
    out = []
    for q in coords:
        if isinstance(q, str) or not isinstance(q, sp.Basic) or not is_state(q):
            raise ModelError(
                f"{what} must be states declared with sm.states(...), got {q!r} "
                f"({type(q).__name__}). Declare them first: q, = sm.states('q')."
            )
        if q in out:
            raise ModelError(f"{what} lists {q} twice; give each coordinate once.")
        out.append(q)
    if not out:
        raise ModelError(f"{what} is empty; pass at least one state, e.g. [q].")
    return tuple(out)


def check_expression(expr: Any, what: str) -> sp.Expr:
    """``expr`` as a SymPy expression (never parsing strings), or a `ModelError`."""
    if isinstance(expr, str):
        raise ModelError(
            f"{what} is the string {expr!r}; symml does not parse strings. Write it in SymPy, e.g. "
            "m * q.diff(sm.t)**2 / 2 - k * q**2 / 2."
        )
    try:
        out = sp.sympify(expr, strict=True)
    except sp.SympifyError:
        raise ModelError(f"{what} must be a SymPy expression, got {type(expr).__name__}: {expr!r}.") from None
    if not isinstance(out, sp.Expr):
        raise ModelError(f"{what} must be a SymPy expression, got {out!r}.")
    return out


def is_zero(expr: Any) -> bool:
    """True when ``cancel`` proves ``expr`` is identically zero (False means: not proven)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    try:
        return sp.cancel(sp.expand(expr)) == 0
    except (sp.PolynomialError, TypeError, ValueError):  # non-polynomial pieces SymPy cannot cancel
        return False


def rotation_pairs(n: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, to test for rotation invariance (none beyond the limit)."""
    if n > MAX_PAIRS_COORDS:
        return []
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def pair_name(a: sp.Expr, b: sp.Expr) -> str:
    return f"angular_momentum_{state_name(a)}{state_name(b)}"
