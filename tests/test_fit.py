"""fit(): parameters recovered exactly from exact data, honest uncertainties from noisy data,
initial values, partial observation, several trajectories, bounds, weights, failures."""

import importlib
import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import sympy as sp

import symml as sm
from symml import t

fitmod = importlib.import_module("symml._fit._fit")
artefact_sizes = importlib.import_module("symml._compile._cache").sizes
TS = np.linspace(0, 5, 21)  # docs/problems.md §3: t in [0, 5] every 0.25


@pytest.fixture(scope="module")
def lv():
    return sm.zoo.lotka_volterra()


@pytest.fixture(scope="module")
def truth(lv):
    return {p: lv.defaults[p] for p in lv.params}


@pytest.fixture(scope="module")
def exact(lv):
    return sm.Dataset.from_model(lv, ts=TS, rtol=1e-12, atol=1e-12)


def _rel(res, truth):
    return max(abs(res.params[p] / v - 1) for p, v in truth.items())


def _decay():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k", positive=True)
    return sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay"), x, k


# ----------------------------------------------------------------------------- exact recovery


@pytest.mark.slow
def test_noise_free_data_recovers_all_four_parameters(lv, truth, exact):
    start = {p: 1.0 for p in lv.params}
    res = sm.fit(lv, exact, params=start)
    assert res.converged and "converged" in res.message
    assert res.solution == "numeric"  # nonlinear: "auto" integrates
    assert _rel(res, truth) < 1e-6
    # the fitted model carries the estimates and reproduces the data
    assert all(abs(res.model.defaults[p] - res.params[p]) == 0 for p in lv.params)
    assert res.rss < 1e-12 and res.dof == 42 - 4 and res.n_obs == 42
    np.testing.assert_allclose(res.predictions[0], np.stack([exact["u"], exact["v"]], -1), atol=1e-7)
    np.testing.assert_allclose(res.residuals[0], np.stack([exact["u"], exact["v"]], -1) - res.predictions[0])
    # the loss history decreases from the start value to the optimum
    h = res.loss_history
    assert len(h) == res.iterations and np.all(np.diff(h) <= 0) and h[-1] == pytest.approx(res.rss, rel=1e-6)
    assert res["alpha"] == res.params[lv.lookup("alpha")]


@pytest.mark.slow
def test_fitting_initial_values_too(lv, truth):
    u, v = lv.states
    ics = {u: 0.8, v: 3.0}
    truth_ic = {u: 0.8, v: 3.0}
    sim = sm.simulate(lv, ics=ics, saveat=TS, rtol=1e-12, atol=1e-12)
    data = sm.Dataset(t=TS, y={"u": np.asarray(sim[u]), "v": np.asarray(sim[v])})  # no stored ics
    res = sm.fit(lv, data, params={p: 1.0 for p in lv.params}, ics="fit")
    assert res.converged and _rel(res, truth) < 1e-6
    for s in (u, v):
        assert abs(res.ics[0][s] / truth_ic[s] - 1) < 1e-6
        assert 0 < res.ics_stderr[0][s] < 1e-6
    assert res.labels == ("alpha", "beta", "delta", "gamma", "u(0)", "v(0)")
    # the fitted model starts where the data starts
    assert res.model.defaults[u] == pytest.approx(0.8, rel=1e-6)


@pytest.mark.slow
def test_partial_observation_u_only_and_what_it_cannot_determine(lv, truth):
    """Only u observed, no initial value known. v enters u's equation only through beta·v, and
    v's equation is linear in v, so (beta, v(0)) -> (beta/c, c·v(0)) leaves u unchanged: the
    fit must recover alpha, gamma, delta, u(0) and the product beta·v(0), and say that beta and
    v(0) separately are not determined."""
    u, v = lv.states
    sim = sm.simulate(lv, ics={u: 0.8, v: 3.0}, saveat=TS, rtol=1e-12, atol=1e-12)
    data = sm.Dataset(t=TS, y={u: np.asarray(sim[u])})
    with pytest.warns(fitmod.FitWarning, match=r"do not determine beta, v\(0\)"):
        res = sm.fit(lv, data, params={p: 1.0 for p in lv.params}, ics="fit")
    assert res.converged and res.n_obs == 21 and res.predictions[0].shape == (21, 1)
    for name in ("alpha", "gamma", "delta"):
        assert abs(res[name] / truth[lv.lookup(name)] - 1) < 1e-6
    assert abs(res.ics[0][u] / 0.8 - 1) < 1e-6
    assert abs(res["beta"] * res.ics[0][v] / (0.9 * 3.0) - 1) < 1e-6
    assert np.isinf(res.stderr[lv.lookup("beta")]) and np.isinf(res.ics_stderr[0][v])
    assert np.isfinite(res.stderr[lv.lookup("alpha")])


