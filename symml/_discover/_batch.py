"""The batched solve behind `sm.discover`'s structure selection (`symml._discover._select`).

One model holds every library term with a weight per (equation, term); it is compiled once
and a combination of supports is a weight matrix, so trying a batch of combinations is one
vmapped solve (`symml._solve.integrate`) per trajectory, padded to a fixed batch and a fixed
number of save times so that it compiles once. Library terms of the encodable kinds
(monomials, sines, cosines, ``1/(1+z)``, ``1/(1+z²)``) are data for one jitted field shared by
every discovery of the same shape; other terms get a compiled model of their own.

A trajectory can be cut into windows, each integrated from the smoothed data at its start
(multiple shooting): on a chaotic record the best model loses the data after a few Lyapunov
times, and scoring the whole record would then reward whatever happens to stay close by
chance (`SolverSelection.windowed`).
"""

from __future__ import annotations

import copy
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

#: steps of one candidate solve; more means the candidate is stiff or blowing up
MAX_STEPS = 4096
#: candidates solved together (fixed, so the batched solve compiles once)
BATCH = 16
#: a state beyond this many times the largest observed magnitude has blown up
BOUND = 100.0
#: noise floor of a column never below this fraction of its RMS (noise-free data)
REL_FLOOR = 1e-4
#: relative change of the residual (and of the weights) at which a refit stops: 1e-4 of the
#: residual sum moves the criterion by n_eff 1e-4 nats, far below any margin that decides
REFIT_TOL = 1e-4
#: the change of the initial values by which `SolverSelection.growth` probes sensitivity, in
#: units of each state's spread: small enough to stay linear up to 10⁴-fold growth
NUDGE = 1e-6


@dataclasses.dataclass(frozen=True)
class TrajectoryFit:
    """An integrated combination against every trajectory: scaled residual sum of squares
    ``rss`` over ``n`` observations, the noise ``floor`` of that sum, and the number of
    independent residuals its own residuals show (``n_eff``)."""

    rss: float
    n: int
    floor: float
    n_eff: float

    def criterion(self, k: int, n_eff: float) -> float:
        """The trajectory BIC ``n_eff ln(max(RSS, floor) / n) + k ln(n_eff)``."""
        return n_eff * math.log(max(self.rss, self.floor, 1e-300) / max(self.n, 1)) + k * math.log(n_eff)


class _AtFloor(Exception):
    """A refit reached the noise floor (carries the weights): stop there."""

    def __init__(self, z: np.ndarray):
        super().__init__("at the noise floor")
        self.z = z


@dataclasses.dataclass(frozen=True)
class _Run:
    """One integration: padded save times, initial values, the observed columns (indices of
    the library's inputs) and their data, the trajectory it belongs to and that
    trajectory's column means."""

    ts: Any
    y0: Any
    obs_cols: np.ndarray
    obs: np.ndarray
    series: int
    mean: np.ndarray


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


def smoothed(ts: np.ndarray, x: np.ndarray, order: int) -> list[np.ndarray]:
    """Smoothed values (and derivatives up to ``order - 1``) at every sample: the initial
    values of an integration starting there."""
    sg = SavitzkyGolay()
    try:
        return [np.asarray(v, dtype=float) for v in sg.derivatives(ts, x, max(order - 1, 0))]
    except Exception:  # noqa: BLE001 - too few samples to smooth: the raw values
        return [np.asarray(x, dtype=float)] + [np.zeros(len(x))] * (order - 1)


def encode_terms(terms: Sequence[sp.Expr], inputs: Sequence[sp.Expr]) -> tuple[np.ndarray, ...] | None:
    """Exponent tables ``(E, S, C, R, Q)`` with ``term_j = Π_i z_i^E[j,i] sin(z_i)^S[j,i]
    cos(z_i)^C[j,i] (1 + z_i)^-R[j,i] (1 + z_i²)^-Q[j,i]``, or ``None`` when a term is not of
    that form (it then needs a compiled model of its own)."""
    d = len(inputs)
    tables = [np.zeros((len(terms), d)) for _ in range(5)]
    where = {z: i for i, z in enumerate(inputs)}
    shifted = {1 + z: i for z, i in where.items()}
    squared = {1 + z**2: i for z, i in where.items()}
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
            elif base in shifted and e < 0:
                tables[3][j, shifted[base]] -= int(e)
            elif base in squared and e < 0:
                tables[4][j, squared[base]] -= int(e)
            else:
                return None
    return tuple(tables)


