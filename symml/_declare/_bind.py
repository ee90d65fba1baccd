"""The one binder: values by symbol or name become arrays in model order.

Every stage that takes user values goes through here: ``simulate`` and its closed-form path,
`symml.solver_fn`, training. Values are bound by symbol, never by position (``{g: 9.81}``,
``{x.diff(t): 3}``, names such as ``"x_t"`` work too); the model's defaults fill the rest, and
what is still missing is named in the error. Array values make ensembles: one member per
entry, stacked along a leading batch axis. Time grids (``t_span`` and ``saveat``) are read here
too, so that every solve accepts the same spellings.

Defaults are bound afresh on every call rather than cached: it costs a few microseconds (a
dict copy and one lookup per symbol), far below the dispatch of a compiled solve, and keeps the
Model free of state written by others.

>>> import symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> u, v = lv.states
>>> bind_params(lv, {"alpha": 1.0}), bind_ics(lv, {v: 2.0})
([1.0, 0.9, 1.8, 0.8], [0.44249296, 2.0])
>>> batch_shape([1.0, [1.0, 2.0, 3.0]], [0.5, 0.5])
(3,)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..errors import InvalidValueError, MissingValueError
from ._model import Model
from ._symbols import derivative_order, state_name
from ._values import check_value

__all__ = [
    "check_model",
    "check_value",
    "bind_params",
    "bind_ics",
    "bind_vector",
    "default_vector",
    "batch_shape",
    "stack",
    "stack_members",
    "pack",
    "time_grid",
    "save_grid",
]

_NUMBERS = (int, float, np.floating, np.integer)
_MISSING = object()


def _values(model: Any, values: Any, what: str, names: str) -> Mapping[Any, Any]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidValueError(
            f"{what} must be a dict by symbol or name, e.g. {what}={{{names}}}; got "
            f"{type(values).__name__}: {values!r}"[:300]
        )
    return values


# ----------------------------------------------------------------------------- by symbol or name


def check_model(model: Any, where: str) -> None:
    """Raise unless ``model`` is a `symml.Model` (a name or a path is not one).

    Raises:
        InvalidValueError: ``model`` is something else; the message says how to get a Model.
    """
    if isinstance(model, Model):
        return
    if isinstance(model, str):
        raise InvalidValueError(
            f"{where} needs a Model, got the string {model!r}. Make the Model first: "
            f"sm.zoo.get({model!r}) for a zoo model, sm.load({model!r}) for a saved one."
        )
    raise InvalidValueError(
        f"{where} needs a Model (sm.Model, sm.zoo.pendulum(), sm.load(path)), got {type(model).__name__}."
    )


def bind_params(model: Any, params: Mapping[Any, Any] | None) -> list[Any]:
    """Parameter values in ``model.params`` order: the model's defaults overridden by ``params``.

    Args:
        model: a `symml.Model`.
        params: values by parameter symbol or name (numbers, arrays for ensembles, tracers).

    Returns:
        One value per parameter, in ``model.params`` order.

    Raises:
        MissingValueError: a parameter has neither a value nor a default.
        UnknownNameError: a key is not a parameter or state of the model.
        InvalidValueError: ``model`` is not a Model, ``params`` is not a dict, or a value is
            NaN, infinite, complex or not a number.
    """
    check_model(model, "params")
    if params:
        hint = ", ".join(f"{p.name}: ..." for p in model.params) or "(the model has no parameters)"
        params = _values(model, params, "params", hint)
        given = {model.lookup(k): check_value(v, f"params value for {k}") for k, v in params.items()}
    else:
        given = {}
    defaults = model.defaults
    out, missing = [], []
    for p in model.params:
        v = given.get(p, _MISSING)
        if v is _MISSING:
            v = defaults.get(p, _MISSING)
        if v is _MISSING:
            missing.append(p)
        out.append(v)
    if missing:
        names = ", ".join(p.name for p in missing)
        raise MissingValueError(
            f"No value for parameter(s) {names} of model {model.name!r}. Pass params={{"
            + ", ".join(f"{p.name}: ..." for p in missing)
            + "} or give the model defaults."
        )
    return out


def bind_ics(model: Any, ics: Mapping[Any, Any] | None) -> list[Any]:
    """Initial values in ``model.states`` order: the model's defaults overridden by ``ics``.

    Args:
        model: a `symml.Model`.
        ics: values by state (``x``, ``x.diff(t)``) or name (``"x_t"``).

    Returns:
        One value per state, in ``model.states`` order.

    Raises:
        MissingValueError: a state has no initial value, or ``ics`` names a parameter.
        UnknownNameError: a key is not a state or parameter of the model.
        InvalidValueError: ``model`` is not a Model, ``ics`` is not a dict, or a value is NaN,
            infinite, complex or not a number.
    """
    check_model(model, "ics")
    given = {}
    if ics:
        ics = _values(model, ics, "ics", ", ".join(f"{_ic_key(s)}: ..." for s in model.states))
    for k, v in (ics or {}).items():
        s = model.lookup(k)
        if s not in model.rhs:
            raise MissingValueError(
                f"ics has a value for parameter {s}; pass parameters with params={{...}}."
            )
        given[s] = check_value(v, f"ics value for {state_name(s)}")
    # One pass in state order, one lookup per state: comparing derivative states costs
    # microseconds each, and this runs on every call of simulate.
    defaults = model.defaults
    out, missing = [], []
    for s in model.states:
        v = given.get(s, _MISSING) if given else _MISSING
        if v is _MISSING:
            v = defaults.get(s, _MISSING)
        if v is _MISSING:
            missing.append(s)
        out.append(v)
    if missing:
        names = ", ".join(state_name(s) for s in missing)
        hint = ", ".join(f"{_ic_key(s)}: ..." for s in missing)
        raise MissingValueError(
            f"No initial value for state(s) {names} of model {model.name!r}. Pass ics={{{hint}}} "
            "(states by symbol, derivative states as x.diff(t), or by name such as 'x_t')."
        )
    return out


def _ic_key(s: sp.Basic) -> str:
    if isinstance(s, sp.Derivative):
        n = derivative_order(s)
        base = s.expr.func.__name__
        return f"{base}.diff(t)" if n == 1 else f"{base}.diff(t, {n})"
    return s.func.__name__


def default_vector(model: Any, what: str) -> tuple[np.ndarray, tuple[bool, ...]]:
    """The model's defaults as a vector in model order (NaN where there is none).

    Args:
        model: a `symml.Model`.
        what: ``"params"`` (``model.params`` order) or ``"ics"`` (``model.states`` order).

    Returns:
        ``(values, known)``: the vector and, per entry, whether the model has a default.
    """
    order = _order(model, what)
    defaults = model.defaults
    values = np.array([float(defaults.get(s, np.nan)) for s in order], dtype=float).reshape(len(order))
    return values, tuple(s in defaults for s in order)


def bind_vector(model: Any, values: Any, what: str, default: jax.Array, known: Sequence[bool]) -> jax.Array:
    """Values as an array in model order, for pure (jit-able) solves such as `symml.solver_fn`.

    Args:
        model: a `symml.Model`.
        values: ``None`` (the defaults), a dict by symbol or name (missing entries from
            ``default``), or an array whose last axis is in model order.
        what: ``"params"`` or ``"ics"``.
        default: the default vector (see `default_vector`).
        known: which entries of ``default`` are real defaults.

    Returns:
        ``batch + (n,)``: array values in a dict broadcast to a batch (an ensemble).

    Raises:
        MissingValueError: an entry has neither a value nor a default.
        ValueError: a dict names a symbol of the other kind, or an array has the wrong length.
    """
    order = _order(model, what)
    if values is None:
        _require(model, [k for k, ok in zip(order, known) if not ok], what)
        return default
    if isinstance(values, Mapping):
        cols, vals = [], []
        for k, v in values.items():
            s = model.lookup(k)
            if s not in order:
                other = "ics" if what == "params" else "params"
                raise ValueError(f"{what} got a value for {s}; pass it in {other}= instead.")
            cols.append(order.index(s))
            vals.append(
                jnp.asarray(check_value(v, f"{what} value for {_name(model, s)}"), dtype=default.dtype)
            )
        _require(model, [k for j, (k, ok) in enumerate(zip(order, known)) if not ok and j not in cols], what)
        batch = jnp.broadcast_shapes(*[v.shape for v in vals]) if vals else ()
        out = jnp.broadcast_to(default, batch + default.shape)
        for c, v in zip(cols, vals):
            out = out.at[..., c].set(v)
        return out
    arr = jnp.asarray(check_value(values, what), dtype=default.dtype)
    if arr.ndim == 0 or arr.shape[-1] != len(order):
        names = ", ".join(_name(model, s) for s in order)
        raise ValueError(
            f"{what} as an array needs {len(order)} values in model order ({names}); got shape {arr.shape}."
        )
    return arr


def _order(model: Any, what: str) -> tuple:
    if what == "params":
        return model.params
    if what == "ics":
        return model.states
    raise ValueError(f"what must be 'params' or 'ics', got {what!r}")


def _name(model: Any, s: sp.Basic) -> str:
    return state_name(s) if s in model.rhs else str(s)


def _require(model: Any, missing: list, what: str) -> None:
    if missing:
        names = ", ".join(_name(model, s) for s in missing)
        raise MissingValueError(
            f"No value for {names}: pass {what}={{...}} with them or give the model defaults."
        )


# ----------------------------------------------------------------------------- ensembles


def batch_shape(pvals: Sequence[Any], yvals: Sequence[Any]) -> tuple[int, ...]:
    """The ensemble shape of bound parameter and initial values (``()`` for one solve).

    Args:
        pvals: parameter values (from `bind_params`).
        yvals: initial values (from `bind_ics`).

    Returns:
        ``()`` or ``(N,)``.

    Raises:
        ValueError: array values of different lengths, or arrays of more than one dimension.
    """
    if all(isinstance(v, (int, float)) for v in pvals) and all(isinstance(v, (int, float)) for v in yvals):
        return ()
    pshapes = [np.shape(v) for v in pvals]
    yshapes = [np.shape(v) for v in yvals]
    try:
        pbatch = np.broadcast_shapes(*pshapes) if pshapes else ()
        ybatch = np.broadcast_shapes(*yshapes) if yshapes else ()
    except ValueError:
        raise ValueError(
            f"Ensemble values must all have the same length; got shapes {pshapes + yshapes}."
        ) from None
    try:
        batch = np.broadcast_shapes(pbatch, ybatch)
    except ValueError:
        raise ValueError(
            f"Ensemble sizes differ: parameters have batch shape {pbatch}, initial values {ybatch}."
        ) from None
    if len(batch) > 1:
        raise ValueError(f"Ensemble values must be 1-D arrays (one per member); got shape {batch}.")
    return tuple(int(b) for b in batch)


def stack(values: Sequence[Any]) -> tuple[jax.Array, tuple[int, ...]]:
    """Stack scalars and arrays into ``batch + (len(values),)``, the batch from the array-valued ones.

    Raises:
        ValueError: array values of different lengths, or of more than one dimension.
    """
    arrs = [jnp.asarray(v, dtype=jnp.result_type(float)) for v in values]
    shapes = [a.shape for a in arrs]
    try:
        batch = np.broadcast_shapes(*shapes) if shapes else ()
    except ValueError:
        raise ValueError(f"Ensemble values must all have the same length; got shapes {shapes}.") from None
    if len(batch) > 1:
        raise ValueError(f"Ensemble values must be 1-D arrays (one per member); got shape {batch}.")
    if not arrs:
        return jnp.zeros(batch + (0,)), batch
    return jnp.stack([jnp.broadcast_to(a, batch) for a in arrs], axis=-1), batch


def stack_members(values: Sequence[Any], batch: tuple[int, ...], dtype: Any) -> jax.Array:
    """``batch + (len(values),)`` from values that broadcast to ``batch`` (inside a compiled solve)."""
    if not len(values):
        return jnp.zeros(batch + (0,), dtype)
    return jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype), batch) for v in values], -1)


def pack(values: Sequence[Any]) -> np.ndarray | tuple:
    """Plain numbers as one host array (one transfer to the device instead of one per value);
    arrays and tracers (ensembles, ``jax.grad``) stay as they are."""
    if all(isinstance(v, _NUMBERS) for v in values):
        return np.asarray(
            values, dtype=np.result_type(float) if jax.config.read("jax_enable_x64") else np.float32
        )
    return tuple(values)


# ----------------------------------------------------------------------------- time grids


def _count(saveat: Any) -> bool:
    return isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool)


def _no_span() -> MissingValueError:
    return MissingValueError("No time span: pass t_span=(t0, t1), or saveat as an array of times.")


def _span(t_span: Any) -> tuple[Any, Any]:
    """``(t0, t1)`` checked: two finite real numbers (tracers pass)."""
    try:
        t0, t1 = t_span
    except (TypeError, ValueError):
        raise InvalidValueError(
            f"t_span must be a pair (t0, t1), got {type(t_span).__name__}: {t_span!r}"[:300]
        ) from None
    for name, v in (("t0", t0), ("t1", t1)):
        v = check_value(v, f"t_span {name}")
        if not isinstance(v, jax.core.Tracer) and np.ndim(v) != 0:
            raise InvalidValueError(f"t_span {name} must be one number, got shape {np.shape(v)}.")
    return t0, t1


def _concrete(*values: Any) -> bool:
    return not any(isinstance(v, jax.core.Tracer) for v in values)


def _check_times(host: np.ndarray, t_span: Any) -> None:
    """Concrete saveat times: finite, monotone in the direction of ``t_span``, inside it."""
    if not np.all(np.isfinite(host)):
        raise InvalidValueError("saveat holds NaN or infinite times; pass finite times.")
    if t_span is None or not _concrete(*t_span):
        if np.any(np.diff(host) < 0):
            raise ValueError("saveat times must be non-decreasing.")
        return
    t0, t1 = float(t_span[0]), float(t_span[1])
    backwards = t1 < t0
    if np.any(np.diff(host) > 0 if backwards else np.diff(host) < 0):
        if backwards:
            raise InvalidValueError(
                f"t_span=({t0:g}, {t1:g}) runs backwards, so saveat times must decrease from t0 to t1; "
                f"got {host[:5].tolist()}{'...' if host.size > 5 else ''}."
            )
        raise ValueError("saveat times must be non-decreasing.")
    lo, hi = min(t0, t1), max(t0, t1)
    out = (host < lo) | (host > hi)
    if np.any(out):
        i = int(np.flatnonzero(out)[0])
        raise InvalidValueError(
            f"saveat time {host[i]:g} lies outside t_span=({t0:g}, {t1:g}); every saved time must be "
            "within the span. Widen t_span or drop those times."
        )


def time_grid(t_span: tuple[Any, Any] | None, saveat: Any) -> tuple[Any, Any, jax.Array]:
    """``(t0, t1, ts)`` from ``t_span`` and ``saveat`` (a count, default 200, or an array of times).

    Raises:
        MissingValueError: a count without ``t_span``.
        ValueError: a count below 1, times not 1-D or decreasing.
        InvalidValueError: ``t_span`` not a pair of finite numbers; times NaN, outside
            ``t_span`` or against its direction.
    """
    if saveat is None:
        saveat = 200
    if t_span is not None:
        t_span = _span(t_span)
    if _count(saveat):
        if t_span is None:
            raise _no_span()
        t0, t1 = t_span
        if int(saveat) < 1:
            raise ValueError(f"saveat must be a positive count or an array of times, got {saveat}")
        return t0, t1, jnp.linspace(t0, t1, int(saveat))
    ts = jnp.asarray(check_value(saveat, "saveat"), dtype=jnp.result_type(float))
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"saveat must be a count or a 1-D array of times, got shape {ts.shape}")
    if not isinstance(ts, jax.core.Tracer):
        _check_times(np.asarray(ts), t_span)
    if t_span is None:
        return ts[0], ts[-1], ts
    return t_span[0], t_span[1], ts


def save_grid(t_span: tuple[Any, Any] | None, saveat: Any) -> tuple[Any, Any, int | None, Any]:
    """``(t0, t1, n_save, ts)`` for a compiled solve: a count gives ``n_save`` (the times are made
    inside the compiled solve), an array gives ``ts``. Concrete times are checked and read on the
    host, where indexing costs nothing (a device array costs a dispatch per index); traced times
    stay traced.

    Raises:
        MissingValueError: a count without ``t_span``.
        ValueError: a count below 1, times not 1-D or decreasing.
        InvalidValueError: ``t_span`` not a pair of finite numbers; times NaN, outside
            ``t_span`` or against its direction.
    """
    if saveat is None:
        saveat = 200
    if t_span is not None:
        t_span = _span(t_span)
    if _count(saveat):
        if t_span is None:
            raise _no_span()
        if int(saveat) < 1:
            raise ValueError(f"saveat must be a positive count or an array of times, got {saveat}")
        t0, t1 = t_span
        return t0, t1, int(saveat), None
    if isinstance(saveat, jax.core.Tracer):
        t0, t1, ts = time_grid(t_span, saveat)
        return t0, t1, None, ts
    host = np.asarray(
        check_value(saveat, "saveat"), dtype=np.float64 if jax.config.read("jax_enable_x64") else np.float32
    )
    if host.ndim != 1 or host.size == 0:
        raise ValueError(f"saveat must be a count or a 1-D array of times, got shape {host.shape}")
    _check_times(host, t_span)
    t0, t1 = (host[0], host[-1]) if t_span is None else t_span
    keep = isinstance(saveat, jax.Array) and jnp.issubdtype(saveat.dtype, jnp.floating)
    return t0, t1, None, saveat if keep else host
