"""Special functions for closed forms, in JAX: the real branches of the Lambert W function.

``lambertw(z, k)`` solves ``w * exp(w) = z`` for real ``z``:

* ``k = 0`` (the principal branch W₀) for ``z >= -1/e``, with ``W₀ >= -1``;
* ``k = -1`` (the lower branch W₋₁) for ``-1/e <= z < 0``, with ``W₋₁ <= -1``.

Outside those domains the result is NaN (``W₋₁(0) = -inf``). Both branches are accurate to
float64 round-off, work elementwise on arrays, under ``jax.jit`` and ``jax.vmap``, and carry a
custom derivative ``W'(z) = W / (z (1 + W))`` (``= 1`` at ``z = 0`` on W₀), so ``jax.grad``
works to any order.

>>> import jax.numpy as jnp
>>> from symml._compile._special import lambertw
>>> w = lambertw(jnp.array([1.0, -0.2]))
>>> bool(jnp.allclose(w * jnp.exp(w), jnp.array([1.0, -0.2]), rtol=1e-15))
True
>>> round(float(lambertw(-0.2, k=-1)), 12)
-2.542641357774
"""

from __future__ import annotations

import functools
import math

import jax
import jax.core
import jax.numpy as jnp

__all__ = ["lambertw"]

# 1/e split into a float64 head and tail, so that z + 1/e is exact near the branch point.
_INV_E_HI = 0.36787944117144233
_INV_E_LO = -1.2428753672788363e-17

# W(z) = -1 + p - p^2/3 + ...  with p = ±sqrt(2 (e z + 1)) (+ on W0, - on W-1).
_BRANCH_SERIES = (
    -1.0,
    1.0,
    -1.0 / 3.0,
    11.0 / 72.0,
    -43.0 / 540.0,
    769.0 / 17280.0,
    -221.0 / 8505.0,
    680863.0 / 43545600.0,
    -1963.0 / 204120.0,
    226287557.0 / 37623398400.0,
    -5776369.0 / 1515591000.0,
    169709463197.0 / 69528040243200.0,
)
# Below this |p| the 11-term series alone is exact to round-off (next term ~ 1e-19).
_SERIES_ONLY = 0.05
# Below this z (i.e. |p| < ~0.8) the series is the starting guess for the iteration.
_SERIES_GUESS = -0.25
_ITERATIONS = 2
# Below this z (|p| < 0.69) the series is accurate to 4e-5 and one iteration is enough.
_ONE_STEP = -0.28


def _series(p):
    acc = jnp.full_like(p, _BRANCH_SERIES[-1])
    for c in reversed(_BRANCH_SERIES[:-1]):
        acc = acc * p + c
    return acc


def _fritsch(w, z):
    # Fritsch, Shafer & Crowley (1973): fourth-order iteration written with log(z/w), so that
    # it never overflows (z/w > 0 on both real branches).
    zn = jnp.log(z / w) - w
    one_w = 1.0 + w
    qn = 2.0 * one_w * (one_w + (2.0 / 3.0) * zn)
    en = (zn * (qn - zn)) / (one_w * (qn - 2.0 * zn))  # one division instead of three
    return w * (1.0 + en)


def _lambertw_impl(z, k: int):
    dtype = jnp.result_type(z, float)
    z = jnp.asarray(z, dtype)
    # When every point lies near the branch point (a projectile's range map, for example) the
    # series is a guess good to 4e-5 and one fourth-order step reaches round-off; otherwise
    # the general method. Each path is one fused loop; under vmap both run and the general
    # result is selected where needed.
    close, general = _PATHS[k]
    return jax.lax.cond(jnp.all(~(z >= _ONE_STEP)), close, general, z)


def _near_branch_point(z, k: int):
    """``(series guess, p, bad)``: the branch-point series, its variable, points outside the domain."""
    eps = jnp.finfo(z.dtype).eps
    # z + 1/e, exact near the branch point. The barrier stops XLA from folding the two
    # constants into one (which would round 1/e back to a double and lose the tail).
    q = jax.lax.optimization_barrier(z + _INV_E_HI) + _INV_E_LO
    # Values a few ulps below -1/e (rounding in a formula that is -1/e exactly) count as the
    # branch point itself; further below is outside the real domain.
    inside = q >= -8.0 * eps * _INV_E_HI
    p = jnp.sqrt(2.0 * math.e * jnp.maximum(q, 0.0))
    bad = ~inside if k == 0 else ~inside | (z > 0) | jnp.isnan(z)
    return _series(p if k == 0 else -p), p, bad


