"""Choosing the structure of distilled terms through the solver, on the training data.

A network trained on a few noisy samples is only right to within the noise, and its samples
lie on a few trajectories, where polynomial candidates are nearly collinear: a sparsity path
fitted to the network's samples alone happily explains the network's own wiggles with a
dozen large, cancelling terms. What decides between structures is the data. So, for every
network output, greedy forward selection on the network's samples proposes nested supports
(1, 2, ... terms, plus the best single terms), and each combination of supports is refitted
*through the ODE solver* against the training data (Levenberg–Marquardt on the coefficients,
all other terms held at zero) and scored by the extended BIC, with each observed key weighted
by the residual scale of the trained universal ODE; a local search (swap, add or drop one
term of one output) then explores around the best combination. Combinations in which a
coefficient is within two standard errors of zero rank last. The chosen coefficients are already refitted
on the data.

One model holding every candidate term is compiled once; a support is a mask on its
coefficients, so trying a combination costs a few solves, not a compilation.

Why SciPy's Levenberg–Marquardt (MINPACK, on the host) and not `symml.fit` (optimistix in a
compiled loop): `symml.fit` compiles one runner per set of unknowns, and every support is a
different set, so each of the dozens of combinations tried would pay a compilation. Here the
residual and its Jacobian over *all* candidate coefficients are jitted once and MINPACK works
on the columns of the active ones. Measured on the Lotka–Volterra candidates (12 coefficients,
21 samples, five supports, a loaded 2-core machine): 13.7 s for the first support (the one
compilation), then 0.05-0.14 s per support; through `symml.fit`, 12-26 s for every support,
with the same coefficients to 3 decimals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, cast

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._declare._model import Model
from .._declare._symbols import Parameter, neural_spec
from .._fit._inverse import solver_fn
from ..errors import SymmlError
from .base import Candidate, Expression, additive_coefficients
from .library import evaluate


class ValidationError(SymmlError, ValueError):
    """Structure selection through the solver cannot run on this data."""


def front_terms(front: Sequence[sp.Expr], limit: int = 24, max_ops: int = 12) -> list[sp.Expr]:
    """Candidate terms from a symbolic-regression front (simplest expression first): the
    additive terms of every member, expanded and stripped of their leading constant.

    A member ``-0.9 u v + 3e-3 u^2 v`` gives ``u v`` and ``u^2 v``; nonlinear pieces keep their
    inner constants (``exp(0.31 u)``). So the structures the search proposed become a library
    whose coefficients the solver refits and whose supports BIC on the data chooses, exactly
    as for SINDy. At most ``limit`` terms, each of at most ``max_ops`` operations.

    >>> import sympy as sp
    >>> u, v = sp.symbols("u v")
    >>> front_terms([-0.9 * u * v, -0.9 * u * v + 0.003 * u**2 * v + 0.02])
    [u*v, 1, u**2*v]
    """
    out: list[sp.Expr] = []
    for expr in front:
        for arg in sp.Add.make_args(sp.expand(expr)):
            _, rest = arg.as_coeff_Mul()
            rest = sp.Integer(1) if rest.is_number else rest
            if rest not in out and sp.count_ops(rest) <= max_ops:
                out.append(rest)
            if len(out) >= limit:
                return out
    return out


def greedy_supports(F: np.ndarray, y: np.ndarray, max_terms: int, singles: int = 3) -> list[tuple[int, ...]]:
    """Candidate supports: forward selection of columns of ``F`` (nested, 1..``max_terms``
    terms) and the ``singles`` best single columns, each as a sorted tuple of indices."""
    scale = np.linalg.norm(F, axis=0)
    scale[scale == 0] = 1.0
    G = F / scale

    def rss(cols):
        A = G[:, list(cols)]
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        r = y - A @ coef
        return float(r @ r)

    m = G.shape[1]
    singles_rss = sorted((rss((j,)), j) for j in range(m))
    out: list[tuple[int, ...]] = [(j,) for _, j in singles_rss[:singles]]
    support: tuple[int, ...] = ()
    for _ in range(min(max_terms, m)):
        best = min((rss(support + (j,)), j) for j in range(m) if j not in support)[1]
        support = tuple(sorted(support + (best,)))
        out.append(support)
    return list(dict.fromkeys(out))


def _least_squares(F: np.ndarray, y: np.ndarray, support) -> np.ndarray:
    coef = np.zeros(F.shape[1])
    sol, *_ = np.linalg.lstsq(F[:, list(support)], y, rcond=None)
    coef[list(support)] = sol
    return coef


def select_through_solver(
    trained,
    calls: Sequence[sp.Expr],
    terms: dict,
    samples: dict,
    max_terms: int = 3,
    backend: str = "sindy",
    verbose: bool = False,
    progress: bool = False,
) -> dict:
    """``{call: Expression}``: the structure of every output chosen by BIC on the data.

    ``terms[call]`` is the list of candidate SymPy terms of that output (in the network's
    inputs) and ``samples[call] = (X, y)`` the network's inputs and output along the fitted
    trajectories.
    """
    from scipy.optimize import least_squares

    model = trained.model
    data = trained.data
    weights_of = {}
    rep = {}
    for k, call in enumerate(calls):
        ws = [Parameter(f"_w{k}_{j}", real=True) for j in range(len(terms[call]))]
        weights_of[call] = ws
        rep[call] = sp.Add(*[w * term for w, term in zip(ws, terms[call])])
    eqs = [sp.Eq(eq.lhs, eq.rhs.xreplace(rep)) for eq in model.equations]
    all_w = [w for call in calls for w in weights_of[call]]
    full = Model(eqs, defaults={**model.defaults, **{w: 0.0 for w in all_w}}, name=f"{model.name}_candidates")
    w_index = np.array([full.params.index(w) for w in all_w])
    p_base = np.array([float(full.defaults.get(p, np.nan)) for p in full.params])

    targets, runs = [], []
    for i, (series, exprs) in enumerate(data.resolve(model)):
        if not all(e in full.states for e in exprs):
            raise ValidationError(
                "Choosing distilled structures through the solver needs the states themselves to be "
                f"observed; this data observes {', '.join(map(str, exprs))}. Pass validate=False."
            )
        cols = [full.states.index(e) for e in exprs]
        ts = np.asarray(series.t, dtype=float)
        obs = np.stack([np.asarray(v, dtype=float) for v in series.values.values()], axis=-1)
        pred = trained.predict(trajectory=i)
        fitted = np.stack([np.asarray(pred[e]) for e in exprs], axis=-1)
        scale = np.sqrt(np.nanmean((fitted - obs) ** 2, axis=0))
        scale = np.where(scale > 0, scale, 1.0)
        y0 = {s: trained.ics[i][s] for s in full.states}
        fn = solver_fn(full, saveat=jnp.asarray(ts), adjoint=diffrax.ForwardMode(), check=False)
        runs.append((fn, y0, cols))
        targets.append((obs, scale, np.isfinite(obs)))

    def residuals(p):
        out = []
        for (fn, y0, cols), (obs, scale, ok) in zip(runs, targets):
            ys = fn(params=p, ics=y0).y[:, cols]
            r = jnp.where(ok, (ys - jnp.nan_to_num(obs)) / scale[None, :], 0.0)
            out.append(r.ravel())
        return jnp.concatenate(out)

    res_j = jax.jit(residuals)
    # Forward-mode derivatives cost one tangent solve per direction: differentiate along the
    # active coefficients only (at most max_terms per output, zero-padded to a fixed count so
    # that it compiles once), not along every candidate term's weight. On the Hopf universal
    # ODE (2 x 15 candidate weights, at most 6 active) this makes each refit about 5x cheaper.
    n_dir = max(1, max_terms * len(calls))

    def along(z, p0, E):
        return residuals(p0 + E @ z)

    jac_j = jax.jit(jax.jacfwd(along))
    n_obs = int(sum(ok.sum() for _, _, ok in targets))
    # Below this residual a fit is exact to solver accuracy: on noise-free data, extra terms
    # must not win by fitting the integration error.
    rss_floor = EXACT_TOL**2 * float(sum(np.nansum((obs / scale) ** 2) for obs, scale, _ in targets))

    per_call = {}
    for call in calls:
        X, yv = samples[call]
        F = evaluate(terms[call], _inputs_of(call), X, check=False)
        per_call[call] = (F, yv, greedy_supports(F, yv, max_terms))

    def fit(supports):
        start = np.concatenate(
            [_least_squares(per_call[c][0], per_call[c][1], s) for c, s in zip(calls, supports)]
        )
        offsets = np.cumsum([0] + [len(terms[c]) for c in calls])
        active = np.concatenate([offsets[i] + np.array(s, dtype=int) for i, s in enumerate(supports)])

        def full_p(z):
            p = p_base.copy()
            w = np.zeros(len(all_w))
            w[active] = z
            p[w_index] = w
            return p

        def fun(z):
            r = np.asarray(res_j(jnp.asarray(full_p(z))))
            return np.where(np.isfinite(r), r, 1e6)

        k_dir = max(n_dir, len(active))  # more would only recompile, never fail
        E = np.zeros((len(p_base), k_dir))
        E[w_index[active], np.arange(len(active))] = 1.0
        E_j = jnp.asarray(E)

        def jac(z):
            zz = np.zeros(k_dir)
            zz[: len(active)] = z
            p0 = full_p(z) - E @ zz
            J = np.asarray(jac_j(jnp.asarray(zz), jnp.asarray(p0), E_j))[:, : len(active)]
            return np.where(np.isfinite(J), J, 0.0)

        # SciPy's least_squares is unannotated: pyright infers ``jac: str`` from its default
        sol = least_squares(
            fun,
            start[active],
            jac=cast(Any, jac),
            method="lm",
            max_nfev=MAX_NFEV,
            ftol=REFIT_TOL,
            xtol=REFIT_TOL,
        )
        rss = float(sol.fun @ sol.fun)
        bic = n_obs * math.log(max(rss, rss_floor, 1e-300) / n_obs) + len(active) * math.log(n_obs)
        # extended BIC (Chen & Chen 2008): the search tries many supports, and the best of many
        # useless terms lowers the residual by luck more than log(n) pays for
        bic += (
            2.0
            * EBIC_GAMMA
            * sum(math.log(math.comb(len(terms[c]), len(x))) for c, x in zip(calls, supports))
        )
        w = np.zeros(len(all_w))
        w[active] = sol.x
        return (
            bic,
            rss,
            [w[offsets[i] : offsets[i + 1]] for i in range(len(calls))],
            _t_min(sol, n_obs, rss_floor),
        )

    done: dict[tuple, tuple] = {}
    from tqdm.auto import tqdm

    bar = tqdm(desc="distill: structures refitted through the solver", unit="fit", disable=not progress)

    def score(supports) -> tuple:
        supports = tuple(tuple(sorted(x)) for x in supports)
        if supports not in done:
            bic, rss, ws, t_min = fit(supports)
            done[supports] = (bic, sum(map(len, supports)), supports, ws, rss, t_min)
            bar.update(1)
            if verbose:
                shown = "; ".join(" + ".join(str(terms[c][j]) for j in x) for c, x in zip(calls, supports))
                print(f"    BIC {bic:10.2f}  min |t| {t_min:7.2f}  {shown}")
        r = done[supports]
        # BIC alone keeps a term that lowers the residual a little by luck; a term whose
        # coefficient is not at least SIGNIFICANCE standard errors away from zero is not
        # supported by the data, so combinations made only of significant terms rank first.
        return (r[5] < SIGNIFICANCE, r[0], r[1])

    best = min(itertools.product(*[per_call[c][2] for c in calls]), key=score)
    # The samples' proposals can miss the right term of an output when the network is poor
    # there: search the neighbourhood of the best combination through the solver, one output
    # at a time (every single term; one term more; one term less) until nothing improves.
    for _ in range(MAX_SWEEPS):
        before = best
        for i, call in enumerate(calls):
            m = len(terms[call])
            current = tuple(sorted(best[i]))
            options = [(j,) for j in range(m)]
            options += [current[:k] + current[k + 1 :] for k in range(len(current)) if len(current) > 1]
            if len(current) < max_terms:
                options += [tuple(sorted(current + (j,))) for j in range(m) if j not in current]
            trial = [tuple(best[:i]) + (o,) + tuple(best[i + 1 :]) for o in options]
            best = min([tuple(best)] + trial, key=score)
        if tuple(best) == tuple(before):
            break
    bar.close()
    tried = sorted(done.values(), key=lambda r: (r[5] < SIGNIFICANCE, r[0], r[1]))
    best = done[tuple(tuple(sorted(x)) for x in best)]
    # Parsimony: a combination with fewer terms whose criterion is within PARSIMONY of the best
    # is preferred. An extra term that buys less than that is barely supported (Kass & Raftery:
    # a difference of 0-2 is "not worth more than a bare mention"), and on a few trajectories the
    # network's own error makes such terms common: the Hopf normal form's -x³ - x y² gained
    # -0.008 x (0.8 better), Lotka-Volterra's 1.8 u v gained u² v and u v³ (2.2 better).
    close = [r for r in done.values() if r[5] >= SIGNIFICANCE and r[0] <= best[0] + PARSIMONY]
    if best[5] >= SIGNIFICANCE and close:
        best = min(close, key=lambda r: (r[1], r[0]))
    out = {}
    for i, call in enumerate(calls):
        X, yv = samples[call]
        F = per_call[call][0]
        w = best[3][i]
        expr = sp.Add(*[sp.Float(float(w[j])) * terms[call][j] for j in best[2][i]])
        pred = F @ w
        mse = float(np.mean((pred - yv) ** 2))
        var = float(np.var(yv))
        front = tuple(
            Candidate(
                sp.Add(*[sp.Float(float(r[3][i][j])) * terms[call][j] for j in r[2][i]]),
                len(r[2][i]),
                float(np.mean((F @ r[3][i] - yv) ** 2)),
                len(r[2][i]),
                r[0],
                {"data_rss": r[4]},
            )
            for r in sorted(tried, key=lambda r: len(r[2][i]))
            if all(r[2][j] == best[2][j] for j in range(len(calls)) if j != i)
        )
        out[call] = Expression(
            expr=expr,
            inputs=_inputs_of(call),
            backend=backend,
            mse=mse,
            r2=1.0 - mse / var if var > 0 else math.nan,
            complexity=len(best[2][i]),
            n_samples=len(yv),
            n_params=len(best[2][i]),
            coefficients=additive_coefficients(expr),
            front=front,
            selection="data-bic",
            info={"combinations": len(tried), "n_obs": n_obs, "data_rss": best[4], "min_t": best[5]},
        )
    return out


SIGNIFICANCE = 2.0
EXACT_TOL = 1e-5
#: A refit stops when the residual (or the coefficients) change by less than this relative
#: amount, or after MAX_NFEV evaluations: on the Hopf universal ODE the 120 structures tried
#: averaged 42 Jacobians each with MINPACK's defaults (1e-8, 200), most of them spent on wrong
#: structures creeping towards optima they lose anyway; 1e-6 of the residual moves the
#: criterion by n 1e-6, far below any margin that decides.
REFIT_TOL = 1e-6
MAX_NFEV = 60
#: criterion units by which an extra term must improve the fit to be kept (see the parsimony step)
PARSIMONY = 3.0
MAX_SWEEPS = 3
EBIC_GAMMA = 1.0


def _t_min(sol, n_obs: int, rss_floor: float = 0.0) -> float:
    """Smallest |coefficient| / standard error of a least-squares solution (inf if none)."""
    J = np.asarray(sol.jac)
    k = J.shape[1]
    if k == 0 or n_obs <= k:
        return math.inf
    s2 = max(float(sol.fun @ sol.fun), rss_floor) / (n_obs - k)
    cov = s2 * np.linalg.pinv(J.T @ J)
    se = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    return float(np.min(np.abs(sol.x) / se))


def _inputs_of(call) -> tuple:
    return tuple(neural_spec(call)[0].inputs)
