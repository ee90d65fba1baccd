"""`LatentResult`: what `discover_latent` found, the networks and the latent law as a Model."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._declare._symbols import t
from ._autoencoder import decode, encode
from ._nets import jet1


@dataclasses.dataclass(frozen=True, eq=False)
class LatentResult:
    """The result of `discover_latent`.

    Attributes:
        model: the latent law as a `symml.Model` in the latent states (``z``, or ``z1, z2, ...``);
            each kept coefficient is a parameter ``c<k>`` whose default is the trained value, so
            ``sm.simulate``, ``sm.fit`` and ``sm.save`` work on it.
        encoder: the equinox network image -> latent vector.
        decoder: the equinox network latent vector -> image.
        coefficients: ``(terms, latent)`` array of the law's coefficients (zeros where cut).
        terms: the library's SymPy terms.
        latent_states: the latent states.
        order: 2 (``z'' = ...``) or 1 (``z' = ...``).
        image_shape: the shape of one frame.
        losses: the final normalised loss terms (``recon``, ``x_derivative``, ``z_derivative``).
        history: the loss per 100 steps.
        seed: the seed of this run.
        runs: with ``seeds=``, every run (this one is the best of the most frequent structure).
        candidates: the laws compared when the gauge and the terms were chosen (one latent), with
            their relative residuals on the latent path.

    Example:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> f = sm.frames(ho, {x: 1.0, v: 0.0}, np.linspace(0, 3, 30), render=sm.Blob(x=x, n=6))
        >>> short = dict(warmup=100, steps=200, refine=100, threshold_every=100)
        >>> res = sm.discover_latent(f, progress=False, **short)
        >>> res.encode(f).shape, res.decode(res.encode(f)).shape
        ((1, 30, 1), (1, 30, 6, 6))
    """

    model: Any
    encoder: Any
    decoder: Any
    coefficients: np.ndarray
    terms: tuple
    latent_states: tuple
    order: int
    image_shape: tuple
    losses: dict
    history: list
    seed: int
    runs: tuple = ()
    candidates: tuple = ()

    def encode(self, frames: Any, derivative: bool = False) -> Any:
        """Latent coordinates ``(..., latent)`` of frames ``(..., *image)`` or of a `Frames`.

        With ``derivative=True`` (a `Frames`, which carries ``dx``) also ``z'`` by the chain rule:
        the initial values a simulation of `model` needs.
        """
        z = encode(self.encoder, frames, self.image_shape)
        if not derivative:
            return z
        x = np.asarray(frames.x).reshape((-1, *self.image_shape))
        dx = np.asarray(frames.dx).reshape((-1, *self.image_shape))
        _, dz = jax.vmap(lambda a, b: jet1(self.encoder, a, b))(jnp.asarray(x), jnp.asarray(dx))
        return z, np.asarray(dz).reshape(z.shape)

    def decode(self, z: Any) -> np.ndarray:
        """Images of latent coordinates ``(..., latent)``."""
        return decode(self.decoder, z, len(self.latent_states))

    @property
    def equations(self) -> list[Any]:
        """The latent law with its numbers in place of the ``c<k>``, rounded to 4 significant digits."""
        values = {
            p: sp.Float(float(v), 4) for p, v in self.model.defaults.items() if p in set(self.model.params)
        }
        return [sp.Eq(eq.lhs, eq.rhs.subs(values)) for eq in self.model.equations]

    @property
    def active(self) -> dict[sp.Expr, list[sp.Expr]]:
        """The kept terms of each latent equation."""
        return {
            z.diff(t, self.order): [
                self.terms[i] for i in range(len(self.terms)) if self.coefficients[i, j] != 0
            ]
            for j, z in enumerate(self.latent_states)
        }

    @property
    def structure(self) -> tuple[tuple[str, ...], ...]:
        """The kept terms as strings, per equation: what several seeds are compared by."""
        return tuple(
            tuple(str(self.terms[i]) for i in range(len(self.terms)) if self.coefficients[i, j] != 0)
            for j in range(len(self.latent_states))
        )

    def report(self) -> str:
        """Losses, the equation and the active terms (and the structures found by several seeds)."""
        lines = [
            f"SINDy autoencoder (seed {self.seed}, latent {len(self.latent_states)}, order {self.order})"
        ]
        lines += [f"  {sp.sstr(eq)}" for eq in self.equations]
        lines.append("  losses: " + ", ".join(f"{k} {v:.3g}" for k, v in self.losses.items()))
        for lhs, kept in self.active.items():
            lines.append(f"  active terms of {sp.sstr(lhs)}: {', '.join(map(str, kept)) or '(none)'}")
        if self.candidates:
            lines.append("  candidates when the gauge and terms were chosen (fewest terms first):")
            lines += [f"    {c}" for c in self.candidates]
        if self.runs:
            counts: dict[Any, list[int]] = {}
            for r in self.runs:
                counts.setdefault(r.structure, []).append(r.seed)
            lines.append(f"  structures over {len(self.runs)} seeds:")
            for s, seeds in sorted(counts.items(), key=lambda kv: -len(kv[1])):
                lines.append(
                    f"    {len(seeds)} x {' ; '.join(', '.join(e) or '0' for e in s)} (seeds {seeds})"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"LatentResult({'; '.join(sp.sstr(e) for e in self.equations)})"
