"""Lagrangian and Hamiltonian models: equations against hand derivations, invariants, errors."""

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._mechanics import NeuralDerivative, differentiate

t = sm.t


def _numeric(model, point, exprs):
    """Evaluate SymPy expressions of ``model`` at a point given by symbol (states and parameters)."""
    f = sm.compile_exprs(model, exprs)
    y = jnp.array([point[s] for s in model.states])
    p = jnp.array([point[s] for s in model.params])
    return np.asarray(f(0.0, y, p))


def _random_point(model, rng):
    return {s: float(rng.uniform(0.3, 1.7)) for s in (*model.states, *model.params)}


# ----------------------------------------------------------------------------- Euler–Lagrange


def test_pendulum_lagrangian_matches_hand_derivation():
    th = sm.states("theta")[0]
    m, g, l = sm.parameters("m g l", positive=True)
    L = m * l**2 * th.diff(t) ** 2 / 2 + m * g * l * sp.cos(th)
    pend = sm.lagrangian(L, [th], defaults={m: 1.0, g: 9.81, l: 1.0})
    assert pend.states == (th, th.diff(t))
    assert sp.simplify(pend.rhs[th.diff(t)] - (-g / l * sp.sin(th))) == 0
    assert sp.simplify(pend.energy - (m * l**2 * th.diff(t) ** 2 / 2 - m * g * l * sp.cos(th))) == 0
    assert pend.name == "lagrangian"


def test_double_pendulum_lagrangian_matches_hand_derivation():
    dp = sm.zoo.double_pendulum()
    th1, th2, w1, w2 = dp.states
    g, l1, l2, m1, m2 = dp.params
    d = th1 - th2
    den = 2 * m1 + m2 - m2 * sp.cos(2 * th1 - 2 * th2)
    a1 = (
        -g * (2 * m1 + m2) * sp.sin(th1)
        - m2 * g * sp.sin(th1 - 2 * th2)
        - 2 * sp.sin(d) * m2 * (w2**2 * l2 + w1**2 * l1 * sp.cos(d))
    ) / (l1 * den)
    a2 = (
        2 * sp.sin(d) * (w1**2 * l1 * (m1 + m2) + g * (m1 + m2) * sp.cos(th1) + w2**2 * l2 * m2 * sp.cos(d))
    ) / (l2 * den)
    rng = np.random.default_rng(1)
    for _ in range(3):
        pt = _random_point(dp, rng)
        got = _numeric(dp, pt, [dp.rhs[w1], dp.rhs[w2]])
        want = [float(a.xreplace(pt)) for a in (a1, a2)]
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_central_potential_in_polar_coordinates():
    r, phi = sm.states("r phi")
    m, k = sm.parameters("m k", positive=True)
    L = m * (r.diff(t) ** 2 + r**2 * phi.diff(t) ** 2) / 2 + k / r
    model = sm.lagrangian(L, [r, phi])
    want_r = r * phi.diff(t) ** 2 - k / (m * r**2)
    want_phi = -2 * r.diff(t) * phi.diff(t) / r
    assert sp.simplify(model.rhs[r.diff(t)] - want_r) == 0
    assert sp.simplify(model.rhs[phi.diff(t)] - want_phi) == 0
    # phi is cyclic: its conjugate momentum (the angular momentum) is an invariant.
    assert sp.simplify(model.invariants["p_phi"] - m * r**2 * phi.diff(t)) == 0


def test_cartesian_central_potential_finds_angular_momentum():
    x, y = sm.states("x y")
    (k,) = sm.parameters("k", positive=True)
    L = (x.diff(t) ** 2 + y.diff(t) ** 2) / 2 + k / sp.sqrt(x**2 + y**2)
    model = sm.lagrangian(L, [x, y])
    assert sp.simplify(model.invariants["angular_momentum_xy"] - (x * y.diff(t) - y * x.diff(t))) == 0


def test_forces_add_damping_and_energy_survives_transformations():
    x = sm.states("x")[0]
    m, k, c = sm.parameters("m k c", positive=True)
    osc = sm.lagrangian(
        m * x.diff(t) ** 2 / 2 - k * x**2 / 2,
        [x],
        forces={x: -c * x.diff(t)},
        defaults={m: 1.0, k: 1.0, c: 0.1},
    )
    assert sp.simplify(osc.rhs[x.diff(t)] - (-(k * x + c * x.diff(t)) / m)) == 0
    assert osc.with_defaults({c: 0.2}).energy == osc.energy
    assert osc.subs({m: 2}).energy == (k * x**2 / 2 + x.diff(t) ** 2).expand()
    traj = sm.simulate(osc, ics={x: 1.0, x.diff(t): 0.0}, t_span=(0, 10), saveat=5, method="numeric")
    energy = np.asarray(traj[osc.energy])
    assert np.all(np.diff(energy) < 0)  # damping removes energy


