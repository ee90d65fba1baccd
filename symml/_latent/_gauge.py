"""Choosing the latent gauge and the law's terms together: the affine map of ``z`` and the sparse
support under which the latent law fits best.

An autoencoder's latent coordinate is only defined up to an invertible map. The isometry term
of `discover_latent` keeps ``z`` close to an affine function ``a q + b`` of the true coordinate
(arc length in image space); this module fixes ``a`` and ``b``. A polynomial law keeps its form
under affine maps, but a library term such as ``sin z`` does not: ``z'' = -w² sin z`` holds only
for ``z = ±theta``. Gradient descent moves the scale of ``z`` only slowly (every loss but the
law's is indifferent to it), so the gauge is chosen outright:

1. on a grid of scales and shifts of the standardised latent path, every support of at most
   `MAX_TERMS` library terms is fitted by least squares (one small solve each, from the Gram
   matrix of the grid point), and supports that need a coefficient below the threshold, or
   nearly collinear terms (``z`` and ``sin z`` on a short range cancel into ``z³``), are refused;
2. the best few supports of each size are refitted with the gauge free (Levenberg-Marquardt on
   the residual, the coefficients eliminated by least squares);
3. the smallest support whose residual is within `PARSIMONY` of the best one wins.

Why not sequentially thresholded least squares plus an information criterion (the first
version): the residual of a law on encoded frames is not noise but the encoder's own error,
which more terms can always absorb a little, so the criterion kept six to seven terms (0 of 5
seeds found ``sin z`` alone); and without the collinearity guard the best "law" at small scales
was ``-766 z + 771 sin z + 105 z³``.

The map is folded into the encoder's last layer and the decoder's first (`fold`), so that the
networks compute the new ``z`` and nothing else changes.

>>> import jax.numpy as jnp, numpy as np
>>> z = jnp.linspace(-2.0, 2.0, 50)[:, None]
>>> path = (2 * z + 1, 2 * jnp.ones_like(z), -2 * jnp.sin(z))
>>> feats = lambda v: jnp.stack([v[0], jnp.sin(v[0]), v[1] ** 2])
>>> best, _ = select_law(path, feats, order=2, names=("z", "sin z", "dz²"), threshold=0.1)
>>> best.support, round(best.scale, 3), round(best.shift, 3), np.round(best.coef, 3).tolist()
((1,), 0.5, -0.5, [-1.0])
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import least_squares

from ._nets import ConvDecoder, ConvEncoder

MAX_TERMS = 3  # supports searched exhaustively: 833 of them for the default library of 17 terms
SCALES = np.geomspace(0.25, 4.0, 21)  # times the standardised latent path
SHIFTS = np.linspace(-np.pi / 2, np.pi / 2, 13)  # a shift by π only flips the sign of a sin law
REFINE = 3  # supports of each size refitted with the gauge free
PARSIMONY = 1.5  # a support with more terms must lower the residual by more than this factor
EXACT = 1e-10  # residuals below this count as exact (noise-free paths: the floor is 0)
COLLINEAR = 1e3  # largest condition number of a support's normalised Gram matrix


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A fitted law: library term indices, the gauge ``z -> scale * z + shift`` and coefficients.

    ``residual`` is the relative mean square ``|Theta c - z''|² / |z''|²`` on the latent path.
    """

    support: tuple[int, ...]
    scale: float
    shift: float
    coef: np.ndarray
    residual: float
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        law = " + ".join(f"{c:.4g} {n}" for c, n in zip(self.coef, self.names)) or "0"
        return f"{law}  (residual {self.residual:.3g})"


