"""solver_fn and solve_for: the solve as a pure JAX function (jit, grad, vmap, events) and
quantity(unknowns) = target, checked against the Lambert-W closed form of the projectile range."""

import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import sympy as sp

import symml as sm

inv = importlib.import_module("symml._fit._inverse")
M, K, G = 7.26, 0.45, 9.81
TH = math.pi / 3
D_REF = 17.8800198525094  # docs/problems.md §1: v = 15 m/s, 60 degrees, k = 0.45


def range_closed_form(v, th, k=K):
    vx, vy = v * math.cos(th), v * math.sin(th)
    z = -((G * M + k * vy) / (G * M)) * math.exp(-1 - k * vy / (G * M))
    w = scipy.special.lambertw(z, 0).real
    return M * vx * (G * M * w + G * M + k * vy) / (k * (G * M + k * vy))


@pytest.fixture(scope="module")
def proj():
    return sm.zoo.projectile()


@pytest.fixture(scope="module")
def shoot(proj):
    x, y, vx, vy = proj.states
    return sm.solver_fn(proj, t_span=(0, 10), event=sm.Event(y, direction="down"), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def distance(proj, shoot):
    x, y, vx, vy = proj.states

    def d(v, th):
        traj = shoot(ics={vx: v * jnp.cos(th), vy: v * jnp.sin(th)})
        return shoot.event_value(traj, x)

    return d


@pytest.fixture(scope="module")
def closed_form_range():
    """The Lambert-W range as a SymPy expression of (v, theta) (evaluated in JAX by codegen)."""
    v, th = sp.symbols("v theta", positive=True)
    vx, vy = v * sp.cos(th), v * sp.sin(th)
    m, g, k = sp.Float(M), sp.Float(G), sp.Float(K)
    z = -((g * m + k * vy) / (g * m)) * sp.exp(-1 - k * vy / (g * m))
    return m * vx * (g * m * sp.LambertW(z) + g * m + k * vy) / (k * (g * m + k * vy)), v, th


def stokes(ts, k=K, vx0=7.5, vy0=15 * math.sin(TH)):
    e = 1 - np.exp(-k * ts / M)
    return np.stack(
        [
            (M * vx0 / k) * e,
            (M / k) * (vy0 + M * G / k) * e - (M * G / k) * ts,
            vx0 * (1 - e),
            (vy0 + M * G / k) * (1 - e) - M * G / k,
        ],
        -1,
    )


@pytest.mark.slow
def test_solver_fn_is_a_pure_function_of_params_and_ics(proj):
    x, y, vx, vy = proj.states
    ts = np.linspace(0, 2, 41)
    f = sm.solver_fn(proj, saveat=ts, rtol=1e-10, atol=1e-12)
    # arrays in model order (g, k, m) and (x, y, x', y'), under jit
    traj = jax.jit(lambda p, y0: f(p, y0))(jnp.array([9.81, 0.2, 7.26]), jnp.array([0, 0, 7.5, 13.0]))
    assert isinstance(traj, sm.Trajectory) and traj.y.shape == (41, 4)
    np.testing.assert_allclose(traj.y, stokes(ts, k=0.2, vy0=13.0), rtol=1e-8, atol=1e-9)
    # dicts by symbol or name; the model's defaults fill the rest
    traj2 = f(params={"k": 0.2}, ics={vy: 13.0})
    np.testing.assert_allclose(traj2.y, traj.y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f().y, stokes(ts), rtol=1e-8, atol=1e-9)
    # an ensemble from array values (vmapped solves)
    ens = f(params={"k": jnp.array([0.2, 0.45, 1.8])})
    assert ens.batch_shape == (3,) and ens.y.shape == (3, 41, 4)
    for i, k in enumerate((0.2, 0.45, 1.8)):
        np.testing.assert_allclose(ens.y[i], stokes(ts, k=k), rtol=1e-8, atol=1e-9)


@pytest.mark.slow
def test_range_through_the_event_and_its_gradient(proj, shoot):
    x, y, vx, vy = proj.states

    def measure(v, th):
        traj = shoot(ics={vx: v * jnp.cos(th), vy: v * jnp.sin(th)})
        speed = shoot.event_value(traj, sp.sqrt(vx**2 + vy**2))  # an expression at the event
        return shoot.event_value(traj, x), (traj.event_time, speed)

    value_and_grad = jax.jit(jax.value_and_grad(measure, argnums=(0, 1), has_aux=True))
    (d, (t_hit, speed)), (gv, gth) = value_and_grad(15.0, TH)
    assert abs(float(d) - D_REF) / D_REF < 1e-9
    # gradient through the terminal event against central differences of the closed form ...
    h = 1e-5
    fd_v = (range_closed_form(15 + h, TH) - range_closed_form(15 - h, TH)) / (2 * h)
    fd_th = (range_closed_form(15, TH + h) - range_closed_form(15, TH - h)) / (2 * h)
    np.testing.assert_allclose([float(gv), float(gth)], [fd_v, fd_th], rtol=1e-6)
    # ... and of the simulation itself
    fd_sim = (float(value_and_grad(15 + 1e-4, TH)[0][0]) - float(value_and_grad(15 - 1e-4, TH)[0][0])) / 2e-4
    assert abs(float(gv) - fd_sim) / abs(fd_sim) < 1e-5
    # the flight time and the impact speed against the closed form
    t_hit = float(t_hit)
    vx_hit = 7.5 * math.exp(-K * t_hit / M)
    vy_hit = (15 * math.sin(TH) + M * G / K) * math.exp(-K * t_hit / M) - M * G / K
    assert abs(float(speed) - math.hypot(vx_hit, vy_hit)) < 1e-8
    y_hit = (M / K) * (15 * math.sin(TH) + M * G / K) * (1 - math.exp(-K * t_hit / M)) - M * G / K * t_hit
    assert abs(y_hit) < 1e-9


def test_solver_fn_errors(proj, shoot):
    x, y, vx, vy = proj.states
    f = sm.solver_fn(proj, t_span=(0, 1), saveat=5)
    with pytest.raises(
        ValueError, match=r"params as an array needs 3 values in model order \(g, k, m\); got shape \(2,\)"
    ):
        f(jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"params got a value for x\(t\); pass it in ics= instead"):
        f(params={x: 1.0})
    no_event = sm.Trajectory(t=jnp.zeros(2), y=jnp.zeros((2, 4)), p=jnp.zeros(3), model=proj)
    with pytest.raises(ValueError, match="This solve has no event"):
        f.event_value(no_event, x)
    bare = sm.Model(proj.equations)
    g = sm.solver_fn(bare, t_span=(0, 1), saveat=3)
    with pytest.raises(sm.MissingValueError, match="No value for g, k, m: pass params="):
        g(ics=jnp.zeros(4))
    with pytest.raises(TypeError, match="event must be sm.Event"):
        sm.solver_fn(proj, t_span=(0, 1), event=y)
    with pytest.raises(sm.MissingValueError, match="Solver euler takes fixed steps: pass dt0"):
        sm.solver_fn(proj, t_span=(0, 1), solver="euler")
    with pytest.raises(
        ValueError, match=r"Ensemble values must be 1-D \(one per member\); got batch shape \(2, 2\)"
    ):
        f(params={"k": jnp.ones((2, 2))})


# ----------------------------------------------------------------------------- solve_for


@pytest.mark.slow
def test_solve_for_one_unknown_matches_the_closed_form(distance):
    sol = sm.solve_for(distance, ["v", "theta"], 20.0, [15.0, TH], fixed=["theta"])
    v_ref = scipy.optimize.brentq(lambda v: range_closed_form(v, TH) - 20.0, 10, 30)
    assert sol.converged and abs(sol["v"] - v_ref) < 1e-7 and sol["theta"] == TH
    assert np.max(np.abs(sol.residual)) < 1e-7
    assert "converged" in repr(sol)


def test_minimum_norm_correction_for_two_unknowns_and_one_target(closed_form_range):
    """Many (v, theta) reach 150 m; the answer must be the one closest to the guess (in units of
    the guess): there the scaled correction is parallel to the scaled gradient (KKT)."""
    D, v_, th_ = closed_form_range
    v0, th0 = 60.0, 0.5
    sol = sm.solve_for(D, [v_, th_], 150.0, [v0, th0])
    v, th = sol[v_], sol[th_]
    assert sol.converged and abs(range_closed_form(v, th) - 150.0) < 1e-6
    xi = np.array([(v - v0) / v0, (th - th0) / th0])
    h = 1e-6
    grad = np.array(
        [
            (range_closed_form(v + h, th) - range_closed_form(v - h, th)) / (2 * h) * v0,
            (range_closed_form(v, th + h) - range_closed_form(v, th - h)) / (2 * h) * th0,
        ]
    )
    cross = (xi[0] * grad[1] - xi[1] * grad[0]) / (np.linalg.norm(xi) * np.linalg.norm(grad))
    assert abs(cross) < 1e-6
    # smaller than changing the speed alone
    only_v = sm.solve_for(D, [v_, th_], 150.0, [v0, th0], fixed=[th_])
    assert only_v.converged and np.linalg.norm(xi) < abs(only_v[v_] - v0) / v0
    # without the polish: a solution, but not the closest one
    first = sm.solve_for(D, [v_, th_], 150.0, [v0, th0], minimum_norm=False)
    assert first.converged and abs(range_closed_form(first[v_], first[th_]) - 150.0) < 1e-6


def test_solve_for_with_bounds(closed_form_range):
    D, v, th = closed_form_range
    sol = sm.solve_for(D, [v, th], 150.0, {v: 60.0, th: 0.5}, bounds={th: (0.05, 1.5)})
    assert sol.converged and abs(range_closed_form(sol[v], sol[th]) - 150.0) < 1e-6
    assert 0.05 < sol[th] < 1.5
    # a target out of reach at the bounds is reported, not hidden
    with pytest.warns(inv.ConvergenceWarning, match="did not reach tol"):
        far = sm.solve_for(D, [v, th], 150.0, {v: 20.0, th: 0.5}, fixed=[th], bounds={v: (1.0, 30.0)})
    assert not far.converged and far[v] <= 30.0


@pytest.mark.slow
def test_solve_for_errors(distance):
    v, th = sp.symbols("v theta")
    with pytest.raises(inv.InverseError, match="initial_guess has 1 values for 2 unknowns"):
        sm.solve_for(distance, ["v", "theta"], 20.0, [15.0])
    with pytest.raises(inv.InverseError, match="initial_guess has no value for theta"):
        sm.solve_for(distance, ["v", "theta"], 20.0, {"v": 15.0})
    with pytest.raises(inv.InverseError, match="fixed names 'phi', which is not among the unknowns"):
        sm.solve_for(distance, ["v", "theta"], 20.0, [15.0, TH], fixed=["phi"])
    with pytest.raises(inv.InverseError, match="Every unknown is fixed"):
        sm.solve_for(distance, ["v", "theta"], 20.0, [15.0, TH], fixed=["v", "theta"])
    with pytest.raises(inv.InverseError, match=r"quantity returns shape \(\) but target has shape \(2,\)"):
        sm.solve_for(distance, ["v", "theta"], [20.0, 1.0], [15.0, TH])
    with pytest.raises(inv.InverseError, match="The quantity also depends on k: substitute their values"):
        sm.solve_for(v * th * sp.Symbol("k"), [v, th], 1.0, [1.0, 1.0])
    with pytest.raises(
        inv.InverseError, match=r"starting value of v is 0, not strictly inside its bounds \(1, 30\)"
    ):
        sm.solve_for(v * th, [v, th], 1.0, [0.0, 1.0], bounds={v: (1.0, 30.0)})
    with pytest.raises(inv.InverseError, match="unknowns must be distinct"):
        sm.solve_for(v * th, [v, v], 1.0, [1.0, 1.0])
    with pytest.raises(
        inv.InverseError, match=r"bounds names 'phi', which is not among the unknowns \(v, theta\)"
    ):
        sm.solve_for(v * th, [v, th], 1.0, [1.0, 1.0], bounds={"phi": (0, 1)})
    with pytest.raises(inv.InverseError, match=r"bounds\[v\] must be a pair \(lo, hi\)"):
        sm.solve_for(v * th, [v, th], 1.0, [1.0, 1.0], bounds={v: 5.0})
    with pytest.raises(inv.InverseError, match="scale needs 2 positive values"):
        sm.solve_for(v * th, [v, th], 1.0, [1.0, 1.0], scale=[1.0, 0.0])
    with pytest.raises(
        inv.InverseError, match="quantity must be a function of the unknowns or a SymPy expression"
    ):
        sm.solve_for(3.0, [v, th], 1.0, [1.0, 1.0])
    with pytest.raises(inv.InverseError, match="A SymPy quantity needs its unknowns as SymPy symbols"):
        sm.solve_for(v * th, ["v", "theta"], 1.0, [1.0, 1.0])
    sol = sm.solve_for(v * th, [v, th], 2.0, [1.0, 1.0], fixed=[th])
    assert sol[v] == sol["v"] == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(KeyError, match=r"'phi' is not an unknown of this solve \(unknowns: v, theta\)"):
        sol["phi"]
