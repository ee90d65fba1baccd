"""Choosing discovered structures through the solver: integrate candidates against the data.

A regression on estimated derivatives (or weak-form integrals) scores how well a right-hand
side matches derivatives, not whether the ODE reproduces the data: near-collinear libraries
give supports with the same regression residual and very different trajectories, and some
of them blow up from the data's own initial values. So every combination of candidate
supports (one per equation, `symml._discover._candidates`) is integrated from the initial
values of *every* trajectory of the Dataset and scored by

``trajectory BIC + regression BIC``, where the trajectory BIC is
``n_eff ln(max(RSS, noise floor) / n) + k ln(n_eff)`` on the residuals of the integrated
model scaled per observed column; ``n_eff`` counts independent residuals (an integrated model's
errors drift slowly, so their number, not the sample count, prices a term) and the noise floor
(the data's noise level, from a Savitzky–Golay smoothing) stops terms that only fit noise
from being rewarded. Combinations in which a term is not significant (|t| below
`SIGNIFICANCE` in its regression) rank after the others; a combination that does not
integrate (non-finite, step limit) never wins.

Trying a batch of combinations is one vmapped solve per trajectory (`symml._discover._batch`).
The search starts from the best regression combination and changes one equation at a time
(all its candidates in one batch) until nothing improves. When that starting model is chaotic
on the record (it amplifies a small change of its initial values more than `CHAOTIC`-fold),
every candidate is scored on windows of the record instead, each integrated from the data at
its start (`followed`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from ._batch import SolverSelection, TrajectoryFit
from ._candidates import Support

#: a term whose coefficient is within this many standard errors of zero is not supported
SIGNIFICANCE = 2.0
#: a combination with a non-significant term still wins when its criterion is better than the best
#: fully significant one's by more than this (BIC units: 10 is "very strong" evidence)
OVERRIDE = 10.0
#: sweeps of the one-equation-at-a-time search
MAX_SWEEPS = 3
#: best combinations whose coefficients are refitted through the solver before the final choice
REFIT = 4
#: a record on which the starting model amplifies a small change of the initial values more
#: than this is chaotic (Lorenz over 25 time units: well above it; limit cycles and equilibria: ~1)
CHAOTIC = 1e3
#: windows on a chaotic record last until a change is amplified this much
WINDOW_GROWTH = 10.0
#: the shortest window, in samples
MIN_WINDOW = 12


@dataclasses.dataclass(frozen=True)
class Scored:
    """A combination of supports (one per equation) scored through the solver."""

    choice: tuple[int, ...]
    criterion: float
    traj_r2: float
    ok: bool
    significant: bool
    per_trajectory_r2: tuple[float, ...]
    coefs: tuple | None = None  # refitted through the solver, one vector per equation
    fit: TrajectoryFit | None = None  # what the criterion is computed from
    k: int = 0  # constants of the combination
    regression: float = 0.0  # the summed regression criteria of its supports
    negligible: bool = False  # a support has a term of negligible size

    def rescored(self, n_eff: float) -> Scored:
        """The same combination with its criterion on ``n_eff`` independent residuals."""
        if not self.ok or self.fit is None:
            return self
        return dataclasses.replace(self, criterion=self.fit.criterion(self.k, n_eff) + self.regression)


def pick(scored: Sequence[Scored]) -> Scored:
    """The preferred of ``scored``: the best criterion among the combinations that integrate
    and whose every term is significant, unless a combination with a non-significant term is
    better by more than `OVERRIDE` (then the evidence for it outweighs the t test: with
    nearly collinear terms on a short range every support but the empty one can fail the
    test, and the empty one would win with a criterion hundreds of units worse)."""
    ok = [s for s in scored if s.ok]
    if not ok:
        return scored[0]
    # a term of negligible size (its share of the right-hand side) soaks up the bias of the
    # derivative estimates on clean data: such combinations win only when nothing else integrates
    ok = [s for s in ok if not s.negligible] or ok
    best = min(ok, key=lambda s: s.criterion)
    significant = [s for s in ok if s.significant]
    if significant:
        best_significant = min(significant, key=lambda s: s.criterion)
        if best_significant.criterion <= best.criterion + OVERRIDE:
            return best_significant
    return best


def common_count(scored: Sequence[Scored]) -> float | None:
    """The count of independent residuals every criterion is put on: that of the combination
    that fits the trajectories best (``None`` when none integrates)."""
    fits = [s.fit for s in scored if s.ok and s.fit is not None]
    return min(fits, key=lambda f: f.rss).n_eff if fits else None


def start_of(candidates: Sequence[Sequence[Support]]) -> tuple[int, ...]:
    """The combination the search starts from: each equation's best regression criterion."""
    return tuple(int(np.argmin([c.criterion for c in cands])) for cands in candidates)


