"""The parameter-estimation examples in fast mode: each reproduces its numbers and writes its
figures (examples/pendulum_fit.py, lotka_volterra_fit.py, duffing.py, projectile_inverse.py)."""

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.special
from conftest import run_example


@pytest.mark.slow  # runs the whole example script: a pipeline
def test_pendulum_fit(tmp_path):
    ns = run_example("pendulum_fit.py", tmp_path)
    g = ns["g"]
    for swing in ("small", "large"):
        res = ns["fits"][swing, "nonlinear"]
        lo, hi = res.confidence_intervals()["g"]
        assert res.converged and lo <= 9.81 <= hi and abs(res.params[g] / 9.81 - 1) < 2e-3
    # small swing: the small-angle bias is theta0^2/8 = 0.125 %; large swing: about -26 %
    assert ns["fits"]["small", "small-angle"].params[g] == pytest.approx(9.81 * (1 - 0.1**2 / 8), rel=1e-3)
    assert ns["bias"] < -0.2
    lo, hi = ns["fits"]["large", "small-angle"].confidence_intervals()["g"]
    assert not lo <= 9.81 <= hi
    # the biased value is the one that reproduces the exact (elliptic-integral) period
    assert ns["g_small_large"] == pytest.approx(ns["g_predicted"], rel=1e-3)
    assert ns["fits"]["large", "small-angle"].solution == "analytic"
    for f in ("pendulum_fit.png", "pendulum_fit_small_swing.png"):
        assert (tmp_path / f).stat().st_size > 10_000


@pytest.mark.slow
def test_lotka_volterra_fit(tmp_path):
    ns = run_example("lotka_volterra_fit.py", tmp_path)
    res, truth = ns["res"], ns["truth"]
    assert res.converged and ns["inside"] == 4
    assert all(abs(res.params[p] / v - 1) < 0.1 for p, v in truth.items())
    assert 0.85 <= np.mean(ns["hits"]) <= 1.0
    assert np.all((ns["spread_ratio"] > 0.5) & (ns["spread_ratio"] < 1.5))
    assert ns["res_ics"].labels[-2:] == ("u(0)", "v(0)") and ns["res_ics"].converged
    for f in ("lotka_volterra_fit.png", "lotka_volterra_fit_residuals.png"):
        assert (tmp_path / f).stat().st_size > 10_000


@pytest.mark.slow
def test_duffing_sweep(tmp_path):
    ns = run_example("duffing.py", tmp_path)
    res, truth = ns["res"], ns["truth"]
    assert res.converged and ns["covered"] == 3
    for p, v in truth.items():
        assert abs(res.params[p] / v - 1) < 0.03
    assert (tmp_path / "duffing_sweep.png").stat().st_size > 10_000


@pytest.mark.slow
def test_projectile_inverse(tmp_path):
    ns = run_example("projectile_inverse.py", tmp_path)
    errors, results = ns["errors"], ns["results"]
    # the direct routes land on 150 m (to the solver's accuracy), the neural one within metres
    direct = ("simulation, min-norm", "simulation, θ = 11.9°", "closed form, min-norm")
    for name in direct + ("simulation, v = 75.3, low", "simulation, v = 75.3, high"):
        assert errors[name] < 1e-6
    assert errors["neural (D_net, P_net)"] < 3.0
    # simulation and closed form find the same closest throw
    v1, th1, _ = results["simulation, min-norm"]
    v2, th2, _ = results["closed form, min-norm"]
    assert abs(v1 - v2) < 1e-5 and abs(th1 - th2) < 1e-6
    # at the lecture's angle the speed is the lecture's 75.3 m/s
    assert results["simulation, θ = 11.9°"][0] == pytest.approx(75.3, abs=0.05)
    assert math.degrees(results["simulation, θ = 11.9°"][1]) == pytest.approx(11.9)
    # both branches at the lecture's speed, against the Lambert-W range solved by Brent's method
    m, g, k = 7.26, 9.81, 1.8

    def D(th, v=75.3):
        vx, vy = v * math.cos(th), v * math.sin(th)
        z = -((g * m + k * vy) / (g * m)) * math.exp(-1 - k * vy / (g * m))
        w = scipy.special.lambertw(z, 0).real
        return m * vx * (g * m * w + g * m + k * vy) / (k * (g * m + k * vy))

    top = scipy.optimize.minimize_scalar(lambda th: -D(th), bounds=(0.1, 1.4), method="bounded").x
    for name, (a, b) in (("low", (0.01, top)), ("high", (top, 1.55))):
        ref = scipy.optimize.brentq(lambda th: D(th) - 150.0, a, b, xtol=1e-14)
        th_sim, th_cf = ns["branches"][name]
        assert abs(th_sim - ref) < 1e-7 and abs(th_cf - ref) < 1e-9
        assert results[f"simulation, v = 75.3, {name}"][0] == 75.3
    assert math.degrees(ns["branches"]["high"][0]) > 45 > math.degrees(ns["branches"]["low"][0])
    assert (tmp_path / "projectile_inverse.png").stat().st_size > 10_000
