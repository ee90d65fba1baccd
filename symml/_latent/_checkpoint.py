"""Checkpoints of a `discover_latent` run: one ``.npz`` file of arrays, no pickle.

The file holds the trainable arrays (encoder, decoder, coefficients), Adam's state, the
thresholding mask, the step reached, the loss history and the run's options as JSON. The
structure (which array goes where) is not stored: it is rebuilt from the run's own freshly
initialised networks, so a file can only resume the run it came from, and the options are
compared first to say so clearly. Written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import DataError


def write_checkpoint(
    path: Any, trainable: Any, opt_state: Any, mask: Any, step: int, history: list, options: dict
):
    """Write the state of a run after ``step`` steps."""
    params = eqx.filter(trainable, eqx.is_inexact_array)
    arrays: dict[str, Any] = {f"p{i}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(params))}
    arrays.update({f"s{i}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(opt_state))})
    arrays.update(
        mask=np.asarray(mask),
        step=np.asarray(step),
        history=np.asarray(history, dtype=float),
        options=np.asarray(json.dumps(options, sort_keys=True)),
    )
    tmp = f"{os.fspath(path)}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_checkpoint(path: Any, trainable: Any, options: dict, lr: float) -> tuple[Any, Any, Any, int, list]:
    """``(trainable, opt_state, mask, step, history)`` from a file written by `write_checkpoint`.

    Raises:
        DataError: the file was written by a run with other options (or is not a checkpoint).
    """
    with np.load(path, allow_pickle=False) as f:
        content = {k: f[k] for k in f.files}
    if "options" not in content:
        raise DataError(
            f"{os.fspath(path)!r} is not a discover_latent checkpoint; pass another checkpoint= path."
        )
    saved = json.loads(str(content["options"]))
    if saved != json.loads(json.dumps(options, sort_keys=True)):
        diff = sorted(k for k in set(saved) | set(options) if saved.get(k) != options.get(k))
        raise DataError(
            f"The checkpoint {os.fspath(path)!r} comes from a run with other options ({', '.join(diff)}); "
            "delete it or pass another checkpoint= path."
        )
    params, static = eqx.partition(trainable, eqx.is_inexact_array)
    leaves, tree = jax.tree_util.tree_flatten(params)
    params = jax.tree_util.tree_unflatten(tree, [jnp.asarray(content[f"p{i}"]) for i in range(len(leaves))])
    state = optax.adam(lr).init(params)
    s_leaves, s_tree = jax.tree_util.tree_flatten(state)
    state = jax.tree_util.tree_unflatten(
        s_tree, [jnp.asarray(content[f"s{i}"]) for i in range(len(s_leaves))]
    )
    history = [float(v) for v in content["history"]]
    return eqx.combine(params, static), state, jnp.asarray(content["mask"]), int(content["step"]), history
