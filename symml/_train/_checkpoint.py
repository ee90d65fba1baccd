"""Training checkpoints: a `symml.Trained` file with a ``resume`` section.

A checkpoint is the JSON of the result so far (``sm.load`` reads it as a ``Trained``) plus the
device state of the run (the `symml.steps.Carry`: parameters, optimiser and L-BFGS
state, bit-exact), the progress of each phase, the elapsed time and the options. Resuming
checks that the options match (step counts and ``target_loss`` may change) and continues
exactly where the run stopped. Files are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import os

import jax.numpy as jnp

from .. import _serialize as _io
from ._optimizers import lbfgs_init
from ._step import Carry, flat_host, strong
from ._trained import Trained, TrainingError

#: Options that may differ between a checkpoint and the run that resumes it.
MAY_CHANGE = ("steps", "polish", "target_loss")


def resume_options(options: dict) -> dict:
    """The options recorded for (and compared on) resuming."""
    return {k: v for k, v in options.items() if isinstance(v, (str, int, float, bool, type(None), list))}


def write(path, trained: Trained, carry: Carry, progress: dict, options: dict) -> None:
    """Write ``trained`` and the run state: ``progress = {done: {phase: n}, since: n, elapsed: s}``."""
    content = _io.to_json_dict(trained)
    content["resume"] = {
        "carry": _io.encode_module(carry),
        "lbfgs": carry.lb is not None,
        "done": dict(progress["done"]),
        "since": int(progress["since"]),
        "elapsed": float(progress["elapsed"]).hex(),
        "options": resume_options(options),
    }
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def read(path, carry: Carry, options: dict) -> tuple[Carry, dict, Trained]:
    """``(carry, progress, previous result)`` from a checkpoint; ``carry`` is the fresh state of
    the resuming run (its structure is the template the saved arrays are decoded into)."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as err:
        raise TrainingError(
            f"Checkpoint {path} is not a JSON file ({err}); delete it or pass resume=False."
        ) from None
    state = d.get("resume") if isinstance(d, dict) else None
    if state is None:
        raise TrainingError(f"{path} is not a training checkpoint (no resume section); pass resume=False.")
    old, new = state.get("options", {}), resume_options(options)
    diff = sorted(k for k in set(old) | set(new) if k not in MAY_CHANGE and old.get(k) != new.get(k))
    if diff:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
        raise TrainingError(
            f"Checkpoint {path} was written with different options ({details}). Resume with the same "
            "options, or start afresh with resume=False."
        )
    try:
        saved_lb = bool(state.get("lbfgs", carry.lb is not None))
        skeleton = carry if saved_lb else carry._replace(lb=None)
        if saved_lb and carry.lb is None:
            skeleton = carry._replace(lb=strong(lbfgs_init(flat_host(carry.theta))))
        restored = _io.decode_module(skeleton, state["carry"])
        if carry.lb is None:
            restored = restored._replace(lb=None)
        elif not saved_lb:
            restored = restored._replace(lb=carry.lb)
        prev = _io.from_json_dict({k: v for k, v in d.items() if k != "resume"})
        progress = dict(
            done={k: int(state["done"].get(k, 0)) for k in ("main", "polish")},
            since=int(state.get("since", 0)),
            elapsed=float.fromhex(state["elapsed"]),
        )
    except (_io.FileFormatError, KeyError, ValueError) as err:
        raise TrainingError(
            f"Checkpoint {path} does not match this model and data ({err}); resume=False starts afresh."
        ) from None
    return strong(restored._replace(stop=jnp.zeros_like(restored.stop))), progress, prev
