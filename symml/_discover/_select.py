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

One model holds every library term with a weight per (equation, term); it is compiled once
and a combination is a weight vector, so trying a batch of combinations is one vmapped solve
(`symml._solve.integrate`) per trajectory, padded to a fixed batch so it compiles once. The
search starts from the best regression combination and changes one equation at a time
(all its candidates in one batch) until nothing improves.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._data._derivatives import SavitzkyGolay
from .._declare._symbols import Parameter, t
from .._solve import SolveOptions, integrate
from ..distill.sindy import effective_samples
from ._candidates import Support

#: a term whose coefficient is within this many standard errors of zero is not supported
SIGNIFICANCE = 2.0
#: steps of one candidate solve; more means the candidate is stiff or blowing up
MAX_STEPS = 4096
#: candidates solved together (fixed, so the batched solve compiles once)
BATCH = 16
#: sweeps of the one-equation-at-a-time search
MAX_SWEEPS = 3
#: a state beyond this many times the largest observed magnitude has blown up
BOUND = 100.0
#: noise floor of a column never below this fraction of its RMS (noise-free data)
REL_FLOOR = 1e-4


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


def noise_level(ts: np.ndarray, x: np.ndarray) -> float:
    """Standard deviation of the noise on ``x``: the residual of a Savitzky–Golay smoothing
    (GCV window), corrected for the part of the noise the smoothing keeps."""
    from scipy.signal import savgol_coeffs

    sg = SavitzkyGolay()
    try:
        w = sg.choose_window(x)
        smooth = sg.derivatives(ts, x, 0)[0]
    except Exception:  # noqa: BLE001 - too short or non-uniform: no estimate
        return 0.0
    h = float(savgol_coeffs(w, sg.polyorder)[w // 2])
    r = x - smooth
    return float(np.sqrt(np.mean(r**2) / max(1 - h, 1e-3)))


def initial_values(ts: np.ndarray, x: np.ndarray, order: int) -> list[float]:
    """Smoothed value (and derivatives up to ``order - 1``) at the first sample."""
    sg = SavitzkyGolay()
    try:
        d = sg.derivatives(ts, x, max(order - 1, 0))
    except Exception:  # noqa: BLE001 - too few samples to smooth: the raw first value
        return [float(x[0])] + [0.0] * (order - 1)
    return [float(v[0]) for v in d]


def encode_terms(terms: Sequence[sp.Expr], inputs: Sequence[sp.Expr]) -> tuple[np.ndarray, ...] | None:
    """Exponent tables ``(E, S, C)`` with ``term_j = Π_i z_i^E[j,i] sin(z_i)^S[j,i]
    cos(z_i)^C[j,i]``, or ``None`` when a term is not of that form (it then needs a compiled
    model of its own)."""
    d = len(inputs)
    tables = [np.zeros((len(terms), d)) for _ in range(3)]
    where = {z: i for i, z in enumerate(inputs)}
    for j, term in enumerate(terms):
        for factor in sp.Mul.make_args(sp.sympify(term)):
            if factor == 1:
                continue
            base, e = factor.as_base_exp()
            if not (e.is_Integer or e.is_integer) or not e.is_number:
                return None
            if base in where:
                tables[0][j, where[base]] += int(e)
            elif isinstance(base, (sp.sin, sp.cos)) and base.args[0] in where:
                tables[1 if isinstance(base, sp.sin) else 2][j, where[cast(sp.Expr, base.args[0])]] += int(e)
            else:
                return None
    return tuple(tables)


def library_field(t, y, args):
    """``y' = A y + Θ(y) W``: the library terms Θ from the exponent tables in ``args``, the
    identity rows ``A`` of second-order states (``x' = v``). Beyond ``bound`` the field is
    frozen: a candidate that blows up stops there (and is flagged) instead of making every
    candidate of its batch crawl to the step limit."""
    W, A, E, S, C, bound = args
    theta = (
        jnp.prod(jnp.power(y[None, :], E), axis=1)
        * jnp.prod(jnp.power(jnp.sin(y)[None, :], S), axis=1)
        * jnp.prod(jnp.power(jnp.cos(y)[None, :], C), axis=1)
    )
    f = A @ y + theta @ W
    return jnp.where(jnp.any(jnp.abs(y) > bound), jnp.zeros_like(f), f)


_OPTIONS = SolveOptions.build("tsit5", rtol=1e-6, atol=1e-9, max_steps=MAX_STEPS)


def _batch(W, A, E, S, C, bound, y0, ts):
    def one(w):
        sol = integrate(
            library_field, y0, ts, cast(Any, (w, A, E, S, C, bound)), _OPTIONS
        )  # a pytree of arguments
        return sol.ys, sol.result

    return jax.vmap(one)(W)


# One jitted function for every library of the encodable kind: the library is data (exponent
# tables), so JAX's own trace cache serves every later discovery with the same shapes
# (states, padded term count, samples, batch); only the first pays the compilation.
_solve_batch = jax.jit(_batch)
#: the term count is padded to a multiple of this (zero-weight constant columns)
TERM_PAD = 8
#: best combinations whose coefficients are refitted through the solver before the final choice
REFIT = 4


class SolverSelection:
    """The solve of all candidate combinations of one discovery problem.

    States are the library's inputs (base states, then the velocities of second-order ones);
    the right-hand side of equation ``i`` is ``Σ_j W[j, i] term_j``.
    """

    def __init__(self, data, bases, orders, cols, inputs, terms):
        self.inputs = list(inputs)
        self.terms = list(terms)
        self.bases = list(bases)
        m, ds = len(terms), len(inputs)
        self.options = _OPTIONS
        tables = encode_terms(terms, inputs)
        self.m_pad = -(-max(m, 1) // TERM_PAD) * TERM_PAD
        self.out_index = [
            self.inputs.index(b.diff(t)) if orders[b] == 2 else self.inputs.index(b) for b in bases
        ]
        A = np.zeros((ds, ds))
        for b in bases:
            if orders[b] == 2:
                A[self.inputs.index(b), self.inputs.index(b.diff(t))] = 1.0
        self.A = jnp.asarray(A)
        if tables is not None:
            pad = np.zeros((self.m_pad - m, ds))
            self.tables = tuple(jnp.asarray(np.vstack([tab, pad])) for tab in tables)
            self._model_solve = None
        else:
            self.tables = None
            self._model_solve = self._compile_model(bases, orders, terms)
        self.runs = []
        self.n_eff: float | None = None
        scales, floors = {}, {}
        for series in data.series:
            ts = np.asarray(series.t, dtype=float)
            y0 = np.zeros(ds)
            obs_cols, obs = [], []
            for b in bases:
                x = np.asarray(series[cols[b]], dtype=float)
                vals = initial_values(ts, x, orders[b])
                y0[self.inputs.index(b)] = vals[0]
                if orders[b] == 2:
                    v0 = vals[1] if len(vals) > 1 else 0.0
                    if b.diff(t) in cols:
                        v0 = initial_values(ts, np.asarray(series[cols[b.diff(t)]], dtype=float), 1)[0]
                    y0[self.inputs.index(b.diff(t))] = v0
            for z, key in cols.items():
                x = np.asarray(series[key], dtype=float)
                obs_cols.append(self.inputs.index(z))
                obs.append(x)
                scales.setdefault(z, []).append(x)
                floors.setdefault(z, []).append(noise_level(ts, x))
            # save times padded (the last one repeated) to a power of two: one compilation
            # serves every record length up to it
            n_pad = max(64, 1 << (ts.size - 1).bit_length())
            ts_pad = np.concatenate([ts, np.full(n_pad - ts.size, ts[-1])])
            self.runs.append(
                (jnp.asarray(ts_pad), jnp.asarray(y0), np.array(obs_cols), np.stack(obs, axis=-1))
            )
        keys = list(cols)
        self.col_scale = np.array(
            [max(float(np.std(np.concatenate(scales[z]))), 1e-12) for z in keys], dtype=float
        )
        rms = np.array([float(np.sqrt(np.mean(np.concatenate(scales[z]) ** 2))) for z in keys])
        self.col_noise = np.maximum(np.array([float(np.mean(floors[z])) for z in keys]), REL_FLOOR * rms)
        # the freezing bound of every state: far outside anything the data show
        big = np.full(ds, 0.0)
        for series in data.series:
            for z, key in cols.items():
                i = self.inputs.index(z)
                big[i] = max(big[i], float(np.nanmax(np.abs(np.asarray(series[key], dtype=float)))))
        big = np.where(big > 0, big, 1.0)
        self.bound = jnp.asarray(BOUND * big + BOUND * float(np.max(big)) * (big == 1.0))

    def _compile_model(self, bases, orders, terms):
        """A compiled Model holding every term with a weight (terms beyond the exponent
        tables: user functions, rational terms); compiled for this discovery alone."""
        from .._compile import compile as compile_model
        from .._declare._model import Model

        weights = [[Parameter(f"_w{i}_{j}", real=True) for j in range(len(terms))] for i in range(len(bases))]
        # A term with weight 0 is left out, not multiplied by 0: where a rational or
        # symbolic-regression term is infinite (1/sin at its zeros, exp overflow), 0·inf would
        # poison every combination that does not use it.
        eqs = [
            sp.Eq(
                b.diff(t, orders[b]),
                sp.Add(
                    *[sp.Piecewise((w * term, sp.Ne(w, 0)), (0, True)) for w, term in zip(weights[i], terms)]
                ),
            )
            for i, b in enumerate(bases)
        ]
        every = [w for ws in weights for w in ws]
        model = Model(eqs, defaults={w: 0.0 for w in every}, name="discover_candidates")
        order = [self.inputs.index(s) for s in model.states]
        index = np.array([model.params.index(w) for w in every])
        vf = compile_model(model)

        def run(P, y0, ts):
            def one(p):
                sol = integrate(vf, y0[jnp.asarray(order)], ts, p, _OPTIONS)
                back = np.argsort(order)
                return sol.ys[:, back], sol.result

            return jax.vmap(one)(P)

        jitted = jax.jit(run)
        n_par = len(model.params)

        def solve(Wb, y0, ts):
            # Wb: (B, m_pad, ds) -> the model's parameter vectors
            B = Wb.shape[0]
            P = np.zeros((B, n_par))
            for i, col in enumerate(self.out_index):
                P[:, index[i * len(terms) : (i + 1) * len(terms)]] = np.asarray(Wb)[:, : len(terms), col]
            return jitted(jnp.asarray(P), y0, ts)

        return solve

    def parameters(self, coefs: Sequence[np.ndarray]) -> np.ndarray:
        """The weight matrix ``(m_pad, states)`` of one combination (a coefficient vector per equation)."""
        W = np.zeros((self.m_pad, len(self.inputs)))
        for i, c in enumerate(coefs):
            W[: len(self.terms), self.out_index[i]] = np.asarray(c, dtype=float)
        return W

    def simulate(self, P: np.ndarray, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(ys (B, n, states), ok (B,))]`` per trajectory for the weight matrices ``P``,
        padded to ``batch`` (one compilation per shape)."""
        B = P.shape[0]
        pad = np.zeros((max(batch, B) - B, *P.shape[1:]))
        PP = jnp.asarray(np.concatenate([P, pad]))
        out = []
        for ts, y0, _, obs in self.runs:
            if self.tables is not None:
                ys, res = _solve_batch(PP, self.A, *self.tables, self.bound, y0, ts)
            else:
                assert self._model_solve is not None
                ys, res = self._model_solve(PP, y0, ts)
            ys, res = np.asarray(ys)[:B, : len(obs)], np.asarray(res)[:B]
            bound = np.asarray(self.bound)
            ok = (res == 0) & np.all(np.isfinite(ys), axis=(1, 2))
            ok &= ~np.any(np.abs(ys) >= 0.999 * bound, axis=(1, 2))
            out.append((ys, ok))
        return out

    def residuals(self, Ws: np.ndarray) -> np.ndarray:
        """Scaled residuals against every trajectory, one row per weight matrix of ``Ws``
        (non-finite predictions count as 10³, missing observations as 0)."""
        out = []
        for ts, y0, oc, obs in self.runs:
            B = Ws.shape[0]
            rows = []
            for lo in range(0, B, BATCH):
                chunk = Ws[lo : lo + BATCH]
                pad = np.zeros((BATCH - len(chunk), *Ws.shape[1:]))
                if self.tables is not None:
                    ys, _ = _solve_batch(
                        jnp.asarray(np.concatenate([chunk, pad])), self.A, *self.tables, self.bound, y0, ts
                    )
                else:
                    assert self._model_solve is not None
                    ys, _ = self._model_solve(np.concatenate([chunk, pad]), y0, ts)
                rows.append(np.asarray(ys)[: len(chunk), : len(obs)])
            ys = np.concatenate(rows)
            r = (ys[:, :, oc] - np.nan_to_num(obs)[None]) / self.col_scale
            r = np.where(np.isfinite(r), r, 1e3)
            out.append(np.where(np.isfinite(obs)[None], r, 0.0).reshape(B, -1))
        return np.concatenate(out, axis=1)

    def refit(self, W0: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Levenberg–Marquardt on the non-zero weights of ``W0`` against every trajectory:
        ``(W, smallest |t| of the refitted weights)``, or ``None`` when it cannot run.

        The Jacobian is by forward differences, all columns in one batched solve: the
        batched solve is compiled already, and a forward-mode Jacobian through diffrax would
        be a second compilation costing more than every refit of a discovery together."""
        from scipy.optimize import least_squares

        rows, cols = np.nonzero(W0)
        k = rows.size
        if k == 0 or k >= BATCH:
            return None

        def weights(z):
            W = W0.copy()
            W[rows, cols] = z
            return W

        def fun(z):
            return self.residuals(weights(z)[None])[0]

        def jac(z):
            h = 1e-6 * np.maximum(np.abs(z), 1e-3)
            Ws = [weights(z)]
            for i in range(k):
                dz = z.copy()
                dz[i] += h[i]
                Ws.append(weights(dz))
            R = self.residuals(np.stack(Ws))
            return ((R[1:] - R[0]) / h[:, None]).T

        z0 = W0[rows, cols].copy()
        try:
            sol = least_squares(fun, z0, jac=jac, method="lm", max_nfev=10 * (k + 1))  # pyright: ignore[reportArgumentType]
        except (ValueError, np.linalg.LinAlgError):
            return None
        J = np.asarray(sol.jac)
        n = J.shape[0]
        s2 = float(sol.fun @ sol.fun) / max(n - k, 1)
        se = np.sqrt(np.clip(np.diag(s2 * np.linalg.pinv(J.T @ J)), 1e-300, None))
        return weights(sol.x), float(np.min(np.abs(sol.x) / se))

    def score(self, P: np.ndarray, ks: Sequence[int], batch: int) -> list[tuple[float, float, bool, tuple]]:
        """``(trajectory BIC, R², integrates, per-trajectory R²)`` for each row of ``P``."""
        sims = self.simulate(P, batch)
        out = []
        for b in range(P.shape[0]):
            if not all(ok[b] for _, ok in sims):
                out.append((math.inf, -math.inf, False, ()))
                continue
            rss, n, floor, n_eff, r2s = 0.0, 0, 0.0, 0.0, []
            for (ys, _), (_, _, obs_cols, obs) in zip(sims, self.runs):
                pred = ys[b][:, obs_cols]
                good = np.isfinite(obs)
                r = np.where(good, (pred - np.nan_to_num(obs)) / self.col_scale, 0.0)
                rss += float(np.sum(r**2))
                n += int(good.sum())
                floor += float(np.sum(good * (self.col_noise / self.col_scale) ** 2))
                for c in range(r.shape[1]):
                    n_eff += effective_samples(r[good[:, c], c])
                dev = np.where(good, np.nan_to_num(obs) - np.nanmean(obs, axis=0), 0.0) / self.col_scale
                tss = float(np.sum(dev**2))
                r2s.append(1.0 - float(np.sum(r**2)) / tss if tss > 0 else math.nan)
            # one number of independent residuals for every candidate, from the first scored
            # (the regression's choice): compared with a count of its own, a model whose
            # residuals happen to look more correlated would be priced differently
            if self.n_eff is None:
                self.n_eff = max(n_eff, 2.0)
            n_eff = self.n_eff
            crit = n_eff * math.log(max(rss, floor, 1e-300) / max(n, 1)) + ks[b] * math.log(n_eff)
            r2 = float(np.nanmin(r2s)) if r2s else math.nan
            out.append((crit, r2, True, tuple(r2s)))
        return out


def select(
    selection: SolverSelection, candidates: Sequence[Sequence[Support]]
) -> tuple[Scored, dict[tuple[int, ...], Scored]]:
    """The best combination of ``candidates`` (one list per equation) and every one scored."""
    batch = BATCH
    start = tuple(int(np.argmin([c.criterion for c in cands])) for cands in candidates)
    done: dict[tuple[int, ...], Scored] = {}

    def key(s: Scored):
        return (not s.ok, not s.significant, s.criterion)

    def evaluate(choices: list[tuple[int, ...]]):
        todo = [c for c in dict.fromkeys(choices) if c not in done]
        for lo in range(0, len(todo), batch):
            chunk = todo[lo : lo + batch]
            P = np.stack(
                [
                    selection.parameters([candidates[i][c[i]].coef for i in range(len(candidates))])
                    for c in chunk
                ]
            )
            ks = [sum(candidates[i][c[i]].k for i in range(len(candidates))) for c in chunk]
            for c, (crit, r2, ok, r2s) in zip(chunk, selection.score(P, ks, batch)):
                reg = sum(candidates[i][c[i]].criterion for i in range(len(candidates)))
                sig = all(candidates[i][c[i]].t_min >= SIGNIFICANCE for i in range(len(candidates)))
                done[c] = Scored(c, crit + reg if ok else math.inf, r2, ok, sig, r2s)
        return min((done[c] for c in choices), key=key)

    best = evaluate([start])
    for _ in range(MAX_SWEEPS):
        before = best.choice
        for i, cands in enumerate(candidates):
            trial = [best.choice[:i] + (j,) + best.choice[i + 1 :] for j in range(len(cands))]
            best = min([best, evaluate(trial)], key=key)
        if best.choice == before:
            break
    # The candidates' coefficients come from the regression, which noise biases; a biased
    # true support can lose to a spurious term that compensates the bias along the
    # trajectory. So the best few combinations are refitted through the solver on every
    # trajectory and compared again, with the significance of the refitted terms.
    top = sorted((s for s in done.values() if s.ok), key=key)[:REFIT]
    refitted = []
    m = len(selection.terms)
    for s in top:
        W0 = selection.parameters([candidates[i][s.choice[i]].coef for i in range(len(candidates))])
        fit = selection.refit(W0)
        if fit is None:
            refitted.append(s)
            continue
        W, t_min = fit
        k = sum(candidates[i][s.choice[i]].k for i in range(len(candidates)))
        ((crit, r2, ok, r2s),) = selection.score(W[None], [k], batch)
        if not ok:
            refitted.append(s)
            continue
        reg = sum(candidates[i][s.choice[i]].criterion for i in range(len(candidates)))
        coefs = tuple(W[:m, selection.out_index[i]].copy() for i in range(len(candidates)))
        refitted.append(
            dataclasses.replace(
                s,
                criterion=crit + reg,
                traj_r2=r2,
                significant=s.significant and t_min >= SIGNIFICANCE,
                per_trajectory_r2=r2s,
                coefs=coefs,
            )
        )
    if refitted:
        best = min(refitted, key=key)
    return best, done