def _finish(w, z, near, p, bad, k: int):
    w = jnp.where(p < _SERIES_ONLY, near, w)
    if k == 0:
        w = jnp.where(z == 0, 0.0, w)
        w = jnp.where(z == jnp.inf, jnp.inf, w)
    else:
        w = jnp.where(z == 0, -jnp.inf, w)
    return jnp.where(bad | jnp.isnan(z), jnp.nan, w)


def _close(z, k: int):
    # Every z < _ONE_STEP (or NaN). Points outside the domain iterate on a stand-in, z = -0.3
    # with its exact W as the guess, and are replaced by NaN at the end.
    near, p, bad = _near_branch_point(z, k)
    safe_z = jnp.where(bad, -0.3, z)
    w = _fritsch(jnp.where(bad, -0.4894022271802149 if k == 0 else -1.7813370234216277, near), safe_z)
    return _finish(w, z, near, p, bad, k)


def _general(z, k: int):
    near, p, bad = _near_branch_point(z, k)
    if k == 0:
        safe_z = jnp.where(z < _SERIES_GUESS, 1.0, jnp.maximum(z, -0.25))
        l1 = jnp.log1p(safe_z)
        far = l1 * (1.0 - jnp.log1p(l1) / (2.0 + l1))  # Winitzki's approximation
    else:
        safe_z = jnp.where((z < 0) & (z >= _SERIES_GUESS), z, -0.5)
        l1 = jnp.log(-safe_z)
        l2 = jnp.log(-l1)
        far = l1 - l2 + l2 / l1
    guess = jnp.where(z < _SERIES_GUESS, near, far)
    # Points the iteration cannot take (0, inf, NaN, outside the domain) iterate on a harmless
    # stand-in (W0(e) = 1, W-1(-0.2)) and are replaced at the end.
    special = (z == 0) | bad | ~jnp.isfinite(z)
    safe_iter_z = jnp.where(special, math.e if k == 0 else -0.2, z)
    w = jnp.where(special, 1.0 if k == 0 else -2.5426413577735265, guess)
    for _ in range(_ITERATIONS):
        w = _fritsch(w, safe_iter_z)
    return _finish(w, z, near, p, bad, k)


# One function object per branch and path, so that JAX's trace caches hit on every call
# (eagerly too: a fresh lambda per call would recompile the conditional each time).
_PATHS = {k: (functools.partial(_close, k=k), functools.partial(_general, k=k)) for k in (0, -1)}


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _lambertw(z, k):
    return _lambertw_impl(z, k)


@_lambertw.defjvp
def _lambertw_jvp(k, primals, tangents):
    (z,) = primals
    (dz,) = tangents
    w = _lambertw(z, k)
    nonzero = z != 0
    safe_z = jnp.where(nonzero, z, 1.0)
    safe_w = jnp.where(nonzero, w, 0.0)
    # W' = W / (z (1 + W)); on W0 at z = 0 the limit is 1 (the same formula, exp(-W)/(1+W)).
    deriv = jnp.where(nonzero, safe_w / (safe_z * (1.0 + safe_w)), 1.0)
    return w, deriv * dz


def lambertw(z, k: int = 0) -> jax.Array:
    """The real Lambert W function, branch ``k`` (0: W₀, -1: W₋₁), elementwise.

    Args:
        z: real scalar or array.
        k: the branch, ``0`` or ``-1`` (a Python int: it selects the code, it is not traced).

    Returns:
        ``w`` with ``w * exp(w) == z``; NaN outside the branch's real domain
        (``z < -1/e``, or ``z > 0`` on W₋₁) and ``-inf`` for ``W₋₁(0)``.

    >>> float(lambertw(1.0))  # the omega constant
    0.5671432904097838
    >>> round(float(jax.grad(lambertw)(1.0)), 15)  # W / (z (1 + W))
    0.361896256634889
    """
    if isinstance(k, jax.core.Tracer):
        raise TypeError("lambertw: the branch k must be a Python int (0 or -1), not a traced value.")
    try:
        kk = int(k)
    except (TypeError, ValueError):
        raise TypeError(f"lambertw: the branch k must be 0 or -1, got {k!r}") from None
    if kk != k or kk not in (0, -1):
        raise ValueError(
            f"lambertw: only the real branches k = 0 (W0) and k = -1 (W-1) are available, got k = {k!r}. "
            "Other branches are complex-valued."
        )
    z = jnp.asarray(z)
    if jnp.issubdtype(z.dtype, jnp.complexfloating):
        raise TypeError(
            f"lambertw: z must be real, got dtype {z.dtype}. Only the real branches are provided."
        )
    return _lambertw(jnp.asarray(z, jnp.result_type(z, float)), kk)
