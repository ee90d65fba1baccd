"""solver="auto" detects stiffness during the solve and switches to an implicit method."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import symml as sm
from symml._solve._switch import STIFF_HRHO


@pytest.fixture(scope="module")
def rob():
    return sm.zoo.robertson()


@pytest.mark.slow
def test_auto_switches_on_robertson_and_matches_rodas4(rob):
    kw = dict(t_span=(0.0, 2e4), saveat=5, rtol=1e-6, atol=1e-10)
    traj = sm.simulate(rob, solver="auto", **kw)
    assert traj.solver == "rodas4"
    assert "stability-limited" in traj.solver_reason and "restarted with rodas4" in traj.solver_reason
    ref = sm.simulate(rob, solver="rodas4", **kw)
    assert ref.solver == "rodas4" and "asked for" in ref.solver_reason
    np.testing.assert_allclose(traj.y, ref.y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.sum(np.asarray(traj.y), -1), 1.0, atol=1e-8)  # mass is conserved
    # the stiff phase starts early (t ~ 0.03): the explicit attempt costs a few dozen steps
    t_stiff = float(traj.solver_reason.split("t = ")[1].split(" ")[0])
    assert 0.0 < t_stiff < 1.0


@pytest.mark.slow
def test_auto_does_not_switch_on_a_non_stiff_problem():
    lv = sm.zoo.lotka_volterra()
    traj = sm.simulate(lv, t_span=(0.0, 30.0), saveat=7, solver="auto", method="numeric")
    assert traj.solver == "tsit5" and "no stiffness" in traj.solver_reason
    ref = sm.simulate(lv, t_span=(0.0, 30.0), saveat=7, method="numeric")
    np.testing.assert_allclose(traj.y, ref.y, rtol=1e-12)


@pytest.mark.slow
def test_auto_switches_on_an_ensemble_with_one_stiff_member():
    vdp = sm.zoo.van_der_pol()
    mu = vdp.params[0]
    traj = sm.simulate(
        vdp, t_span=(0.0, 50.0), saveat=3, params={mu: jnp.array([1.0, 1000.0])}, solver="auto"
    )
    assert traj.solver == "rodas4"
    one = sm.simulate(vdp, t_span=(0.0, 50.0), saveat=3, params={mu: 1.0}, solver="rodas4")
    np.testing.assert_allclose(traj.y[0], one.y, rtol=1e-10, atol=1e-12)


def test_choose_solver_works_without_parameters(rob):
    # once an IndexError: a model without parameters had nothing to reshape
    assert sm.stiffness_index(rob, [1.0, 0.0, 0.0], [], 0.0, 1.0) < 1.0
    assert sm.choose_solver(rob, [1.0, 0.0, 0.0], np.zeros(0), 0.0, 1.0) == "tsit5"


@pytest.mark.slow
def test_a_failed_auto_solve_does_not_recommend_auto():
    lv = sm.zoo.lotka_volterra()
    with pytest.raises(sm.SolveError, match=r"solver='auto' ran tsit5.*accuracy-limited") as err:
        sm.simulate(lv, t_span=(0.0, 30.0), solver="auto", max_steps=5, method="numeric")
    assert "try solver='auto'" not in str(err.value)
    with pytest.raises(sm.SolveError, match=r"try solver='auto' or 'rodas4'"):
        sm.simulate(lv, t_span=(0.0, 30.0), max_steps=5, method="numeric")


@pytest.mark.slow
def test_a_failed_switched_solve_says_it_switched(rob):
    with pytest.raises(sm.SolveError, match=r"switched to the implicit rodas4 on stiffness"):
        sm.simulate(rob, t_span=(0.0, 2e4), solver="auto", max_steps=60, rtol=1e-6, atol=1e-10)


def test_auto_under_a_jax_transformation_is_refused():
    lv = sm.zoo.lotka_volterra()
    u = lv.states[0]

    def f(u0):
        return sm.simulate(lv, ics={u: u0}, t_span=(0.0, 1.0), saveat=2, solver="auto", method="numeric").y[
            -1, 0
        ]

    with pytest.raises(ValueError, match=r"solver='auto' decides on the host.*solver='rodas4'"):
        jax.grad(f)(1.0)


def test_the_detector_threshold_sits_inside_the_stability_interval():
    # Tsit5's stability function on the negative real axis: |R(z)| <= 1 down to about -3.5
    import diffrax

    tab = diffrax.Tsit5.tableau
    n = len(tab.b_sol)
    a = np.zeros((n, n))
    for i, row in enumerate(tab.a_lower):
        a[i + 1, : len(row)] = row

    def r(z):
        return abs(1 + z * tab.b_sol @ np.linalg.solve(np.eye(n) - z * a, np.ones(n)))

    assert r(-STIFF_HRHO) <= 1.0 and r(-3.6) > 1.0