def followed(selection: SolverSelection, candidates: Sequence[Sequence[Support]]) -> SolverSelection:
    """``selection`` itself, or cut into windows when the record is chaotic. Scored whole, a
    chaotic record rewards whatever happens to stay close to it by chance (terms that delay
    the divergence), however well the equations are known.

    A record is chaotic when a plausible model of it amplifies a small change of its initial
    values more than `CHAOTIC`-fold within the record: the regression's best combination, and
    the sparse ones made of each equation's best support of at most 1, 2, 3 or 4 terms (the
    regression's best can be a many-term fit that settles on a cycle where the true law is
    chaotic). Only with three or more states: an autonomous flow in the plane is never chaotic.
    The windows last until a change is amplified `WINDOW_GROWTH`-fold (at least `MIN_WINDOW`
    samples), each integrated from the data at its start."""
    if selection.window is not None or len(selection.inputs) < 3:
        return selection
    probes = [start_of(candidates)]
    for k in range(1, 5):
        probes.append(
            tuple(
                min((j for j, c in enumerate(cands) if len(c.support) <= k), key=lambda j: cands[j].criterion)
                for cands in candidates
            )
        )
    worst = None
    for choice in dict.fromkeys(probes):
        W = selection.parameters([candidates[i][choice[i]].coef for i in range(len(candidates))])
        growth = selection.growth(W)
        if growth is not None and (worst is None or float(np.max(growth)) > float(np.max(worst))):
            worst = growth
    if worst is None or not float(np.max(worst)) > CHAOTIC:
        return selection
    return selection.windowed(max(MIN_WINDOW, int(np.argmax(worst > WINDOW_GROWTH))))


