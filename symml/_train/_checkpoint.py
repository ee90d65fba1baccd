"""Training checkpoints: a `symml.Trained` file with a ``resume`` section.

A checkpoint is the JSON of the result so far (``sm.load`` reads it as a ``Trained``) plus the
device state of the run (the `symml._train._iteration.Carry`: parameters, optimiser and L-BFGS
state, bit-exact), the progress of each phase, the elapsed time and the options: the option
objects as JSON (`symml._train._options`), with what is trained and the seed. Resuming checks
that the options match (step counts and ``Loss.target_loss`` may change) and continues exactly
where the run stopped. Files are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax.numpy as jnp

from .. import _serialize as _io
from ._iteration import Carry, flat_host, strong
from ._optimizers import lbfgs_init
from ._result import Trained, TrainingError

#: Options (``"option.field"``) that may differ between a checkpoint and the run that resumes it.
MAY_CHANGE = ("optimizer.steps", "polish.steps", "loss.target_loss")


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.01}} -> {"optimizer.lr": 0.01}`` (the type is a field too)."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"name: old -> new"`` for each option that differs and may not change on resuming.

    >>> differences({"seed": 2, "optimizer": {"steps": 40}}, {"seed": 5, "optimizer": {"steps": 80}})
    ['seed: 2 -> 5']
    """
    a, b = _flatten(old), _flatten(new)
    names = sorted(k for k in set(a) | set(b) if k not in MAY_CHANGE and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in names]


def write(path: str | os.PathLike, trained: Trained, carry: Carry, progress: dict, options: dict) -> None:
    """Write ``trained`` and the run state.

    Args:
        path: the file.
        trained: the result so far.
        carry: the device state.
        progress: ``{done: {phase: n}, since: n, elapsed: s}``.
        options: the JSON of the run's options.
    """
    content = _io.to_json_dict(trained)
    content["resume"] = {
        "carry": _io.encode_module(carry),
        "lbfgs": carry.lb is not None,
        "done": dict(progress["done"]),
        "since": int(progress["since"]),
        "elapsed": float(progress["elapsed"]).hex(),
        "options": options,
    }
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(content, f)
    os.replace(tmp, path)


def read(path: str | os.PathLike, carry: Carry, options: dict) -> tuple[Carry, dict, Trained]:
    """The saved run state.

    Args:
        path: the checkpoint file.
        carry: the fresh state of the resuming run (its structure is the template the saved
            arrays are decoded into).
        options: the JSON of the resuming run's options, compared with the saved ones.

    Returns:
        ``(carry, progress, previous result)``.

    Raises:
        TrainingError: the file is not JSON, not a checkpoint, was written with other options, or
            does not match this model and data.
    """
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as err:
        raise TrainingError(
            f"Checkpoint {path} is not a JSON file ({err}); delete it or pass "
            "sm.Checkpoint(path, resume=False) to start afresh."
        ) from None
    state = d.get("resume") if isinstance(d, dict) else None
    if state is None:
        raise TrainingError(
            f"{path} is not a training checkpoint (no resume section); write checkpoints to another "
            "file, or pass sm.Checkpoint(path, resume=False) to overwrite it."
        )
    diff = differences(state.get("options", {}), options)
    if diff:
        raise TrainingError(
            f"Checkpoint {path} was written with different options ({', '.join(diff)}). Resume with the "
            "same options, or start afresh with sm.Checkpoint(path, resume=False)."
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
            f"Checkpoint {path} does not match this model and data ({err}); "
            "sm.Checkpoint(path, resume=False) starts afresh."
        ) from None
    if not isinstance(prev, Trained):
        raise TrainingError(f"{path} holds a {type(prev).__name__}, not a training checkpoint.")
    return strong(restored._replace(stop=jnp.zeros_like(restored.stop))), progress, prev
