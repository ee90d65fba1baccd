"""The keyword arguments of symml 0.1's `symml.train`, accepted for one more release.

symml 0.1's ``train`` took 29 keyword arguments; they are now fields of the option objects of
`symml._train._options`. A call that still uses one of them works as before and warns
(`DeprecationWarning`) with the replacement of each; the old keywords go in symml 0.3.

Two old keywords keep their names but change their type: ``optimizer="adam"`` (a string; now
``sm.Adam(...)``) and ``checkpoint="path"`` (a path; now ``sm.Checkpoint(path, ...)``); and
``polish=700`` (a number; now ``sm.LBFGS(steps=700)``). Note ``polish=None`` now means no
polish (it meant the default before).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import os
import warnings
from collections.abc import Callable
from typing import Any

import optax

from ._options import Checkpoint, Loss, Shooting, Solve
from ._phases import LBFGS, Adam, AdamW, Optax

#: Old keyword -> what to pass instead.
REPLACEMENTS = {
    "steps": "optimizer=sm.Adam(steps=...)",
    "lr": "optimizer=sm.Adam(lr=...)",
    "schedule": "optimizer=sm.Adam(schedule=...)",
    "batch_size": "optimizer=sm.Adam(batch_size=...)",
    "max_rejected": "optimizer=sm.Adam(max_rejected=...)",
    "target_loss": "loss=sm.Loss(target_loss=...)",
    "l1": "loss=sm.Loss(l1=...)",
    "l2": "loss=sm.Loss(l2=...)",
    "solver": "solve=sm.Solve(solver=...)",
    "rtol": "solve=sm.Solve(rtol=...)",
    "atol": "solve=sm.Solve(atol=...)",
    "max_steps": "solve=sm.Solve(max_steps=...)",
    "adjoint": "solve=sm.Solve(adjoint=...)",
    "shooting": "solve=sm.Shooting(segments=...)",
    "continuity": "solve=sm.Shooting(segments, continuity=...)",
    "checkpoint_every": "checkpoint=sm.Checkpoint(path, every=...)",
    "resume": "checkpoint=sm.Checkpoint(path, resume=True)",
    "standardize": "nothing (networks put on the model with model.with_networks(...) are used as they are)",
    "optimizer": "optimizer=sm.Adam(...), sm.AdamW(...) or sm.LBFGS(...) instead of a name",
    "polish": "polish=sm.LBFGS(steps=...) instead of a number",
    "checkpoint": "checkpoint=sm.Checkpoint(path, ...) instead of a path",
}
_PHASE_FIELDS = ("steps", "lr", "schedule", "batch_size", "max_rejected")
_NAMED = {"adam": Adam, "adamw": AdamW, "lbfgs": LBFGS}


def is_old(name: str, value: Any) -> bool:
    """Whether ``name=value`` is a symml 0.1 keyword argument of ``train``."""
    if name == "optimizer":
        return isinstance(value, str)
    if name == "polish":
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if name == "checkpoint":
        return isinstance(value, (str, os.PathLike))
    return name in REPLACEMENTS


def _int(value: Any) -> Any:
    """A number as an int, as symml 0.1 converted it (anything else is left to the checks)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return int(value) if isinstance(value, float) else value


def translate(kwargs: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], bool, list[str]]:
    """New keyword arguments for a call with old ones.

    Args:
        kwargs: the call's keyword arguments, old and new.
        defaults: the defaults of the new signature.

    Returns:
        ``(new keyword arguments, standardize, old names used)``.

    Raises:
        ValueError: an unknown optimizer name, or ``resume=True`` without a checkpoint path.
    """
    old = {k: kwargs[k] for k in kwargs if is_old(k, kwargs[k])}
    new = {**defaults, **{k: v for k, v in kwargs.items() if k not in old}}

    opt = old.get("optimizer", new["optimizer"])
    if isinstance(opt, str):
        if opt.lower() not in _NAMED:
            raise ValueError(
                f"Unknown optimizer {opt!r}; pass sm.Adam(...), sm.AdamW(...), sm.LBFGS(...), "
                "sm.Optax(transformation, steps=...) or an optax.GradientTransformation."
            )
        opt = LBFGS(steps=100) if opt.lower() == "lbfgs" else _NAMED[opt.lower()]()  # 0.1's defaults
    elif isinstance(opt, optax.GradientTransformation):
        opt = Optax(opt)
    given = {k: _int(old[k]) if k != "lr" else old[k] for k in _PHASE_FIELDS if old.get(k) is not None}
    if isinstance(opt, (Adam, AdamW, Optax, LBFGS)) and given:
        names = {f.name for f in dataclasses.fields(opt)}
        opt = dataclasses.replace(
            opt, **{k: v for k, v in given.items() if k in names}
        )  # 0.1 ignored the rest
    new["optimizer"] = opt

    if "polish" in old:
        new["polish"] = LBFGS(steps=_int(old["polish"]))

    loss = new["loss"] if isinstance(new["loss"], Loss) else Loss(new["loss"])
    changes = {k: old[k] for k in ("l1", "l2", "target_loss") if old.get(k) is not None}
    new["loss"] = dataclasses.replace(loss, **changes) if changes else loss

    solve = new["solve"] if not isinstance(new["solve"], Shooting) else Solve(shooting=new["solve"])
    changes = {k: old[k] for k in ("solver", "rtol", "atol", "adjoint") if old.get(k) is not None}
    if old.get("max_steps") is not None:
        changes["max_steps"] = _int(old["max_steps"])
    if old.get("shooting"):
        changes["shooting"] = Shooting(old["shooting"], old.get("continuity", 100.0))
    new["solve"] = dataclasses.replace(solve, **changes) if changes else solve

    path = old.get("checkpoint")
    if path is None and old.get("resume"):
        raise ValueError("resume=True needs checkpoint=path, the file to continue from.")
    if path is not None:
        every = _int(old.get("checkpoint_every", 500))
        new["checkpoint"] = Checkpoint(path, every=every, resume=bool(old.get("resume", False)))
    return new, bool(old.get("standardize", True)), sorted(old)


def accept_old_keywords(run: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: the public ``train`` then also takes the old keyword arguments, translates
    them, warns, and calls ``run`` (the implementation, which takes ``standardize`` too).

    Args:
        run: the implementation behind the public function.

    Returns:
        The decorator (it keeps the public function's signature and docstring).
    """

    def decorate(train: Callable[..., Any]) -> Callable[..., Any]:
        defaults = {
            p.name: p.default
            for p in inspect.signature(train).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

        @functools.wraps(train)
        def wrapper(model: Any, data: Any, **kwargs: Any) -> Any:
            if not any(is_old(k, v) for k, v in kwargs.items()):
                return train(model, data, **kwargs)
            new, standardize, used = translate(kwargs, defaults)
            warnings.warn(
                "sm.train: the keyword arguments of symml 0.1 are deprecated and will be removed in "
                "symml 0.3; instead of " + "; ".join(f"{k}= pass {REPLACEMENTS[k]}" for k in used) + ".",
                DeprecationWarning,
                stacklevel=2,
            )
            return run(model, data, **new, standardize=standardize)

        return wrapper

    return decorate
