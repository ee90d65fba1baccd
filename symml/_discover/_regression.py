"""`sm.discover`'s regression: data to state columns, derivatives, library terms, targets."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from .._data._dataset import Dataset, key_name
from .._data._derivatives import Weak, get_method
from .._declare._symbols import (
    base_state,
    derivative_order,
    is_derivative_state,
    is_state,
    state_name,
    t,
)
from ..distill.library import evaluate
from ..errors import DataError
from ._weak import integrable_terms

# ----------------------------------------------------------------------------- data -> columns


def as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return Dataset.from_pandas(data)
    raise DataError(
        f"sm.discover needs a symml Dataset (or a pandas DataFrame with a 't' column), got "
        f"{type(data).__name__}. Build one with sm.Dataset(t=..., y={{x: values}}) or Dataset.from_csv."
    )


def columns(data: Dataset) -> tuple[list[sp.Expr], dict[sp.Expr, Any]]:
    """Base states (in order of appearance) and ``{state or derivative state: data key}``."""
    parsed: list[tuple[str, int, Any, sp.Expr | None]] = []
    for key in data.keys:
        if isinstance(key, str):
            name, order = key, 0
            for suffix, k in (("_t", 1), ("'", 1)):
                if name.endswith(suffix) and len(name) > len(suffix):
                    name, order = name[: -len(suffix)], k
            if not name.isidentifier() or name == "t":
                raise DataError(
                    f"Column {key!r} is not a usable state name; use identifiers such as 'x' and "
                    "'x_t' (its velocity)."
                )
            parsed.append((name, order, key, None))
        else:
            e = sp.sympify(key)
            if not (is_state(e) or is_derivative_state(e)):
                raise DataError(
                    f"Observed key {key} is an expression of the states, not a state; sm.discover "
                    "needs the states themselves (and optionally their first derivatives)."
                )
            parsed.append((base_state(e).func.__name__, derivative_order(e), key, base_state(e)))
    bases: dict[str, sp.Expr] = {}
    for name, order, _, st in parsed:
        if order == 0:
            bases.setdefault(name, st if st is not None else sp.Function(name, real=True)(t))
    cols: dict[sp.Expr, Any] = {}
    for name, order, key, _ in parsed:
        if order > 1:
            raise DataError(
                f"Column {key_name(key)!r} is a derivative of order {order}; give states and velocities only."
            )
        if name not in bases:
            raise DataError(
                f"Column {key_name(key)!r} is a derivative of {name!r}, but {name!r} itself is not "
                "observed; add the column or rename it."
            )
        s = bases[name] if order == 0 else bases[name].diff(t)
        if s in cols:
            raise DataError(f"State {state_name(s)!r} is observed twice (columns {cols[s]!r} and {key!r}).")
        cols[s] = key
    return list(bases.values()), cols


# ----------------------------------------------------------------------------- the regression


def regression(data, bases, cols, orders, method, library_terms_fn):
    """Inputs, library terms, the regression matrix, targets (one per base state), the first
    trajectory's initial values and the effective number of rows (``None``: unknown).

    The matrix holds the samples of the inputs (pointwise derivatives) or, for the weak form,
    the library terms integrated against the test functions."""
    inputs = list(bases) + [b.diff(t) for b in bases if orders[b] == 2]
    weak = isinstance(method, Weak)
    pointwise = get_method(method.features) if weak else method
    X_rows, y_rows, G_rows, first_values = [], {b: [] for b in bases}, [], {}
    noise_stats = [0.0, 0.0]
    terms = library_terms_fn(inputs)
    velocities = {b.diff(t): b for b in bases if orders[b] == 2}
    by_parts = integrable_terms(terms, velocities) if weak else {}
    for si, series in enumerate(data.series):
        ts = series.t
        vals: dict[sp.Expr, np.ndarray] = {}
        target: dict[sp.Expr, tuple[np.ndarray, int]] = {}
        for b in bases:
            x = np.asarray(series[cols[b]], dtype=float)
            if orders[b] == 2 and b.diff(t) in cols:
                v = np.asarray(series[cols[b.diff(t)]], dtype=float)
                if weak:
                    vals[b], vals[b.diff(t)], target[b] = x, v, (v, 1)
                else:
                    dx = pointwise.derivatives(ts, x, 0)
                    dv = pointwise.derivatives(ts, v, 1)
                    vals[b], vals[b.diff(t)], target[b] = dx[0], dv[0], (dv[1], 0)
            elif orders[b] == 2:
                d = pointwise.derivatives(ts, x, 2)
                if weak:
                    vals[b], vals[b.diff(t)], target[b] = x, d[1], (x, 2)
                else:
                    vals[b], vals[b.diff(t)], target[b] = d[0], d[1], (d[2], 0)
            else:
                if weak:
                    vals[b], target[b] = x, (x, 1)
                else:
                    d = pointwise.derivatives(ts, x, 1)
                    vals[b], target[b] = d[0], (d[1], 0)
        X = np.column_stack([vals[z] for z in inputs])
        if si == 0:
            first_values = {
                z: float(np.asarray(series[cols[z]])[0]) if z in cols else float(vals[z][0]) for z in inputs
            }
        if weak:
            width = method.width or method.choose_width(ts, [np.asarray(series[k]) for k in cols.values()])
            V = method.test_functions(ts, max(m for _, m in target.values()), width)
            Theta = evaluate(terms, inputs, X)
            rows = V[0] @ Theta
            for j, (b, antiderivative) in by_parts.items():
                # ∫ φ g(x) x' dt = -∫ φ' G(x) dt with G' = g: no estimated velocity needed
                raw = np.asarray(series[cols[b]], dtype=float)[:, None]
                rows[:, j] = -(V[1] @ evaluate([antiderivative], [b], raw)[:, 0])
            G_rows.append(rows)
            for b in bases:
                f, m = target[b]
                y_rows[b].append((-1) ** m * (V[m] @ f))
            # independent rows: participation ratio of the rows' covariance under white noise
            m = max(m for _, m in target.values())
            C = V[m] @ V[m].T
            noise_stats[0] += float(np.trace(C))
            noise_stats[1] += float(np.sum(C * C))
        else:
            X_rows.append(X)
            for b in bases:
                y_rows[b].append(target[b][0])
    Y = {b: np.concatenate(y_rows[b]) for b in bases}
    if weak:
        n_eff = noise_stats[0] ** 2 / noise_stats[1] if noise_stats[1] > 0 else None
        return inputs, terms, np.vstack(G_rows), Y, first_values, n_eff
    return inputs, terms, np.vstack(X_rows), Y, first_values, None
