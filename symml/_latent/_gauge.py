"""Choosing the latent gauge: the affine map of ``z`` under which the law is sparsest.

An autoencoder's latent coordinate is only defined up to an invertible map; after the
reconstruction warm-up, ``z`` is close to an affine function ``a q + b`` of the true coordinate.
A polynomial law keeps its form under affine maps, but a library term such as ``sin z`` does not:
``z'' = -w² sin z`` holds only for ``z = ±theta``. Gradient descent moves the scale of ``z`` only
slowly (every loss but the law's is indifferent to it), so instead the gauge is chosen outright:
for a grid of scales and shifts of the standardised latent path, sequentially thresholded
least squares fits the law, and the candidate with the best Bayesian information criterion
(residual against the number of terms) wins. The map is then folded into the encoder's last
layer and the decoder's first, so that the networks compute the new ``z`` and nothing else
changes. For ``latent > 1`` each coordinate is only standardised (a grid over several
coordinates would be a product of grids).

>>> import jax.numpy as jnp
>>> theta = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
>>> [round(float(c), 4) for c in stlsq(theta, jnp.asarray([2.0, 0.01, 2.01]), 0.1)]
[2.005, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._nets import ConvDecoder, ConvEncoder

SCALES = np.geomspace(0.2, 5.0, 33)  # times the standard deviation of the latent path
SHIFTS = np.linspace(-np.pi, np.pi, 25)
THRESHOLDS = np.geomspace(0.01, 30.0, 16)  # the path of cuts along which the BIC picks the law


def stlsq(theta: jax.Array, y: jax.Array, threshold: float, iterations: int = 10) -> jax.Array:
    """Sequentially thresholded least squares: ``y ~ theta @ c`` with ``|c_k| < threshold`` cut."""
    k = theta.shape[1]
    gram, rhs = theta.T @ theta, theta.T @ y
    eye = jnp.eye(k)
    ridge = 1e-10 * (jnp.trace(gram) / k + 1.0)

    def solve(mask):
        m = jnp.diag(mask)
        a = m @ gram @ m + (eye - m) + ridge * eye
        return mask * jnp.linalg.solve(a, mask * rhs)

    coef = solve(jnp.ones(k))
    for _ in range(iterations):
        coef = solve((jnp.abs(coef) >= threshold).astype(coef.dtype))
    return coef


def ridge(theta: jax.Array, y: jax.Array, strength: float = 1e-3) -> jax.Array:
    """Ridge least squares ``y ~ theta @ c`` (``strength`` times the mean diagonal of the Gram matrix):
    a library's terms are nearly collinear on a short path, and plain least squares then starts the
    law from huge cancelling coefficients that wreck the first steps of training."""
    gram = theta.T @ theta
    reg = strength * jnp.trace(gram) / gram.shape[0]
    return jnp.linalg.solve(gram + reg * jnp.eye(gram.shape[0]), theta.T @ y)


def choose_gauge(
    path: tuple[jax.Array, ...],
    features: Callable[[jax.Array], jax.Array],
    order: int,
    allowed: jax.Array | None = None,
) -> tuple[float, float, jax.Array]:
    """``(alpha, beta, coef)``: the map ``z -> alpha z + beta`` of a one-dimensional latent path
    ``(z, z', [z''])`` (each ``(N, 1)``) with the best-scoring sparse law, and that law's coefficients.

    Each candidate map is scored by the best BIC along a path of thresholds (`THRESHOLDS`).
    ``allowed`` (0/1 per library term) restricts the terms the law may use.
    """
    z = path[0][:, 0]
    keep = jnp.ones_like(features(jnp.zeros(order))) if allowed is None else jnp.asarray(allowed)
    mean, std = jnp.mean(z), jnp.std(z) + 1e-12
    n = z.shape[0]

    def score(scale, shift):
        alpha = scale / std
        beta = shift - alpha * mean
        moved = [alpha * p[:, 0] for p in path]
        moved[0] = moved[0] + beta
        inputs = jnp.stack(moved[:order], axis=1)
        theta = jax.vmap(features)(inputs) * keep[None, :]
        target = moved[-1]

        def bic(threshold):
            coef = stlsq(theta, target, threshold)
            rss = jnp.sum((theta @ coef - target) ** 2) / (jnp.sum(target**2) + 1e-30)
            k = jnp.sum(coef != 0)
            return n * jnp.log(rss + 1e-12) + k * jnp.log(n), coef

        scores, coefs = jax.vmap(bic)(jnp.asarray(THRESHOLDS))
        best = jnp.argmin(scores)
        return scores[best], alpha, beta, coefs[best]

    grid_scale, grid_shift = np.meshgrid(SCALES, SHIFTS, indexing="ij")
    scores, alphas, betas, coefs = jax.jit(jax.vmap(score))(
        jnp.asarray(grid_scale.ravel()), jnp.asarray(grid_shift.ravel())
    )
    best = int(jnp.argmin(scores))
    return float(alphas[best]), float(betas[best]), coefs[best]


def fold(
    encoder: eqx.Module, decoder: eqx.Module, alpha: jax.Array, beta: jax.Array
) -> tuple[eqx.Module, eqx.Module]:
    """Networks computing ``z_new = alpha * z + beta`` (per coordinate) in place of ``z``."""
    alpha, beta = jnp.asarray(alpha), jnp.asarray(beta)
    last: Any = _last_linear(encoder)
    first: Any = _first_linear(decoder)
    enc = eqx.tree_at(
        lambda e: (_last_linear(e).weight, _last_linear(e).bias),
        encoder,
        (alpha[:, None] * last.weight, alpha * last.bias + beta),
    )
    dec = eqx.tree_at(
        lambda d: (_first_linear(d).weight, _first_linear(d).bias),
        decoder,
        (first.weight / alpha[None, :], first.bias - first.weight @ (beta / alpha)),
    )
    return enc, dec


def _last_linear(encoder):
    net = encoder.head if isinstance(encoder, ConvEncoder) else encoder
    return net.layers[-1]


def _first_linear(decoder):
    net = decoder.head if isinstance(decoder, ConvDecoder) else decoder
    return net.layers[0]
