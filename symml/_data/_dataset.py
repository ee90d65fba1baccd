"""Dataset: measured (or synthetic) trajectories, bound to models by symbol or name.

A dataset holds one or more *series*, each with its own time grid, observed values and
(optionally) known initial values. Observed keys are states (``u``), names (``"u"``) or
expressions of the states (``u + v``, an energy); they are resolved against a model only
when the data is used with one (``fit``, ``train``).

>>> import numpy as np, symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 21), noise=0.05, seed=0)
>>> data.to_pandas().shape
(21, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile._codegen import compile_exprs
from .._solve import simulate
from ..errors import DataError, SymmlError, UnknownNameError, suggest
from ._series import Series, is_list_of_arrays, key_name, validate_series

NOISE_KINDS = ("relative", "additive", "proportional")


class Dataset:
    """Observed trajectories.

    Args:
        t: times of one trajectory, or a list of time arrays (one per trajectory).
        y: ``{key: values}`` for one trajectory, or a list of such dicts.
        ics: known initial values ``{state: value}`` (or a list, one per trajectory).
        series: ready-made `Series` (alternative to ``t``/``y``).

    Raises:
        DataError: times or values missing, of the wrong shape, not finite or not increasing,
            or the numbers of time arrays, value dicts and initial values do not match.

    Examples:
        >>> import numpy as np, symml as sm
        >>> x, = sm.states("x")
        >>> ts = np.linspace(0, 1, 5)
        >>> data = sm.Dataset(t=ts, y={x: np.exp(-ts)}, ics={x: 1.0})
        >>> data
        Dataset(1 trajectories, points [5], observed: x)
        >>> round(float(data[x][-1]), 4), data.keys
        (0.3679, (x(t),))
        >>> lv = sm.zoo.lotka_volterra()
        >>> two = sm.Dataset.from_model(lv, ics=[{}, {lv.states[0]: 2.0}], ts=np.linspace(0, 2, 6))
        >>> len(two), two.to_pandas().shape
        (2, (12, 4))
    """

    def __init__(
        self,
        t: Any = None,
        y: Mapping[Any, Any] | Sequence[Mapping[Any, Any]] | None = None,
        ics: Mapping[Any, float] | Sequence[Mapping[Any, float]] | None = None,
        *,
        series: Sequence[Series] | None = None,
    ):
        if series is not None:
            if t is not None or y is not None:
                raise DataError("Give either series=... or t=/y=, not both.")
            items = [validate_series(s.t, s.values, i, s.ics) for i, s in enumerate(series)]
        else:
            if t is None or y is None:
                raise DataError("A Dataset needs times t=... and observed values y={state: values}.")
            if isinstance(y, Mapping):
                ts_list, ys_list = [t], [y]
                ics_list = [ics or {}]
            elif isinstance(y, (str, bytes)) or not all(isinstance(d, Mapping) for d in _items(y)):
                raise DataError(
                    f"y must be a dict {{state: values}} (or a list of them, one per trajectory), got "
                    f"{type(y).__name__}. Name each column: y={{x: values}} with x from sm.states(...)."
                )
            else:
                ys_list = list(y)
                ts_list = list(t) if is_list_of_arrays(t) else [t] * len(ys_list)
                if len(ts_list) != len(ys_list):
                    raise DataError(
                        f"Got {len(ts_list)} time arrays for {len(ys_list)} trajectories; give one each."
                    )
                if ics is None:
                    ics_list = [{}] * len(ys_list)
                elif isinstance(ics, Mapping):
                    ics_list = [ics] * len(ys_list)
                else:
                    ics_list = list(ics)
                    if len(ics_list) != len(ys_list):
                        raise DataError(
                            f"Got {len(ics_list)} sets of initial values for {len(ys_list)} trajectories; "
                            "give one dict per trajectory (or a single dict shared by all)."
                        )
            index = None if len(ys_list) == 1 else 0
            items = [
                validate_series(tt, yy, None if index is None else i, ii)
                for i, (tt, yy, ii) in enumerate(zip(ts_list, ys_list, ics_list))
            ]
        if not items:
            raise DataError("A Dataset needs at least one trajectory.")
        self._series = tuple(items)

    # -------------------------------------------------------------- access
    @property
    def series(self) -> tuple[Series, ...]:
        return self._series

    def __len__(self) -> int:
        return len(self._series)

    @property
    def keys(self) -> tuple[Any, ...]:
        """Observed keys, in order of first appearance."""
        out: list[Any] = []
        for s in self._series:
            for k in s.values:
                if k not in out:
                    out.append(k)
        return tuple(out)

    @property
    def t(self) -> np.ndarray:
        """Times of the (single) trajectory."""
        return self._single().t

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._single()[key]

    def _single(self) -> Series:
        if len(self._series) != 1:
            raise DataError(
                f"This dataset holds {len(self._series)} trajectories; index one with "
                "data.series[i][key] (or data.series[i].t)."
            )
        return self._series[0]

    def __repr__(self) -> str:
        n = ", ".join(str(len(s)) for s in self._series)
        keys = ", ".join(map(key_name, self.keys))
        return f"Dataset({len(self._series)} trajectories, points [{n}], observed: {keys})"

    # -------------------------------------------------------------- synthetic data
    @classmethod
    def from_model(
        cls,
        model,
        ics: Mapping[Any, Any] | Sequence[Mapping[Any, Any]] | None = None,
        ts: Any = None,
        noise: float = 0.0,
        noise_kind: str = "relative",
        seed: int | None = 0,
        params: Mapping[Any, Any] | None = None,
        observe: Sequence[Any] | None = None,
        **simulate_kwargs: Any,
    ) -> Dataset:
        """Simulate ``model`` and add Gaussian noise.

        ``noise_kind``: ``"relative"`` adds N(0, (noise × mean|value|)^2) per observed column
        (the docs/problems.md convention); ``"additive"`` adds N(0, noise^2); ``"proportional"``
        multiplies each value by (1 + noise × N(0, 1)). ``ics`` may be a list of dicts (one
        trajectory each); a dict may also hold parameter values that differ between trajectories
        (experiment settings such as a drive frequency). ``ts`` is one array of sample times or
        a list (one per trajectory); the solve starts at each trajectory's first time.
        ``observe`` picks states or expressions of them (default: all states). The exact
        initial values (and settings) are stored with each trajectory.

        >>> import numpy as np, symml as sm
        >>> pend = sm.zoo.pendulum()
        >>> theta, omega = pend.states
        >>> d = sm.Dataset.from_model(pend, ics=[{theta: 0.2}, {theta: 1.0, "l": 2.0}],
        ...                           ts=np.linspace(0, 2, 11), observe=[theta], seed=0)
        >>> d
        Dataset(2 trajectories, points [11, 11], observed: theta)
        >>> d.settings(pend, 1)
        {l: 2.0}
        """
        if noise_kind not in NOISE_KINDS:
            raise DataError(f"noise_kind must be one of {NOISE_KINDS}, got {noise_kind!r}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)):
            raise DataError(f"noise must be a finite number >= 0, got {noise!r}")
        noise = float(noise)
        if noise < 0 or not np.isfinite(noise):
            raise DataError(f"noise must be a finite number >= 0, got {noise!r}")
        if ts is None:
            raise DataError("from_model needs ts=, the sample times (an array).")
        ics_list = [ics] if (ics is None or isinstance(ics, Mapping)) else list(ics)
        if not ics_list:
            raise DataError("from_model got an empty list of initial values; give at least one dict.")
        if is_list_of_arrays(ts, len(ics_list)) and len(ics_list) > 1:
            ts_list = [np.asarray(x, dtype=float) for x in ts]
        else:
            ts_list = [np.asarray(ts, dtype=float)] * len(ics_list)
        keys = list(model.states if observe is None else observe)
        if not keys:
            raise DataError("observe is empty; name at least one state or expression to observe.")
        rng = np.random.default_rng(seed)
        ys_list, known, times = [], [], []
        for j, (ic, tj) in enumerate(zip(ics_list, ts_list)):
            # validate the time grid first so that the error speaks about data, not solves
            validate_series(tj, {"t": tj}, j if len(ics_list) > 1 else None)
            state_ics, settings = _split_known(model, ic or {})
            pvals = dict(params or {})
            pvals.update(settings)
            traj = simulate(model, ics=state_ics, saveat=tj, params=pvals, **simulate_kwargs)
            if traj.batch_shape:
                raise DataError(
                    "from_model takes one initial condition per trajectory; pass a list of dicts."
                )
            vals = {k: np.asarray(traj[k], dtype=float) for k in keys}
            for k, v in vals.items():
                if not np.all(np.isfinite(v)):
                    raise DataError(
                        f"The simulated {key_name(k)!r} is not finite everywhere (a terminal event or a "
                        "diverging solve); choose sample times inside the solution's range."
                    )
            noisy = {k: _add_noise(v, noise, noise_kind, rng) for k, v in vals.items()}
            ys_list.append(noisy)
            exact = {s: float(traj.y[0, i]) for i, s in enumerate(model.states)}
            exact.update({p: float(v) for p, v in settings.items()})
            known.append(exact)
            times.append(tj)
        return cls(t=times, y=ys_list, ics=known)

    # -------------------------------------------------------------- tables
    def to_pandas(self):
        """Long table: ``t``, one column per observed key and, for several trajectories, ``trajectory``."""
        import pandas as pd

        frames = []
        for i, s in enumerate(self._series):
            cols = {"t": s.t}
            for k, v in s.values.items():
                cols[key_name(k)] = v
            df = pd.DataFrame(cols)
            if len(self._series) > 1:
                df.insert(0, "trajectory", i)
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def to_csv(self, path) -> None:
        self.to_pandas().to_csv(path, index=False)

    @classmethod
    def from_pandas(
        cls,
        df,
        time: str = "t",
        columns: Sequence[Any] | None = None,
        trajectory: str | None = "trajectory",
    ) -> Dataset:
        """Build from a DataFrame with a time column and one column per observed key.

        ``columns`` may map column names to states (``{"u": u}``) or list the names to use
        (default: every column except time and trajectory). Rows are split into trajectories
        by the ``trajectory`` column when present.
        """
        if time not in df.columns:
            raise DataError(
                f"No time column {time!r}; columns are {list(df.columns)}."
                + suggest(time, map(str, df.columns))
            )
        if columns is None:
            names = [c for c in df.columns if c not in (time, trajectory)]
            mapping = {c: c for c in names}
        elif isinstance(columns, Mapping):
            mapping = dict(columns)
        else:
            mapping = {key_name(c): c for c in columns}
        for c in mapping:
            if c not in df.columns:
                raise DataError(
                    f"Column {c!r} is not in the table (columns: {list(df.columns)})."
                    + suggest(str(c), map(str, df.columns))
                )
        if not mapping:
            raise DataError("No value columns besides time; name the observed columns.")
        groups = (
            [df]
            if (trajectory is None or trajectory not in df.columns)
            else [g for _, g in df.groupby(trajectory, sort=True)]
        )
        ts = [_numeric(g, time) for g in groups]
        ys = [{mapping[c]: _numeric(g, c) for c in mapping} for g in groups]
        return cls(t=ts, y=ys)

    @classmethod
    def from_csv(
        cls,
        path,
        time: str = "t",
        columns: Sequence[Any] | None = None,
        trajectory: str | None = "trajectory",
    ) -> Dataset:
        """Read a CSV with a time column and state columns by name (see `from_pandas`).

        Raises:
            DataError: no such file, an empty or malformed file, or columns that are not numbers.
        """
        import pandas as pd

        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            raise DataError(f"No such data file: {path}") from None
        except pd.errors.EmptyDataError:
            raise DataError(
                f"The data file {path} is empty; it needs a header row (t, x, ...) and data rows."
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(f"The data file {path} is not a readable CSV table: {why}") from None
        return cls.from_pandas(df, time=time, columns=columns, trajectory=trajectory)

    # -------------------------------------------------------------- models
    def resolve(self, model) -> list[tuple[Series, list[sp.Expr]]]:
        """For each series, its observed keys as SymPy expressions of ``model``'s states."""
        out = []
        for i, s in enumerate(self._series):
            where = i if len(self._series) > 1 else None
            exprs: list[sp.Expr] = []
            for k in s.values:
                e = resolve_key(model, k, where)
                if e in exprs:
                    raise DataError(
                        f"Columns {key_name(list(s.values)[exprs.index(e)])!r} and {key_name(k)!r} both "
                        f"measure {key_name(e)}{'' if where is None else f' (trajectory {where})'}; keep one."
                    )
                exprs.append(e)
            out.append((s, exprs))
        return out

    def initial_values(self, model, index: int = 0) -> dict[sp.Basic, float]:
        """Initial values of ``model``'s states known from trajectory ``index``: the stored
        initial values, then the first sample of each directly observed state.

        Stored values refer to the trajectory's first time, ``series[index].t[0]``.
        """
        s = self._series[index]
        where = index if len(self._series) > 1 else None
        out: dict[sp.Basic, float] = {}
        for k, v in s.ics.items():
            e = _resolve_known(model, k, where)
            if e is not None and e in model.rhs:
                out[e] = v
        for k, v in s.values.items():
            e = resolve_key(model, k, where)
            if e in model.rhs and e not in out:
                out[e] = float(v[0])
        return out

    def settings(self, model, index: int = 0) -> dict[sp.Basic, float]:
        """Parameter values stored with trajectory ``index`` (experiment settings that differ
        between trajectories); ``fit`` holds them fixed for that trajectory."""
        s = self._series[index]
        where = index if len(self._series) > 1 else None
        out: dict[sp.Basic, float] = {}
        for k, v in s.ics.items():
            e = _resolve_known(model, k, where)
            if e is not None and e in model.params:
                out[e] = v
        return out

    def arrays(self, model):
        """Stacked arrays for solvers: ``(ts, Y, obs)`` per series as JAX arrays."""
        out = []
        for s, exprs in self.resolve(model):
            Y = jnp.stack([jnp.asarray(v) for v in s.values.values()], axis=-1)
            out.append((jnp.asarray(s.t), Y, exprs))
        return out

    def domain(self, model=None) -> dict[Any, tuple[float, float]]:
        """Min and max of each observed key over all trajectories."""
        out: dict[Any, tuple[float, float]] = {}
        for s in self._series:
            for k, v in s.values.items():
                kk = resolve_key(model, k, None) if model is not None else k
                lo, hi = float(np.min(v)), float(np.max(v))
                if kk in out:
                    lo, hi = min(lo, out[kk][0]), max(hi, out[kk][1])
                out[kk] = (lo, hi)
        return out

    def plot(self, ax=None, **kwargs):
        """Scatter the observations against t; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        for i, s in enumerate(self._series):
            for j, (k, v) in enumerate(s.values.items()):
                label = key_name(k) if i == 0 else None
                ax.plot(s.t, v, "o", ms=4, color=f"C{j}", label=label, **kwargs)
        ax.set_xlabel("t")
        ax.legend()
        return ax


def resolve_key(model, key: Any, index: int | None) -> sp.Expr:
    """The state or observable of `model` that the data key `key` names (errors name the column)."""
    where = f" (trajectory {index})" if index is not None else ""
    if isinstance(key, str):
        try:
            return model.lookup(key)
        except UnknownNameError:
            names = list(model.state_names())
            raise UnknownNameError(
                f"Data column {key!r}{where} is not a state of model {model.name!r} (states: "
                f"{', '.join(names)}).{suggest(key, names)} Rename the column, or pass "
                "columns={'column': expression} to say what it measures."
            ) from None
    key = sp.sympify(key)
    if key in model.rhs:
        return key
    try:
        return model.lookup(key)
    except UnknownNameError:
        pass
    # An observable: an expression of the model's states, parameters and t.
    try:
        compile_exprs(model, [key], title="observable")
    except SymmlError as err:
        raise UnknownNameError(
            f"Observed key {key}{where} is neither a state of model {model.name!r} nor an "
            f"expression of its states and parameters: {err}"
        ) from None
    return key


def _items(y) -> list:
    try:
        return list(y)
    except TypeError:
        return [y]


def _numeric(df, column) -> np.ndarray:
    try:
        return df[column].to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [i for i, v in zip(df.index, df[column]) if not _is_number(v)]
        raise DataError(
            f"Column {column!r} holds values that are not numbers (rows {', '.join(map(str, bad[:10]))}: "
            f"{', '.join(repr(df[column][i]) for i in bad[:3])}). Clean or drop those rows."
        ) from None


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _resolve_known(model, key: Any, index: int | None):
    """A stored known value's key as a state or parameter of ``model`` (None if foreign)."""
    try:
        return model.lookup(key)
    except UnknownNameError:
        pass
    if isinstance(key, str):
        return None
    try:
        return resolve_key(model, key, index)
    except UnknownNameError:
        return None


def _split_known(model, values: Mapping[Any, Any]) -> tuple[dict, dict]:
    """Split ``{key: value}`` into initial values of states and parameter settings."""
    states, settings = {}, {}
    for k, v in values.items():
        s = model.lookup(k)
        (states if s in model.rhs else settings)[s] = v
    return states, settings


def _add_noise(v: np.ndarray, noise: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    if noise == 0:
        return v.copy()
    eps = rng.standard_normal(v.shape)
    if kind == "relative":
        return v + noise * float(np.mean(np.abs(v))) * eps
    if kind == "additive":
        return v + noise * eps
    return v * (1.0 + noise * eps)