def library_field(t, y, args):
    """``y' = A y + Θ(y) W``: the library terms Θ from the exponent tables in ``args``, the
    identity rows ``A`` of second-order states (``x' = v``). Beyond ``bound`` the field is
    frozen: a candidate that blows up stops there (and is flagged) instead of making every
    candidate of its batch crawl to the step limit."""
    W, A, E, S, C, R, Q, bound = args
    theta = (
        jnp.prod(jnp.power(y[None, :], E), axis=1)
        * jnp.prod(jnp.power(jnp.sin(y)[None, :], S), axis=1)
        * jnp.prod(jnp.power(jnp.cos(y)[None, :], C), axis=1)
        * jnp.prod(jnp.power(1.0 + y[None, :], -R), axis=1)
        * jnp.prod(jnp.power(1.0 + y[None, :] ** 2, -Q), axis=1)
    )
    f = A @ y + theta @ W
    return jnp.where(jnp.any(jnp.abs(y) > bound), jnp.zeros_like(f), f)


_OPTIONS = SolveOptions.build("tsit5", rtol=1e-6, atol=1e-9, max_steps=MAX_STEPS)


def _batch(W, A, E, S, C, R, Q, bound, y0, ts):
    def one(w):
        sol = integrate(
            library_field, y0, ts, cast(Any, (w, A, E, S, C, R, Q, bound)), _OPTIONS
        )  # a pytree of arguments
        return sol.ys, sol.result

    return jax.vmap(one)(W)


# One jitted function for every library of the encodable kind: the library is data (exponent
# tables), so JAX's own trace cache serves every later discovery with the same shapes
# (states, padded term count, samples, batch); only the first pays the compilation.
_solve_batch = jax.jit(_batch)
#: the term count is padded (zero-weight columns) to a power of two, at least this: the
#: libraries of one to four states (4 to 90 terms) then share five compilations
TERM_PAD = 8