def test_partial_observation_only_x_of_the_projectile():
    """Only x(t) of the shot put is observed, the launch velocity is unknown. x depends on the
    drag only through k/m and on the launch only through x'(0): with m known, k and x'(0) are
    recovered from x alone (the closed form x = (m vx/k)(1 - exp(-k t/m)) serves the fit)."""
    proj = sm.zoo.projectile()
    x, y, vx, vy = proj.states
    ts = np.linspace(0, 1.5, 16)
    xs = (7.26 * 9.0 / 0.3) * (1 - np.exp(-0.3 * ts / 7.26))  # k = 0.3, x'(0) = 9
    data = sm.Dataset(t=ts, y={x: xs})
    res = sm.fit(proj, data, params={"k": 1.0}, ics={vx: "fit"}, solution="analytic")
    assert res.solution == "analytic" and res.converged
    assert abs(res["k"] / 0.3 - 1) < 1e-6 and abs(res.ics[0][vx] / 9.0 - 1) < 1e-8
    assert res.labels == ("k", "x_t(0)") and res.n_obs == 15  # x(0) = xs[0] is used, not fitted
    assert res.ics[0][y] == proj.defaults[y]  # unobserved and unfitted: the model's default


@pytest.mark.slow
def test_driven_linear_model_through_its_closed_form():
    """A driven relaxation x' = -k x + A sin(w t) observed from t = 1 on: the closed form (built
    for that initial time) serves the fit, and the parameters come back exactly."""
    (x,) = sm.states("x")
    k, A, w = sm.parameters("k A w", positive=True)
    model = sm.Model(
        [sp.Eq(x.diff(t), -k * x + A * sp.sin(w * t))], defaults={k: 0.7, A: 2.0, w: 3.0, x: 0.5}
    )
    data = sm.Dataset.from_model(model, ts=np.linspace(1, 6, 40), rtol=1e-12, atol=1e-12)
    res = sm.fit(model, data, params={k: 0.5, A: 1.5, w: 2.9}, solution="analytic")
    assert res.solution == "analytic" and res.converged
    for p, value in ((k, 0.7), (A, 2.0), (w, 3.0)):
        assert abs(res.params[p] / value - 1) < 1e-7


def test_unobserved_state_without_initial_value_is_an_error(lv):
    u, v = lv.states
    bare = sm.Model(lv.equations, defaults={p: lv.defaults[p] for p in lv.params})
    data = sm.Dataset(t=TS[:5], y={u: [0.4, 0.5, 0.6, 0.7, 0.8]})
    with pytest.raises(sm.MissingValueError, match=r"No initial value for state v.*ics=\{'v': 'fit'\}"):
        sm.fit(bare, data)
    # given, or estimated: both accepted
    assert fitmod._build(bare, data, None, {v: 4.6}, None, None).labels == ["alpha", "beta", "delta", "gamma"]
    assert fitmod._build(bare, data, None, {"v": "fit"}, None, None).labels[-1] == "v(0)"
    # the first sample used as u(0) carries no information: it leaves the fit
    assert fitmod._build(bare, data, None, {v: 4.6}, None, None).n_obs == 4


# ----------------------------------------------------------------------------- uncertainties


@pytest.mark.slow
def test_noisy_data_intervals_cover_the_truth_at_the_nominal_rate(lv, truth):
    hits, estimates, stderrs = [], [], []
    for seed in range(40):
        data = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=seed)
        res = sm.fit(lv, data, params={p: 1.0 for p in lv.params}, weights="relative")
        assert res.converged
        ci = res.confidence_intervals()
        hits += [ci[p.name][0] <= v <= ci[p.name][1] for p, v in truth.items()]
        estimates.append([res.params[p] for p in truth])
        stderrs.append([res.stderr[p] for p in truth])
    coverage = np.mean(hits)
    assert 0.88 <= coverage <= 0.995, coverage
    # the reported standard errors match the spread of the estimates over the seeds
    ratio = np.std(estimates, axis=0) / np.mean(stderrs, axis=0)
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio
    df = res.summary()
    assert list(df.columns) == ["estimate", "std_error", "95% low", "95% high", "rel_error"]
    assert list(df.index) == ["alpha", "beta", "delta", "gamma"]
    assert "std_error" in repr(res)


