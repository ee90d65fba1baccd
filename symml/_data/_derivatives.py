"""Derivative estimates from sampled data, and the weak form.

Pointwise methods return the (smoothed) signal and its derivatives at the sample times:

* `FiniteDifference`: second-order central differences (``numpy.gradient``), any grid;
* `SavitzkyGolay`: local polynomial fits on a uniform grid; the window is chosen by
  generalised cross-validation of the smoothed signal unless given;
* `SmoothingSpline`: a cubic smoothing spline (``scipy``), smoothing chosen by GCV.

`Weak` is not a derivative estimate but a different regression: with compactly
supported test functions φ_k, ``∫ φ_k x^(m) dt = (-1)^m ∫ φ_k^(m) x dt`` moves every derivative
onto the known φ_k, so the data are only integrated, never differentiated (weak SINDy,
Messenger & Bortz 2021). `Weak.test_functions` gives the quadrature matrices.

>>> import numpy as np
>>> t = np.linspace(0, 2 * np.pi, 201)
>>> _, d1 = derivatives(t, np.sin(t), 1, "savgol")
>>> bool(np.max(np.abs(d1 - np.cos(t))) < 1e-6)
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..errors import DataError, SymmlError, suggest

METHODS = ("finite_difference", "savgol", "spline", "weak")


class DifferentiationError(SymmlError, ValueError):
    """An unknown differentiation method, bad options, or too little data for the method."""


def _check(t: Any, x: Any, order: int, need: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    if t.ndim != 1 or x.shape != t.shape:
        raise DataError(f"t and x must be 1-D arrays of the same length; got {t.shape} and {x.shape}.")
    if order not in (0, 1, 2, 3):
        raise DifferentiationError(f"Derivative order must be 0, 1, 2 or 3; got {order}.")
    if t.size < need:
        raise DataError(
            f"{name} needs at least {need} samples for derivatives of order {order}; got {t.size}. "
            "Give more samples (or fewer derivatives)."
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(x))):
        raise DataError("t and x must be finite (no NaN or inf).")
    if np.any(np.diff(t) <= 0):
        raise DataError("Times must be strictly increasing.")
    return t, x


def _uniform_step(t: np.ndarray, name: str) -> float:
    dt = np.diff(t)
    h = float(np.mean(dt))
    if np.max(np.abs(dt - h)) > 1e-6 * h:
        raise DataError(
            f"{name} needs uniformly spaced times (steps vary from {dt.min():.4g} to {dt.max():.4g}). "
            "Use differentiation='spline' or 'finite_difference', or resample the data."
        )
    return h


@dataclasses.dataclass(frozen=True)
class FiniteDifference:
    """Second-order accurate central differences (one-sided at the ends); no smoothing."""

    name = "finite_difference"

    def derivatives(self, t: Any, x: Any, order: int) -> list[np.ndarray]:
        """``[x, x', ..., x^(order)]`` at the sample times."""
        t, x = _check(t, x, order, 3 * max(order, 1), "Finite differences")
        out = [x.copy()]
        for _ in range(order):
            out.append(np.gradient(out[-1], t, edge_order=2))
        return out


@dataclasses.dataclass(frozen=True)
class SavitzkyGolay:
    """Savitzky–Golay filter: least-squares polynomials of degree ``polyorder`` on sliding
    windows of ``window`` samples (odd). ``window=None`` picks the window by generalised
    cross-validation of the smoothed signal: ``GCV(w) = mean(residual²) / (1 - h_w)²`` with
    ``h_w`` the filter's central weight, over odd windows up to a third of the samples.
    """

    window: int | None = None
    polyorder: int = 4

    name = "savgol"

    def __post_init__(self):
        if self.polyorder < 1:
            raise DifferentiationError(f"polyorder must be >= 1, got {self.polyorder}.")
        if self.window is not None and (self.window % 2 == 0 or self.window <= self.polyorder):
            raise DifferentiationError(
                f"window must be odd and larger than polyorder ({self.polyorder}); got {self.window}."
            )

    def choose_window(self, x: np.ndarray) -> int:
        """The GCV window for ``x`` (uniform samples)."""
        from scipy.signal import savgol_coeffs, savgol_filter

        n = x.size
        p = self.polyorder
        lo = p + 2 if p % 2 == 1 else p + 3
        lo += 1 - lo % 2
        hi = max(lo, min(n // 3, 301))
        hi -= 1 - hi % 2
        cands = sorted({int(w) | 1 for w in np.unique(np.geomspace(lo, hi, 30).round()) if w >= lo})
        best, best_score = lo, math.inf
        half = hi // 2
        for w in cands:
            if w > n:
                break
            h = float(savgol_coeffs(w, p)[w // 2])
            sm = savgol_filter(x, w, p, mode="interp")
            r = (x - sm)[half : n - half] if n - 2 * half > 10 else (x - sm)
            score = float(np.mean(r**2)) / (1 - h) ** 2
            if score < best_score * (1 - 1e-12):
                best, best_score = w, score
        return best

    def derivatives(self, t: Any, x: Any, order: int) -> list[np.ndarray]:
        from scipy.signal import savgol_filter

        if order > self.polyorder:
            raise DifferentiationError(
                f"Savitzky–Golay with polyorder {self.polyorder} cannot estimate order-{order} derivatives."
            )
        need = (self.window or self.polyorder + 3) + 2
        t, x = _check(t, x, order, need, "Savitzky–Golay")
        h = _uniform_step(t, "Savitzky–Golay")
        w = self.window or self.choose_window(x)
        return [
            np.asarray(savgol_filter(x, w, self.polyorder, deriv=k, delta=h, mode="interp"))
            for k in range(order + 1)
        ]


@dataclasses.dataclass(frozen=True)
class SmoothingSpline:
    """Cubic smoothing spline (``scipy.interpolate.make_smoothing_spline``); ``lam=None``
    chooses the smoothing by generalised cross-validation. Works on non-uniform grids."""

    lam: float | None = None

    name = "spline"

    def derivatives(self, t: Any, x: Any, order: int) -> list[np.ndarray]:
        from scipy.interpolate import make_smoothing_spline

        if order > 2:
            raise DifferentiationError("A cubic smoothing spline gives derivatives up to order 2.")
        t, x = _check(t, x, order, 5, "The smoothing spline")
        spl = make_smoothing_spline(t, x, lam=self.lam)
        return [spl(t)] + [spl.derivative(k)(t) for k in range(1, order + 1)]


@dataclasses.dataclass(frozen=True)
class Weak:
    """Weak form: test functions ``φ(s) = (1 - s²)^power`` on windows of ``width`` samples,
    ``s`` mapping the window onto [-1, 1], normalised to unit integral.

    Args:
        width: window length in samples; ``None`` chooses it from the data (see
            `choose_width`).
        n_test: test functions per trajectory (``None``: windows every ``width // 8`` samples).
        power: exponent of φ; φ and its first ``power - 1`` derivatives vanish at the window's
            ends, so ``power`` must exceed the highest derivative moved onto φ.
        features: pointwise method for derivatives that appear inside library terms (a
            second-order system observed without velocities): a name or an object.
    """

    width: int | None = None
    n_test: int | None = None
    power: int = 8
    features: Any = "savgol"

    name = "weak"

    def __post_init__(self):
        if self.power < 2:
            raise DifferentiationError(f"power must be >= 2, got {self.power}.")
        if self.width is not None and self.width < 2 * self.power + 1:
            raise DifferentiationError(
                f"width must be at least 2 * power + 1 = {2 * self.power + 1} samples; got {self.width}."
            )
        if self.n_test is not None and self.n_test < 1:
            raise DifferentiationError(f"n_test must be >= 1, got {self.n_test}.")

    def choose_width(self, t: np.ndarray, xs: list[np.ndarray]) -> int:
        """Default window from the data's time scale τ = 1/f₉₅ (f₉₅: the frequency below which
        95 % of the detrended signal's power lies; the fastest signal counts) and its noise:
        a quarter of τ, at least 41 samples (accurate quadrature of φ'') and, for noisy data,
        up to twice the Savitzky–Golay GCV window, but never more than half of τ (or a
        quarter of the trajectory) unless that is below ``2 * power + 3`` samples."""
        n = t.size
        dt = float(t[-1] - t[0]) / (n - 1)
        tau = min(time_scale(t, x) for x in xs) / dt
        lo = 2 * self.power + 3
        try:
            _uniform_step(t, "weak")
            smooth = 2 * max(SavitzkyGolay().choose_window(x) for x in xs)
        except DataError:
            smooth = lo
        width = max(tau / 4, min(41.0, tau / 2), min(smooth, tau / 2))
        width = int(round(min(max(width, lo), max(lo, n // 4))))
        return width | 1

    def test_functions(self, t: Any, max_order: int, width: int | None = None) -> list[np.ndarray]:
        """``[V_0, ..., V_m]`` with ``V_j @ f ≈ ∫ φ_k^(j)(t) f(t) dt`` for every test function
        ``k`` (rows), by the trapezoid rule on the sample times."""
        t = np.asarray(t, dtype=float)
        n = t.size
        width = int(width or self.width or max(41, 2 * self.power + 3))
        if max_order >= self.power:
            raise DifferentiationError(
                f"The weak form with power {self.power} moves at most {self.power - 1} derivatives "
                f"onto the test functions; order {max_order} needs power > {max_order}."
            )
        if n < width:
            raise DataError(
                f"The weak form needs at least {width} samples per trajectory (one test-function "
                f"window); got {n}. Give more samples or a smaller width."
            )
        n_starts = n - width + 1
        k = self.n_test or max(1, (n_starts - 1) // max(1, width // 8) + 1)
        k = min(k, n_starts)
        starts = np.unique(np.linspace(0, n_starts - 1, k).round().astype(int))
        quad = np.zeros(n)
        dt = np.diff(t)
        quad[:-1] += dt / 2
        quad[1:] += dt / 2
        poly = np.polynomial.Polynomial([1.0, 0.0, -1.0]) ** self.power
        derivs = [poly.deriv(j) for j in range(max_order + 1)]
        V = [np.zeros((starts.size, n)) for _ in range(max_order + 1)]
        for r, s0 in enumerate(starts):
            idx = np.arange(s0, s0 + width)
            a, b = t[idx[0]], t[idx[-1]]
            s = (2 * t[idx] - a - b) / (b - a)
            scale = 2.0 / (b - a)
            w = quad[idx].copy()
            w[0] = (t[idx[1]] - t[idx[0]]) / 2  # the window's own trapezoid ends
            w[-1] = (t[idx[-1]] - t[idx[-2]]) / 2
            norm = float(np.sum(w * derivs[0](s)))
            for j in range(max_order + 1):
                V[j][r, idx] = w * derivs[j](s) * scale**j / norm
        return V


def time_scale(t: Any, x: Any) -> float:
    """``1 / f95``: the period of the frequency below which 95 % of the power of ``x``
    (linear trend removed) lies; the whole span for a signal without oscillation.

    >>> t = np.linspace(0, 10, 1001)
    >>> round(time_scale(t, np.sin(2 * np.pi * t)), 2)
    1.0
    """
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    n = t.size
    span = float(t[-1] - t[0])
    if n < 4 or span <= 0:
        return max(span, 1e-300)
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    power = np.abs(np.fft.rfft(x)) ** 2
    power[0] = 0.0
    total = float(power.sum())
    if total <= 0:
        return span
    freqs = np.fft.rfftfreq(n, span / (n - 1))
    k = int(np.searchsorted(np.cumsum(power), 0.95 * total))
    f95 = float(freqs[min(k, freqs.size - 1)])
    return span if f95 <= 0 else min(span, 1.0 / f95)


_BY_NAME = {
    "finite_difference": FiniteDifference,
    "fd": FiniteDifference,
    "savgol": SavitzkyGolay,
    "savitzky_golay": SavitzkyGolay,
    "spline": SmoothingSpline,
    "weak": Weak,
}


def get_method(spec: Any = "savgol") -> Any:
    """A differentiation object from a name in `METHODS` (or the object itself)."""
    if isinstance(spec, (FiniteDifference, SavitzkyGolay, SmoothingSpline, Weak)):
        return spec
    if isinstance(spec, str) and spec in _BY_NAME:
        return _BY_NAME[spec]()
    raise DifferentiationError(
        f"Unknown differentiation {spec!r}; choose one of {', '.join(METHODS)} (sm.discover also "
        "takes 'auto'), or pass "
        "FiniteDifference(), SavitzkyGolay(window=...), SmoothingSpline(lam=...), Weak(...))."
        + (suggest(spec, METHODS) if isinstance(spec, str) else "")
    )


def derivatives(t: Any, x: Any, order: int = 1, method: Any = "savgol") -> list[np.ndarray]:
    """``[x_smooth, x', ..., x^(order)]`` at the sample times by a pointwise method.

    >>> t = np.linspace(0, 1, 51)
    >>> [float(np.round(d[25], 6)) for d in derivatives(t, t**2, 2, "finite_difference")]
    [0.25, 1.0, 2.0]
    """
    m = get_method(method)
    if isinstance(m, Weak):
        raise DifferentiationError(
            "The weak form gives no pointwise derivatives; use it through sm.discover("
            "differentiation='weak'), or pick 'savgol', 'spline' or 'finite_difference' here."
        )
    return m.derivatives(t, x, order)