class SolverSelection:
    """The solve of all candidate combinations of one discovery problem.

    States are the library's inputs (base states, then the velocities of second-order ones);
    the right-hand side of equation ``i`` is ``Σ_j W[j, i] term_j``. ``window`` is ``None``
    (each trajectory integrated whole from its start) or a number of samples (see `windowed`).
    """

    def __init__(self, data, bases, orders, cols, inputs, terms):
        self.inputs = list(inputs)
        self.terms = list(terms)
        self.bases = list(bases)
        self.window: int | None = None
        m, ds = len(terms), len(inputs)
        self.options = _OPTIONS
        tables = encode_terms(terms, inputs)
        self.m_pad = max(TERM_PAD, 1 << (max(m, 1) - 1).bit_length())
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
        # per trajectory: times, the smoothed states (and velocities) at every sample, data
        self._series: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        scales, floors = {}, {}
        for series in data.series:
            ts = np.asarray(series.t, dtype=float)
            Y0 = np.zeros((ts.size, ds))
            for b in bases:
                x = np.asarray(series[cols[b]], dtype=float)
                vals = smoothed(ts, x, orders[b])
                Y0[:, self.inputs.index(b)] = vals[0]
                if orders[b] == 2:
                    v = vals[1] if len(vals) > 1 else np.zeros(ts.size)
                    if b.diff(t) in cols:
                        v = smoothed(ts, np.asarray(series[cols[b.diff(t)]], dtype=float), 1)[0]
                    Y0[:, self.inputs.index(b.diff(t))] = v
            obs_cols, obs = [], []
            for z, key in cols.items():
                x = np.asarray(series[key], dtype=float)
                obs_cols.append(self.inputs.index(z))
                obs.append(x)
                scales.setdefault(z, []).append(x)
                floors.setdefault(z, []).append(noise_level(ts, x))
            self._series.append((ts, Y0, np.array(obs_cols), np.stack(obs, axis=-1)))
        self.runs = self._cut(None)
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

    def _cut(self, window: int | None, raw: bool = False) -> list[_Run]:
        """Trajectories or windows, started from the smoothed data (``raw``: as observed)."""
        runs = []
        for s, (ts, Y0, obs_cols, obs) in enumerate(self._series):
            n = ts.size
            width = n if window is None else max(3, min(window, n))
            mean = np.nanmean(obs, axis=0)
            for i in range(0, max(n - 1, 1), width - 1):
                j = min(i + width, n)
                if j - i < 3 and i > 0:
                    break
                seg = ts[i:j]
                # save times padded (the last one repeated) to a power of two: one
                # compilation serves every record (or window) length up to it
                n_pad = max(16 if window else 64, 1 << (seg.size - 1).bit_length())
                ts_pad = np.concatenate([seg, np.full(n_pad - seg.size, seg[-1])])
                y0 = Y0[i].copy()
                if raw:
                    seen = np.isfinite(obs[i])
                    y0[obs_cols[seen]] = obs[i][seen]
                runs.append(_Run(jnp.asarray(ts_pad), jnp.asarray(y0), obs_cols, obs[i:j], s, mean))
                if j == n:
                    break
        return runs

    def windowed(self, window: int) -> SolverSelection:
        """The same selection with every trajectory cut into windows of ``window`` samples
        (sharing their end points), each integrated from the smoothed data at its start."""
        out = copy.copy(self)
        out.window = int(window)
        out.runs = self._cut(int(window))
        return out

    def raw_started(self) -> SolverSelection:
        """Whole trajectories started from the samples as observed (a model's initial values)."""
        out = copy.copy(self)
        out.window = None
        out.runs = self._cut(None, raw=True)
        return out

    def growth(self, W: np.ndarray) -> np.ndarray | None:
        """How much the combination ``W`` amplifies a small change of the initial values
        along the shortest trajectory: at each sample, the distance between the solutions from
        the data's initial values and from values moved by `NUDGE` (in units of each state's
        spread), over that initial distance. ``None`` when it does not integrate. A chaotic
        flow amplifies exponentially once on its attractor (Lorenz over 25 time units from the
        zoo's start: well above 10³; over the first ten, while it approaches the attractor,
        only ~4); a stable cycle or equilibrium keeps it near one or below."""
        run = min(self.runs, key=lambda r: r.obs.shape[0])
        scale = np.ones(len(self.inputs))
        scale[run.obs_cols] = self.col_scale[: len(run.obs_cols)]
        nudge = NUDGE * scale * np.where(np.arange(len(self.inputs)) % 2 == 0, 1.0, -1.0)
        out = []
        for y0 in (run.y0, run.y0 + jnp.asarray(nudge)):
            ys, res = self._solve_rows(W[None], dataclasses.replace(run, y0=y0))
            if int(res[0]) != 0 or not np.all(np.isfinite(ys[0])):
                return None
            out.append(ys[0] / scale)
        distance = np.linalg.norm(out[1] - out[0], axis=1)
        return distance / float(np.linalg.norm(nudge / scale))

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

    def _solve(self, P, run: _Run):
        if self.tables is not None:
            return _solve_batch(jnp.asarray(P), self.A, *self.tables, self.bound, run.y0, run.ts)
        assert self._model_solve is not None
        return self._model_solve(np.asarray(P), run.y0, run.ts)

    def _solve_rows(self, Ws: np.ndarray, run: _Run) -> tuple[np.ndarray, np.ndarray]:
        """``(ys (B, samples, states), result codes (B,))`` of the weight matrices ``Ws`` on
        ``run``, solved in zero-padded chunks of `BATCH` (one compiled shape)."""
        ys, res = [], []
        for lo in range(0, Ws.shape[0], BATCH):
            chunk = Ws[lo : lo + BATCH]
            pad = np.zeros((BATCH - len(chunk), *Ws.shape[1:]))
            y, r = self._solve(np.concatenate([chunk, pad]), run)
            ys.append(np.asarray(y)[: len(chunk), : len(run.obs)])
            res.append(np.asarray(r)[: len(chunk)])
        return np.concatenate(ys), np.concatenate(res)

    def simulate(self, P: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(ys (B, n, states), ok (B,))]`` per run for the weight matrices ``P``."""
        bound = np.asarray(self.bound)
        out = []
        for run in self.runs:
            ys, res = self._solve_rows(P, run)
            ok = (res == 0) & np.all(np.isfinite(ys), axis=(1, 2))
            ok &= ~np.any(np.abs(ys) >= 0.999 * bound, axis=(1, 2))
            out.append((ys, ok))
        return out

    def residuals(self, Ws: np.ndarray) -> np.ndarray:
        """Scaled residuals against every run, one row per weight matrix of ``Ws``
        (non-finite predictions count as 10³, missing observations as 0)."""
        out = []
        B = Ws.shape[0]
        for run in self.runs:
            ys, _ = self._solve_rows(Ws, run)
            r = (ys[:, :, run.obs_cols] - np.nan_to_num(run.obs)[None]) / self.col_scale
            r = np.where(np.isfinite(r), r, 1e3)
            out.append(np.where(np.isfinite(run.obs)[None], r, 0.0).reshape(B, -1))
        return np.concatenate(out, axis=1)

    def noise_floor(self, run: _Run) -> float:
        """The scaled residual sum the noise alone leaves on ``run``."""
        return float(np.sum(np.isfinite(run.obs) * (self.col_noise / self.col_scale) ** 2))

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

        # the residual the noise alone leaves: a refit that reaches it has nothing left to gain
        floor = sum(self.noise_floor(run) for run in self.runs)

        def fun(z):
            r = self.residuals(weights(z)[None])[0]
            if float(r @ r) <= floor:
                raise _AtFloor(np.array(z, dtype=float))
            return r

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
            options: dict[str, Any] = dict(jac=jac, method="lm", ftol=REFIT_TOL, xtol=REFIT_TOL)
            # windows of a chaotic record make a rugged landscape in which LM creeps: a few
            # iterations improve on the regression's coefficients, more rarely pay
            budget = (10 if self.window is None else 3) * (k + 1)
            sol = least_squares(fun, z0, max_nfev=budget, **options)
            z, r, J = sol.x, sol.fun, np.asarray(sol.jac)
        except _AtFloor as stop:
            # on (nearly) noise-free data the regression's coefficients are right already, and
            # LM would otherwise spend dozens of iterations polishing below the noise
            z = stop.z
            r, J = self.residuals(weights(z)[None])[0], jac(z)
        except (ValueError, np.linalg.LinAlgError):
            return None
        n = J.shape[0]
        s2 = max(float(r @ r), floor) / max(n - k, 1)
        se = np.sqrt(np.clip(np.diag(s2 * np.linalg.pinv(J.T @ J)), 1e-300, None))
        return weights(z), float(np.min(np.abs(z) / se))

    def score(self, P: np.ndarray) -> list[tuple[TrajectoryFit | None, float, tuple]]:
        """``(fit, worst trajectory R², per-trajectory R²)`` for each row of ``P``; ``fit`` is
        ``None`` where the combination does not integrate."""
        sims = self.simulate(P)
        out: list[tuple[TrajectoryFit | None, float, tuple]] = []
        n_series = len(self._series)
        # what does not depend on the combination: observation count, noise floor, spread
        n = sum(int(np.isfinite(run.obs).sum()) for run in self.runs)
        floor = sum(self.noise_floor(run) for run in self.runs)
        sst = np.zeros(n_series)
        for run in self.runs:
            dev = np.where(np.isfinite(run.obs), np.nan_to_num(run.obs) - run.mean, 0.0) / self.col_scale
            sst[run.series] += float(np.sum(dev**2))
        for b in range(P.shape[0]):
            if not all(ok[b] for _, ok in sims):
                out.append((None, -math.inf, ()))
                continue
            rss, n_eff = 0.0, 0.0
            sse = np.zeros(n_series)
            for (ys, _), run in zip(sims, self.runs):
                pred = ys[b][:, run.obs_cols]
                good = np.isfinite(run.obs)
                r = np.where(good, (pred - np.nan_to_num(run.obs)) / self.col_scale, 0.0)
                rss += float(np.sum(r**2))
                for c in range(r.shape[1]):
                    n_eff += effective_samples(r[good[:, c], c])
                sse[run.series] += float(np.sum(r**2))
            r2s = tuple(float(1.0 - e / s) if s > 0 else math.nan for e, s in zip(sse, sst))
            r2 = float(np.nanmin(r2s)) if r2s else math.nan
            out.append((TrajectoryFit(rss, n, floor, max(n_eff, 2.0)), r2, r2s))
        return out