def test_gauss_newton_covariance_equals_curve_fit_and_weights_are_scale_free():
    model, x, k = _decay()
    rng = np.random.default_rng(3)
    ts = np.linspace(0, 4, 25)
    yobs = 2.0 * np.exp(-0.5 * ts) + 0.02 * rng.standard_normal(ts.size)
    data = sm.Dataset(t=ts, y={x: yobs})
    res = sm.fit(model, data, params={k: 0.3}, ics="fit")
    popt, pcov = scipy.optimize.curve_fit(lambda tt, kk, x0: x0 * np.exp(-kk * tt), ts, yobs, p0=[0.3, 1.0])
    np.testing.assert_allclose(res.estimates, popt, rtol=1e-7)
    np.testing.assert_allclose(res.covariance, pcov, rtol=1e-5)
    assert res.dof == 23 and res.sigma == pytest.approx(
        math.sqrt(np.sum((yobs - popt[1] * np.exp(-popt[0] * ts)) ** 2) / 23)
    )
    # 95 % interval: estimate ± t(0.975, 23) × standard error
    lo, hi = res.confidence_intervals()["k"]
    assert (hi - lo) / 2 == pytest.approx(2.0686576104190406 * res.stderr[k], rel=1e-9)
    # multiplying every weight by a constant changes neither estimates nor uncertainties
    res10 = sm.fit(model, data, params={k: 0.3}, ics="fit", weights={x: 10.0})
    np.testing.assert_allclose(res10.estimates, res.estimates, rtol=1e-8)
    np.testing.assert_allclose(res10.covariance, res.covariance, rtol=1e-6)


def test_bfgs_agrees_with_levenberg_marquardt():
    model, x, k = _decay()
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 4, 25), noise=0.02, noise_kind="additive", seed=1)
    lm = sm.fit(model, data, params={k: 0.3}, ics="fit")
    bfgs = sm.fit(model, data, params={k: 0.3}, ics="fit", method="bfgs")
    assert bfgs.converged and bfgs.method == "bfgs"
    np.testing.assert_allclose(bfgs.estimates, lm.estimates, rtol=1e-7)
    np.testing.assert_allclose(bfgs.covariance, lm.covariance, rtol=1e-5)


@pytest.mark.slow
def test_auto_fits_linear_models_through_their_closed_form_and_agrees_with_integration():
    model, x, k = _decay()
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 4, 25), noise=0.02, noise_kind="additive", seed=2)
    auto = sm.fit(model, data, params={k: 0.3}, ics="fit")
    num = sm.fit(model, data, params={k: 0.3}, ics="fit", solution="numeric")
    assert (auto.solution, num.solution) == ("analytic", "numeric")
    np.testing.assert_allclose(num.estimates, auto.estimates, rtol=1e-7)
    np.testing.assert_allclose(num.covariance, auto.covariance, rtol=1e-5)
    # the exact optimum of x0 exp(-k t) (SciPy's curve_fit on the formula)
    popt, _ = scipy.optimize.curve_fit(
        lambda tt, kk, x0: x0 * np.exp(-kk * tt), data.t, data[x], p0=[0.3, 1.0], xtol=1e-14, ftol=1e-14
    )
    np.testing.assert_allclose(auto.estimates, popt, rtol=1e-7)
    # a solver other than the default means integration
    assert sm.fit(model, data, params={k: 0.3}, solver="dopri5").solution == "numeric"


@pytest.mark.slow
def test_when_there_is_no_closed_form_to_fit_through():
    (x,) = sm.states("x")
    k, A, w = sm.parameters("k A w", positive=True)
    driven = sm.Model(
        [sp.Eq(x.diff(t), -k * x + A * sp.sin(w * t))], defaults={k: 0.7, A: 2.0, w: 3.0}, name="driven"
    )
    # two trajectories starting at different times: a driven model's flow serves one start time
    data = sm.Dataset.from_model(
        driven, ics=[{x: 0.5}, {x: 1.0}], ts=[np.linspace(0, 3, 12), np.linspace(1, 4, 12)]
    )
    with pytest.raises(
        sm.NoClosedForm,
        match="no closed form for 'driven': the model is driven .* trajectories start at different times",
    ):
        sm.fit(driven, data, params={k: 0.5}, solution="analytic")
    res = sm.fit(driven, data, params={k: 0.5})  # "auto" integrates instead
    assert res.solution == "numeric" and abs(res.params[k] / 0.7 - 1) < 1e-6
    U = sm.neural("U", inputs=[x], outputs=1, width=4, depth=1)
    hybrid = sm.Model([sp.Eq(x.diff(t), -k * x + U[0])], defaults={k: 0.5, x: 2.0}, name="hybrid")
    with pytest.raises(sm.NoClosedForm, match="no closed form for 'hybrid': the model has neural terms"):
        sm.fit(hybrid, sm.Dataset(t=[0, 1, 2], y={x: [2.0, 1.2, 0.7]}), params={k: 0.3}, solution="analytic")


