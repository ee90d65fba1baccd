"""simulate(method="auto" | "analytic" | "numeric"): the choice, the cache, and agreement of the
closed-form and numeric trajectories (events, ensembles, gradients included)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml import t
from symml._analytic import _closed_form
from symml._analytic._worker import WORKER


@pytest.fixture(scope="module")
def proj():
    return sm.zoo.projectile("stokes")


def test_auto_picks_analytic_for_the_projectile_and_numeric_for_the_pendulum(proj, monkeypatch):
    traj = sm.simulate(proj, t_span=(0, 2), saveat=11)
    assert traj.method == "analytic" and traj.num_steps is None

    # The pendulum is rejected by the structural pre-check: no SymPy work at all.
    def no_sympy(*args, **kwargs):
        raise AssertionError("auto spent time on SymPy for a nonlinear model")

    monkeypatch.setattr(WORKER, "call", no_sympy)
    pend = sm.zoo.pendulum()
    assert sm.simulate(pend, t_span=(0, 2), saveat=11).method == "numeric"
    # and the projectile's closed form is cached: a second call needs no SymPy either
    assert sm.simulate(proj, t_span=(0, 1), saveat=3).method == "analytic"


@pytest.mark.slow
def test_closed_form_and_numeric_trajectories_agree_with_an_event(proj):
    x, y, vx, vy = proj.states
    ev = sm.Event(y, direction="down")
    kw = dict(t_span=(0, 4), saveat=41, event=ev, params={"k": jnp.array([0.1, 0.45, 1.8])})
    a = sm.simulate(proj, **kw)
    n = sm.simulate(proj, method="numeric", rtol=1e-11, atol=1e-12, **kw)
    assert a.method == "analytic" and n.method == "numeric"
    np.testing.assert_allclose(a.y, n.y, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(a.event_time, n.event_time, rtol=1e-10)
    np.testing.assert_allclose(a.event_state, n.event_state, rtol=1e-9, atol=1e-9)
    assert float(a.event_state[1, 0]) == pytest.approx(17.8800198525094, rel=1e-13)


@pytest.mark.slow
def test_event_time_gradient_through_the_closed_form(proj):
    x, y, vx, vy = proj.states
    ev = sm.Event(y, direction="down")

    def rng(kv, vx0):
        return sm.simulate(
            proj, ics={vx: vx0}, t_span=(0, 5), saveat=2, params={"k": kv}, event=ev
        ).event_state[0]

    grad = jax.grad(rng, argnums=(0, 1))(0.45, 7.5)
    h = 1e-5
    fd = [
        (rng(0.45 + h, 7.5) - rng(0.45 - h, 7.5)) / (2 * h),
        (rng(0.45, 7.5 + h) - rng(0.45, 7.5 - h)) / (2 * h),
    ]
    np.testing.assert_allclose([float(g) for g in grad], [float(f) for f in fd], rtol=1e-7)


@pytest.mark.slow
def test_driven_oscillator_with_a_late_start_and_ensembles_of_initial_values():
    osc = sm.zoo.harmonic_oscillator(damping=True, drive=True)
    x, v = osc.states
    ics = {x: jnp.array([1.0, -0.5]), v: 0.3}
    kw = dict(ics=ics, t_span=(2.0, 9.0), saveat=36)
    a = sm.simulate(osc, method="analytic", **kw)
    n = sm.simulate(osc, method="numeric", rtol=1e-11, atol=1e-12, **kw)
    assert a.method == "analytic" and a.y.shape == (2, 36, 2)
    np.testing.assert_allclose(a.y, n.y, atol=1e-9)
    # a driven model's closed form is built per initial time: a traced t0 has none ("auto"
    # then integrates numerically)
    f = jax.jit(lambda t0: sm.simulate(osc, saveat=jnp.linspace(t0, t0 + 1.0, 3), method="analytic").y)
    with pytest.raises(sm.NoClosedForm, match="t0 is a traced value"):
        f(2.0)


def test_method_analytic_requires_a_closed_form(monkeypatch):
    monkeypatch.setattr(_closed_form, "ANALYTIC_TIMEOUT", 2.0)
    with pytest.raises(sm.NoClosedForm, match="pendulum"):
        sm.simulate(sm.zoo.pendulum(), t_span=(0, 1), method="analytic")
    with pytest.raises(ValueError, match="method must be 'auto', 'analytic' or 'numeric', got 'exact'"):
        sm.simulate(sm.zoo.pendulum(), t_span=(0, 1), method="exact")


def test_numeric_options_make_auto_numeric(proj):
    # an explicit numeric option (here fixed steps) means the user wants the solver
    fixed = sm.simulate(proj, t_span=(0, 1), saveat=3, solver="heun", adaptive=False, dt0=0.01)
    assert fixed.method == "numeric" and int(fixed.num_steps) == 100


def test_user_errors_are_the_same_on_both_paths(proj):
    x, y, vx, vy = proj.states
    with pytest.raises(sm.UnknownNameError, match="'kk' is not a state or parameter"):
        sm.simulate(proj, t_span=(0, 1), params={"kk": 1.0})
    with pytest.raises(ValueError, match="Ensemble sizes differ"):
        sm.simulate(proj, ics={vy: jnp.ones(3)}, params={"k": jnp.ones(2)}, t_span=(0, 1))
    with pytest.raises(TypeError, match="event must be sm.Event"):
        sm.simulate(proj, t_span=(0, 1), event=y)
    with pytest.raises(sm.MissingValueError, match="No time span"):
        sm.simulate(proj, saveat=10)


def test_coupled_linear_system_auto_and_general_models():
    u, w = sm.states("u w")
    a, b = sm.parameters("a b", positive=True)
    rot = sm.Model(
        [sp.Eq(u.diff(t), -a * u + b * w), sp.Eq(w.diff(t), -b * u - a * w)],
        defaults={a: 0.2, b: 3.0, u: 1.0, w: 0.0},
        name="rotation",
    )
    ts = np.linspace(0, 3, 31)
    tr = sm.simulate(rot, saveat=ts)
    assert tr.method == "analytic"
    np.testing.assert_allclose(tr[u], np.exp(-0.2 * ts) * np.cos(3 * ts), atol=1e-13)
    np.testing.assert_allclose(tr[w], -np.exp(-0.2 * ts) * np.sin(3 * ts), atol=1e-13)
    # the same model from a later start: the autonomous flow is shifted, not rebuilt
    late = sm.simulate(rot, ics={u: 1.0, w: 0.0}, saveat=ts + 5.0)
    np.testing.assert_allclose(late.y, tr.y, atol=1e-13)
    assert math.isclose(float(late.t[0]), 5.0)


@pytest.mark.slow
def test_auto_skipping_a_nonlinear_model_does_not_block_a_required_closed_form():
    import sympy as sp

    (x,) = sm.states("x")
    r, K = sm.parameters("r K", positive=True)
    logistic = sm.Model([sp.Eq(x.diff(sm.t), r * x * (1 - x / K))], defaults={r: 1.0, K: 2.0, x: 0.1})
    auto = sm.simulate(logistic, t_span=(0, 5), saveat=11)
    assert auto.method == "numeric"  # auto tries closed forms for linear models only
    exact = sm.simulate(logistic, t_span=(0, 5), saveat=11, method="analytic")
    assert exact.method == "analytic"
    ts = np.linspace(0, 5, 11)
    formula = 2.0 / (1 + 19 * np.exp(-ts))  # K / (1 + (K/x0 - 1) e^{-r t})
    np.testing.assert_allclose(np.asarray(exact[x]), formula, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(auto[x]), formula, rtol=1e-6)


def test_auto_does_not_try_a_closed_form_for_a_large_linear_model(monkeypatch):
    # 33 decoupled decays: linear, but above AUTO_MAX_STATES, so auto goes straight to the solver
    from symml._analytic import _flow
    from symml._analytic._closed_form import flow_record

    n = _flow.AUTO_MAX_STATES + 1
    x = sm.states("x", n=n)
    (k,) = sm.parameters("k")
    rates = [1 + i / n for i in range(n)]
    model = sm.Model(
        [sp.Eq(xi.diff(t), -k * r * xi) for xi, r in zip(x, rates)],
        defaults={k: 1.0, **dict.fromkeys(x, 1.0)},
        name="decays",
    )

    def no_sympy(*args, **kwargs):
        raise AssertionError("symbolic work on a large model")

    monkeypatch.setattr(WORKER, "call", no_sympy)
    monkeypatch.setattr(_flow, "structure", no_sympy)  # not even the structural check
    traj = sm.simulate(model, t_span=(0, 1), saveat=3)
    assert traj.method == "numeric"
    np.testing.assert_allclose(np.asarray(traj.y[-1]), np.exp(-np.asarray(rates)), rtol=1e-6)
    assert "has 33 states (auto tries closed forms up to 32" in flow_record(model).failure[0]
    # method="analytic" still tries (here it reaches the patched worker)
    with pytest.raises(AssertionError, match="symbolic work on a large model"):
        sm.simulate(model, t_span=(0, 1), saveat=3, method="analytic")
