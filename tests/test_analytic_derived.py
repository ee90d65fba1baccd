"""Derived quantities: the projectile's range and flight time in closed form (Lambert W),
eliminating t, compiling closed forms to vectorised JAX, inverse questions by root finding."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import sympy as sp

import symml as sm
from symml import t
from symml._analytic import roots, to_jax

M, G = 7.26, 9.81


@pytest.fixture(scope="module")
def shot():
    model = sm.zoo.projectile("stokes")
    x, y, vx, vy = model.states
    g, k, m = model.params
    u, w = sm.parameters("v_x v_y", positive=True)
    sol = sm.solve_analytic(model, ics={x: 0, y: 0, vx: u, vy: w})
    path = sol.eliminate_t(x, y)
    (D,) = roots(path, x, exclude=[0], at={u: 7.5, w: 13.0, g: G, k: 0.45, m: M})
    return model, sol, path, D, (x, y, g, k, m, u, w)


def _y_of_x(X, v, th, k):
    vx, vy = v * math.cos(th), v * math.sin(th)
    return ((vy + M * G / k) / vx) * X + (M**2 * G / k**2) * math.log(1 - k * X / (M * vx))


@pytest.mark.slow
def test_range_is_the_lambert_w_formula_of_problems_md(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    z = -((g * m + k * w) / (g * m)) * sp.exp(-1 - k * w / (g * m))
    expected = m * u * (g * m * sp.LambertW(z) + g * m + k * w) / (k * (g * m + k * w))
    assert D.has(sp.LambertW) and sp.simplify(D - expected) == 0


def test_range_equals_a_scipy_root_of_y_of_x_on_a_grid(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    f = jax.jit(to_jax(D, [u, w, g, k, m]))
    worst = 0.0
    # (With negligible drag, k v sin(theta) / (g m) < 1e-3, both formulas lose digits to
    # cancellation: the Lambert W argument is then within ~1e-7 of the branch point -1/e.)
    for v in (5.0, 15.0, 40.0, 85.0):
        for deg in (5.0, 30.0, 60.0, 85.0):
            for kv in (0.45, 1.8, 5.0):
                th = math.radians(deg)
                got = float(f(v * math.cos(th), v * math.sin(th), G, kv, M))
                hi = M * v * math.cos(th) / kv  # the vertical asymptote of y(x)
                ref = scipy.optimize.brentq(
                    _y_of_x, 1e-9 * hi, hi * (1 - 1e-15), args=(v, th, kv), xtol=1e-15, rtol=1e-15
                )
                worst = max(worst, abs(got - ref) / ref)
    assert worst <= 1e-10
    # the numbers of docs/problems.md
    vx, vy = 15 * math.cos(math.pi / 3), 15 * math.sin(math.pi / 3)
    assert float(f(vx, vy, G, 0.45, M)) == pytest.approx(17.8800198525094, rel=1e-13)
    assert float(f(vx, vy, G, 1.8, M)) == pytest.approx(13.6065731068121, rel=1e-13)


@pytest.mark.slow
def test_flight_time_by_lambert_w_and_its_lower_branch_is_the_launch(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    at = {u: 7.5, w: 13.0}
    # with t = t0 kept: the lower branch W-1 gives the launch, W0 the landing (sorted)
    launch, T = sol.when(y, at=at, exclude_t0=False)
    assert T.has(sp.LambertW) and any(len(a.args) == 2 for a in launch.atoms(sp.LambertW))
    vals = {g: G, k: 0.45, m: M, u: 7.5, w: 13.0}
    height = to_jax(sol[y].subs(vals), [t])
    t_hit = scipy.optimize.brentq(lambda s: float(height(s)), 0.5, 5.0, xtol=1e-14)
    assert float(T.evalf(subs=vals)) == pytest.approx(t_hit, rel=1e-12)
    # the range is x at the flight time
    assert float(sol[x].subs(t, T).evalf(subs=vals)) == pytest.approx(float(D.evalf(subs=vals)), rel=1e-12)
    assert abs(float(launch.evalf(subs=vals))) < 1e-12
    assert sol.when(y, at=at) == [T]  # t0 excluded by default
    # sol.at gives every state at that time
    states = sol.at(T, timeout=2)
    assert float(states[x].evalf(subs=vals)) == pytest.approx(float(D.evalf(subs=vals)), rel=1e-12)


@pytest.mark.slow
def test_range_map_in_one_vectorised_call_and_its_gradient(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    v, th = sm.parameters("v theta", positive=True)
    Dvt = D.subs({u: v * sp.cos(th), w: v * sp.sin(th), g: G, m: M, k: 0.45})
    f = to_jax(Dvt, [v, th])
    V, TH = jnp.meshgrid(jnp.linspace(5, 85, 100), jnp.radians(jnp.linspace(5, 85, 100)), indexing="ij")
    grid = f(V, TH)
    assert grid.shape == (100, 100) and bool(jnp.all(jnp.isfinite(grid))) and bool(jnp.all(grid > 0))
    # no drag limit: below the vacuum range v^2 sin(2 theta)/g everywhere
    assert bool(jnp.all(grid < V**2 * jnp.sin(2 * TH) / G))
    dv = jax.grad(f, argnums=0)(15.0, math.pi / 3)
    h = 1e-5
    fd = (f(15.0 + h, math.pi / 3) - f(15.0 - h, math.pi / 3)) / (2 * h)
    assert float(dv) == pytest.approx(float(fd), rel=1e-8)
    exact = float(sp.diff(Dvt, v).evalf(30, subs={v: 15, th: sp.pi / 3}))
    assert float(dv) == pytest.approx(exact, rel=1e-12)


def test_inverse_question_which_speed_reaches_50_m_at_30_degrees(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    v, th = sm.parameters("v theta", positive=True)
    f = to_jax(D.subs({u: v * sp.cos(th), w: v * sp.sin(th), g: G, m: M, k: 0.45}), [v, th])
    th30 = math.radians(30)

    def residual(vv):
        return f(vv, th30) - 50.0

    vv = 30.0
    for _ in range(30):  # Newton on the closed form, derivative by JAX
        vv = vv - float(residual(vv)) / float(jax.grad(residual)(vv))
    ref = scipy.optimize.brentq(lambda s: float(residual(s)), 10, 80, xtol=1e-14)
    assert vv == pytest.approx(ref, rel=1e-12) and abs(float(residual(vv))) < 1e-10
    assert 24 < vv < 27


def test_to_jax_arguments_and_errors():
    a, b = sp.symbols("a b", real=True)
    (q,) = sm.states("q")
    f = to_jax([a * q, q + t], [q, a, t])
    out = f(jnp.array([1.0, 2.0]), 3.0, t=0.5)
    np.testing.assert_allclose(out, [[3.0, 6.0], [1.5, 2.5]])
    with pytest.raises(sm.MissingValueError, match="depends on b, which are not among the arguments"):
        to_jax(a + b, [a])
    with pytest.raises(sm.MissingValueError, match="No value for 'a'"):
        to_jax(a, [a])()
    with pytest.raises(TypeError, match="expected 1 values"):
        to_jax(a, [a])(1.0, 2.0)
    with pytest.raises(TypeError, match="not a symbol, a state or t"):
        to_jax(a, [a + 1])
    # complex mode: a formula that is real overall through complex intermediates
    c, kk = sp.symbols("c k", positive=True)
    damped = sp.exp(-c * t / 2) * sp.cosh(sp.sqrt(c**2 - 4 * kk) * t / 2)
    g = to_jax(damped, [c, kk, t], complex_mode=True)
    assert float(g(0.4, 4.0, 1.0)) == pytest.approx(
        math.exp(-0.2) * math.cos(math.sqrt(15.84) / 2), rel=1e-14
    )


def test_roots_errors():
    a = sp.Symbol("a", positive=True)
    X = sp.Symbol("X", real=True)
    with pytest.raises(ValueError, match="does not depend on X"):
        roots(a + 1, X)
    with pytest.raises(sm.NoClosedForm, match="no real closed-form root"):
        roots(X**2 + a, X)  # roots are imaginary for a > 0
    assert [float(r.subs(a, 4)) for r in roots(X**2 - a, X)] == [-2.0, 2.0]
    assert roots(X**2 - a, X, exclude=[-sp.sqrt(a)]) == [sp.sqrt(a)]


def test_derived_quantity_errors(shot):
    model, sol, path, D, (x, y, g, k, m, u, w) = shot
    # x(t) = -1 has a root, but before the launch
    with pytest.raises(sm.NoClosedForm, match="has no closed-form solution after t0 = 0"):
        sol.when(x, -1, at={u: 7.5, w: 13.0})
    with pytest.raises(ValueError, match="eliminate_t: g is not a state of model 'projectile_stokes'"):
        sol.eliminate_t(x, g)
    with pytest.raises(sm.NoClosedForm, match="x is constant along the solution"):
        sol.subs({u: 0}).eliminate_t(x, y)  # a vertical throw
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['c'\]; the arguments are \(v_x, v_y"):
        to_jax(D, [u, w, g, k, m])(1.0, 1.0, 9.81, 0.45, 7.26, c=1.0)
