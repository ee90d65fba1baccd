"""`discover_latent`: the SINDy autoencoder of Champion et al. (2019), second- or first-order form.

An encoder ``z = phi(x)``, a decoder ``x ~ psi(z)`` and sparse coefficients ``Xi`` of a latent law
``z'' = Theta(z, z') Xi`` are trained together on

    L = L_recon + l1 L_x'' + l2 L_z'' + l3 |Xi|_1 + l4 L_iso,

where ``z, z', z''`` come from the frames' ``x, x', x''`` through the encoder by the chain rule,
``L_z''`` compares the encoder's ``z''`` with the law's, and ``L_x''`` compares the frames' ``x''``
with the decoder's, again by the chain rule, driven by the law's ``z''``; ``L_iso`` keeps ``z``
proportional to arc length along the images' curve (see `_losses`, which also says how every
term is normalised). The law is built from SymPy terms (the `symml.distill` libraries), so the
result is a symml `Model`.

A run has three phases:

1. ``warmup``: the autoencoder alone (reconstruction and a light isometry term);
2. ``steps``: the whole loss on the whole library, the L1 penalty, and coefficients below
   ``threshold`` cut every ``threshold_every`` steps (sequential thresholding). With one latent
   this phase straightens ``z``; at its end the gauge ``z -> a z + b`` and the law's terms are
   chosen together on the encoded path (`_gauge.select_law`, over every support of up to three
   library terms) and folded into the networks;
3. ``refine``: the kept terms without the penalty; every ``threshold_every`` steps (and at the
   end) the gauge and coefficients are refitted by least squares for those terms, and terms
   that fell below ``threshold`` are cut.

Why the gauge is chosen outright: a latent space is only defined up to an invertible map. For a
linear law only the frequency is fixed by the data, but ``z'' = -c sin z`` holds only for
``z = ±theta``, and gradient descent moves the scale of ``z`` only slowly. The first version
thresholded in the standardised gauge throughout and found the pendulum's sin law in 0 of 5
seeds; choosing the gauge with the terms, after an isometric warm-up, found it in 10 of 10
(benchmarks/latent.py; coefficients -9.45 to -9.96 against -9.81, 40-85 s a run on 2 shared
cores). Once ``sin z`` alone is kept, the refinement pulls ``z`` onto ``theta``: that law
has no other solution.
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
from ._gauge import fold, refit, ridge, select_law
from ._loop import adam, as_arrays
from ._losses import sindy_loss, warmup_loss
from ._nets import jet1, jets, make_networks
from ._result import LatentResult

# Why the isometry weight changes between phases (measured on seeds 0 and 5 of benchmarks/latent.py,
# which at weight 0.3 throughout had picked laws with z z'² terms, the mark of a bent z): weight 1
# from random networks collapses them to a constant z (the ratio's variance is then 0;
# reconstruction error 0.38-0.68); 0.3 in the warm-up is safe but leaves z bent by 6-8 % over the
# swing; 0.9 in the sparsifying steps straightened it to 3 % and both seeds picked sin z (1.0,
# the default, found it in 10 of 10 seeds); 3.0 there degraded seed 0 (residual of its best law
# 0.06 against 0.003). In the refinement the law itself fixes the coordinate and the term is
# off: a renderer that is not quite isometric (a blob cut by the frame's edge) would otherwise
# bend z against the law.
WARMUP_ISO = 0.3


@dataclasses.dataclass(frozen=True)
class LatentWeights:
    """Weights of the SINDy autoencoder's loss terms (each term normalised, see `discover_latent`).

    Attributes:
        x: ``l1``, of the frames' derivative predicted through the decoder.
        z: ``l2``, of the latent derivative predicted by the law.
        l1: ``l3``, of the mean absolute coefficient.
        iso: of the isometry term ``|z'|² = kappa |x'|²`` in the sparsifying steps (`WARMUP_ISO`
            times this in the warm-up, none in the refinement; see `symml._latent._losses`).

    Example:
        >>> import symml as sm
        >>> sm.LatentWeights(x=1.0)
        LatentWeights(x=1.0, z=0.5, l1=0.001, iso=1.0)
    """

    x: float = 0.5
    z: float = 0.5
    l1: float = 1e-3
    iso: float = 1.0


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
    warmup: int = 2000,
    steps: int = 3000,
    refine: int = 2000,
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
        warmup: Adam steps of the autoencoder alone (reconstruction and isometry), after which
            ``z`` is standardised and the coefficients start from the least-squares law of the
            encoder's latent path (a multiple of 100).
        steps: Adam steps with the whole loss, the L1 penalty and thresholding; with one latent,
            the gauge and the law's terms are then chosen together (see the module's note).
        refine: further steps on the kept terms without the penalty, with the gauge and the
            coefficients refitted every ``threshold_every`` steps.
        lr: Adam's learning rate.
        batch: frames per step (all when ``None``).
        threshold: coefficients with a smaller magnitude are cut (and, with one latent, no
            candidate law with one is chosen).
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
    terms = _library(library).terms(list(template.states))
    names = tuple(str(term) for term in terms)
    theta = compile_exprs(template, terms, title="latent_library")
    none = jnp.zeros(0)

    def features(zvec):
        return theta(jnp.zeros(()), zvec, none)

    feats = jax.jit(jax.vmap(features))
    n = x.shape[0] * x.shape[1]
    data = tuple(jnp.asarray(a.reshape((n, *image))) for a in ((x, dx) if order == 1 else (x, dx, ddx)))
    scale_x = float(jnp.mean((data[0] - data[0].mean(0, keepdims=True)) ** 2)) or 1.0
    scale_d = float(jnp.mean(data[-1] ** 2)) or 1.0
    enc, dec = make_networks(image, latent, network, widths, activation, 8, jax.random.PRNGKey(seed))
    w = weights
    loss = sindy_loss(features, order, scale_x, scale_d)

    @jax.jit
    def latent_path(e):
        # (z, z', z'') of the encoder along every frame, or (z, z') for order 1, by the chain rule
        if order == 2:
            return jax.vmap(lambda *a: jets(e, *a))(*data)
        return jax.vmap(lambda a, b: jet1(e, a, b))(data[0], data[1])

    def start_law(e, d):
        # after the warm-up: z standardised, and the least-squares law of the whole library
        path = latent_path(e)
        mean, std = path[0].mean(0), path[0].std(0) + 1e-12
        e, d = fold(e, d, 1 / std, -mean / std)
        path = latent_path(e)
        inputs = jnp.concatenate(path[:-1], axis=1) if order == 2 else path[0]
        return e, d, ridge(feats(inputs), path[-1])

    chosen: list = []

    def select(e, d):
        # after the sparsifying steps (one latent): the gauge of z and the support together (_gauge)
        best, candidates = select_law(
            [p for p in latent_path(e)], features, order, names=names, threshold=threshold
        )
        chosen[:] = candidates
        return apply_candidate(e, d, best)

    def regauge(current, mask_now):
        # during the refinement (one latent): the gauge refitted for the kept terms, coefficients
        # by least squares, and terms that fell below the threshold cut (then refitted without them)
        e, d, _ = current
        support = [i for i in range(len(terms)) if mask_now[i, 0]]
        while support:
            path = [np.asarray(p)[:, 0] for p in latent_path(e)]
            cand = refit(feats, path, order, support, 1.0, 0.0, names)
            if cand is None:
                return current, mask_now
            kept = [i for i, c in zip(cand.support, cand.coef) if abs(c) >= threshold]
            if kept == support:
                return apply_candidate(e, d, cand)
            support = kept
        zero = jnp.zeros((len(terms), 1))
        return (e, d, zero), zero

    def apply_candidate(e, d, cand):
        e, d = fold(e, d, jnp.asarray([cand.scale]), jnp.asarray([cand.shift]))
        coef = np.zeros((len(terms), 1))
        coef[list(cand.support), 0] = cand.coef
        return (e, d, jnp.asarray(coef)), jnp.asarray((coef != 0).astype(float))

    def weights_at(done):
        # (L_x, L_z, L1, isometry) weights for the steps after ``done``
        if done < warmup:
            return jnp.asarray([0.0, 0.0, 0.0, WARMUP_ISO * w.iso])
        if done < warmup + steps:
            return jnp.asarray([w.x, w.z, w.l1, w.iso])
        return jnp.asarray([w.x, w.z, 0.0, 0.0])

    trainable: Any = (enc, dec, jnp.zeros((len(terms), latent)))
    mask = jnp.ones((len(terms), latent))
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
        terms=list(names),
        network=network,
        widths=list(widths),
        activation=activation,
    )
    if checkpoint is not None and os.path.exists(checkpoint):
        trainable, opt_state, mask, start, old = read_checkpoint(checkpoint, trainable, options, lr)
    total = warmup + steps + refine
    one = latent == 1

    def on_chunk(done, current, extra, state, history):
        mask_now = extra[0]
        since = done - warmup
        restart = False
        if done == warmup:
            current, restart = start_law(current[0], current[1]), True
        elif 0 < since < steps and since % threshold_every == 0:
            mask_now = mask_now * (jnp.abs(current[2]) >= threshold)
        elif since == steps and one:
            (current, mask_now), restart = select(current[0], current[1]), True
        elif since == steps:
            mask_now = mask_now * (jnp.abs(current[2]) >= threshold)
        elif since > steps and one and ((since - steps) % threshold_every == 0 or done == total):
            (current, mask_now), restart = regauge(current, mask_now), True
        if checkpoint is not None and (done % threshold_every == 0 or done in (warmup, total)):
            # where the run restarts Adam, so does a run resumed from here
            saved = optax.adam(lr).init(eqx.filter(current, eqx.is_inexact_array)) if restart else state
            # ``history`` is the current phase's; ``earlier`` holds the warm-up's of this call
            write_checkpoint(checkpoint, current, saved, mask_now, done, old + earlier + history, options)
        return current, (mask_now, weights_at(done)), restart

    earlier: list[float] = []
    desc = f"discover_latent seed={seed}"
    if start < warmup:
        trainable, opt_state, part, (mask, _) = adam(
            trainable,
            warmup_loss(scale_x),
            data[:2],
            steps=warmup,
            lr=lr,
            batch=batch,
            seed=seed,
            extra=(mask, weights_at(start)),
            progress=progress,
            desc=f"{desc} warm-up",
            on_chunk=on_chunk,
            start=start,
            opt_state=opt_state,
        )
        earlier += part
        start = warmup
    elif start == 0:
        trainable = start_law(trainable[0], trainable[1])
    trainable, _, part, (mask, _) = adam(
        trainable,
        loss,
        data,
        steps=steps + refine,
        lr=lr,
        batch=batch,
        seed=seed + 1_000_003,  # its own stream of minibatches
        extra=(mask, weights_at(start)),
        progress=progress,
        desc=desc,
        on_chunk=lambda done, *a: on_chunk(done + warmup, *a),
        start=start - warmup,
        opt_state=opt_state,
    )
    enc, dec, xi = trainable
    coef = np.asarray(xi * mask)
    _, parts = loss(trainable, data, (mask, jnp.zeros(4)))
    return LatentResult(
        model=_law(zs, terms, coef, order),
        encoder=enc,
        decoder=dec,
        coefficients=coef,
        terms=tuple(terms),
        latent_states=tuple(zs),
        order=order,
        image_shape=image,
        losses=dict(zip(("recon", "x_derivative", "z_derivative", "isometry"), map(float, parts))),
        history=list(old) + earlier + part,
        seed=seed,
        candidates=tuple(str(c) for c in chosen),
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
