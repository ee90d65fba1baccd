"""sm.fit against scipy.optimize.least_squares over scipy.integrate.solve_ivp, side by side.

    python benchmarks/fit_speed.py [--repeats 10] [--seeds 5]

The Lotka–Volterra problem of docs/problems.md §3: all four rates from 21 samples with 5 % noise,
the same data and the same starting point (all rates 1) for both, the same ODE tolerances
(rtol 1e-8, atol 1e-10) and the same weighted least-squares objective (each state's residuals
divided by its mean |value|).

* symml: ``sm.fit(..., method="lm")`` — Levenberg–Marquardt (optimistix) with forward-mode
  derivatives through the diffrax solve, one compiled call. Compile time (first call) is
  reported separately; the steady state is the median over repeats.
* SciPy: ``least_squares`` (``trf`` and ``lm``) with finite-difference Jacobians over
  ``solve_ivp`` (DOP853 and RK45) on a NumPy right-hand side — what a careful SciPy user writes.

Reported per seed: median wall time to converge (the whole ``sm.fit`` call, host work
included), ODE solves (symml: optimiser steps, each one solve carrying the 4 tangents; SciPy:
residual calls plus finite-difference calls), final sum of squares and the parameter error
against the truth and against each other. Target: symml >= 10x faster after
compilation with equal or better accuracy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.integrate
import scipy.optimize

import symml as sm

RTOL, ATOL = 1e-8, 1e-10
TS = np.arange(0, 5.0 + 1e-9, 0.25)
TRUTH = {"alpha": 1.3, "beta": 0.9, "delta": 1.8, "gamma": 0.8}  # model.params order (by name)


def scipy_fit(data, y0, method: str, integrator: str, repeats: int):
    u_obs, v_obs = data["u"], data["v"]
    w = np.array([1 / np.mean(np.abs(u_obs)), 1 / np.mean(np.abs(v_obs))])
    obs = np.stack([u_obs, v_obs], -1)

    def rhs(t, y, a, b, d, g):
        return [a * y[0] - b * y[0] * y[1], -g * y[1] + d * y[0] * y[1]]

    calls = [0]

    def residuals(theta):
        calls[0] += 1
        sol = scipy.integrate.solve_ivp(
            rhs, (TS[0], TS[-1]), y0, method=integrator, t_eval=TS, args=tuple(theta), rtol=RTOL, atol=ATOL
        )
        if not sol.success or sol.y.shape[1] != TS.size:
            return np.full(obs.size, 1e6)
        return ((sol.y.T - obs) * w).ravel()

    x0 = np.ones(4)
    times = []
    for _ in range(repeats):
        calls[0] = 0
        t0 = time.perf_counter()
        out = scipy.optimize.least_squares(residuals, x0, method=method, xtol=1e-10, ftol=1e-10, gtol=1e-10)
        times.append(time.perf_counter() - t0)
    solves = calls[0]  # every solve_ivp call: residuals and finite-difference Jacobian columns
    return out.x, float(out.fun @ out.fun), solves, statistics.median(times), out.success


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10, help="symml repeats per seed (median)")
    ap.add_argument("--scipy-repeats", type=int, default=3, help="SciPy repeats per seed (median)")
    ap.add_argument("--seeds", type=int, default=5, help="noisy datasets")
    args = ap.parse_args()

    lv = sm.zoo.lotka_volterra()
    names = [p.name for p in lv.params]
    truth = np.array([TRUTH[n] for n in names])
    start = {p: 1.0 for p in lv.params}
    y0 = [lv.defaults[s] for s in lv.states]
    rows = []
    compile_s = None
    for seed in range(args.seeds):
        data = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=seed)
        res = sm.fit(lv, data, params=start, weights="relative", rtol=RTOL, atol=ATOL)
        if compile_s is None:
            compile_s = res.compile_seconds
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = sm.fit(lv, data, params=start, weights="relative", rtol=RTOL, atol=ATOL)
            times.append(time.perf_counter() - t0)
        ours = dict(
            x=res.estimates, rss=res.rss, nfev=res.iterations, t=statistics.median(times), ok=res.converged
        )
        theirs = {}
        for method, integ in (("trf", "DOP853"), ("lm", "DOP853"), ("trf", "RK45")):
            x, rss, nfev, t, ok = scipy_fit(data, y0, method, integ, args.scipy_repeats)
            theirs[f"{method}/{integ}"] = dict(x=x, rss=rss, nfev=nfev, t=t, ok=ok)
        rows.append((seed, ours, theirs))

    print(f"Lotka–Volterra, 4 rates from {TS.size} points x 2 states, 5 % noise; start all 1; rtol {RTOL:g}")
    print(f"symml compile (first call, once per problem structure): {compile_s:.2f} s\n")
    cols = ("time [ms]", "solves", "RSS", "max rel err", "speed-up")
    print(
        f"{'seed':>4s} {'solver':22s} {cols[0]:>10s} {cols[1]:>6s} {cols[2]:>12s} "
        f"{cols[3]:>12s} {cols[4]:>9s}"
    )
    speedups: dict[str, list[float]] = {}
    for seed, ours, theirs in rows:
        err = np.max(np.abs(ours["x"] / truth - 1))
        print(
            f"{seed:4d} {'symml lm (fwd AD)':22s} {1e3 * ours['t']:10.1f} {ours['nfev']:6d} "
            f"{ours['rss']:12.6e} {err:12.3e}"
        )
        for name, r in theirs.items():
            e = np.max(np.abs(r["x"] / truth - 1))
            sp_ = r["t"] / ours["t"]
            speedups.setdefault(name, []).append(sp_)
            agree = np.max(np.abs(r["x"] / ours["x"] - 1))
            print(
                f"{'':4s} {'scipy ' + name:22s} {1e3 * r['t']:10.1f} {r['nfev']:6d} {r['rss']:12.6e} "
                f"{e:12.3e} "
                f"{sp_:8.1f}x   (|Δθ|/θ vs symml {agree:.1e}, RSS ratio {r['rss'] / ours['rss']:.6f})"
            )
    print()
    for name, s in speedups.items():
        print(f"median speed-up of symml over scipy {name}: {statistics.median(s):.1f}x (min {min(s):.1f}x)")
    ok = all(r[1]["rss"] <= min(v["rss"] for v in r[2].values()) * (1 + 1e-6) for r in rows)
    print(f"symml's final loss is equal or lower than every SciPy run on every seed: {ok}")


if __name__ == "__main__":
    main()
