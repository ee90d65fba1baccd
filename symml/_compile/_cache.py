"""The one cache of compiled artefacts: programs, jitted runners, Jacobians, closed-form flow maps.

A `Model` is immutable and never stores what other stages derive from it. Everything
that is expensive to build from a model (a program, a jitted solve, a closed-form flow map) is
kept here instead, keyed by the model and by what was built, under one eviction rule:

* each model's entries live exactly as long as the model (a `weakref.WeakKeyDictionary`);
  models compare structurally, so equal models share entries;
* within one model, each *kind* of artefact keeps at most `SIZES[kind]` entries and drops the
  least recently used one beyond that (a different solver, tolerance or batch shape is a new
  runner; a long parameter sweep over shapes must not grow memory without bound).

Why not `functools.lru_cache`: it would keep every model alive (strong references), and one global
size cannot tell a cheap expression program from a compiled solve of several megabytes.

>>> import symml as sm
>>> pend = sm.zoo.pendulum()
>>> calls = []
>>> build = lambda: calls.append(1) or "built"
>>> artefact(pend, "exprs", ("demo",), build), artefact(pend, "exprs", ("demo",), build), len(calls)
('built', 'built', 1)
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

#: Entries kept per model for each kind of artefact (least recently used beyond that are dropped).
SIZES: dict[str, int] = {
    "program": 4,  # the vector field's program (one per network structure)
    "exprs": 64,  # programs of observables, events, Jacobians
    "runner": 32,  # jitted numeric solves: solver x tolerances x event x batch shape
    "stiffness": 2,  # the compiled Jacobian used by solver="auto"
    "jacobian": 1,  # the exact Jacobian as dense blocks, for the Rosenbrock solver
    "structure": 2,  # what kind of ODE the model is, and what closed-form attempts found
    "flow": 8,  # closed-form flow maps (one per initial time for a driven model)
    "flow_runner": 32,  # jitted closed-form evaluations: event x save count x batch shape
    "binding": 1,  # the model's default parameter and initial values, bound once
    "first_span": 32,  # the first span each runner configuration solved (baked into it)
    "call_plan": 32,  # simulate's fast path: a runner and packed values per call structure
    "fit_runner": 16,  # compiled fit objectives
    "train_step": 8,  # compiled training steps
    "solver_fn": 16,  # compiled pure solves of sm.solver_fn
}

_STORE: weakref.WeakKeyDictionary[Any, dict[str, OrderedDict]] = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()
_MISSING = object()


def _slot(model: Any, kind: str) -> OrderedDict:
    if kind not in SIZES:
        raise KeyError(f"unknown artefact kind {kind!r}; add it to SIZES with a size")
    per_model = _STORE.get(model)
    if per_model is None:
        per_model = {}
        _STORE[model] = per_model
    slot = per_model.get(kind)
    if slot is None:
        slot = per_model[kind] = OrderedDict()
    return slot


def artefact(model: Any, kind: str, key: Hashable, build: Callable[[], T]) -> T:
    """The artefact ``kind``/``key`` of ``model``, built by ``build()`` the first time."""
    with _LOCK:
        slot = _slot(model, kind)
        value = slot.get(key, _MISSING)
        if value is not _MISSING:
            slot.move_to_end(key)
            return value
    value = build()  # outside the lock: building may compile (seconds) or recurse into the cache
    with _LOCK:
        slot = _slot(model, kind)
        slot[key] = value
        slot.move_to_end(key)
        while len(slot) > SIZES[kind]:
            slot.popitem(last=False)
    return value


def peek(model: Any, kind: str, key: Hashable, default: Any = None) -> Any:
    """The artefact if it was built already, else ``default`` (never builds)."""
    with _LOCK:
        per_model = _STORE.get(model)
        if per_model is None or kind not in per_model:
            return default
        return per_model[kind].get(key, default)


def clear(model: Any | None = None) -> None:
    """Forget the artefacts of ``model`` (of every model when ``None``)."""
    with _LOCK:
        if model is None:
            _STORE.clear()
        else:
            _STORE.pop(model, None)


def sizes(model: Any) -> dict[str, int]:
    """How many artefacts of each kind ``model`` holds (for tests and memory checks)."""
    with _LOCK:
        return {k: len(v) for k, v in _STORE.get(model, {}).items()}
