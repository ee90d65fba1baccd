"""sm.pinn: the residual generated from a model, clear errors, and (slow) forward and inverse problems
against closed forms and sm.simulate."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._pinn._residual import Layout, residual, taylor

TINY = dict(
    width=8,
    depth=1,
    collocation=16,
    chunks=4,
    optimizer=sm.Adam(steps=100),
    polish=None,
    balance=None,
    causal=None,
    verbose=False,
)


def test_taylor_mode_derivatives_match_closed_form():
    d = taylor(lambda t: jnp.stack([jnp.exp(-2 * t), t**3]), jnp.asarray(0.5), 3)
    e = math.exp(-1.0)
    np.testing.assert_allclose(d[:, 0], [e, -2 * e, 4 * e, -8 * e], rtol=1e-12)
    np.testing.assert_allclose(d[:, 1], [0.125, 0.75, 3.0, 6.0], rtol=1e-12)


def test_residual_of_exact_solutions_is_zero():
    # second order (the small-angle pendulum), and a wrong solution is not zero
    pend = sm.zoo.pendulum(small_angle=True)
    shape = Layout.of(pend)
    ts = jnp.linspace(0.0, 3.0, 31)
    p = jnp.array([9.81, 1.0])
    w = math.sqrt(9.81)
    exact = lambda t: jnp.stack([0.3 * jnp.cos(w * t) + 0.1 * jnp.sin(w * t)])  # noqa: E731
    assert float(jnp.max(jnp.abs(residual(shape, sm.compile(pend), exact, ts, p)))) < 1e-10
    wrong = lambda t: jnp.stack([0.3 * jnp.cos(1.1 * w * t)])  # noqa: E731
    assert float(jnp.max(jnp.abs(residual(shape, sm.compile(pend), wrong, ts, p)))) > 0.1
    # first order (jvp path), several states, non-autonomous: x' = y, y' = -x + cos(t) (resonant)
    x, y = sm.states("x y")
    forced = sm.Model([sp.Eq(x.diff(sm.t), y), sp.Eq(y.diff(sm.t), -x + sp.cos(sm.t))])
    sol = lambda t: jnp.stack([t * jnp.sin(t) / 2, (jnp.sin(t) + t * jnp.cos(t)) / 2])  # noqa: E731
    shape2 = Layout.of(forced)
    assert shape2.order == 1 and shape2.highest == (0, 1)
    r = residual(shape2, sm.compile(forced), sol, ts, jnp.zeros(0))
    assert r.shape == (31, 2) and float(jnp.max(jnp.abs(r))) < 1e-12


@pytest.fixture(scope="module")
def tiny():
    return sm.pinn(sm.zoo.pendulum(small_angle=True, theta0=0.1), t_span=(0, 1), seed=3, **TINY)


@pytest.mark.slow
def test_result_api(tiny):
    theta = tiny.model.states[0]
    traj = tiny.predict(np.linspace(0, 1, 7))
    assert (
        isinstance(traj, sm.Trajectory) and traj[theta].shape == (7,) and traj[theta.diff(sm.t)].shape == (7,)
    )
    assert tiny.residual([0.0, 0.5]).shape == (2, 1)
    assert tiny.history["terms"].shape == (100, 2) and tiny.terms_names == ("residual", "ic")
    assert tiny.history["loss"][-1] < tiny.history["loss"][0]
    assert "max |pinn - simulate| / amplitude of theta_t" in tiny.report()
    assert tiny.estimated == () and tiny.params[tiny.model.lookup("g")] == 9.81


@pytest.mark.slow  # a second training
def test_seed_makes_runs_reproducible(tiny):
    again = sm.pinn(sm.zoo.pendulum(small_angle=True, theta0=0.1), t_span=(0, 1), seed=3, **TINY)
    np.testing.assert_array_equal(again.history["loss"], tiny.history["loss"])


def test_errors():
    x, v = sm.states("x v")
    k = sm.parameters("k")[0]
    no_ics = sm.Model([sp.Eq(x.diff(sm.t, 2), -k * x)], defaults={k: 1.0})
    with pytest.raises(
        sm.MissingValueError, match=r"forward problem \(no data\) needs every initial value; missing x"
    ):
        sm.pinn(no_ics, t_span=(0, 1), **TINY)
    U = sm.neural("U", inputs=[x], outputs=1)
    ude = sm.Model([sp.Eq(x.diff(sm.t), U[0])], defaults={x: 1.0})
    with pytest.raises(sm.ModelError, match=r"has neural terms \(U\).*sm.train"):
        sm.pinn(ude, t_span=(0, 1), **TINY)
    with pytest.raises(
        sm.DataError, match=r"params=\['g'\] asks sm.pinn to estimate parameters, but data is None"
    ):
        sm.pinn(sm.zoo.pendulum(), params=["g"], t_span=(0, 1), **TINY)
    with pytest.raises(sm.DataError, match="t_span is None and there is no data"):
        sm.pinn(sm.zoo.pendulum(), **TINY)
    with pytest.raises(sm.DataError, match=r"t_span must be \(t0, t1\) with t1 > t0"):
        sm.pinn(sm.zoo.pendulum(), t_span=(1, 0), **TINY)
    with pytest.raises(ValueError, match="collocation=30 must be a multiple of chunks=4"):
        sm.pinn(sm.zoo.pendulum(), t_span=(0, 1), **{**TINY, "collocation": 30})
    with pytest.raises(ValueError, match="balance must be one of"):
        sm.pinn(sm.zoo.pendulum(), t_span=(0, 1), **{**TINY, "balance": "magic"})
    with pytest.raises(ValueError, match="causal must be a positive tolerance"):
        sm.pinn(sm.zoo.pendulum(), t_span=(0, 1), **{**TINY, "causal": -1.0})
    with pytest.raises(ValueError, match=r"optimizer must be an sm.Adam"):
        sm.pinn(sm.zoo.pendulum(), t_span=(0, 1), **{**TINY, "optimizer": sm.LBFGS()})


def test_parameter_and_data_errors():
    # every one is raised before any training
    x = sm.states("x")[0]
    k = sm.parameters("k")[0]
    free_k = sm.Model([sp.Eq(x.diff(sm.t, 2), -k * x)], defaults={x: 1.0, x.diff(sm.t): 0.0}, name="osc")
    with pytest.raises(
        sm.MissingValueError,
        match=r"parameter\(s\) k of model 'osc' have no value and there is no data to estimate them from\. "
        r"Give the model values, model\.with_defaults\(\{k: \.\.\.\}\), or, with data, estimate "
        r"them: params=\[k\]",
    ):
        sm.pinn(free_k, t_span=(0, 1), **TINY)
    ts = np.linspace(0, 1, 5)
    data = sm.Dataset(t=ts, y={x: np.cos(ts)})
    with pytest.raises(
        sm.MissingValueError, match=r"params: k has no default to start from; pass a starting"
    ):
        sm.pinn(free_k, data, params=["k"], **TINY)
    with pytest.raises(
        sm.ModelError, match=r"params: x is a state, not a parameter; pass initial values as ics"
    ):
        sm.pinn(free_k, data, params=["x"], **TINY)
    with pytest.raises(sm.ModelError, match=r"ics: k are parameters, not states; pass them as params"):
        sm.pinn(free_k, data, params={k: 1.0}, ics={k: 1.0}, **TINY)
    two = sm.Dataset(t=ts, y=[{x: np.cos(ts)}, {x: np.sin(ts)}])
    with pytest.raises(sm.DataError, match=r"data has 2 trajectories; sm.pinn trains on one"):
        sm.pinn(free_k, two, params={k: 1.0}, **TINY)
    pend = sm.zoo.pendulum()
    with pytest.raises(ValueError, match=r"collocation must be an int >= 1, got 0"):
        sm.pinn(pend, t_span=(0, 1), **{**TINY, "collocation": 0})
    with pytest.raises(ValueError, match=r"polish must be an sm.LBFGS\(steps=...\) or None, got 3"):
        sm.pinn(pend, t_span=(0, 1), **{**TINY, "polish": 3})
    with pytest.raises(
        ValueError, match=r"checkpoint must be an sm.Checkpoint\(path, every=..., resume=...\), got 'c.json'"
    ):
        sm.pinn(pend, t_span=(0, 1), checkpoint="c.json", **TINY)  # type: ignore[arg-type]


def test_a_checkpoint_of_other_options_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"kind": "symml.pinn.checkpoint", "options": {"width": 999}}')
    with pytest.raises(
        sm.DataError, match=r"cannot be resumed \(it was written with other options\); pass sm.Checkpoint"
    ):
        sm.pinn(
            sm.zoo.pendulum(), t_span=(0, 1), checkpoint=sm.Checkpoint(path, resume=True), windows=1, **TINY
        )
    path.write_text("[1, 2]")
    with pytest.raises(sm.DataError, match=r"cannot be resumed \(not a PINN checkpoint\)"):
        sm.pinn(
            sm.zoo.pendulum(), t_span=(0, 1), checkpoint=sm.Checkpoint(path, resume=True), windows=1, **TINY
        )


@pytest.mark.slow
def test_forward_small_angle_pendulum_against_closed_form():
    res = sm.pinn(sm.zoo.pendulum(small_angle=True, theta0=0.5), t_span=(0, 3), verbose=False)
    ts = np.linspace(0, 3, 301)
    exact = 0.5 * np.cos(math.sqrt(9.81) * ts)
    got = np.asarray(res.predict(ts)[res.model.states[0]])
    assert np.max(np.abs(got - exact)) <= 0.01 * 0.5


@pytest.mark.slow
@pytest.mark.filterwarnings("error::symml.TrainingWarning")
def test_forward_driven_first_order_system_against_closed_form():
    # several states, first order (jvp), non-autonomous: x' = y, y' = -x + cos(t) at resonance,
    # x(t) = t sin(t) / 2 from rest (the amplitude grows linearly: 1.4 at t = 3)
    x, y = sm.states("x y")
    forced = sm.Model(
        [sp.Eq(x.diff(sm.t), y), sp.Eq(y.diff(sm.t), -x + sp.cos(sm.t))], defaults={x: 0.0, y: 0.0}
    )
    res = sm.pinn(forced, t_span=(0, 3), verbose=False)
    ts = np.linspace(0, 3, 301)
    traj = res.predict(ts)
    exact_x, exact_y = ts * np.sin(ts) / 2, (np.sin(ts) + ts * np.cos(ts)) / 2
    assert np.max(np.abs(np.asarray(traj[x]) - exact_x)) <= 0.01 * np.max(np.abs(exact_x))
    assert np.max(np.abs(np.asarray(traj[y]) - exact_y)) <= 0.01 * np.max(np.abs(exact_y))
    assert np.max(np.abs(res.residual(ts))) < 0.05  # x' - y and y' + x - cos t, in model units


@pytest.mark.slow
@pytest.mark.filterwarnings("error::symml.TrainingWarning")  # a converged run does not warn
def test_forward_pendulum_against_simulate():
    res = sm.pinn(sm.zoo.pendulum(theta0=1.0), t_span=(0, 3), verbose=False)
    assert res.compare()["theta"] <= 0.01


def test_a_network_that_does_not_solve_the_equation_is_reported():
    # 100 steps of a one-layer network over three periods in one window: the residual stays far from zero
    with pytest.warns(sm.TrainingWarning, match=r"does not solve the equation on t_span=\(0.0, 6.0\)"):
        res = sm.pinn(sm.zoo.pendulum(theta0=1.0), t_span=(0, 6), windows=1, **TINY)
    assert float(np.asarray(res.history["terms"])[-1, 0]) > 0.1


@pytest.mark.filterwarnings("ignore::symml.TrainingWarning")  # 100 steps do not converge
def test_fixed_windows_march_from_the_previous_window():
    pend = sm.zoo.pendulum(small_angle=True, theta0=0.1)
    res = sm.pinn(pend, t_span=(0, 1.5), windows=3, **TINY)
    assert res.windows == pytest.approx((0.0, 0.5, 1.0, 1.5)) and len(res.nets) == 3
    assert res.history["window"].tolist() == [0] * 100 + [1] * 100 + [2] * 100
    # each window's network is trained from the state the previous one reaches at the edge, and
    # predict answers every time from the network of its window
    for k in (1, 2):
        edge = res.windows[k]
        before = res._pieces[k - 1]
        after = res._pieces[k]
        assert float(after[0].t_span[0]) == edge
        start = np.asarray(after[0].ic_value)
        prev = np.asarray(res.predict(np.array([edge - 1e-12])).y[0])
        np.testing.assert_allclose(start, prev, rtol=1e-9, atol=1e-12)
        assert before[1] is not after[1]
    assert res.predict(np.linspace(0, 1.5, 7)).y.shape == (7, 2)
    assert "3 time windows" in res.report()


def test_window_errors():
    pend = sm.zoo.pendulum()
    with pytest.raises(ValueError, match="windows must be an int >= 1 or 'auto', got 'many'"):
        sm.pinn(pend, t_span=(0, 1), windows="many", **TINY)
    with pytest.raises(ValueError, match="windows must be an int >= 1, got 0"):
        sm.pinn(pend, t_span=(0, 1), windows=0, **TINY)
    data = sm.Dataset.from_model(pend, ts=np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="windows=2 marches a forward problem window by window, but data"):
        sm.pinn(pend, data, windows=2, **TINY)


@pytest.mark.slow
@pytest.mark.filterwarnings("error::symml.TrainingWarning")
def test_long_span_marches_in_windows_of_half_a_period():
    # one window: 414 % of the amplitude; marching with the defaults: 0.02 % (measured)
    res = sm.pinn(sm.zoo.pendulum(theta0=1.0), t_span=(0, 6), verbose=False)
    assert len(res.nets) >= 4
    assert max(res.compare().values()) <= 0.01


@pytest.mark.slow
def test_inverse_pendulum_recovers_g(tmp_path):
    pend = sm.zoo.pendulum()
    g = pend.lookup("g")
    data = sm.Dataset.from_model(pend, ts=np.linspace(0, 3, 25), noise=0.01, seed=0)
    ck = sm.Checkpoint(tmp_path / "pinn.json", every=500)
    res = sm.pinn(pend.with_defaults({g: 8.0}), data, params=[g], checkpoint=ck, verbose=False)
    assert abs(res.params[g] / 9.81 - 1) < 5e-3
    assert res.model.defaults[g] == res.params[g] and res.estimated == (g,)
    assert (tmp_path / "pinn.json").exists()
    # resuming a finished run trains nothing more and gives the same answer
    again = sm.pinn(
        pend.with_defaults({g: 8.0}),
        data,
        params=[g],
        checkpoint=sm.Checkpoint(ck.path, resume=True),
        verbose=False,
    )
    assert again.params[g] == pytest.approx(res.params[g], rel=1e-12)
