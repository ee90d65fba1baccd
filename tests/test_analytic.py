"""solve_analytic: closed forms equal to the known ones, verified, within budget; JAX evaluation."""

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import sympy as sp
from conftest import process_alive

import symml as sm
from symml import t
from symml._analytic._worker import WORKER


@pytest.fixture(scope="module")
def proj():
    model = sm.zoo.projectile("stokes")
    x, y, vx, vy = model.states
    g, k, m = model.params
    u, w = sm.parameters("v_x v_y", positive=True)
    sol = sm.solve_analytic(model, ics={x: 0, y: 0, vx: u, vy: w})
    return model, sol, (x, y, vx, vy, g, k, m, u, w)


def test_projectile_closed_forms_are_those_of_problems_md(proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj
    e = sp.exp(-k * t / m)
    assert sp.simplify(sol[x] - (m * u / k) * (1 - e)) == 0
    assert sp.simplify(sol[y] - ((m / k) * (w + m * g / k) * (1 - e) - (m * g / k) * t)) == 0
    assert sp.simplify(sol[vx] - u * e) == 0 and sp.simplify(sol["y_t"] - sol[y].diff(t)) == 0
    assert sol.verified == "symbolic" and "decoupled" in sol.method
    assert sol.constants == () and sol.ics[vx] == u
    assert set(sol.symbols) == {g, k, m, u, w} and sol.parameters == sol.symbols
    assert "x(t) = " in repr(sol) and "\\begin{aligned}" in sol.latex()


def test_projectile_path_y_of_x_is_that_of_problems_md(proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj
    path = sol.eliminate_t(x, y)
    expected = ((w + m * g / k) / u) * x + (m**2 * g / k**2) * sp.log(1 - k * x / (m * u))
    assert sp.simplify(path - expected) == 0
    # the path, evaluated along a trajectory (x stands for its value), is y itself
    traj = sol.trajectory(np.linspace(0.1, 2.0, 7), params={u: 7.5, w: 13.0})
    np.testing.assert_allclose(traj[path.subs({u: 7.5, w: 13.0})], traj[y], rtol=1e-11)


def test_general_solution_has_constants_and_with_ics_fixes_them(proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj
    gen = sm.solve_analytic(model)
    assert len(gen.constants) == 4 and gen.ics is None
    assert all(c in gen[x].free_symbols | gen[y].free_symbols for c in gen.constants)
    again = gen.with_ics({x: 0, y: 0, vx: u, vy: w})
    assert all(sp.simplify(again[s] - sol[s]) == 0 for s in model.states)
    # evaluating a general solution needs values for its constants
    with pytest.raises(sm.MissingValueError, match="No value for C1, C2, C3, C4"):
        gen.trajectory([0.0, 1.0])
    vals = {c: 1.0 for c in gen.constants}
    assert gen.trajectory([0.0, 1.0], params=vals).y.shape == (2, 4)


def test_small_angle_pendulum_is_theta0_cos():
    pend = sm.zoo.pendulum(small_angle=True)
    theta, omega = pend.states
    g, l = pend.params
    (th0,) = sm.parameters("theta_0", real=True)
    sol = sm.solve_analytic(pend, ics={theta: th0, omega: 0})
    assert sp.simplify(sol[theta] - th0 * sp.cos(sp.sqrt(g / l) * t)) == 0
    assert sp.simplify(sol[omega] + th0 * sp.sqrt(g / l) * sp.sin(sp.sqrt(g / l) * t)) == 0


def test_damped_oscillator_matches_the_textbook_formula():
    osc = sm.zoo.harmonic_oscillator(damping=True)  # m x'' + c x' + k x = 0; m=1, k=4, c=0.4
    x, v = osc.states
    sol = sm.solve_analytic(osc, ics={x: 1, v: 0})
    # symbolic in m, c, k: sqrt(c^2 - 4 k m) is imaginary here; evaluated in complex arithmetic
    assert sol[x].has(sp.sqrt(osc.params[0] ** 2 - 4 * osc.params[1] * osc.params[2]))
    ts = np.linspace(0, 8, 81)
    zw, wd = 0.2, math.sqrt(4 - 0.04)
    exact = np.exp(-zw * ts) * (np.cos(wd * ts) + zw / wd * np.sin(wd * ts))
    traj = sol.trajectory(ts)
    np.testing.assert_allclose(traj[x], exact, atol=1e-13)
    # overdamped values through the same formula (real exponentials)
    over = sol.trajectory(ts, params={"c": 5.0})
    r1, r2 = (-5 + 3) / 2, (-5 - 3) / 2
    np.testing.assert_allclose(over[x], (r2 * np.exp(r1 * ts) - r1 * np.exp(r2 * ts)) / (r2 - r1), atol=1e-13)


@pytest.mark.slow
def test_driven_oscillator_reaches_the_steady_state_amplitude():
    osc = sm.zoo.harmonic_oscillator(damping=True, drive=True)  # F cos(Omega t), F=1, Omega=1.5
    x, v = osc.states
    sol = sm.solve_analytic(osc, ics={x: 1, v: 0})
    c, k, m, F, W = (sol._resolve(n) for n in ("c", "k", "m", "F", "Omega"))
    # the initial values hold (agreement with the numeric solver: test_analytic_simulate.py)
    np.testing.assert_allclose(sol.trajectory(jnp.array([0.0])).y[0], [1.0, 0.0], atol=1e-14)
    # after the transient (e^{-0.2 t}) the amplitude is F / sqrt((k - m W^2)^2 + (c W)^2)
    late = np.linspace(120, 120 + 2 * math.pi / 1.5, 2001)
    amp = float(jnp.max(jnp.abs(sol.trajectory(late)[x])))
    assert amp == pytest.approx(1.0 / math.sqrt((4 - 2.25) ** 2 + (0.4 * 1.5) ** 2), rel=1e-6)
    assert {F, W} <= set(sol.symbols)


def _linear_truth(A, y0, ts):
    return np.stack([scipy.linalg.expm(A * tt) @ y0 for tt in ts])


@pytest.mark.slow
def test_coupled_linear_two_state_system_equals_the_matrix_exponential():
    u, w = sm.states("u w")
    a, b, c, d = sm.parameters("a b c d", positive=True)
    lin = sm.Model(
        [sp.Eq(u.diff(t), -a * u + b * w), sp.Eq(w.diff(t), c * u - d * w)],
        defaults={a: 1.0, b: 0.5, c: 0.3, d: 2.0},
        name="coupled",
    )
    gen = sm.solve_analytic(lin)
    assert len(gen.constants) == 2
    sol = gen.with_ics({u: 1, w: -0.5})
    ts = np.linspace(0, 4, 41)
    truth = _linear_truth(np.array([[-1.0, 0.5], [0.3, -2.0]]), np.array([1.0, -0.5]), ts)
    np.testing.assert_allclose(sol.trajectory(ts).y, truth, atol=1e-13)
    # other parameter values through the same closed form (complex eigenvalues: b c < 0 region
    # is excluded by positivity, so use a large coupling instead)
    other = sol.trajectory(ts, params={a: 0.2, b: 3.0, c: 2.0, d: 0.1})
    truth = _linear_truth(np.array([[-0.2, 3.0], [2.0, -0.1]]), np.array([1.0, -0.5]), ts)
    np.testing.assert_allclose(other.y, truth, rtol=1e-11, atol=1e-11)


@pytest.mark.slow
def test_system_where_dsolve_fails_is_solved_by_elimination():
    # A damped rotation driven by sin(omega t): SymPy's dsolve on the system takes ~20 s; the
    # elimination route (one scalar second-order ODE, undetermined coefficients) under a second.
    u, w = sm.states("u w")
    a, b, om = sm.parameters("a b omega", positive=True)
    forced = sm.Model(
        [sp.Eq(u.diff(t), -a * u + b * w + sp.sin(om * t)), sp.Eq(w.diff(t), -b * u - a * w)],
        defaults={a: 0.3, b: 2.0, om: 1.3},
        name="forced_rotation",
    )
    sol = sm.solve_analytic(forced, ics={u: 1, w: 0}, timeout=10)
    assert sol.method.startswith("elimination") and "dsolve: timed out" in sol.method
    ts = np.linspace(0, 6, 31)

    def rhs(tt, z):
        return [-0.3 * z[0] + 2.0 * z[1] + math.sin(1.3 * tt), -2.0 * z[0] - 0.3 * z[1]]

    ref = scipy.integrate.solve_ivp(
        rhs, (0, 6), [1.0, 0.0], t_eval=ts, method="DOP853", rtol=1e-13, atol=1e-13
    )
    np.testing.assert_allclose(sol.trajectory(ts).y, ref.y.T, atol=1e-11)


@pytest.mark.slow
def test_single_odes_of_third_order_and_nonlinear():
    (q,) = sm.states("q")
    a, r, K, q0 = sm.parameters("a r K q_0", positive=True)
    # q''' + q'' + a q' + a q = cos t: characteristic roots -1, +-i sqrt(a); forced
    third = sm.Model([sp.Eq(q.diff(t, 3), -q.diff(t, 2) - a * q.diff(t) - a * q + sp.cos(t))], name="third")
    sol = sm.solve_analytic(third, ics={q: 1, q.diff(t): 0, q.diff(t, 2): 0})
    assert "undetermined_coefficients" in sol.method and sol.verified == "symbolic"
    ts = np.linspace(0, 6, 31)

    def rhs(tt, z):
        return [z[1], z[2], -z[2] - 4.0 * z[1] - 4.0 * z[0] + math.cos(tt)]

    ref = scipy.integrate.solve_ivp(
        rhs, (0, 6), [1, 0, 0], t_eval=ts, method="DOP853", rtol=1e-13, atol=1e-13
    )
    np.testing.assert_allclose(sol.trajectory(ts, params={a: 4.0}).y, ref.y.T, atol=1e-11)
    # the logistic equation (nonlinear, first order)
    logistic = sm.Model([sp.Eq(q.diff(t), r * q * (1 - q / K))], name="logistic")
    sol = sm.solve_analytic(logistic, ics={q: q0})
    assert sp.simplify(sol[q] - K * q0 * sp.exp(r * t) / (K + q0 * (sp.exp(r * t) - 1))) == 0


def test_matrix_exponential_route_with_forcing():
    # The last route for a coupled linear block (used when dsolve and elimination both fail):
    # Y(t) = exp(A t) C + integral of exp(A (t - s)) f(s); checked by substitution.
    from symml._analytic._routes import Constants, residual_pairs, route_expm

    u, w = sm.states("u w")
    odes = [(u, 1, -u + 2 * w + 1), (w, 1, -2 * u - w)]
    sol = route_expm(odes, t, Constants(set()))
    assert all(sp.simplify(lhs - rhs) == 0 for lhs, rhs in residual_pairs(odes, sol, t))
    assert {c.name for e in sol.values() for c in e.free_symbols} == {"C1", "C2", "t"}
    transient = {sp.Symbol("C1"): 0, sp.Symbol("C2"): 0}
    steady = {s: sp.limit(e.subs(transient), t, sp.oo) for s, e in sol.items()}
    assert steady == {u: sp.Rational(1, 5), w: -sp.Rational(2, 5)}  # A y + f = 0


@pytest.mark.slow
def test_three_state_system_with_a_cubic_characteristic_polynomial():
    # x'' = -a x + b y, y' = -c y + x: dsolve on the system does not finish in minutes; the
    # elimination route solves a third-order scalar ODE (Cardano roots, ~7000 operations).
    x, y = sm.states("x y")
    a, b, c = sm.parameters("a b c", positive=True)
    mixed = sm.Model([sp.Eq(x.diff(t, 2), -a * x + b * y), sp.Eq(y.diff(t), -c * y + x)], name="mixed")
    sol = sm.solve_analytic(mixed, ics={x: 1, x.diff(t): 0, y: sp.Rational(3, 10)}, timeout=30)
    assert sol.method.startswith("elimination")
    A = np.array([[0, 1, 0], [-2.0, 0, 0.5], [1.0, 0, -0.7]])  # states (x, x', y)
    ts = np.linspace(0, 5, 26)
    truth = _linear_truth(A, np.array([1.0, 0.0, 0.3]), ts)
    got = sol.trajectory(ts, params={a: 2.0, b: 0.5, c: 0.7})
    np.testing.assert_allclose(got[x], truth[:, 0], atol=1e-11)
    np.testing.assert_allclose(got[y], truth[:, 2], atol=1e-11)


@pytest.mark.slow
def test_nonlinear_pendulum_has_no_closed_form_within_budget_and_leaves_nothing_running():
    pend = sm.zoo.pendulum()
    WORKER.call("ping", (), 30)  # a warm worker, so that only the budget is timed
    old = WORKER.pid
    start = time.monotonic()
    with pytest.raises(sm.NoClosedForm, match=r"pendulum.*timed out \(ran out of its 2.5 s budget") as info:
        sm.solve_analytic(pend, timeout=2.5)
    assert time.monotonic() - start < 2.5 + 2.0
    assert info.value.reason == "timeout"
    assert not process_alive(old)  # killed and reaped: no SymPy work left running
    assert WORKER.pid is not None and WORKER.pid != old  # a fresh worker is warming up
    # the outcome is cached: a second call with the same budget answers at once
    start = time.monotonic()
    with pytest.raises(sm.NoClosedForm, match=r"timed out \(ran out of its 2.5 s budget"):
        sm.solve_analytic(sm.zoo.pendulum(), timeout=2.5)
    assert time.monotonic() - start < 0.5


def test_lotka_volterra_has_no_closed_form():
    start = time.monotonic()
    with pytest.raises(sm.NoClosedForm, match="coupled nonlinear system") as info:
        sm.solve_analytic(sm.zoo.lotka_volterra(), timeout=3)
    assert time.monotonic() - start < 3 + 2.0 and info.value.reason == "no_method"


def test_neural_model_has_no_closed_form():
    u, v = sm.states("u v")
    U = sm.neural("U", inputs=[u, v], outputs=1, width=4, depth=1)
    ude = sm.Model([sp.Eq(u.diff(t), U[0]), sp.Eq(v.diff(t), -v)])
    with pytest.raises(sm.NoClosedForm, match="neural terms"):
        sm.solve_analytic(ude)


def test_results_are_cached_so_a_second_call_costs_nothing(monkeypatch, proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj

    def boom(*args, **kwargs):
        raise AssertionError("the worker was called again")

    monkeypatch.setattr(WORKER, "call", boom)
    again = sm.solve_analytic(sm.zoo.projectile("stokes"), ics={x: 0, y: 0, vx: u, vy: w})
    assert again[y] == sol[y]
    assert sm.solve_analytic(model).constants  # the general solution too


def test_trajectory_is_differentiable_vmappable_and_jittable(proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj

    def height(kv, wv):
        return sol.trajectory(jnp.array([1.2]), params={k: kv, u: 7.5, w: wv})[y][0]

    grad = jax.grad(height, argnums=(0, 1))(0.45, 13.0)
    at = {k: 0.45, w: 13.0, u: 7.5, g: 9.81, m: 7.26, t: 1.2}
    exact = [float(sp.diff(sol[y], s).evalf(30, subs=at)) for s in (k, w)]
    np.testing.assert_allclose([float(grad[0]), float(grad[1])], exact, rtol=1e-10)
    h = 1e-4  # and finite differences (the formula cancels ~1e-13 of its ~2700-size terms)
    fd_k = (height(0.45 + h, 13.0) - height(0.45 - h, 13.0)) / (2 * h)
    assert float(grad[0]) == pytest.approx(float(fd_k), rel=1e-6)
    ens = sol.trajectory(np.linspace(0, 1, 5), params={u: 7.5, w: jnp.array([5.0, 10.0, 15.0])})
    assert ens.batch_shape == (3,) and ens.y.shape == (3, 5, 4) and ens.method == "analytic"
    tops = jax.jit(jax.vmap(height, in_axes=(None, 0)))(0.45, jnp.array([5.0, 10.0]))
    assert tops.shape == (2,) and float(tops[1]) > float(tops[0])


def test_user_errors_are_clear(proj):
    model, sol, (x, y, vx, vy, g, k, m, u, w) = proj
    (q,) = sm.states("q")
    bare = sm.Model([sp.Eq(q.diff(t, 2), -q)], name="bare")  # no default initial values
    with pytest.raises(sm.MissingValueError, match="No initial value for state.*q_t.*ics='symbolic'"):
        sm.solve_analytic(bare, ics={q: 1})
    with pytest.raises(ValueError, match="ics must be a mapping .* got the string 'zero'"):
        sm.solve_analytic(model, ics="zero")
    with pytest.raises(ValueError, match="timeout must be positive"):
        sm.solve_analytic(model, timeout=0)
    with pytest.raises(TypeError, match="needs a symml Model"):
        sm.solve_analytic("projectile")
    with pytest.raises(sm.MissingValueError, match="initial values are for states only"):
        sm.solve_analytic(model, ics={"k": 1.0})
    with pytest.raises(ValueError, match="array of shape .*ics='symbolic'"):
        sm.solve_analytic(model, ics={x: np.zeros(3)})
    with pytest.raises(sm.MissingValueError, match="No value for v_x, v_y"):
        sol.trajectory([0.0, 1.0])
    with pytest.raises(sm.UnknownNameError, match="'vx' is not a symbol of this solution.*v_x"):
        sol.trajectory([0.0], params={"vx": 1.0})
    with pytest.raises(ValueError, match="1-D array of times"):
        sol.trajectory(np.zeros((2, 2)), params={u: 1.0, w: 1.0})
    with pytest.raises(sm.UnknownNameError, match="q is not a symbol of this solution"):
        sol.subs({sp.Symbol("q"): 1.0})
    with pytest.raises(TypeError, match="ics must be a mapping .* got list"):
        sm.solve_analytic(model, ics=[0, 0, 1, 1])
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got 'long'"):
        sm.solve_analytic(model, timeout="long")
    with pytest.raises(AttributeError, match="AnalyticSolution is immutable"):
        sol.method = "guess"
    # the general solution is cached, but fixing new initial values takes some time
    with pytest.raises(sm.NoClosedForm, match=r"initial values: timed out \(no time left in the budget\)"):
        sm.solve_analytic(model, ics={x: 0, y: 0, vx: 1.25, vy: 2.5}, timeout=1e-9)


def test_symbolic_initial_values():
    pend = sm.zoo.pendulum(small_angle=True)
    theta, omega = pend.states
    g, l = pend.params
    sol = sm.solve_analytic(pend, ics="symbolic")
    th0, om0 = (sol._resolve(n) for n in ("theta_0", "theta_t_0"))
    w0 = sp.sqrt(g / l)
    assert sp.simplify(sol[theta] - (th0 * sp.cos(w0 * t) + om0 / w0 * sp.sin(w0 * t))) == 0
    assert sol.subs({th0: 1, om0: 0})[theta].subs({g: 4, l: 1}) == sp.cos(2 * t)
