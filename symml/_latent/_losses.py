"""The losses of the SINDy autoencoder: reconstruction, the two derivative terms, the L1 penalty and
the isometry term that keeps the latent coordinate proportional to arc length in image space.

Every term is divided by the mean square of what it measures (``L_z''`` by that of the encoder's
``z''``), so the weights do not depend on the images' brightness, and ``L_z''`` cannot be lowered
by merely shrinking ``z``.

Why an isometry term: a plain autoencoder's ``z`` is some monotone but bent function of the true
coordinate (on 20 pendulum swings, ``z`` against ``theta`` had R² 0.85-0.91 to a straight line,
flat where tanh units saturate), and a bent ``z`` has no sparse law: ``z = h(theta)`` obeys
``z'' = (h''/h'²) z'² + h' f``, which the polynomial library absorbs with many terms. Asking
``|z'|² = kappa |x'|²`` along the frames (``kappa`` fitted, so only the shape is constrained)
makes ``z`` arc length along the images' curve, which for a blob that moves rigidly is affine
in its position (for the pendulum's blob ``|x'|² / theta'²`` varies by 0.5 %): R² 0.9997 after
a 3000-step warm-up with weight 0.3 (0.998 with 0.1 after 1000 steps; weight 1 made the
reconstruction fourfold worse after 1000 steps). What is left, a scale and a shift, is chosen
in `_gauge`.

>>> import jax.numpy as jnp
>>> dx = jnp.asarray([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
>>> round(float(isometry(3 * jnp.linalg.norm(dx, axis=1)[:, None], dx)), 12)  # |z'| ∝ |x'|
0.0
>>> round(float(isometry(jnp.asarray([[1.0], [1.0], [1.0]]), dx)), 3)  # |z'| constant: bent
0.918
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ._nets import jet1, jets


def isometry(dz: jax.Array, dx: jax.Array) -> jax.Array:
    """Relative variance over a batch of ``|z'|² / |x'|²`` (which isometry makes constant).

    ``dz`` is ``(B, latent)``, ``dx`` ``(B, *image)``. The ratio, not the difference
    ``|z'|² - kappa |x'|²``, is compared: the difference hardly counts frames near a turning
    point, where both are small, and there the first version let ``z`` bend (``z ~ 0.73 theta
    + 0.011 theta³`` on one seed, so that ``z z'²`` and ``z³`` terms fitted better than ``sin z``).
    """
    dz2 = jnp.sum(dz**2, axis=1)
    dx2 = jnp.sum(jnp.reshape(dx, (dx.shape[0], -1)) ** 2, axis=1)
    ratio = dz2 / (dx2 + 1e-9 * jnp.mean(dx2) + 1e-300)
    return jnp.var(ratio) / (jnp.mean(ratio) ** 2 + 1e-300)


def warmup_loss(scale_x: float) -> Callable:
    """``loss(trainable, batch, lam) -> (value, parts)`` of the warm-up: reconstruction plus
    ``lam[3]`` times the isometry term; ``parts`` as in `sindy_loss` (the derivative terms 0)."""

    def loss(trainable, b, extra):
        e, d, _ = trainable
        lam = extra[1]

        def one(x, dx):
            z, dz = jet1(e, x, dx)
            return jnp.mean((d(z) - x) ** 2), dz

        rec, dz = jax.vmap(one)(b[0], b[1])
        iso = isometry(dz, b[1])
        parts = jnp.stack([rec.mean() / scale_x, 0.0, 0.0, iso])
        return parts[0] + lam[3] * iso, parts

    return loss


def sindy_loss(features: Callable, order: int, scale_x: float, scale_d: float) -> Callable:
    """``loss(trainable, batch, (mask, lam)) -> (value, parts)`` of the SINDy autoencoder.

    ``parts`` = (reconstruction, frames' derivative, latent derivative, isometry), each normalised;
    the value is ``parts[0] + lam[0] parts[1] + lam[1] parts[2] + lam[2] mean|Xi| + lam[3] parts[3]``.
    """

    def loss(trainable, b, extra):
        e, d, c = trainable
        mask, lam = extra
        coef = c * mask

        def one(*sample):
            if order == 2:
                z, dz, ddz = jets(e, *sample)
                target = ddz
                law = features(jnp.concatenate([z, dz])) @ coef
                xr, _, ddxr = jets(d, z, dz, law)
            else:
                z, dz = jet1(e, sample[0], sample[1])
                target = dz
                law = features(z) @ coef
                xr, ddxr = jet1(d, z, law)
            return (
                jnp.mean((xr - sample[0]) ** 2),
                jnp.mean((ddxr - sample[-1]) ** 2),
                jnp.mean((target - law) ** 2),
                jnp.mean(target**2),
                dz,
            )

        rec, dxl, dzl, dzs, dz = jax.vmap(one)(*b)
        iso = isometry(dz, b[1])
        parts = jnp.stack(
            [rec.mean() / scale_x, dxl.mean() / scale_d, dzl.mean() / (dzs.mean() + 1e-12), iso]
        )
        value = (
            parts[0]
            + lam[0] * parts[1]
            + lam[1] * parts[2]
            + lam[2] * jnp.mean(jnp.abs(coef))
            + lam[3] * parts[3]
        )
        return value, parts

    return loss