@pytest.mark.slow
def test_adam_reaches_the_same_optimum():
    model, x, k = _decay()
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 4, 25), noise=0.02, noise_kind="additive", seed=1)
    lm = sm.fit(model, data, params={k: 0.3}, ics="fit")
    adam = sm.fit(model, data, params={k: 0.3}, ics="fit", method="adam")
    assert adam.converged and adam.method == "adam"
    np.testing.assert_allclose(adam.estimates, lm.estimates, rtol=1e-4)


# ----------------------------------------------------------------------------- more structure


@pytest.mark.slow
def test_several_trajectories_settings_and_an_observable():
    """Three pendulums of different lengths (stored per trajectory), observed through the bob's
    horizontal position l·sin(θ): one g explains all of them."""
    pend = sm.zoo.pendulum(small_angle=True)
    theta, omega = pend.states
    g, l = pend.params
    ics = [{theta: 0.3, l: 0.5}, {theta: 1.2, l: 1.0}, {theta: 2.0, l: 2.0}]
    data = sm.Dataset.from_model(
        pend, ics=ics, ts=np.linspace(0, 3, 31), observe=[l * sp.sin(theta)], rtol=1e-12, atol=1e-12
    )
    assert data.settings(pend, 2) == {l: 2.0}
    res = sm.fit(pend, data, params={g: 8.0}, solution="analytic")  # l: a known setting of each
    assert list(res.params) == [g] and res.solution == "analytic"
    assert abs(res.params[g] / 9.81 - 1) < 1e-7
    assert res.n_obs == 93 and len(res.predictions) == 3
    with pytest.raises(fitmod.FitError, match="both fitted and stored as a known setting"):
        sm.fit(pend, data, params=[g, l])


def test_bounds_keep_the_estimate_inside():
    model, x, k = _decay()
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 4, 25), rtol=1e-10, atol=1e-12)  # k = 0.5
    # the data want k = 0.5: the estimate stops on the bound, and the result says so
    with pytest.warns(
        fitmod.FitWarning, match=r"k = 0.4 is at its upper bound 0.4: the best fit lies on or beyond"
    ):
        res = sm.fit(model, data, params={k: 0.3}, bounds={k: (0.1, 0.4)})
    assert res.params[k] == pytest.approx(0.4, abs=1e-9)
    # inside the bounds, the bounded fit finds the unbounded optimum
    res = sm.fit(model, data, params={k: 0.3}, bounds={k: (0.1, 0.9)})
    assert res.params[k] == pytest.approx(0.5, rel=1e-7)
    with pytest.raises(
        fitmod.FitError, match=r"starting value of k is 0.45, not strictly inside its bounds \(0.1, 0.4\)"
    ):
        sm.fit(model, data, params={k: 0.45}, bounds={k: (0.1, 0.4)})
    with pytest.raises(fitmod.FitError, match="lower bound must be below"):
        sm.fit(model, data, bounds={k: (1.0, 0.5)})
    with pytest.raises(fitmod.FitError, match="bounds has an entry for x"):
        sm.fit(model, data, params=[k], bounds={x: (0, 1)})
    # positive=True parameters stay positive by default
    with pytest.raises(
        fitmod.FitError, match=r"starting value of k is -1, not strictly inside its bounds \(0, inf\)"
    ):
        sm.fit(model, data, params={k: -1.0})


# ----------------------------------------------------------------------------- failures


@pytest.mark.slow
def test_a_fit_that_does_not_converge_says_so(lv, exact):
    with pytest.warns(
        fitmod.FitWarning,
        match=r"did not converge: max_iter=3 steps reached.*Last loss .*Try a larger max_iter",
    ):
        res = sm.fit(lv, exact, params={p: 1.0 for p in lv.params}, max_iter=3)
    assert not res.converged and res.iterations == 3 and "did not converge" in res.message
    assert isinstance(fitmod.FitWarning("x"), sm.SymmlError) is False  # a warning, not an error