def select_law(
    path: Sequence[jax.Array],
    features: Callable[[jax.Array], jax.Array],
    order: int,
    *,
    names: Sequence[str],
    threshold: float,
    allowed: Any = None,
) -> tuple[Candidate, list[Candidate]]:
    """The best gauge and sparse support of a one-dimensional latent law, and the runners-up.

    Args:
        path: ``(z, z', [z''])``, each ``(N, 1)``, of the latent coordinate along the frames.
        features: the library, a function of ``(z, [z'])`` returning one value per term.
        order: 1 (``z' = f(z)``) or 2 (``z'' = f(z, z')``).
        names: a name per library term (for reports).
        threshold: coefficients smaller than this (in the candidate's gauge) are not allowed.
        allowed: 0/1 per library term (default: all).

    Returns:
        ``(best, candidates)``: the chosen `Candidate` (gauge relative to ``path``'s own ``z``)
        and the refitted candidates of every size, best first within each size.
    """
    z = np.asarray(path[0])[:, 0]
    mean, std = float(z.mean()), float(z.std()) + 1e-12
    # the search runs on the standardised path u = (z - mean) / std
    u = [(np.asarray(p)[:, 0] - (mean if i == 0 else 0.0)) / std for i, p in enumerate(path)]
    n_terms = int(np.shape(features(jnp.zeros(order)))[0])
    keep = np.ones(n_terms, bool) if allowed is None else np.asarray(allowed, bool)
    pool = [i for i in range(n_terms) if keep[i]]
    supports = [s for k in range(1, MAX_TERMS + 1) for s in itertools.combinations(pool, k)]
    # no law: the standardised path itself, with every residual left
    empty = Candidate((), 1.0 / std, -mean / std, np.zeros(0), 1.0)
    if not supports:
        return empty, [empty]
    feats = jax.jit(jax.vmap(features))
    idx = np.array([s + (-1,) * (MAX_TERMS - len(s)) for s in supports])
    grid_s, grid_b = (a.ravel() for a in np.meshgrid(SCALES, SHIFTS, indexing="ij"))
    scores = _grid_scores(feats, u, order, grid_s, grid_b, jnp.asarray(idx), threshold)
    best_point = np.argmin(scores, axis=0)  # per support
    best_score = scores[best_point, np.arange(len(supports))]
    refined: list[Candidate] = []
    for k in range(1, MAX_TERMS + 1):
        of_size = [j for j, s in enumerate(supports) if len(s) == k and np.isfinite(best_score[j])]
        for j in sorted(of_size, key=lambda j: best_score[j])[:REFINE]:
            scale, shift = float(grid_s[best_point[j]]), float(grid_b[best_point[j]])
            cand = refit(feats, u, order, supports[j], scale, shift, names)
            if cand is not None and np.all(np.abs(cand.coef) >= threshold):
                refined.append(cand)
    if not refined:
        return empty, [empty]
    by_size = {
        k: min((c for c in refined if len(c.support) == k), key=lambda c: c.residual, default=None)
        for k in range(1, MAX_TERMS + 1)
    }
    floor = min(c.residual for c in refined)
    limit = PARSIMONY * floor + EXACT
    good = [c for _, c in sorted(by_size.items()) if c is not None and c.residual <= limit]
    best = good[0]
    ordered = sorted(refined, key=lambda c: (len(c.support), c.residual))
    # back to the gauge of the given path: z_new = scale * (z - mean) / std + shift
    return _unstandardise(best, mean, std), [_unstandardise(c, mean, std) for c in ordered]


