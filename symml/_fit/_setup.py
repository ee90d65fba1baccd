"""The layout of a fit: which unknowns, their starting values and bounds, and the data arrays.

`build_problem` turns ``fit``'s arguments (model, dataset, ``params``, ``ics``, ``bounds``,
``weights``) into a `FitProblem`: the unknowns (parameters, then fitted initial values
per trajectory) in one order with their labels, unconstrained starting point and
`Bound`, and the data grouped into blocks of trajectories with the same
observables and sample count (each block is solved in one vmapped call). All argument errors
are raised here, before anything is compiled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._data import Dataset, key_name, resolve_key
from .._declare._symbols import state_name
from ..errors import DataError, MissingValueError, SymmlError
from ._bounds import Bound

__all__ = ["FitError", "FitProblem", "FitGroup", "build_problem"]


class FitError(SymmlError, ValueError):
    """A fit cannot be set up or started (bad bounds, non-finite loss at the start values)."""


@dataclasses.dataclass(frozen=True)
class FitGroup:
    """Series with the same observables and sample count, solved in one vmapped call."""

    series: tuple[int, ...]
    exprs: tuple
    n: int
    p_cols: tuple[int, ...]  # fitted parameter columns ...
    p_unk: tuple[int, ...]  # ... and their unknown indices
    ic_rows: tuple[int, ...]  # fitted initial values: member row, state column, unknown index
    ic_cols: tuple[int, ...]
    ic_unk: tuple[int, ...]


@dataclasses.dataclass
class FitProblem:
    """Unknowns (labels, symbols, unconstrained start ``start``, bounds), the data blocks
    (``groups`` and their arrays ``args``: times ``ts``, data ``Y``, weights ``W`` with zeros for
    samples that carry no information, initial values ``y0`` and parameter values ``p``), the
    known initial values per trajectory, and the number of weighted observations."""

    labels: list[str]
    unknowns: list[tuple[Any, int | None]]  # (symbol, series index or None for parameters)
    start: np.ndarray
    bounds: list[Bound]
    groups: tuple[FitGroup, ...]
    args: list[dict]
    ics: list[dict]  # per series: {state: value} known (not fitted) initial values
    n_obs: int


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple, set, frozenset)) else [x]


def build_problem(model, data: Dataset, params, ics, bounds, weights) -> FitProblem:
    """The `FitProblem` of ``fit(model, data, params, ics, bounds, weights=...)``
    (see `symml.fit` for the meaning of the arguments); raises on any inconsistency."""
    resolved = data.resolve(model)
    nser = len(resolved)
    settings = [data.settings(model, i) for i in range(nser)]
    fixed_somewhere = set().union(*[set(s) for s in settings])

    # which parameters, and their starting values
    if params is None:
        fit_params = [p for p in model.params if p not in fixed_somewhere]
        starts: dict = {}
    elif isinstance(params, Mapping):
        starts = {model.lookup(k): v for k, v in params.items()}
        fit_params = list(starts)
    else:
        fit_params = [model.lookup(k) for k in _as_list(params)]
        starts = {}
    for p in fit_params:
        if p not in model.params:
            raise FitError(f"{p} is a state, not a parameter; estimate initial values with ics='fit'.")
        if p in fixed_somewhere:
            raise FitError(
                f"Parameter {p} is both fitted and stored as a known setting of some trajectories "
                "in the data; drop it from params or from the data's known values."
            )
    defaults = model.free_values()
    for p in fit_params:
        if p not in starts:
            if p not in defaults:
                raise MissingValueError(
                    f"No starting value for parameter {p}: pass params={{{p.name}: value, ...}} or "
                    "give the model a default."
                )
            starts[p] = defaults[p]
    missing = [p for p in model.params if p not in fit_params and p not in defaults]
    for i in range(nser):
        lack = [p.name for p in missing if p not in settings[i]]
        if lack:
            raise MissingValueError(
                f"Parameter(s) {', '.join(lack)} are neither fitted nor known: give the model defaults "
                "(model.with_defaults({...})) or list them in params=[...] to estimate them."
            )

    # initial values: fixed, from data, or fitted (per series)
    fit_states: set = set()
    given: dict = {}
    if isinstance(ics, str):
        if ics not in ("data", "fit"):
            raise FitError(f"ics must be 'data', 'fit', a dict or a list of states; got {ics!r}.")
        if ics == "fit":
            fit_states = set(model.states)
    elif isinstance(ics, Mapping):
        for k, v in ics.items():
            s = _state(model, k)
            if isinstance(v, str):
                if v != "fit":
                    raise FitError(f"ics values are numbers or 'fit'; got {v!r} for {state_name(s)}.")
                fit_states.add(s)
            else:
                given[s] = float(v)
    else:
        fit_states = {_state(model, k) for k in _as_list(ics)}

    labels: list[str] = [p.name for p in fit_params]
    unknowns: list = [(p, None) for p in fit_params]
    start = [float(starts[p]) for p in fit_params]
    known_ics: list[dict] = []
    fitted_ic: list[tuple[dict, list]] = []
    for i, (series, exprs) in enumerate(resolved):
        from_data = data.initial_values(model, i)
        stored = {e for k in series.ics for e in [_known(model, k)] if e is not None}
        known, fitted = {}, {}
        for s in model.states:
            value = given.get(s, from_data.get(s, defaults.get(s)))
            if s in fit_states:
                fitted[s] = len(unknowns)
                unknowns.append((s, i))
                labels.append(state_name(s) + (f"[{i}]" if nser > 1 else "") + "(0)")
                start.append(0.0 if value is None else float(value))
            elif value is None:
                raise MissingValueError(
                    f"No initial value for state {state_name(s)}"
                    + (f" of trajectory {i}" if nser > 1 else "")
                    + ": it is neither observed at the first time nor stored with the data, and the "
                    f"model has no default. Pass ics={{{state_name(s)!r}: value}} or estimate it with "
                    f"ics={{{state_name(s)!r}: 'fit'}} (or ics='fit' for all)."
                )
            else:
                known[s] = float(value)
        # a first sample used as the initial value carries no information: drop it from the fit
        first_used = [s for s in known if s in exprs and s not in stored and s not in given]
        known_ics.append(known)
        fitted_ic.append((fitted, first_used))

    bnds = _bounds(model, unknowns, labels, bounds)
    z0 = np.array([b.inverse(v, lab, FitError) for b, v, lab in zip(bnds, start, labels)], dtype=float)
    wts = _weights(model, data, resolved, weights)

    groups, args, n_obs = [], [], 0
    order: dict = {}
    for i, (series, exprs) in enumerate(resolved):
        order.setdefault((tuple(exprs), len(series)), []).append(i)
    p_cols = tuple(model.params.index(p) for p in fit_params)
    p_unk = tuple(range(len(fit_params)))
    base_p = defaults
    for (exprs, n), members in order.items():
        rows, cols, unk = [], [], []
        y0s, ps, ts, ys, masks = [], [], [], [], []
        for r, i in enumerate(members):
            series = resolved[i][0]
            fitted, first_used = fitted_ic[i]
            for s, u in fitted.items():
                rows.append(r)
                cols.append(model.states.index(s))
                unk.append(u)
            y0s.append([known_ics[i].get(s, 0.0) for s in model.states])
            pv = {**{p: v for p, v in base_p.items() if p in model.params}, **settings[i]}
            ps.append([float(pv.get(p, starts.get(p, 0.0))) for p in model.params])
            ts.append(series.t)
            ys.append(np.stack([series.values[k] for k in series.values], -1))
            m = np.ones((n, len(exprs)))
            for s in first_used:
                m[0, exprs.index(s)] = 0.0
            masks.append(m)
            n_obs += int(m.sum())
        w = np.array([wts[e] for e in exprs])
        groups.append(FitGroup(tuple(members), exprs, n, p_cols, p_unk, tuple(rows), tuple(cols), tuple(unk)))
        args.append(
            dict(
                ts=jnp.asarray(np.stack(ts)),
                Y=jnp.asarray(np.stack(ys)),
                W=jnp.asarray(np.stack(masks) * w),
                y0=jnp.asarray(np.array(y0s, dtype=float).reshape(len(members), len(model.states))),
                p=jnp.asarray(np.array(ps, dtype=float).reshape(len(members), len(model.params))),
            )
        )
    return FitProblem(labels, unknowns, z0, bnds, tuple(groups), args, known_ics, n_obs)


def _state(model, key):
    s = model.lookup(key)
    if s not in model.rhs:
        raise FitError(f"ics refers to {s}, a parameter; list parameters in params=[...].")
    return s


def _known(model, key):
    try:
        return model.lookup(key)
    except SymmlError:
        return None


def _bounds(model, unknowns, labels, bounds) -> list[Bound]:
    spec: dict = {}
    for k, v in (bounds or {}).items():
        spec[model.lookup(k)] = Bound.parse(k, v, FitError)
    fitted = {u for u, _ in unknowns}
    for sym in spec:
        if sym not in fitted:
            raise FitError(f"bounds has an entry for {sym}, which is not estimated by this fit.")
    out = []
    for sym, _ in unknowns:
        if sym in spec:
            out.append(spec[sym])
        elif isinstance(sym, sp.Symbol) and sym.is_positive:
            out.append(Bound(0.0, None))
        else:
            out.append(Bound())
    return out


def _weights(model, data, resolved, weights) -> dict:
    exprs = {e for _, ex in resolved for e in ex}
    if weights is None:
        return {e: 1.0 for e in exprs}
    if isinstance(weights, str):
        if weights != "relative":
            raise FitError(f"weights must be None, 'relative' or a dict {{key: weight}}; got {weights!r}.")
        out = {}
        for e in exprs:
            vals = np.concatenate(
                [s.values[k] for s, ex in resolved for k, ee in zip(s.values, ex) if ee == e]
            )
            scale = float(np.mean(np.abs(vals)))
            out[e] = 1.0 / scale if scale > 0 else 1.0
        return out
    out = {e: 1.0 for e in exprs}
    for k, w in weights.items():
        e = resolve_key(model, k, None)
        if e not in exprs:
            raise DataError(
                f"weights has an entry for {key_name(k)!r}, which the data does not observe (observed: "
                + ", ".join(key_name(x) for x in exprs)
                + ")."
            )
        w = float(w)
        if not (np.isfinite(w) and w > 0):
            raise FitError(f"weights[{key_name(k)}] = {w}; weights must be finite and > 0.")
        out[e] = w
    return out