# ----------------------------------------------------------------------------- Hamilton


def test_hamilton_equations_for_pendulum_double_pendulum_and_central_potential():
    q, p = sm.states("q p")
    g, l, m = sm.parameters("g l m", positive=True)
    pend = sm.hamiltonian(p**2 / (2 * m * l**2) - m * g * l * sp.cos(q), [q], [p])
    assert pend.states == (q, p)
    assert sp.simplify(pend.rhs[q] - p / (m * l**2)) == 0
    assert sp.simplify(pend.rhs[p] + m * g * l * sp.sin(q)) == 0

    r, phi, pr, pphi = sm.states("r phi p_r p_phi")
    (k,) = sm.parameters("k", positive=True)
    central = sm.hamiltonian((pr**2 + pphi**2 / r**2) / (2 * m) - k / r, [r, phi], [pr, pphi])
    assert sp.simplify(central.rhs[r] - pr / m) == 0
    assert sp.simplify(central.rhs[phi] - pphi / (m * r**2)) == 0
    assert sp.simplify(central.rhs[pr] - (pphi**2 / (m * r**3) - k / r**2)) == 0
    assert central.rhs[pphi] == 0
    assert central.invariants["p_phi"] == pphi

    # Double pendulum (unit masses and lengths): H from the Legendre transform of zoo's L; the
    # Hamiltonian flow must equal the Lagrangian one mapped through p = M(q) q'.
    t1, t2, p1, p2 = sm.states("t1 t2 p1 p2")
    (gg,) = sm.parameters("gg", positive=True)
    d = t1 - t2
    H = (
        (p1**2 + 2 * p2**2 - 2 * p1 * p2 * sp.cos(d)) / (2 * (1 + sp.sin(d) ** 2))
        - 2 * gg * sp.cos(t1)
        - gg * sp.cos(t2)
    )
    ham = sm.hamiltonian(H, [t1, t2], [p1, p2], defaults={gg: 9.81})
    lag = sm.zoo.double_pendulum()
    th1, th2, w1, w2 = lag.states
    a, b, wa, wb = 0.4, -0.7, 0.3, 1.1
    mass = np.array([[2.0, np.cos(a - b)], [np.cos(a - b), 1.0]])
    pa, pb = mass @ [wa, wb]
    vf_h = np.asarray(sm.compile(ham)(0.0, jnp.array([a, b, pa, pb]), jnp.array([9.81])))
    vf_l = np.asarray(sm.compile(lag)(0.0, jnp.array([a, b, wa, wb]), jnp.array([9.81, 1.0, 1.0, 1.0, 1.0])))
    np.testing.assert_allclose(vf_h[:2], [wa, wb], rtol=1e-12)
    dmass = np.array([[0.0, -np.sin(a - b)], [-np.sin(a - b), 0.0]]) * (wa - wb)
    np.testing.assert_allclose(vf_h[2:], mass @ vf_l[2:] + dmass @ [wa, wb], rtol=1e-10)


def test_kepler_hamiltonian_invariants():
    kep = sm.zoo.kepler_hamiltonian()
    x, y, px, py = kep.states
    assert set(kep.invariants) == {"energy", "angular_momentum_xy"}
    assert sp.expand(kep.invariants["angular_momentum_xy"] - (x * py - y * px)) == 0


# ----------------------------------------------------------------------------- errors


def test_singular_mass_matrix_names_the_coordinates():
    x, y = sm.states("x y")
    m, k = sm.parameters("m k", positive=True)
    with pytest.raises(sm.ModelError, match=r"mass matrix .* singular.*coordinate\(s\) y\b"):
        sm.lagrangian(m * x.diff(t) ** 2 / 2 - k * (x**2 + y**2) / 2, [x, y])
    # Two coordinates that only ever move together: the null space holds both.
    with pytest.raises(sm.ModelError, match=r"coordinate\(s\) x, y\."):
        sm.lagrangian(m * (x.diff(t) + y.diff(t)) ** 2 / 2 - k * x**2, [x, y])


def test_coords_and_momenta_of_different_lengths():
    x, y, px = sm.states("x y p_x")
    with pytest.raises(sm.ModelError, match=r"same length.*got 2 coords \(x\(t\), y\(t\)\) and 1 momenta"):
        sm.hamiltonian(px**2 / 2 + x**2 + y**2, [x, y], [px])


