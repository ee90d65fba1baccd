"""Trajectory: the result of a solve, indexed by symbol.

>>> import symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> traj = sm.simulate(lv, t_span=(0, 1), saveat=5)
>>> u, v = lv.states
>>> traj[u].shape
(5,)
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._compile._codegen import compile_exprs
from ._declare._symbols import state_name
from .errors import SymmlError, UnknownNameError, suggest


class Trajectory(eqx.Module):
    """States sampled at times ``t``, for one solve or a batch (ensemble) of solves.

    Attributes:
        t: sample times, shape ``(n,)``.
        y: states, shape ``batch + (n, len(model.states))``; samples after a terminal event
            are NaN.
        p: parameter values used, shape ``batch + (len(model.params),)``.
        event_time: time of the terminal event (NaN where it did not occur), shape ``batch``;
            ``None`` without an event.
        event_state: states at the event, shape ``batch + (len(model.states),)``.
        method: ``"numeric"`` or ``"analytic"``.
        num_steps: solver steps taken (``None`` for analytic evaluation).
        solver: the solver that produced ``y`` (``None`` for analytic evaluation).
        solver_reason: why that solver ran (asked for by name, or what ``solver="auto"``
            saw, e.g. where it detected stiffness and switched).

    Index by state, parameter, name or any expression of them: ``traj[x]``,
    ``traj[x.diff(t)]``, ``traj["x_t"]``, ``traj[x**2 + y**2]``.

    Examples:
        >>> import symml as sm
        >>> osc = sm.zoo.harmonic_oscillator()
        >>> traj = sm.simulate(osc, t_span=(0, 1), saveat=3)
        >>> type(traj).__name__, traj.t.shape, traj.y.shape, traj.batch_shape
        ('Trajectory', (3,), (3, 2), ())
        >>> x = osc.states[0]
        >>> bool(abs(traj[x][0] - traj[osc.state_names()[0]][0]) < 1e-12)
        True
        >>> list(traj.to_pandas().columns) == ["t", *osc.state_names()]
        True
    """

    t: jax.Array
    y: jax.Array
    p: jax.Array
    event_time: jax.Array | None = None
    event_state: jax.Array | None = None
    num_steps: jax.Array | None = None
    networks: dict = eqx.field(default_factory=dict)
    model: Any = eqx.field(static=True, default=None)
    method: str = eqx.field(static=True, default="numeric")
    solver: str | None = eqx.field(static=True, default=None)
    solver_reason: str | None = eqx.field(static=True, default=None)

    @property
    def states(self) -> tuple[sp.Expr, ...]:
        return self.model.states

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading ensemble dimensions (``()`` for a single solve)."""
        return tuple(self.y.shape[:-2])

    def __getitem__(self, key: Any) -> jax.Array:
        model = self.model
        if isinstance(key, str):
            try:
                key = model.lookup(key)
            except UnknownNameError:
                names = list(model.state_names()) + list(model.param_names())
                raise UnknownNameError(
                    f"{key!r} is not a state or parameter of this trajectory (states: "
                    f"{', '.join(model.state_names())}; parameters: "
                    f"{', '.join(model.param_names()) or 'none'}).{suggest(key, names)}"
                ) from None
        key = sp.sympify(key)
        if key in model.rhs:
            return self.y[..., model.states.index(key)]
        if key in model.params:
            j = model.params.index(key)
            return jnp.broadcast_to(self.p[..., j, None], self.y.shape[:-1])
        return self.evaluate(key)

    def evaluate(self, expr: sp.Expr) -> jax.Array:
        """Evaluate an expression of states, parameters and ``t`` at every sample."""
        try:
            f = compile_exprs(self.model, [expr], networks=self.networks or None, title="observable")
        except UnknownNameError:
            raise
        except SymmlError as err:
            raise type(err)(f"Cannot evaluate {expr} on this trajectory: {err}") from None
        batch = self.batch_shape
        n = self.y.shape[-2]
        # An explicit member count: reshape(-1, 0) is ambiguous for a model without parameters.
        members = math.prod(batch)
        ys = self.y.reshape((members, n, self.y.shape[-1]))
        ps = jnp.broadcast_to(self.p, batch + self.p.shape[-1:]).reshape((members, self.p.shape[-1]))
        one = jax.vmap(lambda tt, yy, pp: f(tt, yy, pp)[0], in_axes=(0, 0, None))
        out = jax.vmap(one, in_axes=(None, 0, 0))(self.t, ys, ps)
        return out.reshape(batch + (n,))

    def to_numpy(self) -> dict[str, np.ndarray]:
        """``{"t": ..., name: ...}`` as NumPy arrays."""
        out = {"t": np.asarray(self.t)}
        for i, s in enumerate(self.model.states):
            out[state_name(s)] = np.asarray(self.y[..., i])
        return out

    def to_pandas(self):
        """A DataFrame with a ``t`` column and one column per state (named ``x``, ``x_t``, ...).

        Ensembles come in long format with a ``member`` column.
        """
        import pandas as pd

        names = [state_name(s) for s in self.model.states]
        t_ = np.asarray(self.t)
        if not self.batch_shape:
            df = pd.DataFrame(np.asarray(self.y), columns=names)
            df.insert(0, "t", t_)
            return df
        ys = np.asarray(self.y).reshape((-1,) + self.y.shape[-2:])
        frames = []
        for m, y in enumerate(ys):
            df = pd.DataFrame(y, columns=names)
            df.insert(0, "t", t_)
            df.insert(0, "member", m)
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def to_csv(self, path) -> None:
        self.to_pandas().to_csv(path, index=False)

    def plot(self, keys=None, ax=None, **kwargs):
        """Plot states (or given keys/expressions) against t; returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        keys = list(self.model.states if keys is None else keys)
        t_ = np.asarray(self.t)
        for k in keys:
            vals = np.asarray(self[k]).reshape((-1, t_.size))
            label = k if isinstance(k, str) else _label(k, self.model)
            for m, row in enumerate(vals):
                ax.plot(t_, row, label=label if m == 0 else None, **kwargs)
        ax.set_xlabel("t")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        extra = ""
        if self.event_time is not None:
            extra = f", event_time={np.asarray(self.event_time)}"
        return (
            f"Trajectory(model={self.model.name!r}, method={self.method!r}, batch={self.batch_shape}, "
            f"n_times={self.t.shape[-1]}, states={self.model.state_names()}{extra})"
        )


def _label(expr, model) -> str:
    s = sp.sympify(expr)
    return state_name(s) if s in model.rhs else str(s)
