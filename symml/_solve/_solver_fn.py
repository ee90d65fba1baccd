"""The solve as a pure JAX function: `solver_fn` and `SolverFn`.

``solver_fn(model, ...)`` turns a model into an equinox module ``f(params, ics) -> Trajectory``
that ``jax.jit``, ``jax.grad`` and ``jax.vmap`` go through (terminal events included), so any
quantity computed from a solve, such as the range of a projectile at its ground-hit event, can
be differentiated and handed to `symml.solve_for`.

>>> import jax, jax.numpy as jnp, symml as sm
>>> proj = sm.zoo.projectile()
>>> x, y, vx, vy = proj.states
>>> shoot = sm.solver_fn(proj, t_span=(0, 10), event=sm.Event(y, direction="down"))
>>> def distance(v, theta):
...     traj = shoot(ics={vx: v * jnp.cos(theta), vy: v * jnp.sin(theta)})
...     return shoot.event_value(traj, x)
>>> d, (dd_dv, dd_dtheta) = jax.jit(jax.value_and_grad(distance, argnums=(0, 1)))(15.0, jnp.pi / 3)
>>> round(float(d), 6), round(float(dd_dv), 4)  # m, and m per (m/s)
(17.88002, 2.2635)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import sympy as sp
from jax.typing import ArrayLike

from .._compile._codegen import CompiledModel, compile, compile_exprs
from .._declare._bind import bind_vector, default_vector, time_grid
from .._declare._event import Event
from .._trajectory import Trajectory
from ._core import check_result, integrate
from ._options import SolveOptions, TerminalEvent

__all__ = ["solver_fn", "SolverFn"]


class SolverFn(eqx.Module):
    """A model's solve as a pure function ``f(params=None, ics=None, ts=None) -> Trajectory``.

    ``params`` and ``ics`` are arrays in ``model.params`` / ``model.states`` order, or dicts by
    symbol or name (missing entries take the model's defaults); 1-D array values make an
    ensemble. Build with `solver_fn`.
    """

    vf: CompiledModel
    options: SolveOptions
    p_default: jax.Array
    y_default: jax.Array
    ts: jax.Array
    t0: jax.Array
    t1: jax.Array
    model: Any = eqx.field(static=True)
    solver_name: str = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    p_known: tuple = eqx.field(static=True)
    y_known: tuple = eqx.field(static=True)
    check: bool = eqx.field(static=True)

    def __call__(self, params: Any = None, ics: Any = None, ts: Any = None) -> Trajectory:
        """Solve for ``params`` and ``ics`` (see the class docstring), saving at ``ts``.

        Raises:
            MissingValueError: a value without a default.
            ValueError: values of the wrong kind or shape, or an ensemble of more than one axis.
            SolveError: the solve failed (under ``jax.jit``: a runtime error), with ``check``.
        """
        model = self.model
        p = bind_vector(model, params, "params", self.p_default, self.p_known)
        y0 = bind_vector(model, ics, "ics", self.y_default, self.y_known)
        if ts is None:
            ts, t0, t1 = self.ts, self.t0, self.t1
        else:
            ts = jnp.asarray(ts, dtype=self.ts.dtype)
            t0, t1 = ts[0], ts[-1]
        batch = jnp.broadcast_shapes(p.shape[:-1], y0.shape[:-1])
        if len(batch) > 1:
            raise ValueError(f"Ensemble values must be 1-D (one per member); got batch shape {batch}.")

        def one(y0_, p_):
            return integrate(self.vf, y0_, ts, p_, self.options, t0=t0, t1=t1)

        if batch:
            p = jnp.broadcast_to(p, batch + p.shape[-1:])
            y0 = jnp.broadcast_to(y0, batch + y0.shape[-1:])
            out = jax.vmap(one)(y0, p)
        else:
            out = one(y0, p)
        ys, ev_t, ev_y, result, steps = out.ys, out.event_time, out.event_state, out.result, out.num_steps
        if self.check:
            ys = check_result(result, ys, self.solver_name, self.rtol, self.options.max_steps)
        return Trajectory(
            t=ts,
            y=ys,
            p=p,
            event_time=ev_t,
            event_state=ev_y,
            num_steps=steps,
            networks=dict(self.vf.networks),
            model=model,
            method="numeric",
            solver=self.solver_name,
            solver_reason=f"solver={self.solver_name!r} was asked for",
        )

    def event_value(self, traj: Trajectory, expr: Any) -> jax.Array:
        """An expression of the states (e.g. ``x`` for the range) at the terminal event.

        Raises:
            ValueError: the solve has no event.
        """
        if traj.event_state is None or traj.event_time is None:
            raise ValueError("This solve has no event; build the solver_fn with event=sm.Event(...).")
        expr = sp.sympify(expr) if not isinstance(expr, str) else self.model.lookup(expr)
        if expr in self.model.rhs:
            return traj.event_state[..., self.model.states.index(expr)]
        f = compile_exprs(self.model, [expr], networks=self.vf.networks or None, title="event_value")
        ev = jnp.reshape(traj.event_state, (-1, traj.event_state.shape[-1]))
        ps = jnp.broadcast_to(traj.p, traj.event_state.shape[:-1] + traj.p.shape[-1:]).reshape(
            ev.shape[0], -1
        )
        out = jax.vmap(lambda tt, yy, pp: f(tt, yy, pp)[0])(jnp.reshape(traj.event_time, (-1,)), ev, ps)
        return out.reshape(traj.event_state.shape[:-1])


def solver_fn(
    model: Any,
    t_span: tuple[float, float] | None = None,
    saveat: int | ArrayLike | Sequence[float] | None = None,
    event: Event | None = None,
    *,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 16384,
    dt0: float | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    networks: Mapping[str, Any] | None = None,
    check: bool = True,
) -> SolverFn:
    """The solve of ``model`` as a pure, differentiable function of parameters and initial values.

    Args:
        model: a `symml.Model`.
        t_span: ``(t0, t1)``; with an ``event``, the solve stops there earlier.
        saveat: a count of equally spaced samples (default 2 with an event, else 200) or an
            array of times; a call may pass other times as ``ts=``.
        event: a terminal `symml.Event`; ``traj.event_time`` and
            `SolverFn.event_value` are differentiable.
        solver: as in `symml.simulate`.
        rtol: as in `symml.simulate`.
        atol: as in `symml.simulate`.
        max_steps: as in `symml.simulate`.
        dt0: as in `symml.simulate`.
        adjoint: diffrax adjoint; the default (recursive checkpointing) serves ``jax.grad``;
            pass ``diffrax.ForwardMode()`` for ``jax.jacfwd`` / ``jax.jvp``.
        networks: weights of neural terms (default: those stored on the model).
        check: turn solver failures into errors (``eqx.error_if`` under ``jax.jit``).

    Returns:
        A `SolverFn` (an equinox module: its arrays and network weights are leaves).

    Raises:
        TypeError: ``event`` is not a `symml.Event`.
        MissingValueError: a fixed-step solver without ``dt0``, or a count without ``t_span``.
        ValueError: an unknown solver, bad times.

    Examples:
        >>> import symml as sm
        >>> pend = sm.zoo.pendulum()
        >>> solve = sm.solver_fn(pend, t_span=(0, 1), saveat=3)
        >>> traj = solve(ics={"theta": 0.5})
        >>> traj.y.shape
        (3, 2)
        >>> round(float(traj.y[-1, 0]), 4)
        -0.4992
    """
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if saveat is None:
        saveat = 2 if event is not None else 200
    t0, t1, ts = time_grid(t_span, saveat)
    terminal = None
    if event is not None:
        terminal = TerminalEvent(compile_exprs(model, [event.expr], title="event"), direction=event.rising)
    options = SolveOptions.build(
        solver, rtol=rtol, atol=atol, dt0=dt0, max_steps=max_steps, adjoint=adjoint, event=terminal
    )
    dtype = jnp.result_type(float)
    p_default, p_known = default_vector(model, "params")
    y_default, y_known = default_vector(model, "ics")
    return SolverFn(
        vf=compile(model, networks=networks),
        options=options,
        p_default=jnp.asarray(p_default, dtype=dtype),
        y_default=jnp.asarray(y_default, dtype=dtype),
        ts=jnp.asarray(ts, dtype=dtype),
        t0=jnp.asarray(t0, dtype=dtype),
        t1=jnp.asarray(t1, dtype=dtype),
        model=model,
        solver_name=type(options.solver).__name__,
        rtol=float(rtol),
        p_known=p_known,
        y_known=y_known,
        check=bool(check),
    )
