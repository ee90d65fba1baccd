"""Symplectic solvers: order of convergence, long-run invariants (Kepler), gradients, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm

t = sm.t


@pytest.fixture(scope="module")
def pendulum_h():
    q, p = sm.states("q p")
    (w2,) = sm.parameters("w2", positive=True)
    return sm.hamiltonian(p**2 / 2 - w2 * sp.cos(q), [q], [p], defaults={w2: 1.0, q: 1.2, p: 0.0})


@pytest.fixture(scope="module")
def kepler():
    return sm.zoo.kepler_hamiltonian(0.5)


def _order(model, solver, dts, T, ref):
    errors = []
    for dt in dts:
        traj = sm.simulate(model, t_span=(0, T), saveat=jnp.array([T]), solver=solver, dt0=dt)
        errors.append(float(np.max(np.abs(np.asarray(traj.y[-1]) - ref))))
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    return slope, errors


@pytest.mark.parametrize(
    ("solver", "order", "dts"), [("leapfrog", 2, (0.1, 0.05, 0.025)), ("yoshida4", 4, (0.2, 0.1, 0.05))]
)
@pytest.mark.slow
def test_convergence_order_by_regression(pendulum_h, solver, order, dts):
    T = 2.0
    ref = np.asarray(
        sm.simulate(pendulum_h, t_span=(0, T), saveat=jnp.array([T]), rtol=1e-13, atol=1e-13).y[-1]
    )
    slope, errors = _order(pendulum_h, solver, dts, T, ref)
    assert abs(slope - order) < 0.15, (slope, errors)


@pytest.mark.slow
def test_lagrangian_with_constant_mass_matrix_runs_symplectically():
    x = sm.states("x")[0]
    m, k = sm.parameters("m k", positive=True)
    osc = sm.lagrangian(
        m * x.diff(t) ** 2 / 2 - k * x**4 / 4, [x], defaults={m: 1.0, k: 1.0, x: 1.0, x.diff(t): 0.0}
    )
    traj = sm.simulate(osc, t_span=(0, 50), saveat=51, solver="leapfrog", dt0=0.01)
    energy = np.asarray(traj[osc.energy])
    assert np.max(np.abs(energy - 0.25)) < 1e-5


@pytest.mark.slow
def test_kepler_energy_bounded_and_angular_momentum_to_round_off(kepler):
    # 20 orbits of e = 0.5 with leapfrog (the slow test runs 1000); save on the step grid.
    T = 20 * 2 * np.pi
    steps = 20 * 800
    traj = sm.simulate(kepler, t_span=(0, T), saveat=801, solver="leapfrog", dt0=T / steps)
    energy = np.asarray(traj[kepler.energy])
    ang = np.asarray(traj[kepler.invariants["angular_momentum_xy"]])
    err = np.abs(energy - energy[0])
    assert err.max() < 5e-3
    half = len(err) // 2
    assert err[half:].max() < 1.5 * err[:half].max()  # no secular drift
    assert np.max(np.abs(ang - ang[0])) < 1e-12


@pytest.mark.slow
def test_gradient_through_leapfrog_matches_finite_differences(pendulum_h):
    q, p = pendulum_h.states
    shoot = sm.solver_fn(pendulum_h, t_span=(0, 3), saveat=jnp.array([3.0]), solver="leapfrog", dt0=0.01)

    @jax.jit
    def final_q(w2, q0):
        return shoot(params={"w2": w2}, ics={q: q0, p: 0.0}).y[-1, 0]

    g = jax.grad(final_q, argnums=(0, 1))(1.3, 0.9)
    h = 1e-6
    fd_w = (final_q(1.3 + h, 0.9) - final_q(1.3 - h, 0.9)) / (2 * h)
    fd_q = (final_q(1.3, 0.9 + h) - final_q(1.3, 0.9 - h)) / (2 * h)
    np.testing.assert_allclose([float(g[0]), float(g[1])], [float(fd_w), float(fd_q)], rtol=1e-6)


@pytest.mark.slow
def test_vmap_over_initial_values(pendulum_h):
    q, p = pendulum_h.states
    traj = sm.simulate(
        pendulum_h, ics={q: jnp.array([0.5, 1.0, 1.5])}, t_span=(0, 1), saveat=3, solver="yoshida4", dt0=0.01
    )
    assert traj.y.shape == (3, 3, 2)


def test_non_separable_hamiltonian_with_explicit_method_is_an_error():
    q, p = sm.states("q p")
    (k,) = sm.parameters("k")
    H = (p**2 + k * q**2) ** 2 / 4
    model = sm.hamiltonian(H, [q], [p], defaults={k: 1.0, q: 1.0, p: 0.0})
    with pytest.raises(sm.ModelError, match=r"not separable: dq/dt depends on q itself.*implicit_midpoint"):
        sm.simulate(model, t_span=(0, 1), solver="leapfrog", dt0=0.1)
    # The double pendulum's mass matrix depends on the angles: not separable either.
    with pytest.raises(sm.ModelError, match="not separable.*yoshida4"):
        sm.simulate(sm.zoo.double_pendulum(), t_span=(0, 1), solver="yoshida4", dt0=0.1)
    traj = sm.simulate(model, t_span=(0, 20), saveat=5, solver="implicit_midpoint", dt0=0.05)
    np.testing.assert_allclose(np.asarray(traj[model.energy]), 0.25, atol=1e-10)


def test_fixed_step_solvers_need_dt0(pendulum_h):
    with pytest.raises(sm.MissingValueError, match="leapfrog .*dt0"):
        sm.simulate(pendulum_h, t_span=(0, 1), solver="leapfrog")


@pytest.mark.slow
def test_kepler_thousand_orbits_leapfrog_against_tsit5_at_the_same_cost(kepler):
    T = 1000 * 2 * np.pi
    steps = 1000 * 400
    ts = np.linspace(0, T, 2001)
    lf = sm.simulate(kepler, t_span=(0, T), saveat=ts, solver="leapfrog", dt0=T / steps, max_steps=steps + 10)
    # Leapfrog evaluates the field 3 times a step, tsit5 6 times: tsit5 at twice the step.
    rk = sm.simulate(
        kepler, t_span=(0, T), saveat=ts, solver="tsit5", adaptive=False, dt0=2 * T / steps, max_steps=steps
    )
    e_lf = np.abs(np.asarray(lf[kepler.energy]) + 0.5)
    e_rk = np.abs(np.asarray(rk[kepler.energy]) + 0.5)
    ang = np.asarray(lf[kepler.invariants["angular_momentum_xy"]])
    n = len(ts) // 10
    assert e_lf[-n:].max() < 1.5 * e_lf[:n].max()  # bounded
    assert e_rk[-n:].max() > 5 * e_rk[:n].max()  # tsit5 drifts
    assert np.max(np.abs(ang - ang[0])) < 1e-11


def test_fixed_step_dt_is_dt0_without_adaptation(pendulum_h):
    a = sm.simulate(pendulum_h, t_span=(0, 1), saveat=5, solver="leapfrog", dt=0.05)
    b = sm.simulate(pendulum_h, t_span=(0, 1), saveat=5, solver="leapfrog", dt0=0.05, adaptive=False)
    np.testing.assert_array_equal(np.asarray(a.y), np.asarray(b.y))
    with pytest.raises(ValueError, match=r"Both dt=0.05 and dt0=0.1 given"):
        sm.simulate(pendulum_h, t_span=(0, 1), solver="leapfrog", dt=0.05, dt0=0.1)


def _spring_chain(n: int, coupling: bool = False):
    q, p = sm.states("q", n=n), sm.states("p", n=n)
    k, m = sm.parameters("k m", positive=True)
    H = sum(pi**2 / (2 * m) for pi in p) + k * (q[0] ** 2 + q[-1] ** 2) / 2
    H += sum(k * (q[i + 1] - q[i]) ** 2 / 2 for i in range(n - 1))
    if coupling:  # a position-dependent mass: not separable
        H += sum(qi**2 * pi**2 for qi, pi in zip(q, p))
    defaults = {k: 1.0, m: 1.0, **dict.fromkeys([*q, *p], 0.0)}
    return sm.hamiltonian(H, list(q), list(p), defaults=defaults), q


def test_split_states_reads_the_vector_program_of_a_large_model():
    # 40 states with repeated structure compile to a VectorProgram (groups evaluated on slices),
    # which has no per-output instruction list: the split must come out the same as from scalar code
    from symml._mechanics._symplectic import split_states

    chain, _ = _spring_chain(20)
    vector, scalar = sm.compile(chain), sm.compile(chain, vectorize=False)
    assert type(vector.program).__name__ == "VectorProgram" and type(scalar.program).__name__ == "Program"
    expected = np.arange(40) < 20  # (q..., p...): the coordinates are the positions
    np.testing.assert_array_equal(split_states(vector, 40), expected)
    np.testing.assert_array_equal(split_states(scalar, 40), expected)
    bad, _ = _spring_chain(20, coupling=True)
    assert type(sm.compile(bad).program).__name__ == "VectorProgram"
    with pytest.raises(sm.ModelError, match=r"not separable: dq_?0/dt depends on q_?0 itself"):
        split_states(sm.compile(bad), 40)


@pytest.mark.slow  # compiles a 40-state leapfrog and a reference solve
def test_leapfrog_on_a_chain_of_twenty_masses():
    chain, q = _spring_chain(20)
    ts = np.linspace(0, 10, 11)
    lf = sm.simulate(chain, ics={q[0]: 0.5}, t_span=(0, 10), saveat=ts, solver="leapfrog", dt0=0.005)
    ref = sm.simulate(chain, ics={q[0]: 0.5}, t_span=(0, 10), saveat=ts, rtol=1e-11, atol=1e-12)
    # second order: the largest frequency is below 2, so the phase error stays near (2 dt)^2 t / 24
    np.testing.assert_allclose(np.asarray(lf.y), np.asarray(ref.y), atol=2e-4)
    energy = np.asarray(lf[chain.energy])
    assert np.max(np.abs(energy - 0.25)) < 1e-4  # H(0) = k q0^2 (two springs) / 2 = 0.25
