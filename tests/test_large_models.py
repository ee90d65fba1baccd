"""Large models: vectors of states declared in one line, linear-time construction, vectorised code.

Correctness only; speed is measured by benchmarks/large_model.py.
"""

import pickle

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml import t
from symml._compile import build_program
from symml._compile._codegen import VectorProgram
from symml._compile._vector import MAX_RUNS


def chain(x, k, damping=sp.Rational(1, 10), evaluate=True):
    """The damped chain x_i'' = k (x_{i-1} - 2 x_i + x_{i+1}) - damping x_i' between fixed walls."""
    wall = [0, *x, 0]
    return [
        sp.Eq(
            x[i].diff(t, 2),
            k * (wall[i] - 2 * x[i] + wall[i + 2]) - damping * x[i].diff(t),
            evaluate=evaluate,
        )
        for i in range(len(x))
    ]


def stencil(y, k, n):
    x, v = y[:n], y[n:]
    padded = np.pad(x, 1)
    return np.concatenate([v, k * (padded[:-2] - 2 * x + padded[2:]) - 0.1 * v])


# --------------------------------------------------------------------------- declaring vectors


def test_states_with_n_declare_a_vector_in_one_line():
    x = sm.states("x", n=4)
    assert isinstance(x, tuple) and len(x) == 4
    assert x[2] == sm.states("x_2")[0]  # the same state as its scalar spelling
    u, v = sm.states("u v", n=2)
    assert [str(s) for s in (*u, *v)] == ["u_0(t)", "u_1(t)", "v_0(t)", "v_1(t)"]
    c = sm.parameters("c", n=3, positive=True)
    assert all(isinstance(ci, sm.Parameter) and ci.is_positive for ci in c)
    assert [ci.name for ci in c] == ["c_0", "c_1", "c_2"]


@pytest.mark.parametrize("n", [0, -2, True, 2.5, "3"])
def test_n_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sm.states("x", n=n)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sm.parameters("k", n=n)


def test_array_declared_model_equals_its_scalar_spelling():
    n = 12
    (k,) = sm.parameters("k")
    vector = sm.Model(chain(sm.states("x", n=n), k), defaults={k: 1.5})
    scalar = sm.Model(chain(sm.states(" ".join(f"x_{i}" for i in range(n))), k), defaults={k: 1.5})
    assert vector == scalar
    assert vector.states == scalar.states and dict(vector.rhs) == dict(scalar.rhs)


def test_derivatives_of_states_are_sympys_own():
    # sm.states makes x.diff(t) directly (SymPy's chain rule took 0.3 ms a call): same objects
    x = sm.states("x", n=2)
    plain = [sp.Function(f"x_{i}", real=True)(t) for i in range(2)]
    s = sp.Symbol("s")
    for ours, theirs in zip(x, plain):
        assert ours == theirs and hash(ours) == hash(theirs)
        assert type(ours).class_key() == theirs.func.class_key()  # kept per class, SymPy's value
        for args in [(t,), (t, 2), ((t, 3),), (t, t), (t, 0), (s,), (t, s)]:
            assert ours.diff(*args) == theirs.diff(*args), args
        assert ours.diff(t).diff(t) == theirs.diff(t, 2)
        assert sp.diff(ours * t, t) == sp.diff(theirs * t, t)
    assert pickle.loads(pickle.dumps(x[0].diff(t, 2))) == plain[0].diff(t, 2)
    (k,) = sm.parameters("k")
    assert sm.Model(chain(x, k)) == sm.Model(chain(plain, k))


# --------------------------------------------------------------------------- vectorised code


@pytest.fixture(scope="module")
def chain16():
    n = 8  # 16 states: the smallest model vectorise=None vectorises
    x = sm.states("x", n=n)
    (k,) = sm.parameters("k")
    return sm.Model(chain(x, k), defaults={k: 1.5}, name="chain"), x, k


def test_chain_compiles_to_vector_operations(chain16):
    model, _, _ = chain16
    vf = sm.compile(model)
    assert isinstance(vf.program, VectorProgram)
    assert len(vf.program.groups) == 3  # velocities, the two wall masses, the interior masses
    src = vf.source
    assert "y[8:16]" in src and "y[0:6]" in src and "y[2:8]" in src  # the stencil as slices
    assert len(src.splitlines()) < 30  # a few vector operations, not one expression per state
    scalar = sm.compile(model, vectorize=False)
    assert not isinstance(scalar.program, VectorProgram)
    rng = np.random.default_rng(0)
    for _ in range(3):
        y, p = rng.normal(size=16), rng.normal(size=1)
        np.testing.assert_allclose(vf(0.0, y, p), scalar(0.0, y, p), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(vf(0.0, y, p), stencil(y, p[0], 8), rtol=1e-13, atol=1e-13)


@pytest.mark.slow
def test_vectorised_solve_equals_the_scalar_code(chain16):
    model, x, _ = chain16
    ics = {**{xi: float(np.sin(np.pi * (i + 1) / 9)) for i, xi in enumerate(x)}}
    ics.update({xi.diff(t): 0.0 for xi in x})
    traj = sm.simulate(model, ics=ics, t_span=(0.0, 5.0), saveat=11, solver="tsit5", rtol=1e-9, atol=1e-11)
    scalar = sm.compile(model, vectorize=False)
    y0 = jnp.asarray([ics[s] for s in model.states])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(scalar),
        diffrax.Tsit5(),
        0.0,
        5.0,
        None,
        y0,
        args=jnp.array([1.5]),
        saveat=diffrax.SaveAt(ts=jnp.linspace(0.0, 5.0, 11)),
        stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-11),
    )
    assert sol.ys is not None
    np.testing.assert_allclose(np.asarray(traj.y), np.asarray(sol.ys), rtol=1e-7, atol=1e-9)