@pytest.mark.slow  # several fits, each compiled
def test_start_values_that_cannot_be_solved_raise(lv, exact):
    start = {p: 1.0 for p in lv.params}
    start[lv.lookup("alpha")] = 1e5  # u grows like exp(1e5 t): overflow
    with pytest.raises(fitmod.FitError, match="cannot be solved at the starting values.*alpha=100000"):
        sm.fit(lv, exact, params=start)


def test_setup_errors_name_the_problem(lv, exact):
    u, v = lv.states
    with pytest.raises(
        sm.UnknownNameError, match="'alhpa' is not a state or parameter.*Did you mean 'alpha'"
    ):
        sm.fit(lv, exact, params=["alhpa"])
    with pytest.raises(fitmod.FitError, match="u\\(t\\) is a state, not a parameter"):
        sm.fit(lv, exact, params=[u])
    with pytest.raises(fitmod.FitError, match="ics must be 'data', 'fit'"):
        sm.fit(lv, exact, ics="guess")
    with pytest.raises(fitmod.FitError, match="ics values are numbers or 'fit'"):
        sm.fit(lv, exact, ics={u: "estimate"})
    with pytest.raises(fitmod.FitError, match="ics refers to alpha, a parameter"):
        sm.fit(lv, exact, ics={"alpha": 1.0})
    with pytest.raises(fitmod.FitError, match="Unknown method 'newton'"):
        sm.fit(lv, exact, method="newton")
    with pytest.raises(fitmod.FitError, match="weights must be None, 'relative'"):
        sm.fit(lv, exact, weights="inverse")
    with pytest.raises(fitmod.FitError, match="weights must be finite and > 0"):
        sm.fit(lv, exact, weights={u: 0.0})
    with pytest.raises(
        sm.DataError, match="weights has an entry for 'u \\+ v', which the data does not observe"
    ):
        sm.fit(lv, exact, weights={u + v: 1.0})
    with pytest.raises(TypeError, match="fit needs a symml Dataset"):
        sm.fit(lv, {"u": [1, 2]})
    with pytest.raises(TypeError, match="fit needs a symml Model first; got dict"):
        sm.fit({"u": 1}, exact)
    with pytest.raises(fitmod.FitError, match=r"bounds\[alpha\] must be a pair \(lo, hi\)"):
        sm.fit(lv, exact, bounds={"alpha": 5.0})
    with pytest.raises(fitmod.FitError, match="solution must be one of auto, analytic, numeric"):
        sm.fit(lv, exact, solution="closed")
    with pytest.raises(fitmod.FitError, match="max_iter must be at least 1"):
        sm.fit(lv, exact, max_iter=0)
    with pytest.raises(fitmod.FitError, match="Nothing to estimate"):
        sm.fit(lv, exact, params=[])
    no_default = sm.Model(lv.equations, defaults={u: 0.4, v: 4.6})
    with pytest.raises(sm.MissingValueError, match="No starting value for parameter alpha"):
        sm.fit(no_default, exact, params=["alpha"])
    with pytest.raises(sm.MissingValueError, match="are neither fitted nor known"):
        sm.fit(no_default, exact, params={"alpha": 1.0})


def test_new_data_of_the_same_shape_does_not_recompile(lv, exact):
    sm.fit(lv, exact, params={p: 1.0 for p in lv.params})
    n = artefact_sizes(lv)["fit_runner"]
    other = sm.zoo.lotka_volterra()  # an equal model: the compiled program is shared
    res = sm.fit(
        other, sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=7), params={p: 1.2 for p in lv.params}
    )
    assert res.compile_seconds == 0.0
    sm.fit(other, exact, params={p: 1.0 for p in lv.params}, weights="relative", max_iter=50)
    assert artefact_sizes(other)["fit_runner"] == n


def test_plot_trajectory_save_and_load(lv, tmp_path):
    data = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=0)
    res = sm.fit(lv, data, params={p: 1.0 for p in lv.params})
    traj = res.trajectory(0, saveat=TS)
    np.testing.assert_allclose(np.stack([traj["u"], traj["v"]], -1), res.predictions[0], rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = res.plot(tmp_path / "fit.png", saveat=TS)
    assert (tmp_path / "fit.png").stat().st_size > 0 and len(fig.axes) == 1
    # saved and loaded bit-exactly, without executing anything from the file
    sm.save(res, tmp_path / "fit.json")
    back = sm.load(tmp_path / "fit.json")
    assert isinstance(back, sm.FitResult) and back.params == res.params and back.stderr == res.stderr
    assert np.array_equal(back.covariance, res.covariance) and back.labels == res.labels
    assert back.model == res.model and back.summary().equals(res.summary())
