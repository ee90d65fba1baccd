"""`autoencoder`: compress frames to a few latent numbers, and scan the latent size.

The scan trains one autoencoder per candidate size and reports the relative reconstruction
error ``sum (x - x_hat)² / sum (x - mean x)²`` of each, and how continuous the latent path is
along each trajectory. The suggested dimension is the smallest size whose reconstruction error
is below ``tol`` and whose latent path has no jump.

Why the continuity check: a blob on a closed curve cannot be encoded continuously by one number,
but it can be encoded discontinuously: the encoder tears the curve at one point, and with
enough training the tear falls between two sampled frames, so that every frame is reconstructed
well. A tear shows as a jump of the encoded path between consecutive frames:
``z(t_{k+1}) - z(t_k)`` against the trapezoid rule on the chain-rule velocity ``z' = J x'``. The
relative misfit (`continuity`) is about ``(h w)⁴ / 144`` for a smooth encoder (h the frame
spacing, w the motion's frequency) and of order one for a torn one.

Why the isometry term (``|z'|²`` proportional to ``|x'|²``, see `_losses`): a plain autoencoder
tears the pendulum's arc too, although an open arc has a continuous one-number code. Measured
with one latent number, 3 seeds, 3000 steps: pendulum error 0.010-0.040 with jumps 1.2-1.5,
ellipse error 0.015-0.024 with jumps 0.8-1.0, so neither the error nor the jumps told them
apart. With the term at 0.03 and 2000 steps: pendulum error 0.014-0.016, jumps 0.003-0.015
(continuous); ellipse error 0.07-0.12, jumps 0.4-0.8. Weight 0.1 slowed the pendulum (error
up to 0.14), 0.3 more (0.28-0.30 after 1500 steps).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import DataError
from ._loop import adam, as_arrays
from ._losses import isometry as iso_term
from ._nets import jet1, make_networks

JUMP = 0.05  # largest continuity misfit of a latent path without a tear (see the module's note)


@dataclasses.dataclass(frozen=True, eq=False)
class Autoencoder:
    """A trained autoencoder, and the latent-size scan it was chosen from.

    Attributes:
        encoder: the equinox network image -> latent vector.
        decoder: the equinox network latent vector -> image.
        latent: the latent size of ``encoder``/``decoder`` (the suggested one after a scan).
        error: its relative reconstruction error.
        errors: ``{latent size: relative error}`` for every size trained.
        suggested: the smallest size with an error below ``tol`` and a continuous latent path
            (the best one when none is).
        history: the loss per chunk of steps of the kept network.
        jumps: ``{latent size: continuity misfit}`` of the latent paths (see `continuity`; empty
            for trajectories of fewer than 5 frames).

    Example:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> f = sm.frames(ho, {x: 1.0, v: 0.0}, np.linspace(0, 3, 40), render=sm.Blob(x=x, n=8))
        >>> ae = sm.autoencoder(f, latent=1, steps=300, progress=False)
        >>> ae.latent, ae.encode(f).shape, ae.decode(ae.encode(f)).shape
        (1, (1, 40, 1), (1, 40, 8, 8))
    """

    encoder: Any
    decoder: Any
    latent: int
    error: float
    errors: dict[int, float]
    suggested: int
    history: list[float]
    jumps: dict[int, float] = dataclasses.field(default_factory=dict)

    def encode(self, frames: Any) -> np.ndarray:
        """Latent vectors of frames: ``(..., latent)`` for frames ``(..., *image)`` or a `Frames`."""
        return encode(self.encoder, frames, self.decoder_shape)

    def decode(self, z: Any) -> np.ndarray:
        """Images of latent vectors ``(..., latent)``."""
        return decode(self.decoder, z, self.latent)

    @property
    def decoder_shape(self) -> tuple[int, ...]:
        """The shape of one image."""
        return tuple(np.shape(self.decoder(jnp.zeros(self.latent))))

    def __repr__(self) -> str:
        scan = ", ".join(f"{k}: {v:.3g}" for k, v in self.errors.items())
        head = f"Autoencoder(latent={self.latent}, error={self.error:.3g}"
        jumps = ", ".join(f"{k}: {v:.3g}" for k, v in self.jumps.items())
        return f"{head}, scan={{{scan}}}, jumps={{{jumps}}}, suggested={self.suggested})"


def autoencoder(
    frames: Any,
    latent: int | Sequence[int] = 1,
    *,
    t: Any = None,
    network: str = "dense",
    widths: Sequence[int] = (64, 32),
    activation: str = "tanh",
    channels: int = 8,
    steps: int = 3000,
    lr: float = 3e-3,
    batch: int | None = 256,
    tol: float = 0.04,
    isometry: float = 0.03,
    seed: int = 0,
    progress: bool = True,
) -> Autoencoder:
    """Train an autoencoder on frames; with several latent sizes, scan them and keep the suggested one.

    Args:
        frames: a `Frames`, an array ``(T, *image)`` or a list of them.
        latent: the latent size, or several (``range(1, 4)``) to scan.
        t: sample times (only checked against the frames' length; a `Frames` has its own).
        network: ``"dense"`` (fully connected, default) or ``"conv"`` (two strided convolutions).
        widths: hidden widths of the encoder (the decoder mirrors them).
        activation: ``"sigmoid"``, ``"tanh"`` or ``"softplus"``.
        channels: feature maps of the convolutional network.
        steps: Adam steps per latent size.
        lr: Adam's learning rate.
        batch: frames per step (all when ``None``).
        tol: relative reconstruction error below which a latent size is good enough (and its
            latent path must not jump: a continuity misfit below `JUMP`).
        isometry: weight of the isometry term ``|z'|² proportional to |x'|²`` (see
            `discover_latent`), which needs the frames' velocities (exact in a `Frames`, estimated
            from plain arrays of at least 5 frames); 0 turns it off.
        seed: seeds the initial weights and the minibatches.
        progress: show a progress bar.

    Returns:
        An `Autoencoder` with the suggested latent size and the scan's errors.

    Raises:
        DataError: a latent size below 1 or larger than the pixels of a frame, too few frames,
            frames and ``t`` of different lengths.

    Example:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> f = sm.frames(ho, {x: 1.0, v: 0.0}, np.linspace(0, 3, 40), render=sm.Blob(x=x, n=8))
        >>> sorted(sm.autoencoder(f, latent=[1, 2], steps=200, progress=False).errors)
        [1, 2]
    """
    clock = t if t is not None else _times_for(frames)
    x, _, _, _ = as_arrays(frames, clock, need=0)
    # the continuity check needs the frames' velocities: exact in a `Frames`, else estimated
    x, dx, _, ts = as_arrays(frames, clock, need=1 if x.shape[1] >= 5 else 0)
    image = tuple(int(s) for s in x.shape[2:])
    sizes = [latent] if isinstance(latent, (int, np.integer)) else list(latent)
    if not sizes:
        raise DataError("latent is empty: pass a size (1) or sizes to scan (range(1, 4)).")
    for d in sizes:
        check_latent(d, image)
    flat = jnp.asarray(x.reshape((-1, *image)))
    flat_dx = jnp.asarray(dx.reshape((-1, *image))) if dx is not None else jnp.zeros_like(flat)
    iso_weight = float(isometry) if dx is not None else 0.0
    spread = float(jnp.sum((flat - flat.mean(0, keepdims=True)) ** 2)) or 1.0
    runs: dict[int, tuple[Any, Any, float, list[float]]] = {}
    jumps: dict[int, float] = {}
    for d in sizes:
        enc, dec = make_networks(
            image, int(d), network, widths, activation, channels, jax.random.PRNGKey(seed)
        )

        def loss(nets, b, extra):
            e, dd = nets
            z, dz = jax.vmap(lambda a, da: jet1(e, a, da))(b[0], b[1])
            rec = jnp.mean((jax.vmap(dd)(z) - b[0]) ** 2) / (spread / flat.size)
            return rec + iso_weight * iso_term(dz, b[1]), rec

        (enc, dec), _, history, _ = adam(
            (enc, dec),
            loss,
            (flat, flat_dx),
            steps=steps,
            lr=lr,
            batch=batch,
            seed=seed,
            progress=progress,
            desc=f"latent={d}",
        )
        runs[int(d)] = (
            enc,
            dec,
            float(jnp.sum((_reconstruct(enc, dec, flat) - flat) ** 2)) / spread,
            history,
        )
        if dx is not None:
            jumps[int(d)] = continuity(enc, x, dx, ts)
    errors = {d: r[2] for d, r in runs.items()}
    good = [d for d in sorted(errors) if errors[d] <= tol and jumps.get(d, 0.0) <= JUMP]
    suggested = good[0] if good else min(errors, key=errors.__getitem__)
    enc, dec, err, history = runs[suggested]
    return Autoencoder(enc, dec, suggested, err, errors, suggested, history, jumps)


def continuity(encoder: Any, x: np.ndarray, dx: np.ndarray, t: np.ndarray) -> float:
    """How far the latent path jumps between consecutive frames: the relative misfit
    ``sum |dz_k - h_k (z'_k + z'_{k+1}) / 2|² / sum |dz_k|²`` over every trajectory, with
    ``dz_k = z(t_{k+1}) - z(t_k)`` and ``z' = J x'`` (the chain rule through the encoder).

    ``x`` and ``dx`` are ``(trajectories, T, *image)``.
    """
    image = x.shape[2:]
    flat = [jnp.asarray(np.reshape(a, (-1, *image))) for a in (x, dx)]
    z, dz = jax.vmap(lambda a, b: jet1(encoder, a, b))(*flat)
    z = np.asarray(z).reshape((*x.shape[:2], -1))
    dz = np.asarray(dz).reshape(z.shape)
    h = np.diff(np.asarray(t, float))[None, :, None]
    step = z[:, 1:] - z[:, :-1]
    misfit = step - h * (dz[:, 1:] + dz[:, :-1]) / 2
    return float(np.sum(misfit**2) / (np.sum(step**2) + 1e-300))


def _reconstruct(encoder: Any, decoder: Any, x: jax.Array) -> jax.Array:
    return jax.vmap(lambda a: decoder(encoder(a)))(x)


def _times_for(frames: Any) -> Any:
    # the autoencoder ignores time: plain arrays get a dummy clock so that shapes are still checked
    if hasattr(frames, "t"):
        return frames.t
    n = len(frames[0]) if isinstance(frames, (list, tuple)) and frames else np.shape(frames)[0]
    return np.arange(n, dtype=float)


def check_latent(latent: Any, image: tuple[int, ...]) -> None:
    """Raise `DataError` unless ``latent`` is an integer from 1 to the number of pixels."""
    pixels = math.prod(image)
    if not isinstance(latent, (int, np.integer)) or isinstance(latent, bool) or latent < 1:
        raise DataError(f"latent must be an integer >= 1, got {latent!r}.")
    if latent > pixels:
        raise DataError(
            f"latent={latent} is larger than the {pixels} pixels of a frame {image}: an autoencoder "
            f"compresses; pass a latent size of at most {pixels} (usually a handful)."
        )


def encode(encoder: Any, frames: Any, image: tuple[int, ...]) -> np.ndarray:
    """Apply ``encoder`` to frames ``(..., *image)`` (or a `Frames`), keeping the leading axes."""
    x = np.asarray(frames.x if hasattr(frames, "x") else frames, dtype=float)
    if tuple(x.shape[x.ndim - len(image) :]) != image:
        raise DataError(f"frames must end with the image shape {image}, got an array of shape {x.shape}.")
    lead = x.shape[: x.ndim - len(image)]
    z = jax.vmap(encoder)(jnp.asarray(x.reshape((-1, *image))))
    return np.asarray(z).reshape((*lead, -1))


def decode(decoder: Any, z: Any, latent: int) -> np.ndarray:
    """Apply ``decoder`` to latent vectors ``(..., latent)`` (a 1-d array for ``latent=1`` is a path)."""
    z = np.asarray(z, dtype=float)
    if latent == 1 and (z.ndim == 0 or z.shape[-1] != 1):
        z = z[..., None]
    if z.shape[-1] != latent:
        raise DataError(f"z must end with the latent size {latent}, got an array of shape {z.shape}.")
    lead = z.shape[:-1]
    out = jax.vmap(decoder)(jnp.asarray(z.reshape((-1, latent))))
    return np.asarray(out).reshape((*lead, *out.shape[1:]))