@pytest.mark.slow
def test_vectorised_code_is_jittable_differentiable_and_batches(chain16):
    model, _, _ = chain16
    vf, scalar = sm.compile(model), sm.compile(model, vectorize=False)
    y, p = jnp.linspace(-1.0, 1.0, 16), jnp.array([0.7])
    jac = jax.jacfwd(lambda y_: vf(0.0, y_, p))(y)
    np.testing.assert_allclose(jac, jax.jacfwd(lambda y_: scalar(0.0, y_, p))(y), atol=1e-14)
    batch = jnp.stack([y, 2 * y])
    np.testing.assert_allclose(jax.vmap(lambda y_: vf(0.0, y_, p))(batch)[1], scalar(0.0, 2 * y, p))


@pytest.mark.slow
def test_heterogeneous_and_interleaved_structure_matches_scalar_code():
    # Per-member constants (an array column), parameters that vary along the group (a gather),
    # scattered indices, and outputs so interleaved that a permutation assembles them.
    n = MAX_RUNS + 6
    s = sm.states("s", n=n)
    c = sm.parameters("c", n=3)
    exprs = []
    for i in range(n):
        if i % 2:
            exprs.append(sp.sin(s[(7 * i) % n]) * c[i % 3] + sp.Float(1 + i / 7) * s[i] ** 2)
        else:
            exprs.append(sp.Piecewise((s[i] - t, s[(i + 3) % n] > 0), (sp.exp(-s[i]) / c[0], True)))
    vec = build_program(exprs, s, c, vectorize=True)
    ref = build_program(exprs, s, c, vectorize=False)
    assert isinstance(vec, VectorProgram) and len(vec.groups) == 2 and vec.perm is not None
    rng = np.random.default_rng(1)
    y, p = jnp.asarray(rng.normal(size=n)), jnp.asarray(rng.uniform(0.5, 2.0, size=3))
    np.testing.assert_allclose(vec.stacked(0.3, y, p, {}), ref.stacked(0.3, y, p, {}), rtol=1e-12)
    assert "jnp.concatenate" in vec.source()


def test_small_or_irregular_models_keep_scalar_code():
    assert not isinstance(sm.compile(sm.zoo.lotka_volterra()).program, VectorProgram)
    s = sm.states("s", n=20)
    irregular = [s[i] ** (i + 1) for i in range(20)]  # no two outputs share a shape
    assert not isinstance(build_program(irregular, s, (), vectorize=None), VectorProgram)
    assert isinstance(build_program(irregular, s, (), vectorize=True), VectorProgram)


def test_vectorize_true_refuses_neural_terms():
    u, v = sm.states("u v")
    nn = sm.neural("U", inputs=[u], outputs=1, width=4, depth=1)
    model = sm.Model([sp.Eq(u.diff(t), nn[0]), sp.Eq(v.diff(t), -v)])
    with pytest.raises(sm.UnsupportedFunctionError, match="vectorize=True: expressions with neural terms"):
        sm.compile(model, vectorize=True)
    assert sm.compile(model, vectorize=None)(0.0, jnp.ones(2), jnp.zeros(0)).shape == (2,)


# --------------------------------------------------------------------------- size


@pytest.mark.slow
def test_a_thousand_state_model_builds_and_compiles_to_a_few_groups():
    # A correctness test at full size (no timing assertion): construction and compilation of
    # 1000 states must be linear, or this would take minutes.
    n = 500
    x = sm.states("x", n=n)
    (k,) = sm.parameters("k")
    model = sm.Model(chain(x, k, evaluate=False), defaults={k: 2.0})
    assert len(model.states) == 2 * n and model.params == (k,)
    assert model.rhs[x[0]] == x[0].diff(t)
    assert model.rhs[x[7].diff(t)] == k * (x[6] - 2 * x[7] + x[8]) - x[7].diff(t) / 10
    vf = sm.compile(model)
    assert isinstance(vf.program, VectorProgram) and len(vf.program.groups) == 3
    y = np.random.default_rng(2).normal(size=2 * n)
    np.testing.assert_allclose(vf(0.0, y, jnp.array([2.0])), stencil(y, 2.0, n), rtol=1e-12, atol=1e-12)
