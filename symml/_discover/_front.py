"""`sm.discover(..., select="solver")` with a symbolic-regression backend (Operon, PySR).

A symbolic-regression backend scores the members of its Pareto front on the regression alone,
against estimated derivatives. On noisy derivatives its most accurate members are often large
expressions that fit the noise and blow up once integrated (a quotient by ``sin(...)`` that
crosses zero, an exponential that runs away), and a regression criterion cannot see that.

So the best `PER_EQUATION` members of every equation's front (by the regression BIC, the
backend's own choice always among them) become the "terms" of the weighted model of
`symml._discover._select`: a combination is one member per equation (a one-hot weight
vector), every combination is integrated from the initial values of every trajectory in one
batched solve, and the one with the lowest trajectory BIC + regression BIC wins; a member
that does not integrate never does. The best few have their overall scale refitted through
the solver, as the linear path refits its coefficients.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import sympy as sp

from .._declare._symbols import t
from ..distill.base import Candidate, Expression, additive_coefficients
from ._batch import SolverSelection
from ._candidates import Support
from ._errors import DiscoveryError
from ._select import select
from ._validated import best_regression_r2, warn_on_fit

#: members of each equation's front tried through the solver
PER_EQUATION = 6


def _regression_bic(c: Candidate, n: int) -> float:
    return n * math.log(max(c.mse, 1e-300)) + max(c.n_params, 1) * math.log(max(n, 2))


def _members(res: Expression) -> list[Candidate]:
    """The best `PER_EQUATION` distinct members of the front, the backend's choice first."""
    n = res.n_samples
    chosen = Candidate(res.expr, res.complexity, res.mse, res.n_params)
    front = [c for c in res.front if math.isfinite(c.mse)]
    out: list[Candidate] = [chosen]
    seen = {sp.srepr(res.expr)}
    for c in sorted(front, key=lambda c: (_regression_bic(c, n), c.complexity)):
        key = sp.srepr(c.expr)
        if key not in seen:
            seen.add(key)
            out.append(c)
        if len(out) == PER_EQUATION:
            break
    return out


def _scaled(expr: sp.Expr, scale: float) -> sp.Expr:
    # the scale goes into each additive term's coefficient rather than in front of a sum
    if scale == 1.0:
        return expr
    return sp.Add(*[sp.Float(scale) * a for a in sp.Add.make_args(expr)])


def choose_from_fronts(
    data, bases, orders, cols, inputs, results: dict, notes: list[str]
) -> tuple[dict, dict[str, Any]]:
    """``(results, validation)``: each equation's member of its front chosen through the solver."""
    lhs_of = [b.diff(t, orders[b]) for b in bases]
    members = [_members(results[lhs]) for lhs in lhs_of]
    terms = [c.expr for ms in members for c in ms]
    offsets = np.cumsum([0] + [len(ms) for ms in members])
    candidates = []
    for i, (lhs, ms) in enumerate(zip(lhs_of, members)):
        n = results[lhs].n_samples
        row = []
        for k, c in enumerate(ms):
            coef = np.zeros(len(terms))
            coef[offsets[i] + k] = 1.0
            row.append(
                Support(
                    (int(offsets[i] + k),),
                    coef,
                    c.mse * n,
                    _regression_bic(c, n),
                    math.inf,
                    n_params=max(c.n_params, 1),
                )
            )
        candidates.append(row)
    selection = SolverSelection(data, bases, orders, cols, inputs, terms)
    best, done = select(selection, candidates)
    if not best.ok:
        raise DiscoveryError(
            f"None of the {len(done)} combinations of Pareto-front members tried integrates from "
            f"the data's initial values (every one blew up or hit the step limit of "
            f"{selection.options.max_steps}). Allow fewer functions (functions=('add', 'sub', "
            "'mul')), search longer, or pass select='backend' to get the backend's choice unvalidated."
        )
    refitted = best.coefs is not None and all(z in cols for z in inputs)
    out = {}
    for i, lhs in enumerate(lhs_of):
        res = results[lhs]
        k = best.choice[i]
        c = members[i][k]
        j = int(offsets[i] + k)
        scale = float(best.coefs[i][j]) if refitted and best.coefs is not None else 1.0
        expr = _scaled(c.expr, scale)
        variance = res.mse / max(1.0 - res.r2, 1e-300) if res.r2 < 1.0 else math.nan
        front = tuple(
            dataclasses.replace(
                m,
                criterion=min((s.criterion for s in done.values() if s.choice[i] == q), default=math.inf),
            )
            for q, m in enumerate(members[i])
        )
        out[lhs] = dataclasses.replace(
            res,
            expr=expr,
            mse=c.mse,
            r2=1.0 - c.mse / variance if math.isfinite(variance) and variance > 0 else res.r2,
            complexity=c.complexity,
            n_params=c.n_params,
            coefficients=additive_coefficients(expr),
            front=front,
            selection="solver-bic",
            info={
                **dict(res.info),
                "backend_choice": str(res.expr),
                "refitted_through_solver": refitted,
                "scale": scale,
            },
        )
    warn_on_fit(best.traj_r2, notes, best_regression_r2(out))
    validation: dict[str, Any] = {
        "r2": tuple(float(v) for v in best.per_trajectory_r2),
        "criterion": float(best.criterion),
        "combinations": len(done),
        "integrated": sum(1 for s in done.values() if s.ok),
        "library": "front",
    }
    return out, validation
