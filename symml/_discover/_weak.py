"""Library terms the weak form integrates by parts (no velocity data needed)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..distill.library import evaluate
from ..distill.postprocess import integrate
from ..errors import SymmlError


def integrable_terms(terms, velocities: dict) -> dict[int, tuple[sp.Expr, sp.Expr]]:
    """Library terms ``g(x) x'`` linear in one velocity ``x'`` (a key of ``velocities``,
    whose value is ``x``) with ``g`` a function of ``x`` alone: ``{index: (x, G)}`` with
    ``G = ∫ g dx``. In the weak form such a term needs no velocity data at all:
    ``∫ φ g(x) x' dt = -∫ φ' G(x) dt``."""
    out = {}
    s = sp.Dummy("s", real=True)
    for j, term in enumerate(terms):
        used = [z for z in velocities if term.has(z)]
        if len(used) != 1:
            continue
        z = used[0]
        b = velocities[z]
        g = sp.expand(term / z)
        if g.has(z):
            continue
        gs = g.xreplace({b: s})
        if gs.free_symbols - {s} or gs.atoms(sp.core.function.AppliedUndef) or gs.atoms(sp.Derivative):
            continue
        G = integrate(gs, s, timeout=2.0)  # in the symbolic worker, under its budget
        if G is None or G.has(sp.Integral) or G.has(sp.Piecewise):
            continue
        G = G.xreplace({s: b})
        if not isinstance(G, sp.Expr):
            continue
        try:
            evaluate([G], [b], np.zeros((1, 1)), check=False)
        except SymmlError:  # an antiderivative with no JAX translation: keep the plain term
            continue
        out[j] = (b, G)
    return out
