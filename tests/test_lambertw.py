"""JAX Lambert W (both real branches) against SciPy and mpmath; gradients; jit/vmap; codegen."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.special
import sympy as sp

import symml as sm  # noqa: F401  (float64)
from symml._analytic import to_jax
from symml._compile._special import lambertw

E = math.e


def _grid(k):
    # From the branch point to far away: log-spaced offsets from -1/e, then the bulk.
    near = -1 / E + np.logspace(-14, np.log10(0.3678), 200) * (1 / E)
    if k == 0:
        far = np.concatenate(
            [np.linspace(-0.3, 10, 300), np.logspace(1, 300, 200), np.logspace(-300, -1, 100)]
        )
    else:
        far = -np.logspace(-300, np.log10(0.36), 300)
    z = np.concatenate([near, far])
    return z[(z >= -1 / E) & ((z < 0) if k == -1 else True)]


@pytest.mark.parametrize("k", [0, -1])
def test_matches_scipy_on_both_branches(k):
    z = _grid(k)
    ours = np.asarray(jax.jit(lambda v: lambertw(v, k))(jnp.asarray(z)))
    ref = scipy.special.lambertw(z, k)
    ok = np.abs(ref.imag) == 0  # SciPy is complex just above -1/e when rounding pushes z past it
    # SciPy's W-1 loses ~half the digits within 1e-8 of the branch point (cancellation); there
    # the reference is mpmath (next test).
    ok &= (z + 1 / E) > 1e-8 / E
    assert ok.sum() > 300
    # relative to the condition number 1/|1 + W| (infinite at the branch point)
    cond = np.maximum(1.0, 1.0 / np.abs(1.0 + ref.real[ok]))
    rel = np.abs(ours[ok] - ref.real[ok]) / np.abs(ref.real[ok])
    assert np.max(rel / cond) < 5e-16
    # away from the branch point: plain relative round-off
    away = ok & (np.abs(1 + ref.real) > 0.5)
    assert np.max(np.abs(ours[away] - ref.real[away]) / np.abs(ref.real[away])) < 5e-16


@pytest.mark.parametrize("k", [0, -1])
def test_defining_equation_near_the_branch_point_in_high_precision(k):
    # Given the float z exactly, W should be exact to round-off even where scipy's answer is
    # limited by cancellation (checked against 40-digit mpmath).
    mpmath.mp.dps = 40
    z = -1 / E + np.array([1e-16, 1e-13, 1e-10, 1e-7, 1e-4, 1e-2])
    ours = np.asarray(lambertw(jnp.asarray(z), k))
    ref = np.array([float(mpmath.lambertw(mpmath.mpf(float(v)), k).real) for v in z])
    np.testing.assert_allclose(ours, ref, rtol=3e-16, atol=0)


@pytest.mark.parametrize("k", [0, -1])
@pytest.mark.slow
def test_one_step_path_near_the_branch_point_is_exact(k):
    # An array entirely below z = -0.28 takes the one-iteration path (series guess); it must
    # equal 40-digit mpmath and the general two-iteration path (taken when one far point is
    # present) to round-off, also under vmap, where both paths run and are selected per point.
    mpmath.mp.dps = 40
    z = np.concatenate([-1 / E + np.logspace(-12, -3, 20), np.linspace(-0.36, -0.2801, 40)])
    ref = np.array([float(mpmath.lambertw(mpmath.mpf(float(v)), k).real) for v in z])
    cond = np.maximum(1.0, 1.0 / np.abs(1.0 + ref))
    fast = np.asarray(jax.jit(lambda v: lambertw(v, k))(jnp.asarray(z)))
    far = -0.1 if k == -1 else 2.0
    general = np.asarray(lambertw(jnp.asarray(np.append(z, far)), k))[:-1]
    for got in (fast, general):
        assert np.max(np.abs(got - ref) / np.abs(ref) / cond) < 5e-16
    pairs = jnp.asarray(np.stack([z, np.full_like(z, far)], axis=1))  # one near, one far per row
    mapped = np.asarray(jax.vmap(lambda r: lambertw(r, k))(pairs))[:, 0]
    np.testing.assert_allclose(mapped, general, rtol=1e-15, atol=0)
    outside = np.asarray(lambertw(jnp.asarray([-0.4, -0.3, np.nan]), k))  # domain, on the fast path
    assert np.isnan(outside[0]) and not np.isnan(outside[1]) and np.isnan(outside[2])


def test_special_values_and_domain():
    assert float(lambertw(0.0)) == 0.0
    assert float(lambertw(-1 / E)) == -1.0 and float(lambertw(-1 / E, -1)) == -1.0
    assert float(lambertw(E)) == pytest.approx(1.0, rel=1e-16)
    assert float(lambertw(jnp.inf)) == jnp.inf
    assert float(lambertw(0.0, -1)) == -jnp.inf
    for bad in (-0.4, jnp.nan):
        assert np.isnan(float(lambertw(bad))) and np.isnan(float(lambertw(bad, -1)))
    assert np.isnan(float(lambertw(0.5, -1)))  # W-1 is real only on [-1/e, 0)
    assert float(lambertw(1e-300)) == pytest.approx(1e-300, rel=1e-15)


@pytest.mark.parametrize("k,zs", [(0, [-0.3, -0.01, 0.0, 0.5, 3.0, 1e5]), (-1, [-0.35, -0.2, -1e-3, -1e-30])])
def test_gradient_matches_finite_differences_and_formula(k, zs):
    f = jax.grad(lambda v: lambertw(v, k))
    for z in zs:
        w = float(lambertw(z, k))
        expected = 1.0 if z == 0 else w / (z * (1 + w))
        assert float(f(z)) == pytest.approx(expected, rel=1e-13)
        h = 1e-6 * abs(z) if z else 1e-7
        fd = (float(lambertw(z + h, k)) - float(lambertw(z - h, k))) / (2 * h)
        assert float(f(z)) == pytest.approx(fd, rel=1e-6)
    # second derivative: W'' = -W^2 (W + 2) / (z^2 (1 + W)^3)
    z = 0.7
    w = float(lambertw(z, k)) if k == 0 else None
    if w is not None:
        assert float(jax.grad(jax.grad(lambertw))(z)) == pytest.approx(
            -(w**2) * (w + 2) / (z**2 * (1 + w) ** 3)
        )


@pytest.mark.slow
def test_jit_vmap_shapes_and_float32():
    z = jnp.linspace(-0.3, 2.0, 12).reshape(3, 4)
    out = jax.vmap(lambda r: lambertw(r))(z)
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out * jnp.exp(out), z, rtol=1e-14, atol=1e-16)
    w32 = lambertw(jnp.asarray([0.5, 2.0], jnp.float32))
    assert w32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(w32), scipy.special.lambertw([0.5, 2.0]).real, rtol=1e-6)


def test_bad_branch_and_complex_input_are_errors():
    with pytest.raises(ValueError, match="only the real branches k = 0 .* and k = -1"):
        lambertw(0.5, 1)
    with pytest.raises(TypeError, match="branch k must be 0 or -1"):
        lambertw(0.5, "lower")
    with pytest.raises(TypeError, match="z must be real"):
        lambertw(jnp.asarray(0.5 + 0.1j))
    with pytest.raises(TypeError, match="branch k must be a Python int .* not a traced value"):
        jax.jit(lambertw)(0.5, -1)


def test_sympy_lambertw_compiles_through_codegen_on_both_branches():
    z = sp.Symbol("z")
    f = to_jax([sp.LambertW(z), sp.LambertW(z, -1)], [z])
    vals = np.array([-0.3, -0.1, -0.01])
    out = np.asarray(f(vals))
    np.testing.assert_allclose(out[0], scipy.special.lambertw(vals, 0).real, rtol=1e-15)
    np.testing.assert_allclose(out[1], scipy.special.lambertw(vals, -1).real, rtol=1e-15)
    assert "lambertw" in f.source
