"""Adam on a loss of an equinox pytree, with a progress bar: the loop shared by surrogates,
encoders and estimators.

One jitted ``lax.scan`` of ``CHUNK`` steps at a time (each step draws its own key, e.g. for a
minibatch), the host updating the progress bar between chunks; the learning rate follows the
schedule of the `symml.Adam` option (the same schedule `symml.train` uses).
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

from .._train import Adam
from .._train._optimizers import learning_rate

__all__ = ["minimize_adam", "mlp", "CHUNK"]

CHUNK = 250


def mlp(n_in: int, n_out: int, width: int, depth: int, key: jax.Array) -> eqx.nn.MLP:
    """A tanh MLP (smooth, so that gradients through it are smooth too)."""
    return eqx.nn.MLP(n_in, n_out, width, depth, activation=jnp.tanh, key=key)


def minimize_adam(
    loss: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    option: Adam,
    *,
    seed: int,
    verbose: bool,
    desc: str,
) -> tuple[Any, np.ndarray]:
    """Minimise ``loss(params, key)`` over the array leaves of ``params``.

    Returns:
        ``(params, losses)``: the trained pytree and the loss of every step.
    """
    steps = int(option.steps)
    peak = option.lr
    lr: Any = peak if callable(peak) else (lambda c: learning_rate(option.schedule, c, peak, max(steps, 1)))
    opt = optax.adam(lr)
    arrays, static = eqx.partition(params, eqx.is_array)
    state = opt.init(arrays)

    @jax.jit
    def run(arrays, state, keys, live):
        def step(carry, inp):
            a, st = carry
            key, on = inp
            val, g = jax.value_and_grad(lambda a_: loss(eqx.combine(a_, static), key))(a)
            upd, st_new = opt.update(g, st, a)
            a_new = optax.apply_updates(a, upd)
            ok = on & jnp.isfinite(val)
            a_new, st_new = jax.tree_util.tree_map(lambda x, y: jnp.where(ok, x, y), (a_new, st_new), (a, st))
            return (a_new, st_new), val

        return jax.lax.scan(step, (arrays, state), (keys, live))

    base = jax.random.PRNGKey(seed)
    losses: list[float] = []
    bar = tqdm(total=steps, desc=desc, disable=not verbose)
    done = 0
    while done < steps:
        idx = jnp.arange(done, done + CHUNK)
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)
        (arrays, state), vals = run(arrays, state, keys, idx < steps)
        n = min(CHUNK, steps - done)
        losses.extend(np.asarray(vals)[:n].tolist())
        done += n
        bar.update(n)
        bar.set_postfix(loss=f"{losses[-1]:.3e}")
    bar.close()
    return eqx.combine(arrays, static), np.asarray(losses)