def refit(
    feats: Callable[[jax.Array], jax.Array],
    path: Sequence[np.ndarray],
    order: int,
    support: Sequence[int],
    scale: float = 1.0,
    shift: float = 0.0,
    names: Sequence[str] = (),
) -> Candidate | None:
    """The law on ``support`` with the gauge ``z -> scale * z + shift`` refitted from the given start.

    ``path`` holds 1-d arrays ``(z, z', [z''])``. The coefficients are eliminated by least squares
    (variable projection); a faint pull towards the start keeps the gauge put where the residual
    does not depend on it (a linear law fits every scale equally well).
    Returns ``None`` when the fit fails.
    """
    support = list(support)
    z0 = [np.asarray(p, float) for p in path]
    norm = float(np.sqrt(np.mean(z0[order] ** 2))) or 1.0

    def law(p):
        a, b = np.exp(p[0]), p[1]
        moved = [a * q for q in z0]
        moved[0] = moved[0] + b
        # divided by a * norm, the residual is relative whatever the gauge; the coefficients are not
        theta = np.asarray(feats(jnp.stack(moved[:order], axis=1)))[:, support] / (a * norm)
        target = moved[order] / (a * norm)
        coef, *_ = np.linalg.lstsq(theta, target, rcond=None)
        return theta, target, coef

    def residual(p):
        theta, target, coef = law(p)
        r = (theta @ coef - target) / np.sqrt(len(target))
        return np.concatenate([r, 1e-3 * (p - start)])

    start = np.array([np.log(scale), shift])
    try:
        fit = least_squares(residual, start, method="lm", max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    if not np.all(np.isfinite(fit.x)):
        return None
    theta, target, coef = law(fit.x)
    # the gauge moved off the grid point, where the terms may have become nearly collinear
    sv = np.linalg.svd(theta / (np.linalg.norm(theta, axis=0) + 1e-300), compute_uv=False)
    if not sv[-1] > 0 or (sv[0] / sv[-1]) ** 2 > COLLINEAR:
        return None
    rel = float(np.mean((theta @ coef - target) ** 2) / (np.mean(target**2) + 1e-300))
    label = tuple(names[i] for i in support) if names else ()
    return Candidate(tuple(support), float(np.exp(fit.x[0])), float(fit.x[1]), coef, rel, label)


def _grid_scores(feats, u, order, grid_s, grid_b, idx, threshold) -> np.ndarray:
    """Relative residuals ``(grid points, supports)``; ``inf`` where a support is refused."""
    valid = idx >= 0
    safe = jnp.where(valid, idx, 0)
    m = valid.astype(float)
    eye = jnp.eye(idx.shape[1])
    u = [jnp.asarray(p) for p in u]

    def at(scale, shift):
        moved = [scale * p for p in u]
        moved[0] = moved[0] + shift
        theta = feats(jnp.stack(moved[:order], axis=1))
        y = moved[order]
        gram, rhs, yy = theta.T @ theta, theta.T @ y, y @ y

        def one(ix, mk):
            g = gram[ix][:, ix] * mk[:, None] * mk[None, :] + jnp.diag(1 - mk)
            d = jnp.sqrt(jnp.clip(jnp.diag(g), 1e-300))
            eig = jnp.linalg.eigvalsh(g / d[:, None] / d[None, :])
            cond = eig[-1] / jnp.clip(eig[0], 1e-300)
            c = jnp.linalg.solve(g + 1e-12 * jnp.trace(g) * eye, rhs[ix] * mk) * mk
            rss = (yy - 2 * c @ (rhs[ix] * mk) + c @ g @ c) / yy
            small = jnp.any((jnp.abs(c) < threshold) & (mk > 0))
            bad = (cond > COLLINEAR) | small | ~jnp.isfinite(rss)
            return jnp.where(bad, jnp.inf, jnp.clip(rss, 0.0))

        return jax.vmap(one)(safe, m)

    return np.asarray(jax.jit(jax.vmap(at))(jnp.asarray(grid_s), jnp.asarray(grid_b)))


def _unstandardise(c: Candidate, mean: float, std: float) -> Candidate:
    return dataclasses.replace(c, scale=c.scale / std, shift=c.shift - c.scale * mean / std)


def ridge(theta: jax.Array, y: jax.Array, strength: float = 1e-3) -> jax.Array:
    """Ridge least squares ``y ~ theta @ c`` (``strength`` times the mean diagonal of the Gram matrix):
    a library's terms are nearly collinear on a short path, and plain least squares then starts the
    law from huge cancelling coefficients that wreck the first steps of training."""
    gram = theta.T @ theta
    reg = strength * jnp.trace(gram) / gram.shape[0]
    return jnp.linalg.solve(gram + reg * jnp.eye(gram.shape[0]), theta.T @ y)


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
