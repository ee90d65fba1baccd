"""minimize and steady_state against closed forms and SciPy, with gradients and errors."""

import jax
import numpy as np
import pytest
import scipy.optimize
import sympy as sp

import symml as sm

t = sm.t


def chain_energy(n):
    """N masses between fixed ends (y_0 = y_{N+1} = 0), springs of rest length ell, unit spacing."""
    ys = sp.symbols(f"y0:{n + 2}")
    K, ell, m, g = sm.parameters("K ell m g", positive=True)
    E = sp.Add(*[K / 2 * (sp.sqrt((ys[j + 1] - ys[j]) ** 2 + 1) - ell) ** 2 for j in range(n + 1)])
    return E + sp.Add(*[m * g * ys[j] for j in range(1, n + 1)]), ys, (K, ell, m, g)


@pytest.mark.slow  # compile-heavy; the fast suite checks the nonlinear chain against SciPy
def test_linear_chain_matches_closed_form():
    n = 8
    ys = sp.symbols(f"y0:{n + 2}")
    K, m, g = sm.parameters("K m g", positive=True)
    E = sum(K / 2 * (ys[j + 1] - ys[j]) ** 2 for j in range(n + 1)) + sum(
        m * g * ys[j] for j in range(1, n + 1)
    )
    res = sm.minimize(E, over=list(ys), params={K: 2.0, m: 1.0, g: 9.81}, constraints={ys[0]: 0, ys[-1]: 0})
    j = np.arange(n + 2)
    want = 9.81 / (2 * 2.0) * j * (j - (n + 1))  # K (y_{j+1} - 2 y_j + y_{j-1}) = m g
    got = np.array([float(res[s]) for s in ys])
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert bool(res.converged) and float(res.grad_norm) < 1e-6


