"""One series of a dataset: a time grid, observed values by key, optional known initial values.

`Dataset` (in `_dataset`) holds one or more of these and binds them to models; everything here is
model-free validation of arrays, with errors that name the series and the rows at fault.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import sympy as sp

from .._declare._symbols import is_derivative_state, is_state, state_name
from ..errors import DataError, UnknownNameError, suggest


def key_name(key: Any) -> str:
    """Column name of an observed key: ``x``, ``x_t`` for states; for an expression its
    printed form with states written by name (``u + v``, ``l*sin(theta)``)."""
    if isinstance(key, str):
        return key
    key = sp.sympify(key)
    if is_state(key) or is_derivative_state(key):
        return state_name(key)
    reps = {}
    for d in key.atoms(sp.Derivative):
        if is_derivative_state(d):
            reps[d] = sp.Symbol(state_name(d))
    named = key.xreplace(reps)
    for f in named.atoms(sp.core.function.AppliedUndef):
        if is_state(f):
            reps[f] = sp.Symbol(state_name(f))
    return str(key.xreplace(reps))


@dataclasses.dataclass(frozen=True)
class Series:
    """One trajectory: times ``t`` (n,), observed ``values`` {key: (n,)} and known ``ics``.

    Examples:
        >>> import numpy as np, symml as sm
        >>> x, = sm.states("x")
        >>> data = sm.Dataset(t=np.linspace(0, 1, 3), y={x: [1.0, 0.5, 0.25]})
        >>> s = data.series[0]
        >>> type(s).__name__, len(s), s["x"].tolist()
        ('Series', 3, [1.0, 0.5, 0.25])
        >>> s2 = sm.Series(t=np.array([0.0, 1.0]), values={x: np.array([1.0, 2.0])}, ics={x: 1.0})
        >>> sm.Dataset(series=[s, s2])
        Dataset(2 trajectories, points [3, 2], observed: x)
    """

    t: np.ndarray
    values: Mapping[Any, np.ndarray]
    ics: Mapping[Any, float] = dataclasses.field(default_factory=dict)

    def __getitem__(self, key: Any) -> np.ndarray:
        k = find_key(key, self.values)
        return self.values[k]

    def __len__(self) -> int:
        return int(self.t.shape[0])


def find_key(key: Any, keys: Iterable[Any]) -> Any:
    keys = list(keys)
    if key in keys:
        return key
    name = key_name(key)
    for k in keys:
        if key_name(k) == name:
            return k
    names = [key_name(k) for k in keys]
    raise UnknownNameError(
        f"{name!r} is not observed in this dataset (observed: {', '.join(names)})." + suggest(name, names)
    )


def _floats(v: Any, what: str) -> np.ndarray:
    """``v`` as a float array; complex or non-numeric input is refused, never truncated."""
    if isinstance(v, (str, bytes, Mapping)):
        raise DataError(f"{what} must be an array of numbers, got {type(v).__name__}: {v!r}"[:300])
    try:
        raw = np.asarray(v)
        out = None if raw.dtype.kind == "c" else np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be an array of numbers, got {type(v).__name__}: {v!r}"[:300]) from None
    if out is None:
        raise DataError(f"{what} holds complex numbers; datasets are real. Split real and imaginary parts.")
    return out


def validate_series(t, values, index: int | None, ics=None) -> Series:
    where = f" (trajectory {index})" if index is not None else ""
    t = _floats(t, f"Times{where}")
    if t.ndim != 1:
        raise DataError(f"Times must be a 1-D array{where}; got shape {t.shape}.")
    if t.size < 2:
        raise DataError(f"A trajectory needs at least 2 time points{where}; got {t.size}.")
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise DataError(f"Times contain NaN or inf at rows {rows_text(bad)}{where}. Remove those rows.")
    dec = np.flatnonzero(np.diff(t) <= 0)
    if dec.size:
        i = int(dec[0])
        raise DataError(
            f"Times must be strictly increasing{where}; t[{i}] = {t[i]:g} is followed by "
            f"t[{i + 1}] = {t[i + 1]:g}. Sort the data or remove duplicate times."
        )
    if not isinstance(values, Mapping) or not values:
        raise DataError(f"No observed values{where}: give y={{state: array, ...}}.")
    out = {}
    for k, v in values.items():
        if not isinstance(k, (str, sp.Basic)):
            raise DataError(f"Observed keys must be states, expressions or names; got {k!r}{where}.")
        arr = _floats(v, f"Values of {key_name(k)!r}{where}")
        if arr.ndim != 1:
            raise DataError(f"Values of {key_name(k)!r} must be 1-D{where}; got shape {arr.shape}.")
        if arr.shape[0] != t.shape[0]:
            raise DataError(
                f"Values of {key_name(k)!r} have {arr.shape[0]} entries but there are {t.shape[0]} "
                f"times{where}. Every observed column needs one value per time."
            )
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError(
                f"Values of {key_name(k)!r} contain NaN or inf at rows {rows_text(bad)} (t = "
                f"{', '.join(f'{x:g}' for x in t[bad[:5]])}{'...' if bad.size > 5 else ''}){where}. "
                "Drop or interpolate those rows first."
            )
        arr.setflags(write=False)
        out[k] = arr
    t.setflags(write=False)
    ic = {}
    if not isinstance(ics or {}, Mapping):
        raise DataError(f"ics must be a dict {{state: value}}{where}, got {type(ics).__name__}.")
    for k, v in (ics or {}).items():
        fv = _floats(v, f"Initial value of {key_name(k)!r}{where}")
        if fv.ndim != 0:
            raise DataError(
                f"Initial value of {key_name(k)!r}{where} must be one number, got shape {fv.shape}."
            )
        fv = float(fv)
        if not np.isfinite(fv):
            raise DataError(f"Initial value of {key_name(k)!r} is {fv}{where}; it must be finite.")
        ic[k] = fv
    return Series(t, out, ic)


def rows_text(idx: np.ndarray) -> str:
    s = ", ".join(str(int(i)) for i in idx[:10])
    return s + (f" ... ({idx.size} in all)" if idx.size > 10 else "")


def is_list_of_arrays(t, n: int | None = None) -> bool:
    """True for a list of 1-D time arrays (one per trajectory), not one list of times."""
    if isinstance(t, (list, tuple)) and len(t) > 0 and (n is None or len(t) == n):
        return all(np.ndim(x) == 1 for x in t)
    return False