def test_bad_arguments_are_named():
    x, px = sm.states("x p_x")
    (k,) = sm.parameters("k")
    with pytest.raises(sm.ModelError, match="does not parse strings"):
        sm.lagrangian("x**2", [x])
    with pytest.raises(sm.ModelError, match=r"coords must be states.*got k"):
        sm.lagrangian(x.diff(t) ** 2, [k])
    with pytest.raises(sm.ModelError, match="lists x\\(t\\) twice"):
        sm.lagrangian(x.diff(t) ** 2, [x, x])
    with pytest.raises(sm.ModelError, match="not one of the coordinates"):
        sm.lagrangian(x.diff(t) ** 2, [x], forces={px: 1})
    with pytest.raises(sm.ModelError, match="both a coordinate and a momentum"):
        sm.hamiltonian(x**2, [x], [x])
    with pytest.raises(sm.ModelError, match="has no energy"):
        _ = sm.zoo.pendulum().energy


# ----------------------------------------------------------------------------- network derivatives


@pytest.mark.slow
def test_network_derivatives_compile_to_jax_grad_and_evaluate_after_substitution():
    import jax

    q, p = sm.states("q p")
    (k,) = sm.parameters("k")
    Hn = sm.neural("H", inputs=[q, p], outputs=1, width=8, depth=1)
    hnn = sm.hamiltonian(Hn[0] + k * q**2 / 2, [q], [p], defaults={k: 1.0})
    assert hnn.rhs[q] == NeuralDerivative(Hn[0], p)
    assert [s.name for s in hnn.neural] == ["H"]
    vf = sm.compile(hnn)
    assert "grad(networks['H']" in vf.source
    y = jnp.array([0.3, -0.8])
    net = vf.networks["H"]
    dnet = jax.grad(lambda z: net(z)[0])(y)
    np.testing.assert_allclose(vf(0.0, y, jnp.array([1.0])), [dnet[1], -dnet[0] - 0.3], rtol=1e-12)
    # Second derivatives (a Jacobian of the field) go through nested jax.grad.
    hess = differentiate(Hn[0], p, q)
    f = sm.compile_exprs(hnn, [hess])
    want = jax.hessian(lambda z: net(z)[0])(y)[1, 0]
    np.testing.assert_allclose(f(0.0, y, jnp.array([1.0]))[0], want, rtol=1e-10)
    # Replacing the network by an expression turns the model into plain Hamilton's equations.
    rhs = hnn.rhs[p].xreplace({Hn[0]: p**2 / 2 - sp.cos(q)})
    assert sp.simplify(rhs - (-sp.sin(q) - k * q)) == 0


def test_energy_of_a_model_without_parameters_evaluates_on_its_trajectory():
    # reshape(-1, 0) of the empty parameter vector once raised ZeroDivisionError here
    q, p = sm.states("q p")
    osc = sm.hamiltonian(p**2 / 2 + q**2 / 2, [q], [p], defaults={q: 1.0, p: 0.0})
    assert osc.params == ()
    ens = sm.simulate(osc, ics={q: np.array([1.0, 2.0])}, t_span=(0, 3), saveat=7, method="numeric")
    np.testing.assert_allclose(np.asarray(ens[osc.energy]), [[0.5] * 7, [2.0] * 7], rtol=0, atol=1e-6)


def test_save_and_load_keep_the_energy_and_network_derivatives(tmp_path):
    q, p = sm.states("q p")
    (k,) = sm.parameters("k", positive=True)
    pend = sm.hamiltonian(p**2 / 2 - k * sp.cos(q), [q], [p], defaults={k: 1.0, q: 1.0, p: 0.0})
    sm.save(pend, tmp_path / "pend.json")
    back = sm.load(tmp_path / "pend.json")
    assert back == pend
    assert sp.simplify(back.energy - (p**2 / 2 - k * sp.cos(q))) == 0
    assert set(back.invariants) == set(pend.invariants)

    Hn = sm.neural("H", inputs=[q, p], outputs=1, width=4, depth=1)
    hnn = sm.hamiltonian(Hn[0], [q], [p], defaults={q: 0.5, p: 0.0})
    sm.save(hnn, tmp_path / "hnn.json")
    back = sm.load(tmp_path / "hnn.json")
    assert isinstance(back.rhs[q], NeuralDerivative)
    y = jnp.array([0.3, -0.8])
    np.testing.assert_array_equal(
        np.asarray(sm.compile(back)(0.0, y, jnp.zeros(0))), np.asarray(sm.compile(hnn)(0.0, y, jnp.zeros(0)))
    )