def select(
    selection: SolverSelection, candidates: Sequence[Sequence[Support]], refits: int = REFIT
) -> tuple[Scored, dict[tuple[int, ...], Scored]]:
    """The best combination of ``candidates`` (one list per equation) and every one scored;
    the best ``refits`` are refitted through the solver before the final choice.

    Every criterion counts the same number of independent residuals: that of the combination
    that fits the trajectories best so far (recounted, and every criterion recomputed, when a
    better one turns up). An integrated model's errors drift slowly, so their count, not the
    sample count, prices a term; but a poor model's residuals are one slow drift (the empty
    model's: a count of 3 or 4), and pricing everything by it would let the regression alone
    decide, returning ``x' = 0`` for a clear trend."""
    start = start_of(candidates)
    done: dict[tuple[int, ...], Scored] = {}
    common = [math.nan]

    def make(c: tuple[int, ...], fit, r2, r2s, coefs=None, t_min=math.inf) -> Scored:
        reg = sum(candidates[i][c[i]].criterion for i in range(len(candidates)))
        sig = all(candidates[i][c[i]].t_min >= SIGNIFICANCE for i in range(len(candidates)))
        k = sum(candidates[i][c[i]].k for i in range(len(candidates)))
        ok = fit is not None
        small = any(candidates[i][c[i]].negligible for i in range(len(candidates)))
        return Scored(c, math.inf, r2, ok, sig and t_min >= SIGNIFICANCE, r2s, coefs, fit, k, reg, small)

    def recount(extra: Sequence[Scored] = ()) -> None:
        n_eff = common_count([*done.values(), *extra])
        if n_eff is not None:
            common[0] = n_eff
            for c, s in done.items():
                done[c] = s.rescored(n_eff)

    def evaluate(choices: list[tuple[int, ...]]):
        todo = [c for c in dict.fromkeys(choices) if c not in done]
        if todo:
            P = np.stack(
                [
                    selection.parameters([candidates[i][c[i]].coef for i in range(len(candidates))])
                    for c in todo
                ]
            )
            for c, (fit, r2, r2s) in zip(todo, selection.score(P)):
                done[c] = make(c, fit, r2, r2s)
        recount()
        return pick([done[c] for c in choices])

    best = evaluate([start])
    for _ in range(MAX_SWEEPS):
        before = best.choice
        for i, cands in enumerate(candidates):
            trial = [best.choice[:i] + (j,) + best.choice[i + 1 :] for j in range(len(cands))]
            best = pick([done[best.choice], evaluate(trial)])
        if best.choice == before:
            break
    # The candidates' coefficients come from the regression, which noise biases; a biased
    # true support can lose to a spurious term that compensates the bias along the
    # trajectory. So the best few combinations are refitted through the solver on every
    # trajectory and compared again, with the significance of the refitted terms.
    ranked = sorted((s for s in done.values() if s.ok), key=lambda s: (not s.significant, s.criterion))
    top = ranked[:refits]
    top += [s for s in sorted(ranked, key=lambda s: s.criterion)[:1] if s not in top]
    # The finalists are scored from both starts, each by the worse: from the smoothed data
    # (the better estimate of the true initial values on noisy data) and from the samples as
    # observed, the values a model is returned with. The smoothed start is biased where a
    # record starts with a fast transient (A + B <-> C at 1 % noise: 4 % low), and a model with
    # a separatrix between the two starts followed the data from one and left them from the
    # other (R2 0.99 against -590): such a model has not been identified by the data.
    m = len(selection.terms)
    W0s = [
        selection.parameters([candidates[i][s.choice[i]].coef for i in range(len(candidates))]) for s in top
    ]
    fits = {i: fit for i, W0 in enumerate(W0s) if (fit := selection.refit(W0)) is not None}
    order = list(fits)
    # every solve of the finalists in one batched call per start (a call solves a padded batch)
    scores = dict(zip(order, selection.score(np.stack([fits[i][0] for i in order])))) if order else {}
    raw = []
    if selection.window is None and top:
        raw = selection.raw_started().score(np.stack([fits[i][0] for i in order] + W0s))
    raw_of_fit, raw_of_start = dict(zip(order, raw)), raw[len(order) :]

    def worse(scored, other):
        traj, r2, r2s = scored
        if other is None or traj is None:
            return scored
        if other[0] is None:
            return None, -math.inf, ()
        fit = other[0] if other[0].rss > traj.rss else traj
        return fit, min(r2, other[1]), tuple(map(min, r2s, other[2]))

    refitted = []
    for i, s in enumerate(top):
        if i in scores and scores[i][0] is not None:
            traj, r2, r2s = worse(scores[i], raw_of_fit.get(i))
            if traj is not None:
                W, t_min = fits[i]
                coefs = tuple(W[:m, selection.out_index[j]].copy() for j in range(len(candidates)))
                refitted.append(make(s.choice, traj, r2, r2s, coefs, t_min))
                continue
        other = raw_of_start[i] if raw_of_start else None
        refitted.append(make(s.choice, *worse((s.fit, s.traj_r2, s.per_trajectory_r2), other)))
    recount(refitted)
    refitted = [s.rescored(common[0]) for s in refitted]
    if refitted:
        best = pick(refitted)
    else:
        best = done[best.choice]
    return best, done
