"""The outcome of `symml.fit`: estimates, Gauss–Newton covariance, intervals, plots.

``make_result`` turns the optimiser's output (estimates, residuals and the Jacobian at the
optimum) into a `FitResult`: ``cov = s² (JᵀJ)⁻¹`` with ``s² = RSS / (n − p)`` (through
the SVD, so that unidentifiable directions are detected and reported), standard errors and
Student-t intervals, and warnings for fits that did not converge or ended on a bound.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any

import numpy as np
import optimistix as optx
from scipy import stats

from .. import _serialize as _io
from .._data import Dataset, key_name
from .._solve import check_result, simulate
from ._loops import ConvergenceWarning

__all__ = ["FitResult", "FitWarning", "make_result"]


class FitWarning(ConvergenceWarning):
    """A fit did not converge, or some unknowns are not identifiable from the data."""


def make_result(model, data, problem, theta, n, conv, code, hist, r, J, preds, codes, info) -> FitResult:
    """Assemble a `FitResult` (``problem``: the fit's layout of unknowns and data)."""
    for c in codes:
        check_result(np.asarray(c).astype(int), None, info["solver"], 0.0, 0)  # raises SolveError on failure
    labels, npar = problem.labels, len(problem.labels)
    dof = problem.n_obs - npar
    rss = float(r @ r)
    s2 = rss / dof if dof > 0 else float("nan")
    cov, singular = _covariance(J, s2)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    tq = float(stats.t.ppf(0.975, dof)) if dof > 0 else float("nan")
    params, stderr = {}, {}
    ics = [dict(k) for k in problem.ics]
    ics_se: list[dict] = [{} for _ in problem.ics]
    for j, (sym, i) in enumerate(problem.unknowns):
        if i is None:
            params[sym], stderr[sym] = float(theta[j]), float(se[j])
        else:
            ics[i][sym], ics_se[i][sym] = float(theta[j]), float(se[j])
    ics = [{s: ic[s] for s in model.states} for ic in ics]
    new_defaults = dict(params)
    if len(ics) == 1:
        new_defaults.update(ics[0])

    obs = [None] * len(problem.ics)
    for g, pr in zip(problem.groups, preds):
        for r_, i in enumerate(g.series):
            obs[i] = np.asarray(pr[r_])
    series = data.series
    resid = tuple(np.stack([s.values[k] for k in s.values], -1) - o for s, o in zip(series, obs))
    history = np.asarray(hist)[:n]
    on_bound = [
        f"{lab} = {v:.8g} is at its {where}"
        for lab, v, b in zip(labels, theta, problem.bounds)
        if (where := b.at_bound(float(v))) is not None
    ]
    free = [b.at_bound(float(v)) is None for v, b in zip(theta, problem.bounds)]
    scale = sum(float(np.sum(np.asarray(a["Y"] * a["W"]) ** 2)) for a in problem.args)
    stationary = _stationary(np.asarray(J), np.asarray(r), free, scale)
    if conv and not stationary:
        conv = False
        reason = "the optimiser stopped making progress at a point where the gradient is not zero"
    else:
        reason = _reason(conv, code, n, info)
    if on_bound and not conv:
        reason += "; " + ", ".join(on_bound)
    message = (f"converged after {n} steps" if conv else f"did not converge: {reason}") + (
        f" (method {info['method']}, {info['solution']} solution, loss {rss:.6g})"
    )
    notes = []
    if not conv:
        notes.append(
            f"fit {message}. Last loss (sum of squared weighted residuals) {rss:.6g}. Try a larger "
            f"max_iter (now {info['max_iter']}), starting values closer to the data (params={{...}}), "
            f"bounds on the parameters, a looser tol (now {info['tol']:g}), or another method "
            "('lm', 'bfgs', 'adam')."
        )
    if on_bound:
        notes.append(
            "fit: " + ", ".join(on_bound) + ": the best fit lies on or beyond the bounds, and the "
            "standard errors there mean little. Check the bounds and the model."
        )
    singular = [j for j in singular if problem.bounds[j].at_bound(float(theta[j])) is None]
    if singular:
        notes.append(
            "fit: the data do not determine "
            + ", ".join(labels[j] for j in singular)
            + " (the Jacobian is rank deficient at the optimum); their standard errors are inf. Fix "
            "them (leave them out of params) or observe more of the system."
        )
    for note in notes:
        warnings.warn(note, FitWarning, stacklevel=3)
    return FitResult(
        source_model=model,
        new_defaults=new_defaults,
        params=params,
        stderr=stderr,
        ics=tuple(ics),
        ics_stderr=tuple(ics_se),
        labels=tuple(labels),
        estimates=np.asarray(theta, dtype=float),
        covariance=cov,
        t_quantile=tq,
        residuals=resid,
        predictions=tuple(obs),
        observed=tuple(tuple(ex) for _, ex in data.resolve(model)),
        loss_history=history,
        rss=rss,
        dof=dof,
        n_obs=problem.n_obs,
        converged=conv,
        message=message,
        iterations=n,
        method=info["method"],
        solution=info["solution"],
        seconds=info["seconds"],
        compile_seconds=info["compile_seconds"],
        data=data,
    )


def _covariance(J: np.ndarray, s2: float) -> tuple[np.ndarray, list[int]]:
    """``s² (JᵀJ)⁻¹`` through the SVD; directions with singular value below 1e-9 × the
    largest are unidentifiable (their unknowns get infinite variance)."""
    J = np.asarray(J, dtype=float)
    p = J.shape[1]
    if not np.all(np.isfinite(J)):
        return np.full((p, p), np.nan), []
    _, sv, Vt = np.linalg.svd(J, full_matrices=False)
    keep = sv > 1e-9 * (sv[0] if sv.size and sv[0] > 0 else 1.0)
    inv = (Vt[keep].T / sv[keep] ** 2) @ Vt[keep]
    cov = s2 * inv
    singular = sorted(
        {int(np.argmax(np.abs(v))) for v in Vt[~keep]}
        | {j for v in Vt[~keep] for j in np.flatnonzero(np.abs(v) > 0.1)}
    )
    for j in singular:
        cov[j, :] = cov[:, j] = np.nan
        cov[j, j] = np.inf
    return cov, [int(j) for j in singular]


def _stationary(J: np.ndarray, r: np.ndarray, free: list[bool], data_scale: float) -> bool:
    """First-order optimality: every free unknown's Jacobian column is (nearly) orthogonal to
    the residuals, or the residuals are negligible next to the data."""
    if not (np.all(np.isfinite(J)) and np.all(np.isfinite(r))):
        return True  # nothing to judge by; the optimiser's own verdict stands
    rn = float(np.linalg.norm(r))
    if rn**2 <= 1e-16 * max(data_scale, 1e-300):
        return True
    cols = np.linalg.norm(J, axis=0)
    cos = np.abs(J.T @ r) / np.where(cols > 0, cols * rn, 1.0)
    return bool(np.all(cos[np.asarray(free, dtype=bool)] <= 1e-3))


def _reason(conv, code, n, info) -> str:
    if conv:
        return ""
    if n >= info["max_iter"]:
        return f"max_iter={info['max_iter']} steps reached"
    if code == int(optx.RESULTS.nonfinite._value):
        return "the optimiser produced non-finite values"
    try:
        return optx.RESULTS._index_to_message[code].split(".")[0]
    except (AttributeError, IndexError, KeyError):
        return f"optimiser result code {code}"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class FitResult:
    """The outcome of `fit`.

    Attributes:
        model: the model with the fitted parameters (and, for one trajectory, the initial
            values) as its defaults; ``source_model`` is the model as given, and
            ``new_defaults`` the values that turn one into the other.
        params, stderr: ``{symbol: value}`` for the estimated parameters.
        ics, ics_stderr: per trajectory, ``{state: value}`` of all initial values used, and
            the standard errors of those that were estimated.
        labels, estimates, covariance: every unknown (parameters, then estimated initial
            values) in one order; ``covariance = s² (JᵀJ)⁻¹`` at the optimum (Gauss–Newton).
        residuals, predictions: per trajectory, arrays ``(n, k)`` (data minus fit, and fit)
            in the order of the observed keys (``observed``).
        loss_history: best sum of squared weighted residuals after each optimiser step.
        rss, dof, n_obs: sum of squared weighted residuals, degrees of freedom (n_obs − p).
        converged, message, iterations, method: how the optimiser did.
        seconds, compile_seconds: time of the optimisation, and of compiling it (0 when a
            compiled fit of the same structure was reused).
        solution: ``"analytic"`` (predictions by the closed form) or ``"numeric"``.

    Examples:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator()  # true k = 4
        >>> data = sm.Dataset.from_model(ho, ts=np.linspace(0, 5, 26))
        >>> res = sm.fit(ho, data, params={"k": 3.0})
        >>> res.labels, res.n_obs, res.dof
        (('k',), 52, 51)
        >>> round(res["k"], 4), round(res.model.defaults[res.model.lookup("k")], 4)
        (4.0, 4.0)
        >>> lo, hi = res.confidence_intervals()["k"]
        >>> bool(lo <= res["k"] <= hi)
        True
    """

    source_model: Any
    new_defaults: dict
    params: dict
    stderr: dict
    ics: tuple
    ics_stderr: tuple
    labels: tuple
    estimates: np.ndarray
    covariance: np.ndarray
    t_quantile: float
    residuals: tuple
    predictions: tuple
    observed: tuple
    loss_history: np.ndarray
    rss: float
    dof: int
    n_obs: int
    converged: bool
    message: str
    iterations: int
    method: str
    solution: str
    seconds: float
    compile_seconds: float
    data: Dataset

    @functools.cached_property
    def model(self):
        """The model with the estimates as its defaults (built on first use)."""
        return self.source_model.with_defaults(self.new_defaults)

    def __getitem__(self, key: Any) -> float:
        """The estimate of a parameter (symbol or name)."""
        return self.params[self.source_model.lookup(key)]

    @property
    def loss(self) -> float:
        return self.rss

    @property
    def sigma(self) -> float:
        """Residual standard deviation ``sqrt(RSS / dof)`` (in weighted units)."""
        return math.sqrt(self.rss / self.dof) if self.dof > 0 else float("nan")

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        se = self.std_errors
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance / np.outer(se, se)

    def confidence_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """``{label: (low, high)}``: estimate ± t(level, dof) × standard error."""
        from scipy import stats

        tq = self.t_quantile if level == 0.95 else float(stats.t.ppf(0.5 + level / 2, self.dof))
        se = self.std_errors
        return {
            lab: (float(v - tq * s), float(v + tq * s)) for lab, v, s in zip(self.labels, self.estimates, se)
        }

    def summary(self, level: float = 0.95):
        """A table (pandas DataFrame): estimate, std. error, confidence interval, relative error."""
        import pandas as pd

        ci = self.confidence_intervals(level)
        pct = f"{100 * level:g}%"
        se = self.std_errors
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = se / np.abs(self.estimates)
        return pd.DataFrame(
            {
                "estimate": self.estimates,
                "std_error": se,
                f"{pct} low": [ci[lab][0] for lab in self.labels],
                f"{pct} high": [ci[lab][1] for lab in self.labels],
                "rel_error": rel,
            },
            index=pd.Index(self.labels, name="unknown"),
        )

    def __repr__(self) -> str:
        head = (
            f"FitResult({self.source_model.name!r}: {self.message}; n_obs={self.n_obs}, dof={self.dof}, "
            f"sigma={self.sigma:.4g}, {self.seconds:.3g} s)"
        )
        return head + "\n" + self.summary().to_string(float_format=lambda v: f"{v:.6g}")

    def trajectory(self, index: int = 0, saveat: Any = 400, **simulate_kwargs: Any):
        """The fitted model simulated over trajectory ``index``'s time span (a Trajectory)."""
        s = self.data.series[index]
        pvals = {**self.params, **self.data.settings(self.source_model, index)}
        # the model as given, with the estimates passed in: its compiled solver is reused
        return simulate(
            self.source_model,
            ics=self.ics[index],
            t_span=(float(s.t[0]), float(s.t[-1])),
            saveat=saveat,
            params=pvals,
            **simulate_kwargs,
        )

    def plot(self, path: Any = None, saveat: Any = 400):
        """Data (dots) against the fitted trajectories (lines), one panel per trajectory.

        ``saveat``: samples of each fitted line (a count over the trajectory's span, or times).
        Returns the matplotlib figure; saves it to ``path`` when given."""
        import matplotlib.pyplot as plt

        n = len(self.data.series)
        fig, axes = plt.subplots(n, 1, figsize=(7, 3.2 * n), squeeze=False)
        for i, (s, exprs) in enumerate(zip(self.data.series, self.observed)):
            ax = axes[i, 0]
            traj = self.trajectory(i, saveat=saveat)
            for j, (k, e) in enumerate(zip(s.values, exprs)):
                ax.plot(s.t, s.values[k], "o", ms=3.5, color=f"C{j}", label=f"{key_name(k)} data")
                ax.plot(traj.t, traj[e], "-", color=f"C{j}", label=f"{key_name(k)} fit")
            ax.set_xlabel("t")
            ax.set_title(f"{self.source_model.name}" + (f", trajectory {i}" if n > 1 else ""))
            ax.legend(fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


# ----------------------------------------------------------------------------- save / load


def _enc_values(d: dict) -> list:
    return [[_io.encode_expr(k), float(v).hex()] for k, v in d.items()]


def _dec_values(items) -> dict:
    return {_io.decode_expr(k): float.fromhex(v) for k, v in items}


def encode_fit_result(r: FitResult) -> dict:
    """JSON-ready content of a `FitResult` (``sm.save``); numbers bit-exact."""
    arrays = {
        k: _io.encode_array(np.asarray(getattr(r, k))) for k in ("estimates", "covariance", "loss_history")
    }
    scalars = ("t_quantile", "rss", "seconds", "compile_seconds")
    return {
        "model": _io.encode_model(r.source_model),
        "data": _io.to_json_dict(r.data)["content"],
        "new_defaults": _enc_values(r.new_defaults),
        "params": _enc_values(r.params),
        "stderr": _enc_values(r.stderr),
        "ics": [_enc_values(d) for d in r.ics],
        "ics_stderr": [_enc_values(d) for d in r.ics_stderr],
        "labels": list(r.labels),
        "arrays": arrays,
        "residuals": [_io.encode_array(a) for a in r.residuals],
        "predictions": [_io.encode_array(a) for a in r.predictions],
        "observed": [[_io.encode_expr(e) for e in ex] for ex in r.observed],
        "scalars": {k: float(getattr(r, k)).hex() for k in scalars},
        "ints": {k: int(getattr(r, k)) for k in ("dof", "n_obs", "iterations")},
        "converged": bool(r.converged),
        "text": {k: getattr(r, k) for k in ("message", "method", "solution")},
    }


def decode_fit_result(d: dict) -> FitResult:
    data = _io.from_json_dict({"symml": "dataset", "version": _io.FORMAT_VERSION, "content": d["data"]})
    stored: dict[str, Any] = {k: _io.decode_array(v) for k, v in d["arrays"].items()}
    stored.update({k: float.fromhex(v) for k, v in d["scalars"].items()})
    stored.update({k: int(v) for k, v in d["ints"].items()})
    stored.update({k: str(v) for k, v in d["text"].items()})
    return FitResult(
        source_model=_io.decode_model(d["model"]),
        new_defaults=_dec_values(d["new_defaults"]),
        params=_dec_values(d["params"]),
        stderr=_dec_values(d["stderr"]),
        ics=tuple(_dec_values(x) for x in d["ics"]),
        ics_stderr=tuple(_dec_values(x) for x in d["ics_stderr"]),
        labels=tuple(d["labels"]),
        residuals=tuple(_io.decode_array(a) for a in d["residuals"]),
        predictions=tuple(_io.decode_array(a) for a in d["predictions"]),
        observed=tuple(tuple(_io.decode_expr(e) for e in ex) for ex in d["observed"]),
        converged=bool(d["converged"]),
        data=data,
        **stored,
    )


def _register() -> None:
    _io.register("fit_result", FitResult, encode_fit_result, decode_fit_result)


_register()
