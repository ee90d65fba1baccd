"""`PINNResult`: a trained physics-informed network, its parameters, and a check against the solver."""

from __future__ import annotations

from collections.abc import Mapping
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
        net: the trained network ``t -> base states`` (an equinox module).
        t_span: the time span trained on.

    Examples:
        >>> import numpy as np, symml as sm
        >>> res = sm.pinn(sm.zoo.pendulum(small_angle=True, theta0=0.1), t_span=(0, 1), width=8, depth=1,
        ...               collocation=16, chunks=4, optimizer=sm.Adam(steps=100), polish=None, verbose=False)
        >>> traj = res.predict(np.linspace(0, 1, 5))
        >>> traj.y.shape, res.terms_names, res.history["terms"].shape
        ((5, 2), ('residual', 'ic'), (100, 2))
    """

    def __init__(
        self,
        model: Any,
        problem: Problem,
        net: Net,
        u: jax.Array,
        history: dict[str, np.ndarray],
        ics: Mapping[sp.Basic, float],
        seconds: float,
    ):
        self._problem = problem
        self.net = net
        p = np.asarray(problem.params(u))
        self.params = {s: float(v) for s, v in zip(model.params, p)}
        self.estimated = tuple(model.params[i] for i in problem.unknown)
        self.model = (
            model.with_defaults({s: self.params[s] for s in self.estimated}) if self.estimated else model
        )
        self.history = history
        self.t_span = problem.t_span
        self.terms_names = tuple(n for n, on in zip(TERMS, problem.active) if on)
        self.seconds = seconds
        self._ics = dict(ics)

    def _states(self, ts: Any) -> jax.Array:
        shape = self._problem.shape
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        return jax.vmap(lambda t_: states_of(shape, taylor(self.net, t_, shape.order))[0])(ts)

    def predict(self, ts: Any) -> Trajectory:
        """The network's solution at times ``ts`` as a `symml.Trajectory` (index it by state).

        Derivative states (``theta'``) are the network's exact time derivatives.
        """
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        p = jnp.asarray([self.params[s] for s in self.model.params])
        return Trajectory(t=ts, y=self._states(ts), p=p, model=self.model, method="pinn")

    def residual(self, ts: Any) -> np.ndarray:
        """The residual ``x^(n) - f(t, x, ..., p)`` of each base state's equation at ``ts``.

        Shape ``(len(ts), number of base states)``, in the model's units (not scaled).
        """
        pr = self._problem
        ts = jnp.atleast_1d(jnp.asarray(ts, dtype=float))
        p = jnp.asarray([self.params[s] for s in self.model.params])
        idx = jnp.asarray(pr.shape.highest)

        def one(t_):
            y, dy = states_of(pr.shape, taylor(self.net, t_, pr.shape.order))
            return (dy - pr.rhs(t_, y, p))[idx]

        return np.asarray(jax.vmap(one)(ts))

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
        for s in self.estimated:
            lines.append(f"  {s} = {self.params[s]:.6g} (estimated)")
        if len(self.history["loss"]):
            last = self.history["terms"][-1]
            lines.append(
                "  final losses: " + ", ".join(f"{n} {v:.3e}" for n, v in zip(self.terms_names, last))
            )
        lines.append(f"  trained in {self.seconds:.1f} s, {len(self.history['loss'])} steps")
        for name, e in self.compare().items():
            lines.append(f"  max |pinn - simulate| / amplitude of {name}: {100 * e:.3g} %")
        return "\n".join(lines)

    def __repr__(self) -> str:
        est = ", ".join(f"{s}={self.params[s]:.6g}" for s in self.estimated)
        return f"PINNResult(model={self.model.name!r}, t_span={self.t_span}{', ' + est if est else ''})"