@pytest.mark.slow
def test_nonlinear_chain_matches_scipy_bfgs():
    n = 10
    E, ys, (K, ell, m, g) = chain_energy(n)
    values = {K: 50.0, ell: 0.8, m: 0.1, g: 9.81}
    res = sm.minimize(E, over=list(ys), params=values, constraints={ys[0]: 0, ys[-1]: 0})
    free = ys[1:-1]

    def energy(y):
        full = np.concatenate([[0.0], y, [0.0]])
        d = np.diff(full)
        return np.sum(50.0 / 2 * (np.sqrt(d**2 + 1) - 0.8) ** 2) + np.sum(0.1 * 9.81 * y)

    ref = scipy.optimize.minimize(energy, np.zeros(n), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose([float(res[s]) for s in free], ref.x, atol=1e-6)
    np.testing.assert_allclose(float(res.fun), ref.fun, rtol=1e-9)


@pytest.mark.slow
def test_chain_minimum_is_differentiable_in_the_parameters():
    n = 10
    E, ys, (K, ell, m, g) = chain_energy(n)
    values = {K: 50.0, ell: 0.8, m: 0.1, g: 9.81}
    free = ys[1:-1]

    # d y_mid / d m by the implicit function theorem, against central differences.
    mid = free[n // 2]

    def y_mid(mass):
        return sm.minimize(E, over=list(ys), params={**values, m: mass}, constraints={ys[0]: 0, ys[-1]: 0})[
            mid
        ]

    grad = float(jax.grad(y_mid)(0.1))
    h = 1e-3  # the minimiser's own tolerance (~1e-9 in y) limits how small h can be
    fd = (float(y_mid(0.1 + h)) - float(y_mid(0.1 - h))) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-5)


def test_minimize_errors_are_named():
    x, y = sp.symbols("x y")
    (k,) = sm.parameters("k")
    with pytest.raises(sm.MissingValueError, match=r"No value for k of the energy.*params=\{k: \.\.\.\}"):
        sm.minimize(k * x**2, over=[x])
    with pytest.raises(sm.UnknownNameError, match="params has a value for 'q'"):
        sm.minimize(k * x**2, over=[x], params={k: 1.0, "q": 2.0})
    with pytest.raises(sm.ModelError, match="over must list SymPy symbols"):
        sm.minimize(x**2, over=["x"])
    with pytest.raises(sm.ModelError, match="constraints has an entry for y"):
        sm.minimize(x**2, over=[x], constraints={y: 1})
    with pytest.raises(sm.UnknownNameError, match="x0 has a value for 'z'"):
        sm.minimize(x**2, over=[x], x0={"z": 1.0})
    with pytest.raises(sm.ModelError, match="x0 has 3 values for 1 unknowns"):
        sm.minimize(x**2, over=[x], x0=[1.0, 2.0, 3.0])


@pytest.fixture(scope="module")
def damped_pendulum():
    th = sm.states("theta")[0]
    g, l, c = sm.parameters("g l c", positive=True)
    return sm.lagrangian(
        l**2 * th.diff(t) ** 2 / 2 + g * l * sp.cos(th),
        [th],
        forces={th: -c * l**2 * th.diff(t)},
        defaults={g: 9.81, l: 1.0, c: 0.5, th: 0.0, th.diff(t): 0.0},
    )


def test_steady_state_eigenvalues_match_closed_form(damped_pendulum):
    th, w = damped_pendulum.states
    down = sm.steady_state(damped_pendulum, guess={th: 0.4})
    up = sm.steady_state(damped_pendulum, guess={th: 2.8})
    assert abs(float(down[th])) < 1e-10 and abs(float(up[th]) - np.pi) < 1e-10
    # theta'' = -(g/l) sin(theta) - c theta': at the bottom lambda = -c/2 +- i sqrt(g/l - c^2/4).
    lam = sorted(np.asarray(down.eigenvalues), key=lambda z: z.imag)
    want = -0.25 + 1j * np.sqrt(9.81 - 0.0625)
    np.testing.assert_allclose(lam[1], want, rtol=1e-10)
    assert bool(down.stable) and not bool(up.stable)
    # At the top: a saddle, lambda = -c/2 +- sqrt(g/l + c^2/4).
    np.testing.assert_allclose(
        np.max(np.asarray(up.eigenvalues).real), -0.25 + np.sqrt(9.81 + 0.0625), rtol=1e-10
    )


@pytest.mark.slow
def test_steady_state_against_scipy_and_gradient():
    x, y = sm.states("x y")
    a, b = sm.parameters("a b", positive=True)
    # Brusselator: the steady state is (a, b/a); Newton from a guess, SciPy from the same one.
    bruss = sm.Model(
        [sp.Eq(x.diff(t), a - (b + 1) * x + x**2 * y), sp.Eq(y.diff(t), b * x - x**2 * y)],
        defaults={a: 1.0, b: 1.5, x: 0.8, y: 1.2},
    )
    ss = sm.steady_state(bruss)
    ref = scipy.optimize.fsolve(
        lambda z: [1 - 2.5 * z[0] + z[0] ** 2 * z[1], 1.5 * z[0] - z[0] ** 2 * z[1]], [0.8, 1.2]
    )
    np.testing.assert_allclose(np.asarray(ss.y), ref, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(ss.y), [1.0, 1.5], rtol=1e-10)
    assert bool(ss.stable)  # b < 1 + a^2
    dy_db = jax.grad(lambda bv: sm.steady_state(bruss, params={b: bv})[y])(1.5)
    np.testing.assert_allclose(float(dy_db), 1.0, rtol=1e-8)  # y* = b / a


def test_steady_state_errors():
    with pytest.raises(sm.ModelError, match="needs an sm.Model"):
        sm.steady_state("pendulum")
    pend = sm.zoo.pendulum()
    with pytest.raises(sm.UnknownNameError, match="'phi' is not a state or parameter"):
        sm.steady_state(pend, guess={"phi": 1.0})
