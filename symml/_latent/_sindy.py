"""`discover_latent`: the SINDy autoencoder of Champion et al. (2019), second- or first-order form.

An encoder ``z = phi(x)``, a decoder ``x ~ psi(z)`` and sparse coefficients ``Xi`` of a latent law
``z'' = Theta(z, z') Xi`` are trained together on

    L = L_recon + l1 L_x'' + l2 L_z'' + l3 |Xi|_1,

where ``z, z', z''`` come from the frames' ``x, x', x''`` through the encoder by the chain rule,
``L_z''`` compares the encoder's ``z''`` with the law's, and ``L_x''`` compares the frames' ``x''``
with the decoder's, again by the chain rule, driven by the law's ``z''``. Every term is divided by
the mean square of what it measures (``L_z''`` by that of the encoder's ``z''``), so the weights do
not depend on the images' brightness, and ``L_z''`` cannot be lowered by merely shrinking ``z``.

Coefficients below ``threshold`` are cut every ``threshold_every`` steps (sequential
thresholding); then ``refine`` steps retrain the kept terms without the L1 penalty. The law is
built from SymPy terms (the `symml.distill` libraries), so the result is a symml `Model`.

A latent space is only defined up to an invertible map: for a linear law only ``z = a q + b`` is
fixed by the data, and the frequency (the coefficient of ``z``) is what can be compared with
the truth; a ``sin z`` term fixes the scale as well (``z = ±theta``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp

from .._compile import compile_exprs
from .._declare._model import Model
from .._declare._symbols import parameters, states
from .._declare._symbols import t as time
from ..distill.library import Library, Polynomial, Trig, make_library
from ..errors import DataError
from ._autoencoder import check_latent
from ._checkpoint import read_checkpoint, write_checkpoint
from ._gauge import choose_gauge, fold, ridge
from ._loop import adam, as_arrays
from ._nets import jet1, jets, make_networks
from ._result import LatentResult


@dataclasses.dataclass(frozen=True)
class LatentWeights:
    """Weights of the SINDy autoencoder's loss terms (each term normalised, see `discover_latent`).

    Attributes:
        x: ``l1``, of the frames' derivative predicted through the decoder.
        z: ``l2``, of the latent derivative predicted by the law.
        l1: ``l3``, of the mean absolute coefficient.

    Example:
        >>> import symml as sm
        >>> sm.LatentWeights(x=1.0)
        LatentWeights(x=1.0, z=0.5, l1=0.001)
    """

    x: float = 0.5
    z: float = 0.5
    l1: float = 1e-3


def discover_latent(
    frames: Any,
    t: Any = None,
    *,
    latent: int = 1,
    order: int = 2,
    library: Any = None,
    seed: int = 0,
    seeds: int | Sequence[int] | None = None,
    network: str = "dense",
    widths: Sequence[int] = (64, 32),
    activation: str = "tanh",
    warmup: int = 1000,
    steps: int = 4000,
    refine: int = 1000,
    lr: float = 2e-3,
    batch: int | None = 256,
    threshold: float = 0.1,
    threshold_every: int = 500,
    weights: LatentWeights = LatentWeights(),
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
) -> LatentResult:
    """Learn latent coordinates of frames and a sparse law for them (a SINDy autoencoder).

    Args:
        frames: a `Frames` (with exact derivatives), an array ``(T, *image)`` or a list of them
            (derivatives then estimated by central differences: give clean, finely sampled frames).
        t: the sample times ``(T,)`` (a `Frames` carries its own).
        latent: the latent dimension.
        order: 2 for ``z'' = Theta(z, z') Xi`` (default), 1 for ``z' = Theta(z) Xi``.
        library: a `symml.distill.Library` or a spec for `symml.distill.make_library` (degree 4);
            default: polynomials of the latent states to degree 4 plus ``sin`` of each of them.
        seed: seeds the initial weights and the minibatches (a run is reproducible by its seed).
        seeds: run several seeds (a count, or the seeds) and keep the most frequent structure.
        network: ``"dense"`` (fully connected, default) or ``"conv"``.
        widths: hidden widths of the encoder (the decoder mirrors them).
        activation: ``"sigmoid"``, ``"tanh"`` or ``"softplus"`` (smooth: the networks are
            differentiated twice).
        warmup: Adam steps of the autoencoder alone (reconstruction loss), after which the
            coefficients start from the least-squares law of the encoder's latent path
            (a multiple of 100).
        steps: Adam steps with the whole loss, the L1 penalty and thresholding.
        refine: further steps on the kept terms without the penalty.
        lr: Adam's learning rate.
        batch: frames per step (all when ``None``).
        threshold: coefficients with a smaller magnitude are cut.
        threshold_every: steps between cuts (a multiple of 100).
        weights: the loss weights (`LatentWeights`).
        checkpoint: a file (``.npz``) written every ``threshold_every`` steps; a run started with
            an existing file resumes from it (same options and seed).
        progress: show a progress bar.

    Returns:
        A `LatentResult`: ``.model`` (a `symml.Model` in the latent states), ``.encode``,
        ``.decode``, ``.report()``.

    Raises:
        DataError: frames and ``t`` of different lengths, too few frames, a latent size larger
            than the pixels, a bad ``order``, ``threshold_every`` or ``seeds``.

    Example:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> f = sm.frames(ho, {x: 1.0, v: 0.0}, np.linspace(0, 3, 30), render=sm.Blob(x=x, n=6))
        >>> short = dict(warmup=100, steps=200, refine=100, threshold_every=100)
        >>> res = sm.discover_latent(f, latent=1, progress=False, **short)
        >>> res.model.states
        (z(t), Derivative(z(t), t))
    """
    if order not in (1, 2):
        raise DataError(f"order must be 1 (z' = f(z)) or 2 (z'' = f(z, z')), got {order!r}.")
    for name, value in (
        ("warmup", warmup),
        ("steps", steps),
        ("refine", refine),
        ("threshold_every", threshold_every),
    ):
        if (
            not isinstance(value, (int, np.integer))
            or value < (1 if name == "threshold_every" else 0)
            or value % 100
        ):
            raise DataError(f"{name} must be a multiple of 100 (steps run in chunks of 100), got {value!r}.")
    x, dx, ddx, t = as_arrays(frames, t, need=order)
    image = tuple(int(s) for s in x.shape[2:])
    check_latent(latent, image)
    if seeds is not None:
        return _many(
            frames,
            t,
            seeds,
            dict(
                latent=latent,
                order=order,
                library=library,
                network=network,
                widths=widths,
                activation=activation,
                warmup=warmup,
                steps=steps,
                refine=refine,
                lr=lr,
                batch=batch,
                threshold=threshold,
                threshold_every=threshold_every,
                weights=weights,
                progress=progress,
            ),
        )
    zs = states(" ".join(["z"] if latent == 1 else [f"z{i + 1}" for i in range(latent)]))
    template = Model([sp.Eq(z.diff(time, order), 0 * z) for z in zs], name="latent")
    inputs = list(template.states)
    lib = _library(library)
    terms = lib.terms(inputs)
    theta = compile_exprs(template, terms, title="latent_library")
    none = jnp.zeros(0)

    def features(zvec):
        return theta(jnp.zeros(()), zvec, none)

    n = x.shape[0] * x.shape[1]
    data = tuple(jnp.asarray(a.reshape((n, *image))) for a in ((x, dx) if order == 1 else (x, dx, ddx)))
    scale_x = float(jnp.mean((data[0] - data[0].mean(0, keepdims=True)) ** 2)) or 1.0
    scale_d = float(jnp.mean(data[-1] ** 2)) or 1.0
    enc, dec = make_networks(image, latent, network, widths, activation, 8, jax.random.PRNGKey(seed))
    xi = jnp.ones((len(terms), latent))
    w = weights

    def latent_path(e, sample):
        # (z, z', z'') of the encoder, or (z, z') for order 1, by the chain rule
        return jets(e, *sample) if order == 2 else jet1(e, sample[0], sample[1])

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
                z, target = jet1(e, sample[0], sample[1])
                law = features(z) @ coef
                xr, ddxr = jet1(d, z, law)
            return (
                jnp.mean((xr - sample[0]) ** 2),
                jnp.mean((ddxr - sample[-1]) ** 2),
                jnp.mean((target - law) ** 2),
                jnp.mean(target**2),
            )

        rec, dxl, dzl, dzs = jax.vmap(one)(*b)
        parts = jnp.stack([rec.mean() / scale_x, dxl.mean() / scale_d, dzl.mean() / (dzs.mean() + 1e-12)])
        value = parts[0] + lam[0] * parts[1] + lam[1] * parts[2] + lam[2] * jnp.mean(jnp.abs(coef))
        return value, parts

    def start_law(e, d):
        # after the warm-up: z standardised, and the least-squares law of the whole library
        path = jax.vmap(lambda *a: latent_path(e, a))(*data)
        mean, std = path[0].mean(0), path[0].std(0) + 1e-12
        e, d = fold(e, d, 1 / std, -mean / std)
        path = jax.vmap(lambda *a: latent_path(e, a))(*data)
        inputs = jnp.concatenate(path[:-1], axis=1) if order == 2 else path[0]
        return e, d, ridge(jax.vmap(features)(inputs), path[-1])

    def select_law(e, d, mask_now):
        # before the refinement (one latent): the gauge of z with the sparsest law (see _gauge);
        # its terms, among those thresholding kept, are the ones refined
        path = jax.vmap(lambda *a: latent_path(e, a))(*data)
        alpha, beta, coef = choose_gauge(path, features, order, allowed=mask_now[:, 0])
        e, d = fold(e, d, jnp.asarray([alpha]), jnp.asarray([beta]))
        return (e, d, coef[:, None]), (coef != 0)[:, None].astype(mask_now.dtype)

    def schedule(done):
        # (weights of L_x, L_z, L1) after ``done`` steps, and whether to cut small coefficients now
        if done < warmup:
            return jnp.zeros(3), False
        since = done - warmup
        cut = 0 < since <= steps and since % threshold_every == 0
        return jnp.asarray([w.x, w.z, w.l1 if since < steps else 0.0]), cut

    mask = jnp.ones_like(xi)
    trainable: Any = (enc, dec, xi)
    start, opt_state, old = 0, None, []
    options = dict(
        seed=seed,
        latent=latent,
        order=order,
        warmup=warmup,
        steps=steps,
        refine=refine,
        lr=lr,
        batch=batch,
        threshold=threshold,
        threshold_every=threshold_every,
        weights=dataclasses.asdict(w),
        terms=[str(s) for s in terms],
    )
    if checkpoint is not None and os.path.exists(checkpoint):
        trainable, opt_state, mask, start, old = read_checkpoint(checkpoint, trainable, options, lr)
    total = warmup + steps + refine

    def on_chunk(done, current, extra, state, history):
        mask_now = extra[0]
        lam, cut = schedule(done)
        restart = done == warmup or (done == warmup + steps and latent == 1)
        if done == warmup:
            current = start_law(current[0], current[1])
        if cut:
            mask_now = mask_now * (jnp.abs(current[2]) >= threshold)
        if done == warmup + steps and latent == 1:
            current, mask_now = select_law(current[0], current[1], mask_now)
        if checkpoint is not None and (done % threshold_every == 0 or done == total):
            # where the run restarts Adam, so does a run resumed from here
            saved = optax.adam(lr).init(eqx.filter(current, eqx.is_inexact_array)) if restart else state
            write_checkpoint(checkpoint, current, saved, mask_now, done, old + history, options)
        return current, (mask_now, lam), restart

    if start == 0 and warmup == 0:
        trainable = start_law(trainable[0], trainable[1])
    trainable, _, history, (mask, _) = adam(
        trainable,
        loss,
        data,
        steps=total,
        lr=lr,
        batch=batch,
        seed=seed,
        extra=(mask, schedule(start)[0]),
        progress=progress,
        desc=f"discover_latent seed={seed}",
        on_chunk=on_chunk,
        start=start,
        opt_state=opt_state,
    )
    enc, dec, xi = trainable
    coef = np.asarray(xi * mask)
    _, parts = loss(trainable, data, (mask, jnp.zeros(3)))
    return LatentResult(
        model=_law(zs, terms, coef, order),
        encoder=enc,
        decoder=dec,
        coefficients=coef,
        terms=tuple(terms),
        latent_states=tuple(zs),
        order=order,
        image_shape=image,
        losses={"recon": float(parts[0]), "x_derivative": float(parts[1]), "z_derivative": float(parts[2])},
        history=list(old) + list(history),
        seed=seed,
    )


def _library(spec: Any) -> Library:
    if spec is None:
        return Polynomial(4) + Trig(kinds=("sin",))
    if isinstance(spec, Library):
        return spec
    return make_library(spec, degree=4)


def _law(zs: Sequence[sp.Expr], terms: Sequence[sp.Expr], coef: np.ndarray, order: int) -> Model:
    """The latent law as a `Model`: one parameter ``c<k>`` per kept coefficient, its value the default."""
    active = [(i, j) for j in range(coef.shape[1]) for i in range(coef.shape[0]) if coef[i, j] != 0]
    cs = parameters(" ".join(f"c{k}" for k in range(len(active)))) if active else ()
    rhs = [sp.Integer(0)] * len(zs)
    defaults = {}
    for c, (i, j) in zip(cs, active):
        rhs[j] = rhs[j] + c * terms[i]
        defaults[c] = float(coef[i, j])
    eqs = [sp.Eq(z.diff(time, order), r + 0 * z) for z, r in zip(zs, rhs)]
    return Model(eqs, defaults=defaults, name="latent")


def _many(frames, t, seeds, options) -> LatentResult:
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise DataError(f"seeds must be a count >= 1 or a list of seeds, got {seeds!r}.")
        seeds = list(range(int(seeds)))
    seeds = list(seeds)
    if not seeds:
        raise DataError("seeds is empty: pass a count (10) or a list of seeds.")
    runs = [discover_latent(frames, t, seed=int(s), **options) for s in seeds]
    counts = collections.Counter(r.structure for r in runs)
    top = counts.most_common(1)[0][0]
    best = min((r for r in runs if r.structure == top), key=lambda r: sum(r.losses.values()))
    return dataclasses.replace(best, runs=tuple(runs))
