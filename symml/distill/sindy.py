"""Sparse regression (SINDy) on libraries built from SymPy.

The feature matrix is built by evaluating SymPy library terms (see
`symml.distill.library`), so every fitted coefficient belongs to one SymPy term and the
result is ``sum(Float(c_j) * term_j)`` directly; pysindy's printed strings are never used.
PySINDy's optimizers (STLSQ, SR3) do the thresholding.

The sparsity threshold is not hand-tuned: columns of the feature matrix and the target are
scaled to unit root-mean-square, so a threshold is the relative size of a term's
contribution; the optimizer is run along a path of thresholds (a geometric grid from
``min_threshold`` up, plus the sizes of the least-squares coefficients), every distinct
support is refitted by ordinary least squares (unbiased), and one is chosen by

* ``"bic"`` (default): the Bayesian information criterion ``n ln(RSS/n) + k ln n``;
* ``"aic"``: the small-sample corrected Akaike criterion;
* ``"cv"``: k-fold cross-validation over contiguous blocks of rows, with the one-standard-
  error rule (the sparsest threshold within one standard error of the best);
* ``"none"``: no selection, least squares on every term (to score a given hypothesis).

For AIC and BIC, ``n`` is the effective number of independent residuals
(`effective_samples`): derivative estimates and weak-form rows have correlated errors,
and counting them as independent would reward terms that fit those errors. Residuals below
``exact_tol`` times the target's RMS count as exact, and terms contributing less than
``min_threshold`` of it are not resolved, so on noise-free data the criteria do not reward
terms that only fit rounding or solver errors. The candidates (the path) are kept in
`Expression.front`.

>>> import numpy as np, sympy as sp
>>> from symml.distill import SINDy, Polynomial
>>> x = sp.Symbol("x")
>>> X = np.linspace(-2, 2, 101)[:, None]
>>> SINDy(library=Polynomial(5)).fit(X, 3 * X[:, 0] ** 3 - 0.5, [x]).rounded(6)
3.0*x**3 - 0.5
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from ..errors import DataError, SymmlError, suggest
from .base import Backend, Candidate, Expression, aicc, bic, check_xy, r2_score, register_backend
from .library import evaluate, make_library

OPTIMIZERS = ("stlsq", "sr3")
SELECTIONS = ("bic", "aic", "cv", "none")


class SINDyOptionError(SymmlError, ValueError):
    """An option of the SINDy backend is out of range or unknown."""


@dataclasses.dataclass(frozen=True)
class SINDy(Backend):
    """Sparse identification by thresholded least squares on a SymPy library.

    Args:
        library: candidate terms: a library name, a `Library`, SymPy
            terms or a list of these (see `make_library`);
            default polynomials up to ``degree``.
        degree: degree used for ``None`` or the name ``"polynomial"``.
        optimizer: ``"stlsq"`` (sequentially thresholded least squares) or ``"sr3"`` (sparse
            relaxed regularised regression, L0), both from pysindy.
        selection: ``"bic"``, ``"aic"``, ``"cv"`` or ``"none"`` (see the module docs).
        thresholds: number of thresholds on the path, or the thresholds themselves (in units
            of the target's RMS, on unit-RMS columns).
        min_threshold: the smallest threshold of the path: terms contributing less than this
            fraction of the target's RMS are not resolved (0 allows plain least squares).
        ridge: ridge weight per sample inside the optimizer (stabilises collinear libraries;
            the reported coefficients are refitted without it).
        folds: number of blocks for ``selection="cv"``.
        exact_tol: relative RMS residual regarded as an exact fit.
        max_iter: iterations of the optimizer per threshold.
    """

    library: Any = None
    degree: int = 3
    optimizer: str = "stlsq"
    selection: str = "bic"
    thresholds: Any = 40
    min_threshold: float = 1e-3
    ridge: float = 1e-8
    folds: int = 5
    exact_tol: float = 1e-6
    max_iter: int = 20

    name = "sindy"
    linear = True

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise SINDyOptionError(
                f"Unknown SINDy optimizer {self.optimizer!r}; choose {' or '.join(OPTIMIZERS)}."
                + suggest(str(self.optimizer), OPTIMIZERS)
            )
        if self.selection not in SELECTIONS:
            raise SINDyOptionError(
                f"Unknown SINDy selection rule {self.selection!r}; choose one of "
                f"{', '.join(SELECTIONS)}." + suggest(str(self.selection), SELECTIONS)
            )
        if isinstance(self.thresholds, (int, np.integer)):
            if self.thresholds < 2:
                raise SINDyOptionError(f"thresholds must be >= 2 (a path), got {self.thresholds}.")
        else:
            th = np.asarray(self.thresholds, dtype=float)
            if th.ndim != 1 or th.size == 0 or np.any(th < 0) or not np.all(np.isfinite(th)):
                raise SINDyOptionError(
                    f"thresholds must be a count or a list of finite values >= 0, got {self.thresholds!r}."
                )
            object.__setattr__(self, "thresholds", tuple(float(v) for v in th))
        if self.ridge < 0 or self.exact_tol < 0 or not 0 <= self.min_threshold < 1:
            raise SINDyOptionError(
                "ridge and exact_tol must be >= 0 and min_threshold in [0, 1); got "
                f"{self.ridge}, {self.exact_tol}, {self.min_threshold}."
            )
        if int(self.folds) < 2:
            raise SINDyOptionError(f"folds must be >= 2, got {self.folds}.")
        make_library(self.library, self.degree)  # fail early on a bad library

    # ------------------------------------------------------------------ public
    def terms(self, inputs: Sequence[sp.Expr]) -> list[sp.Expr]:
        """The library's terms for these inputs."""
        return make_library(self.library, self.degree).terms([sp.sympify(z) for z in inputs])

    def fit(self, X: Any, y: Any, inputs: Sequence[sp.Expr]) -> Expression:
        """Sparse fit of ``y`` on the library terms of ``inputs`` evaluated on ``X``."""
        X, y, inputs = check_xy(X, y, inputs)
        terms = self.terms(inputs)
        Theta = evaluate(terms, inputs, X)
        return self.fit_features(Theta, y, terms, inputs)

    def fit_features(
        self,
        Theta: Any,
        y: Any,
        terms: Sequence[sp.Expr],
        inputs: Sequence[sp.Expr] = (),
        n_effective: float | None = None,
    ) -> Expression:
        """Sparse fit of ``y ≈ Theta @ xi`` where column ``j`` of ``Theta`` is ``terms[j]``.

        This is the regression itself; `fit` builds ``Theta`` from samples, the weak
        form of ``sm.discover`` from integrals against test functions. ``n_effective`` is the
        number of independent rows when known (overlapping test functions); by default it
        is estimated from the residuals' autocorrelation (`effective_samples`).
        """
        Theta = np.asarray(Theta, dtype=float)
        y = np.asarray(y, dtype=float)
        terms = [sp.sympify(e) for e in terms]
        if Theta.ndim != 2 or Theta.shape[1] != len(terms) or y.shape != (Theta.shape[0],):
            raise DataError(
                f"Theta must have shape (n, {len(terms)}) and y shape (n,); got {Theta.shape} and {y.shape}."
            )
        if not (np.all(np.isfinite(Theta)) and np.all(np.isfinite(y))):
            raise DataError("The feature matrix or the target contains NaN or inf.")
        n, m = Theta.shape
        if n < 2:
            raise DataError(f"Need at least 2 rows to fit; got {n}.")
        from threadpoolctl import threadpool_limits

        # Hundreds of small least-squares problems: one BLAS thread is far faster than
        # several contending for the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            path = self._path(Theta, y)
            cands, chosen = self._choose(Theta, y, path, n_effective)
        return self._result(Theta, y, terms, inputs, cands, chosen)

    # ------------------------------------------------------------------ the path
    def _scales(self, Theta, y):
        col = np.sqrt(np.mean(Theta**2, axis=0))
        usable = col > 1e-300
        sy = float(np.sqrt(np.mean(y**2)))
        return col, usable, (sy if sy > 0 else 1.0)

    def _optimizer(self, threshold: float, n: int, guess: np.ndarray):
        from pysindy.optimizers import SR3, STLSQ

        if self.optimizer == "stlsq":
            return STLSQ(
                threshold=threshold,
                alpha=self.ridge * n,
                max_iter=self.max_iter,
                unbias=False,
                normalize_columns=False,
                initial_guess=guess,
            )
        return SR3(
            reg_weight_lam=SR3.calculate_l0_weight(threshold, 1.0),
            regularizer="L0",
            relax_coeff_nu=1.0,
            max_iter=max(self.max_iter, 30),
            unbias=False,
            normalize_columns=False,
            initial_guess=guess,
        )

    def _support(self, A: np.ndarray, b: np.ndarray, threshold: float, guess=None) -> np.ndarray:
        """Support chosen by the optimizer at ``threshold`` on standardised ``A``, ``b``,
        starting from the least-squares solution ``guess``."""
        if A.shape[1] == 0:
            return np.zeros(0, dtype=bool)
        if threshold == 0.0:
            return np.ones(A.shape[1], dtype=bool)
        if guess is None:
            guess = np.linalg.lstsq(A, b, rcond=None)[0]
        opt = self._optimizer(threshold, A.shape[0], np.asarray(guess, dtype=float).reshape(1, -1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt.fit(A, b)
        coef = np.asarray(opt.coef_).reshape(-1)
        return coef != 0

    def _grid(self, A: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not isinstance(self.thresholds, (int, np.integer)):
            return np.asarray(self.thresholds, dtype=float)
        lo = float(self.min_threshold)
        xi = np.linalg.lstsq(A, b, rcond=None)[0] if A.shape[1] else np.zeros(0)
        mags = np.sort(np.abs(xi[np.abs(xi) > lo]))
        if mags.size == 0:
            return np.array([lo])
        hi = float(mags[-1])
        grid = np.geomspace(lo, max(hi, lo * 10), int(self.thresholds)) if lo > 0 else [0.0]
        # Thresholds just above each least-squares coefficient: the first thresholding step
        # then drops the terms one at a time.
        steps = mags * (1 + 1e-9)
        return np.unique(np.concatenate([[lo], grid, steps[steps < hi]]))

    def _path(self, Theta: np.ndarray, y: np.ndarray) -> list[tuple[float, np.ndarray]]:
        col, usable, sy = self._scales(Theta, y)
        A = Theta[:, usable] / col[usable]
        b = y / sy
        m = Theta.shape[1]
        if self.selection == "none":
            return [(0.0, usable.copy())]
        seen: dict[bytes, tuple[float, np.ndarray]] = {}
        guess = np.linalg.lstsq(A, b, rcond=None)[0] if A.shape[1] else np.zeros(0)
        for lam in self._grid(A, b):
            sub = self._support(A, b, float(lam), guess)
            mask = np.zeros(m, dtype=bool)
            mask[np.flatnonzero(usable)[sub]] = True
            key = mask.tobytes()
            if key not in seen:
                seen[key] = (float(lam), mask)
        empty = np.zeros(m, dtype=bool)
        seen.setdefault(empty.tobytes(), (math.inf, empty))
        return list(seen.values())

    # ------------------------------------------------------------------ selection
    def _lstsq(self, Theta, y, mask) -> tuple[np.ndarray, float, np.ndarray]:
        """``(coef, rss, residual)`` of least squares on the columns in ``mask``."""
        coef = np.zeros(Theta.shape[1])
        if mask.any():
            coef[mask] = np.linalg.lstsq(Theta[:, mask], y, rcond=None)[0]
        resid = y - Theta @ coef
        return coef, float(resid @ resid), resid

    def _choose(self, Theta, y, path, n_effective=None):
        n = Theta.shape[0]
        floor = (self.exact_tol**2) * float(np.mean(y**2))
        cands = []
        for lam, mask in path:
            coef, rss, resid = self._lstsq(Theta, y, mask)
            cands.append(dict(threshold=lam, mask=mask, coef=coef, rss=rss, k=int(mask.sum()), resid=resid))
        cands.sort(key=lambda c: (c["k"], c["rss"]))
        if self.selection == "none":
            cands[0]["n_eff"], cands[0]["criterion"] = float(n), math.nan
            return cands, cands[0]
        if self.selection == "cv":
            return self._choose_cv(Theta, y, cands)

        def score(n_eff):
            for c in cands:
                # the mean square residual, counted over n_eff independent residuals
                eff = max(c["rss"] / n, floor) * n_eff
                c["criterion"] = (
                    bic(eff, n_eff, c["k"]) if self.selection == "bic" else aicc(eff, n_eff, c["k"])
                )
                c["n_eff"] = n_eff
            return min(cands, key=lambda c: (c["criterion"], c["k"]))

        # The effective sample size comes from the residuals of the selected model (start from
        # the largest support), iterated to a fixed point: a model that leaves correlated
        # residuals has fewer independent ones than rows.
        best = cands[-1]
        seen = set()
        for _ in range(10):
            n_eff = effective_samples(best["resid"])
            if n_effective is not None:
                n_eff = min(n_eff, float(n_effective))
            if n_eff in seen:
                break
            seen.add(n_eff)
            best = score(n_eff)
        return cands, best

    def _choose_cv(self, Theta, y, cands):
        n = Theta.shape[0]
        k = min(int(self.folds), n)
        if n < 2 * k:
            raise DataError(f"selection='cv' needs at least {2 * k} rows for {k} folds; got {n}.")
        blocks = np.array_split(np.arange(n), k)
        thresholds = sorted({c["threshold"] for c in cands if np.isfinite(c["threshold"])})
        errs = []
        for lam in thresholds:
            fold_err = []
            for test in blocks:
                train = np.setdiff1d(np.arange(n), test)
                Tt, yt = Theta[train], y[train]
                col, usable, sy = self._scales(Tt, yt)
                sub = self._support(Tt[:, usable] / col[usable], yt / sy, lam)
                mask = np.zeros(Theta.shape[1], dtype=bool)
                mask[np.flatnonzero(usable)[sub]] = True
                coef, _, _ = self._lstsq(Tt, yt, mask)
                r = y[test] - Theta[test] @ coef
                fold_err.append(float(np.mean(r**2)))
            errs.append((lam, float(np.mean(fold_err)), float(np.std(fold_err) / math.sqrt(k))))
        best = min(errs, key=lambda e: e[1])
        # One-standard-error rule: the largest threshold whose error is within one SE of the best.
        lam_star = max(e[0] for e in errs if e[1] <= best[1] + best[2])
        cv_err = dict((e[0], e[1]) for e in errs)
        for c in cands:
            c["criterion"] = cv_err.get(c["threshold"], math.nan)
        col, usable, sy = self._scales(Theta, y)
        sub = self._support(Theta[:, usable] / col[usable], y / sy, lam_star)
        mask = np.zeros(Theta.shape[1], dtype=bool)
        mask[np.flatnonzero(usable)[sub]] = True
        for c in cands:
            if np.array_equal(c["mask"], mask):
                c["criterion"] = cv_err[lam_star]
                return cands, c
        coef, rss, _ = self._lstsq(Theta, y, mask)  # pragma: no cover - the path contains every support
        chosen = dict(threshold=lam_star, mask=mask, coef=coef, rss=rss, k=int(mask.sum()), criterion=best[1])
        return [*cands, chosen], chosen

    # ------------------------------------------------------------------ results
    def _result(self, Theta, y, terms, inputs, cands, chosen) -> Expression:
        n = Theta.shape[0]

        def build(c):
            coefs = {terms[j]: sp.Float(float(c["coef"][j])) for j in np.flatnonzero(c["mask"])}
            expr = sp.Add(*[v * t for t, v in coefs.items()]) if coefs else sp.S.Zero
            return expr, coefs

        front = []
        for c in cands:
            expr, _ = build(c)
            info = {"threshold": c["threshold"], "terms": [str(terms[j]) for j in np.flatnonzero(c["mask"])]}
            front.append(Candidate(expr, c["k"], c["rss"] / n, c["k"], float(c["criterion"]), info))
        expr, coefs = build(chosen)
        info = {
            "threshold": chosen["threshold"],
            "optimizer": self.optimizer,
            "library": [str(t) for t in terms],
            "path_length": len(cands),
            "n_effective": float(chosen.get("n_eff", n)),
        }
        return Expression(
            expr=expr,
            inputs=tuple(inputs),
            backend=self.name,
            mse=chosen["rss"] / n,
            r2=r2_score(y, chosen["rss"]),
            complexity=chosen["k"],
            n_samples=n,
            n_params=chosen["k"],
            coefficients=coefs,
            front=tuple(front),
            selection=self.selection,
            info=info,
        )


def effective_samples(resid: np.ndarray) -> float:
    """Number of independent residuals: ``n / (1 + 2 Σ ρ_k)`` with ``ρ_k`` the residuals'
    autocorrelations in row order, summed while positive (Geyer's initial sequence).

    Derivative estimates smooth the noise, so neighbouring residuals are correlated; counting
    them as independent would let information criteria reward terms that fit that smoothed
    noise. Uncorrelated residuals give ``n``.

    >>> rng = np.random.default_rng(0)
    >>> round(effective_samples(rng.standard_normal(4000)) / 4000, 1)
    1.0
    """
    r = np.asarray(resid, dtype=float)
    n = r.size
    r = r - r.mean()
    var = float(r @ r)
    if n < 4 or var <= 0:
        return float(n)
    f = np.fft.rfft(r, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / var
    tau = 1.0
    for k in range(1, n - 1, 2):
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        tau += 2 * pair
    return float(max(2.0, min(n, n / tau)))


register_backend("sindy", SINDy)
