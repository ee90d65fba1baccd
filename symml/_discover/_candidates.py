"""Candidate supports for one equation of `sm.discover`: exact subsets, stepwise paths.

A thresholded path (STLSQ) on a nearly collinear library often never visits the true
support: for ``x' = 0.23 x`` sampled along one exponential, ``x``, ``x²`` and ``x³`` are almost
proportional, and the thresholds jump from three terms to none. So the candidates of one
equation are the best support of every size: exact search over all subsets of the small sizes
(the truth of a textbook equation has one to four terms), then forward selection from the best
exact support and backward elimination from the whole library, each refitted by least squares;
per size the support with the smallest residual is kept, with the significance of its
weakest term. The solver then chooses among them (`symml._discover._select`).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.exp(0.23 * np.linspace(0, 10, 100))
>>> F = np.column_stack([x, x**2, x**3])
>>> y = 0.23 * x * (1 + 0.05 * rng.standard_normal(100))
>>> [c.support for c in best_supports(F, y, n_eff=100.0)][:2]
[(), (0,)]
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np

#: exact search covers every subset of a size while it has at most this many members
EXACT_LIMIT = 2000
#: and sizes up to this one (the forward and backward paths take over beyond)
EXACT_SIZE = 3
#: the largest support proposed
MAX_TERMS = 10


@dataclasses.dataclass(frozen=True)
class Support:
    """One candidate support of one equation, refitted by least squares.

    Attributes:
        support: sorted column indices.
        coef: the least-squares coefficients on those columns (all columns, zeros elsewhere).
        rss: residual sum of squares on the regression rows.
        criterion: the regression BIC (on ``n_eff`` independent rows).
        t_min: the smallest |coefficient| / standard error (``inf`` for the empty support).
        n_params: constants the candidate has (default: one per column of its support; a
            symbolic-regression expression used as one column has more).
        negligible: a term's share of the fitted right-hand side is below `MIN_CONTRIBUTION`
            (such a support never wins on evidence alone, see `symml._discover._select.pick`).
    """

    support: tuple[int, ...]
    coef: np.ndarray
    rss: float
    criterion: float
    t_min: float
    n_params: int | None = None
    negligible: bool = False

    @property
    def k(self) -> int:
        """The number of constants the trajectory criterion prices."""
        return len(self.support) if self.n_params is None else self.n_params


#: a term whose share of the fitted right-hand side (its unit-RMS column's coefficient over the
#: RMS of the fit) is below this is negligible, whatever its t statistic
MIN_CONTRIBUTION = 1e-3


def _fit(A: np.ndarray, y: np.ndarray, cols: tuple[int, ...]) -> tuple[np.ndarray, float]:
    if not cols:
        return np.zeros(0), float(y @ y)
    sol, *_ = np.linalg.lstsq(A[:, cols], y, rcond=None)
    r = y - A[:, cols] @ sol
    return sol, float(r @ r)


def _t_min(A: np.ndarray, cols: tuple[int, ...], sol: np.ndarray, rss: float, n_eff: float) -> float:
    """Smallest |t| of the least-squares coefficients, the noise variance counted over
    ``n_eff`` independent rows (correlated rows carry less information than their number)."""
    if not cols:
        return math.inf
    n = A.shape[0]
    dof = max(n_eff - len(cols), 1.0)
    s2 = rss / n * n / dof
    G = A[:, cols].T @ A[:, cols]
    cov = s2 * np.linalg.pinv(G) * (n / max(n_eff, 1.0))
    se = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return float(np.min(np.abs(sol) / se))


def best_supports(
    F: np.ndarray,
    y: np.ndarray,
    n_eff: float,
    max_terms: int = MAX_TERMS,
    extra: tuple[tuple[int, ...], ...] = (),
    exact_tol: float = 1e-6,
    allowed: Sequence[int] | None = None,
) -> list[Support]:
    """The best support of every size 0..``max_terms`` of ``y ≈ F @ c`` (plus ``extra``).

    Columns are scaled to unit RMS first (the residual does not depend on it; the conditioning
    does). Sizes with at most `EXACT_LIMIT` subsets are searched exactly; larger ones come from
    forward selection (from the best exact support) and backward elimination (from all
    columns), whichever leaves the smaller residual. ``allowed`` restricts the columns.
    """
    n, m = F.shape
    scale = np.sqrt(np.mean(F**2, axis=0))
    usable = np.flatnonzero(scale > 1e-300)
    if allowed is not None:
        usable = np.intersect1d(usable, np.asarray(list(allowed), dtype=int))
    A = np.zeros_like(F)
    A[:, usable] = F[:, usable] / scale[usable]
    max_terms = min(max_terms, usable.size)
    best: dict[int, tuple[float, tuple[int, ...]]] = {0: (float(y @ y), ())}

    def offer(cols: tuple[int, ...]) -> float:
        cols = tuple(sorted(cols))
        _, rss = _fit(A, y, cols)
        k = len(cols)
        if k not in best or rss < best[k][0]:
            best[k] = (rss, cols)
        return rss

    exact_top = 0
    for k in range(1, max_terms + 1):
        if k > EXACT_SIZE or math.comb(usable.size, k) > EXACT_LIMIT:
            break
        for cols in itertools.combinations(usable.tolist(), k):
            offer(cols)
        exact_top = k
    # forward selection from the best exact support
    current = best[exact_top][1]
    while len(current) < max_terms:
        trial = [(offer(current + (j,)), j) for j in usable.tolist() if j not in current]
        if not trial:
            break
        current = tuple(sorted(current + (min(trial)[1],)))
    # backward elimination from every usable column, dropping the weakest term each time
    current = tuple(usable.tolist())
    while len(current) > exact_top + 1:
        sol, rss = _fit(A, y, current)
        if len(current) <= max_terms:
            offer(current)
        G = np.linalg.pinv(A[:, current].T @ A[:, current])
        t = np.abs(sol) / np.sqrt(np.clip(np.diag(G), 1e-300, None))
        current = tuple(c for i, c in enumerate(current) if i != int(np.argmin(t)))
    for cols in extra:
        if len(cols) <= max_terms:
            offer(tuple(c for c in cols if c in set(usable.tolist())))
    floor = exact_tol**2 * float(np.mean(y**2))
    out = []
    for k in sorted(best):
        rss, cols = best[k]
        sol, rss = _fit(A, y, cols)
        coef = np.zeros(m)
        if cols:
            coef[list(cols)] = sol / scale[list(cols)]
        # BIC on n_eff independent rows: n_eff ln(RSS/n) + k ln(n_eff)
        crit = n_eff * math.log(max(rss / n, floor, 1e-300)) + k * math.log(max(n_eff, 2.0))
        t_min = _t_min(A, cols, sol, max(rss, floor * n), n_eff)
        negligible = bool(
            cols and np.min(np.abs(sol)) < MIN_CONTRIBUTION * math.sqrt(max(float(y @ y) - rss, 0.0) / n)
        )
        if negligible:
            # On (nearly) noise-free data a term of negligible size can be "significant": it
            # soaks up the bias of the derivative estimates. Such a support ranks after the rest.
            t_min = 0.0
        out.append(Support(cols, coef, rss, crit, t_min, negligible=negligible))
    return out
