"""The Adam loop shared by `autoencoder` and `discover_latent`, and the conversion of frame inputs.

Steps run in chunks: one jitted `jax.lax.scan` over ``chunk`` optimiser steps, so Python pays
once per chunk rather than once per step (the networks here are small and a step takes tens of
microseconds; a Python loop would dominate). The progress bar and any per-chunk work
(thresholding, checkpoints) happen between chunks.

>>> import numpy as np
>>> x, dx, ddx, t = as_arrays(np.zeros((20, 4, 4)), np.linspace(0, 1, 20), need=0)
>>> x.shape, dx is None, t.shape
((1, 20, 4, 4), True, (20,))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from ..errors import DataError
from ._frames import Frames


def as_arrays(frames: Any, t: Any, need: int) -> tuple[np.ndarray, Any, Any, np.ndarray]:
    """``(x, dx, ddx, t)`` with ``x`` shaped ``(trajectories, T, *image)`` from any accepted input.

    ``frames`` is a `Frames`, one array ``(T, *image)`` or a list of such arrays (trajectories of the
    same length). Derivatives a `Frames` lacks or that plain arrays do not carry are estimated by
    central differences (second order, one-sided at the ends) when ``need`` asks for them (0: none,
    1: ``dx``, 2: ``dx`` and ``ddx``).

    Raises:
        DataError: frames and times of different lengths, fewer than 3 frames per trajectory (5
            when derivatives are estimated), trajectories of different shapes, times not increasing,
            non-finite values.
    """
    if isinstance(frames, Frames):
        x, dx, ddx = frames.x, frames.dx, frames.ddx
        if t is None:
            t = frames.t
    elif isinstance(frames, (list, tuple)):
        if not frames:
            raise DataError("frames is an empty list: pass an array (T, *image) or a list of them.")
        shapes = {np.shape(f) for f in frames}
        if len(shapes) > 1:
            raise DataError(
                f"The trajectories in frames must have the same shape (T, *image), got {sorted(shapes)}; "
                "cut them to a common length."
            )
        x, dx, ddx = np.stack([np.asarray(f, dtype=float) for f in frames]), None, None
    else:
        arr = np.asarray(frames, dtype=float)
        if arr.ndim < 2:
            raise DataError(
                f"frames must be an array (T, *image) with at least 2 dimensions, got shape {arr.shape}."
            )
        x, dx, ddx = arr[None], None, None
    if t is None:
        raise DataError("t is required with plain arrays of frames: pass the sample times (T,).")
    t = np.asarray(t, dtype=float)
    if t.ndim != 1:
        raise DataError(f"t must be a 1-d array of times, got shape {t.shape}.")
    if t.shape[0] != x.shape[1]:
        raise DataError(
            f"frames and t have different lengths: {x.shape[1]} frames per trajectory but "
            f"{t.shape[0]} times; pass one time per frame."
        )
    estimate = need >= 1 and (dx is None or (need >= 2 and ddx is None))
    minimum = 5 if estimate else 3
    if x.shape[1] < minimum:
        raise DataError(
            f"Too few frames: {x.shape[1]} per trajectory, need at least {minimum}"
            f"{' to estimate derivatives' if estimate else ''}; pass a longer recording."
        )
    if not np.all(np.diff(t) > 0):
        raise DataError("t must be strictly increasing; sort the frames by time.")
    if not np.all(np.isfinite(x)):
        raise DataError("frames contain NaN or inf; drop or fill those frames.")
    if need >= 1 and dx is None:
        dx = np.gradient(x, t, axis=1, edge_order=2)
    if need >= 2 and ddx is None:
        ddx = np.gradient(np.asarray(dx), t, axis=1, edge_order=2)
    return x, dx, ddx, t


def adam(
    trainable: Any,
    loss: Callable[[Any, Any, Any], tuple[jax.Array, jax.Array]],
    data: Any,
    *,
    steps: int,
    lr: float,
    batch: int | None,
    seed: int,
    extra: Any = None,
    chunk: int = 100,
    progress: bool = True,
    desc: str = "training",
    on_chunk: Callable[[int, Any, Any, Any, list[float]], tuple[Any, Any, bool]] | None = None,
    start: int = 0,
    opt_state: Any = None,
) -> tuple[Any, Any, list[float], Any]:
    """Minimise ``loss(trainable, batch_data, extra) -> (loss, parts)`` with Adam.

    ``data`` is a pytree of arrays sharing their first axis (the samples); each step draws a
    minibatch of ``batch`` of them (all when ``None``), seeded by ``seed``. ``on_chunk(step,
    trainable, extra, opt_state, history) -> (trainable, extra, restart)`` runs after every chunk
    (thresholding, checkpoints; ``restart`` starts Adam afresh). ``start`` and ``opt_state`` resume a run.

    Returns:
        ``(trainable, opt_state, history, extra)`` with one loss per chunk in ``history``.
    """
    opt = optax.adam(lr)
    params, static = eqx.partition(trainable, eqx.is_inexact_array)
    state = opt.init(params) if opt_state is None else opt_state
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    size = n if batch is None or batch >= n else int(batch)
    rng = np.random.default_rng(seed)

    @eqx.filter_jit
    def run(params, state, idx, data, extra):
        def step(carry, ix):
            p, s = carry
            b = jax.tree_util.tree_map(lambda a: a[ix], data)
            (value, parts), g = jax.value_and_grad(
                lambda q: loss(eqx.combine(q, static), b, extra), has_aux=True
            )(p)
            updates, s = opt.update(g, s, p)
            return (optax.apply_updates(p, updates), s), (value, parts)

        (params, state), (values, parts) = jax.lax.scan(step, (params, state), idx)
        return params, state, values[-1], jax.tree_util.tree_map(lambda a: a[-1], parts)

    history: list[float] = []
    done = start
    # the minibatch draws of the steps already taken are replayed so that a resumed run matches
    if size < n:
        for _ in range(start):
            rng.permutation(n)
    with tqdm(total=steps, initial=start, desc=desc, disable=not progress, leave=False) as bar:
        while done < steps:
            k = min(chunk, steps - done)
            if size < n:
                idx = np.stack([rng.permutation(n)[:size] for _ in range(k)])
            else:
                idx = np.broadcast_to(np.arange(n), (k, n))
            params, state, value, parts = run(params, state, jnp.asarray(idx), data, extra)
            done += k
            history.append(float(value))
            bar.update(k)
            bar.set_postfix(loss=f"{float(value):.3g}")
            if on_chunk is not None:
                current, extra, restart = on_chunk(done, eqx.combine(params, static), extra, state, history)
                params = eqx.partition(current, eqx.is_inexact_array)[0]
                # Adam's moments survive thresholding (a cut coefficient is masked in the loss, so
                # its gradient is 0), but not a change of variables of the networks' weights
                if restart:
                    state = opt.init(params)
    return eqx.combine(params, static), state, history, extra
