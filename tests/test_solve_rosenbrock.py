"""The Rosenbrock solver Rodas4 and the block Jacobian it factors: order, reference agreement,
blocks equal to the dense Jacobian. Speed is measured in benchmarks/stiff.py."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._compile._jacobian import block_jacobian, block_structure
from symml._solve._rosenbrock import Rodas4


def kinetics(groups: int) -> sm.Model:
    """``groups`` independent copies of Robertson's kinetics, each with its own rate constants."""
    t = sm.t
    a, b, c = sm.states("a b c", n=groups)
    k1, k2, k3 = sm.parameters("k1 k2 k3", n=groups)
    eqs, defaults = [], {}
    for i in range(groups):
        eqs += [
            sp.Eq(a[i].diff(t), -k1[i] * a[i] + k2[i] * b[i] * c[i]),
            sp.Eq(b[i].diff(t), k1[i] * a[i] - k2[i] * b[i] * c[i] - k3[i] * b[i] ** 2),
            sp.Eq(c[i].diff(t), k3[i] * b[i] ** 2),
        ]
        defaults.update({k1[i]: 0.04 * (1 + i), k2[i]: 1e4, k3[i]: 3e7 / (1 + i)})
        defaults.update({a[i]: 1.0, b[i]: 0.0, c[i]: 0.0})
    return sm.Model(eqs, defaults=defaults, name="kinetics")


def test_block_structure_groups_coupled_states():
    assert block_structure(6, [(0, 3), (3, 0), (1, 4), (2, 5)]) == ((0, 3, 1, 4, 2, 5), 3, 2)
    assert block_structure(3, [(0, 1), (1, 2)]) == ((0, 1, 2), 1, 3)  # one component: dense
    assert block_structure(3, [(0, 1)]) == ((0, 1, 2), 1, 3)  # unequal sizes: dense


def test_block_jacobian_equals_the_dense_jacobian():
    model = kinetics(4)  # states a_0..a_3, b_0.., c_0..: each group spread over the vector
    jac = block_jacobian(model)
    assert (jac.blocks, jac.size, jac.time_dependent) == (4, 3, False)
    vf = sm.compile(model)
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.uniform(0.1, 1.0, 12))
    p = jnp.asarray([model.defaults[q] for q in model.params])
    dense = np.asarray(jax.jacfwd(lambda y_: vf(0.0, y_, p))(y))
    blocks = np.asarray(jac.matrix(0.0, y, p))
    perm = np.asarray(jac.perm)
    for g in range(jac.blocks):
        idx = perm[g * 3 : (g + 1) * 3]
        np.testing.assert_allclose(blocks[g], dense[np.ix_(idx, idx)], rtol=1e-13)
        others = np.setdiff1d(np.arange(12), idx)
        assert not np.any(dense[np.ix_(idx, others)])  # nothing outside the blocks
    v = jnp.arange(12.0)
    np.testing.assert_array_equal(jac.scatter(jac.gather(v)), v)


def test_rodas4_is_fourth_order_on_a_driven_problem():
    # x' = -2 x + cos t (an explicit t: the solver's time derivative term is exercised), x(0) = 1
    (x,) = sm.states("x")
    model = sm.Model([sp.Eq(x.diff(sm.t), -2 * x + sp.cos(sm.t))], defaults={x: 1.0}, name="driven")
    assert block_jacobian(model).time_dependent

    def exact(t):
        return (2 * math.cos(t) + math.sin(t)) / 5 + (1 - 2 / 5) * math.exp(-2 * t)

    errors = []
    for dt in (0.1, 0.05):
        tr = sm.simulate(model, t_span=(0, 2), saveat=[2.0], solver="rodas4", dt=dt, max_steps=100)
        errors.append(abs(float(tr[x][-1]) - exact(2.0)))
    observed = math.log2(errors[0] / errors[1])
    assert abs(observed - 4) < 0.3, observed


@pytest.mark.slow
def test_rodas4_agrees_with_a_reference_on_stiff_kinetics():
    scipy_integrate = pytest.importorskip("scipy.integrate")
    model = kinetics(2)
    ts = np.linspace(0.0, 1e4, 6)
    tr = sm.simulate(model, t_span=(0.0, 1e4), saveat=6, solver="rodas4", rtol=1e-8, atol=1e-12)
    vf, p = sm.compile(model), jnp.asarray([model.defaults[q] for q in model.params])
    y0 = [model.defaults[s] for s in model.states]
    ref = scipy_integrate.solve_ivp(
        lambda t, y: np.asarray(vf(t, jnp.asarray(y), p)),
        (0.0, 1e4),
        y0,
        method="Radau",
        t_eval=ts,
        rtol=1e-11,
        atol=1e-14,
        jac=lambda t, y: np.asarray(jax.jacfwd(lambda y_: vf(t, y_, p))(jnp.asarray(y))),
    ).y.T
    np.testing.assert_allclose(np.asarray(tr.y), ref, rtol=1e-5, atol=1e-11)


@pytest.mark.slow
def test_plain_rodas4_runs_backwards_in_time():
    # Rodas4() without a symbolic Jacobian (jax.jacfwd), from t = 2 back to 0 on a driven problem
    (x,) = sm.states("x")
    vf = sm.compile(sm.Model([sp.Eq(x.diff(sm.t), -2 * x + sp.cos(sm.t))], name="driven"))
    exact = lambda t: (2 * np.cos(t) + np.sin(t)) / 5 + (3 / 5) * np.exp(-2 * t)  # noqa: E731
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vf),
        Rodas4(),
        2.0,
        0.0,
        None,
        jnp.asarray([exact(2.0)]),
        args=jnp.zeros(0),
        saveat=diffrax.SaveAt(ts=jnp.asarray([1.3, 0.0])),  # 1.3: between steps (dense output)
        stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-12),
    )
    np.testing.assert_allclose(np.asarray(sol.ys[:, 0]), exact(np.array([1.3, 0.0])), rtol=1e-7)
