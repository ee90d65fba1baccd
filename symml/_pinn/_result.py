"""`PINNResult`: a trained physics-informed network, its parameters, and a check against the solver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._declare._symbols import state_name
from .._solve import simulate
from .._trajectory import Trajectory
from ._problem import TERMS, Net, Problem
from ._residual import states_of, taylor

__all__ = ["PINNResult"]


class PINNResult:
    """The result of `symml.pinn`.

    Attributes:
        model: the model, with the estimated parameters as its defaults.
        params: every parameter value used, by symbol (estimated ones included).
        estimated: the symbols that were estimated.
        history: per optimiser step (Adam, then L-BFGS): ``"loss"`` (the weighted total),
            ``"terms"`` (residual, initial-value and data losses as columns, inactive terms
            omitted; names in ``terms_names``), ``"weights"`` (the adaptive loss weights),
            ``"causal"`` (the smallest causal weight: 1 once the whole span is trained) and
            ``"params"`` (every parameter, in ``model.params`` order).
            and ``"window"`` (the time window of each step; all 0 with one window).
        net: the trained network ``t -> base states`` (an equinox module; the first window's).
        nets: the network of every time window, in order.
        windows: the window edges ``(t0, ..., t1)`` (two values for one window).
        t_span: the time span trained on.

    Examples:
        >>> import numpy as np, symml as sm
        >>> res = sm.pinn(sm.zoo.pendulum(small_angle=True, theta0=0.1), t_span=(0, 1), width=8, depth=1,
        ...               collocation=16, chunks=4, optimizer=sm.Adam(steps=100), polish=None,
        ...               windows=1, verbose=False)
        >>> traj = res.predict(np.linspace(0, 1, 5))
        >>> traj.y.shape, res.terms_names, res.history["terms"].shape, res.windows
        ((5, 2), ('residual', 'ic'), (100, 2), (0.0, 1.0))
    """

    def __init__(
        self,
        model: Any,
        pieces: Sequence[tuple[Problem, Net, jax.Array, dict[str, np.ndarray]]],
        ics: Mapping[sp.Basic, float],
        t_span: tuple[float, float],
        seconds: float,
    ):
        self._problem = pieces[-1][0]
        self._pieces = [(pr, net) for pr, net, _, _ in pieces]
        self.nets = tuple(net for _, net, _, _ in pieces)
        self.net = self.nets[0]
        self.windows = tuple(float(pr.t_span[0]) for pr, *_ in pieces) + (float(t_span[1]),)
        p = np.asarray(self._problem.params(pieces[-1][2]))
        self.params = {s: float(v) for s, v in zip(model.params, p)}
        self.estimated = tuple(model.params[i] for i in self._problem.unknown)
        self.model = (
            model.with_defaults({s: self.params[s] for s in self.estimated}) if self.estimated else model
        )
        hist = [h for *_, h in pieces]
        self.history = {k: np.concatenate([np.asarray(h[k]) for h in hist]) for k in hist[0]}
        self.t_span = (float(t_span[0]), float(t_span[1]))
        self.terms_names = tuple(n for n, on in zip(TERMS, self._problem.active) if on)
        self.seconds = seconds
        self._ics = dict(ics)

    def _piecewise(self, ts: jax.Array, one: Any) -> jax.Array:
        """``one(net, problem, t)`` at every time, from the network of the window holding it."""
        inner = jnp.asarray(self.windows[1:-1])
        which = jnp.searchsorted(inner, ts, side="right") if inner.size else jnp.zeros(ts.shape, int)
        outs = [jax.vmap(lambda t_, n=net, q=pr: one(n, q, t_))(ts) for pr, net in self._pieces]
        if len(outs) == 1:
            return outs[0]
        stacked = jnp.stack(outs)
        return jnp.take_along_axis(stacked, which[None, :, None], axis=0)[0]

    def _states(self, ts: Any) -> jax.Array:
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        return self._piecewise(
            ts, lambda net, pr, t_: states_of(pr.shape, taylor(net, t_, pr.shape.order))[0]
        )

    def predict(self, ts: Any) -> Trajectory:
        """The network's solution at times ``ts`` as a `symml.Trajectory` (index it by state).

        Derivative states (``theta'``) are the network's exact time derivatives; with several
        time windows each time is answered by the network of its window.
        """
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        p = jnp.asarray([self.params[s] for s in self.model.params])
        return Trajectory(t=ts, y=self._states(ts), p=p, model=self.model, method="pinn")

    def residual(self, ts: Any) -> np.ndarray:
        """The residual ``x^(n) - f(t, x, ..., p)`` of each base state's equation at ``ts``.

        Shape ``(len(ts), number of base states)``, in the model's units (not scaled).
        """
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        p = jnp.asarray([self.params[s] for s in self.model.params])

        def one(net, pr, t_):
            y, dy = states_of(pr.shape, taylor(net, t_, pr.shape.order))
            return (dy - pr.rhs(t_, y, p))[jnp.asarray(pr.shape.highest)]

        return np.asarray(self._piecewise(ts, one))

    def compare(self, saveat: int = 400) -> dict[str, float]:
        """Max error against `symml.simulate` over the span, per state, relative to its amplitude.

        The reference solve uses the estimated parameters and the known initial values (the
        network's own values at the start where none were given). The amplitude of a state is
        ``max |x|`` over the span of the reference.
        """
        ts = np.linspace(*self.t_span, saveat)
        mine = self.predict(ts)
        start = {s: float(mine.y[0, i]) for i, s in enumerate(self.model.states)}
        start.update(self._ics)
        ref = simulate(self.model, ics=start, t_span=self.t_span, saveat=ts, rtol=1e-10, atol=1e-12)
        out = {}
        for i, s in enumerate(self.model.states):
            amp = float(np.max(np.abs(np.asarray(ref.y[:, i]))))
            err = float(np.max(np.abs(np.asarray(ref.y[:, i] - mine.y[:, i]))))
            out[state_name(s)] = err / amp if amp > 0 else err
        return out

    def report(self) -> str:
        """A summary: parameters, final losses, and the max error against `symml.simulate`."""
        lines = [f"PINN of {self.model.name!r} on t in [{self.t_span[0]:g}, {self.t_span[1]:g}]"]
        if len(self.nets) > 1:
            lines[0] += f", {len(self.nets)} time windows"
        for s in self.estimated:
            lines.append(f"  {s} = {self.params[s]:.6g} (estimated)")
        if len(self.history["loss"]):
            win, terms = self.history["window"], self.history["terms"]
            # each window's final losses; with several windows the worst of them
            last = np.max([terms[win == k][-1] for k in np.unique(win)], axis=0)
            label = "final losses" if len(self.nets) == 1 else "final losses (worst window)"
            lines.append(f"  {label}: " + ", ".join(f"{n} {v:.3e}" for n, v in zip(self.terms_names, last)))
        lines.append(f"  trained in {self.seconds:.1f} s, {len(self.history['loss'])} steps")
        for name, e in self.compare().items():
            lines.append(f"  max |pinn - simulate| / amplitude of {name}: {100 * e:.3g} %")
        return "\n".join(lines)

    def __repr__(self) -> str:
        est = ", ".join(f"{s}={self.params[s]:.6g}" for s in self.estimated)
        return f"PINNResult(model={self.model.name!r}, t_span={self.t_span}{', ' + est if est else ''})"
