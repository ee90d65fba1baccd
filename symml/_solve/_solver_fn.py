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
import numpy as np
import sympy as sp

from .._compile._codegen import CompiledFunction, CompiledModel, compile, compile_exprs
from .._declare._symbols import state_name
from .._trajectory import Trajectory
from ..errors import MissingValueError
from ._simulate import _DEFAULT_ADJOINT, Event, _check, _core, get_solver, time_grid

__all__ = ["solver_fn", "SolverFn"]


class SolverFn(eqx.Module):
    """A model's solve as a pure function ``f(params=None, ics=None, ts=None) -> Trajectory``.

    ``params`` and ``ics`` are arrays in ``model.params`` / ``model.states`` order, or dicts by
    symbol or name (missing entries take the model's defaults); 1-D array values make an
    ensemble. Build with `solver_fn`.
    """

    vf: CompiledModel
    event_fn: CompiledFunction | None
    p_default: jax.Array
    y_default: jax.Array
    ts: jax.Array
    t0: jax.Array
    t1: jax.Array
    model: Any = eqx.field(static=True)
    solver: Any = eqx.field(static=True)
    controller: Any = eqx.field(static=True)
    adjoint: Any = eqx.field(static=True)
    direction: Any = eqx.field(static=True)
    max_steps: int = eqx.field(static=True)
    dt0: Any = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    p_known: tuple = eqx.field(static=True)
    y_known: tuple = eqx.field(static=True)
    check: bool = eqx.field(static=True)

    def __call__(self, params: Any = None, ics: Any = None, ts: Any = None) -> Trajectory:
        model = self.model
        p = _bind(model, params, self.p_default, self.p_known, model.params, "params")
        y0 = _bind(model, ics, self.y_default, self.y_known, model.states, "ics")
        if ts is None:
            ts, t0, t1 = self.ts, self.t0, self.t1
        else:
            ts = jnp.asarray(ts, dtype=self.ts.dtype)
            t0, t1 = ts[0], ts[-1]
        batch = jnp.broadcast_shapes(p.shape[:-1], y0.shape[:-1])
        if len(batch) > 1:
            raise ValueError(f"Ensemble values must be 1-D (one per member); got batch shape {batch}.")
        static = (self.solver, self.controller, self.direction, self.adjoint, self.max_steps, self.dt0, 1e-12)

        def one(y0_, p_):
            return _core(self.vf, self.event_fn, y0_, p_, t0, t1, ts, *static)

        if batch:
            p = jnp.broadcast_to(p, batch + p.shape[-1:])
            y0 = jnp.broadcast_to(y0, batch + y0.shape[-1:])
            ys, ev_t, ev_y, result, steps = jax.vmap(one)(y0, p)
        else:
            ys, ev_t, ev_y, result, steps = one(y0, p)
        if self.check:
            ys = _check(result, ys, type(self.solver).__name__, self.rtol, self.max_steps)
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
        )

    def event_value(self, traj: Trajectory, expr: Any) -> jax.Array:
        """An expression of the states (e.g. ``x`` for the range) at the terminal event."""
        if traj.event_state is None:
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


def _bind(model, values, default, known, order, what):
    if values is None:
        missing = [k for k, ok in zip(order, known) if not ok]
        if missing:
            _missing(model, missing, what)
        return default
    if isinstance(values, Mapping):
        cols, vals = [], []
        for k, v in values.items():
            s = model.lookup(k)
            if s not in order:
                other = "ics" if what == "params" else "params"
                raise ValueError(f"{what} got a value for {s}; pass it in {other}= instead.")
            cols.append(order.index(s))
            vals.append(jnp.asarray(v, dtype=default.dtype))
        missing = [k for j, (k, ok) in enumerate(zip(order, known)) if not ok and j not in cols]
        if missing:
            _missing(model, missing, what)
        batch = jnp.broadcast_shapes(*[v.shape for v in vals]) if vals else ()
        out = jnp.broadcast_to(default, batch + default.shape)
        for c, v in zip(cols, vals):
            out = out.at[..., c].set(v)
        return out
    arr = jnp.asarray(values, dtype=default.dtype)
    if arr.ndim == 0 or arr.shape[-1] != len(order):
        names = ", ".join(state_name(s) if s in model.rhs else str(s) for s in order)
        raise ValueError(
            f"{what} as an array needs {len(order)} values in model order ({names}); got shape {arr.shape}."
        )
    return arr


def _missing(model, missing, what):
    names = ", ".join(state_name(s) if s in model.rhs else str(s) for s in missing)
    raise MissingValueError(
        f"No value for {names}: pass {what}={{...}} with them or give the model defaults."
    )


def solver_fn(
    model,
    t_span: tuple[float, float] | None = None,
    saveat: int | Sequence[float] | jax.Array | None = None,
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
        solver, rtol, atol, max_steps, dt0: as in `symml.simulate`.
        adjoint: diffrax adjoint; the default (recursive checkpointing) serves ``jax.grad``;
            pass ``diffrax.ForwardMode()`` for ``jax.jacfwd`` / ``jax.jvp``.
        networks: weights of neural terms (default: those stored on the model).
        check: turn solver failures into errors (``eqx.error_if`` under ``jax.jit``).

    Returns:
        A `SolverFn` (an equinox module: its arrays and network weights are leaves).
    """
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if saveat is None:
        saveat = 2 if event is not None else 200
    t0, t1, ts = time_grid(t_span, saveat)
    slv = get_solver(solver)
    fixed = not isinstance(slv, diffrax.AbstractAdaptiveSolver)
    if fixed and dt0 is None:
        raise MissingValueError(f"Solver {solver} takes fixed steps: pass dt0, the step size.")
    dtype = jnp.result_type(float)
    defaults = model.free_values()
    p_default = jnp.asarray([float(defaults.get(p, np.nan)) for p in model.params], dtype=dtype)
    y_default = jnp.asarray([float(defaults.get(s, np.nan)) for s in model.states], dtype=dtype)
    return SolverFn(
        vf=compile(model, networks=networks),
        event_fn=compile_exprs(model, [event.expr], title="event") if event is not None else None,
        p_default=p_default.reshape(len(model.params)),
        y_default=y_default,
        ts=jnp.asarray(ts, dtype=dtype),
        t0=jnp.asarray(t0, dtype=dtype),
        t1=jnp.asarray(t1, dtype=dtype),
        model=model,
        solver=slv,
        controller=diffrax.ConstantStepSize() if fixed else diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=adjoint if adjoint is not None else _DEFAULT_ADJOINT,
        direction=event._diffrax_direction if event is not None else None,
        max_steps=int(max_steps),
        dt0=dt0,
        rtol=float(rtol),
        p_known=tuple(p in defaults for p in model.params),
        y_known=tuple(s in defaults for s in model.states),
        check=bool(check),
    )
