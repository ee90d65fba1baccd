"""``simulate``: a model solved at given times, through its closed form or numerically.

``method="auto"`` evaluates the closed-form flow map when symml finds one for a linear model
(`symml._analytic`), and otherwise integrates with diffrax through the one solve core
(`symml._solve._core.integrate`). Everything is JAX, so ``jax.grad``/``jax.vmap`` work through
``simulate``.

>>> import symml as sm
>>> pend = sm.zoo.pendulum()
>>> theta, omega = pend.states
>>> traj = sm.simulate(pend, ics={theta: 0.1, omega: 0.0}, t_span=(0, 2), saveat=3)
>>> traj.t.tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .._analytic._flow import closed_form_trajectory
from .._compile._binding import bind
from .._compile._cache import artefact
from .._compile._codegen import CompiledFunction, CompiledModel, compile, compile_exprs, rhs_program
from .._declare._bind import batch_shape, bind_ics, bind_params, pack, save_grid, stack_members
from .._declare._event import Event
from .._trajectory import Trajectory
from ._core import check_result, integrate
from ._options import (
    DEFAULT_ADJOINT,
    SOLVERS,
    SolveOptions,
    TerminalEvent,
    get_solver,
    require_dt0,
    resolve_solver,
)
from ._stiffness import choose_solver, stiffness_index

# Names other stages import from here (kept importable from their former home).
__all__ = [
    "simulate",
    "Event",
    "SOLVERS",
    "get_solver",
    "bind_params",
    "bind_ics",
    "choose_solver",
    "stiffness_index",
]


def simulate(
    model: Any,
    ics: Mapping[Any, Any] | None = None,
    t_span: tuple[float, float] | None = None,
    saveat: int | ArrayLike | Sequence[float] | None = None,
    params: Mapping[Any, Any] | None = None,
    *,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    event: Event | None = None,
    dt0: float | None = None,
    max_steps: int = 65536,
    adaptive: bool = True,
    adjoint: diffrax.AbstractAdjoint | None = None,
    networks: Mapping[str, Any] | None = None,
    method: str = "auto",
) -> Trajectory:
    """Solve ``model`` and return a `Trajectory`.

    Args:
        model: a `symml.Model`.
        ics: initial values by state or name (``{x: 0, x.diff(t): 3}``); model defaults fill
            the rest. Arrays of length N solve an ensemble of N members in one batch.
        t_span: ``(t0, t1)``.
        saveat: number of equally spaced samples (default 200) or an array of times.
        params: parameter values by symbol or name; defaults fill the rest. Arrays of
            length N make an ensemble.
        solver: a name in `SOLVERS`, ``"auto"`` (implicit when stiff, see
            `choose_solver`) or a diffrax solver.
        rtol: tolerances of the adaptive step-size controller.
        atol: tolerances of the adaptive step-size controller.
        event: a terminal `Event`.
        dt0: initial step (required for fixed-step solvers such as ``euler``).
        max_steps: solver step limit; exceeding it raises `SolveError`.
        adaptive: ``False`` takes fixed steps of size ``dt0`` (for convergence studies).
        adjoint: a diffrax adjoint for gradients (default: recursive checkpointing).
        networks: weights for neural terms, overriding those stored on the model.
        method: ``"auto"`` (default) evaluates the closed form when symml finds one for a
            linear model within a short budget (`symml._analytic.AUTO_TIMEOUT`, once per
            model: the outcome is cached) and integrates numerically otherwise;
            ``"analytic"`` requires the closed form (raises `symml.NoClosedForm`);
            ``"numeric"`` always integrates. ``traj.method`` records which was used. Options
            that only make sense numerically (a solver other than ``"tsit5"``/``"auto"``,
            ``adaptive=False``, ``dt0``, ``adjoint``, ``networks``) make ``"auto"`` numeric.

    Returns:
        The `Trajectory` (``batch + (n_times, n_states)`` states, event time and state).

    Raises:
        MissingValueError: a parameter or initial value without a value, no time span, or
            fixed steps without ``dt0``.
        SolveError: the solve failed (step limit reached, divergence).
        NoClosedForm: ``method="analytic"`` and no closed form was found.
        ValueError: an unknown solver or method, ensemble sizes that differ, bad times.
        TypeError: ``event`` is not an `Event`.

    Gradients with respect to ``ics`` and ``params`` values (and through an event) work with
    ``jax.grad``.

    Examples:
        >>> import symml as sm
        >>> lv = sm.zoo.lotka_volterra()
        >>> traj = sm.simulate(lv, t_span=(0, 10), saveat=5)
        >>> traj.y.shape, traj.method
        ((5, 2), 'numeric')
        >>> traj.t.tolist()
        [0.0, 2.5, 5.0, 7.5, 10.0]
        >>> round(float(traj.y[-1, 0]), 4)
        0.0359
    """
    if method not in ("auto", "analytic", "numeric"):
        raise ValueError(f"method must be 'auto', 'analytic' or 'numeric', got {method!r}")
    numeric_only = (
        bool(model.neural)
        or networks is not None
        or not adaptive
        or dt0 is not None
        or adjoint is not None
        or not (isinstance(solver, str) and solver in ("tsit5", "auto"))
    )
    if method == "analytic" or (method == "auto" and not numeric_only):
        traj = closed_form_trajectory(
            model, ics, t_span, saveat, params, event=event, required=method == "analytic"
        )
        if traj is not None:
            return traj
    return _simulate_numeric(
        model,
        ics,
        t_span,
        saveat,
        params,
        solver=solver,
        rtol=rtol,
        atol=atol,
        event=event,
        dt0=dt0,
        max_steps=max_steps,
        adaptive=adaptive,
        adjoint=adjoint,
        networks=networks,
    )


def _simulate_numeric(
    model,
    ics,
    t_span,
    saveat,
    params,
    *,
    solver,
    rtol,
    atol,
    event,
    dt0,
    max_steps,
    adaptive,
    adjoint,
    networks,
) -> Trajectory:
    # Everything that depends only on the configuration is compiled once per model into a
    # jitted runner (an artefact); a call then binds values and costs one dispatch.
    pvals, yvals = bind(model, params, ics)
    batch = batch_shape(pvals, yvals)
    t0, t1, n_save, ts_arg = save_grid(t_span, saveat)
    if solver == "auto":
        y0c = np.stack([np.broadcast_to(_concrete(v), batch) for v in yvals], -1) if yvals else None
        p0c = np.stack([np.broadcast_to(_concrete(v), batch) for v in pvals], -1) if pvals else np.zeros(0)
        solver = choose_solver(model, y0c, p0c, float(_concrete(t0)), float(_concrete(t1)))
    slv_key, solver_name, can_adapt = resolve_solver(solver)
    fixed = not (adaptive and can_adapt)
    require_dt0(solver_name, fixed, adaptive, dt0)
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if model.neural:
        nets = compile(model, networks=networks).networks
        net_arrays, net_static = eqx.partition(nets, eqx.is_array)
    else:
        nets, net_arrays, net_static = {}, {}, {}
    adjoint = adjoint if adjoint is not None else DEFAULT_ADJOINT
    rtol, atol, max_steps = float(rtol), float(atol), int(max_steps)
    # The time span stays a traced value, so new spans never recompile.
    key = (slv_key, fixed, rtol, atol, dt0 is None, max_steps, event, adjoint, n_save, batch)
    if model.neural:
        key += (jax.tree_util.tree_structure(nets),)
    runner = artefact(
        model,
        "runner",
        key,
        lambda: _make_runner(
            model, slv_key, fixed, rtol, atol, max_steps, event, adjoint, n_save, batch, net_static
        ),
    )
    ys, ev_t, ev_y, result, steps, ts, p = runner(
        net_arrays, pack(yvals), pack(pvals), pack([t0, t1]), ts_arg, dt0
    )
    ys = check_result(result, ys, solver_name, rtol, max_steps)
    return Trajectory(
        t=ts,
        y=ys,
        p=p,
        event_time=ev_t,
        event_state=ev_y,
        num_steps=steps,
        networks=dict(nets),
        model=model,
        method="numeric",
    )


def _make_runner(model, slv_key, fixed, rtol, atol, max_steps, event, adjoint, n_save, batch, net_static):
    # The runner is kept in the artefact cache, keyed by the model: it must not hold the model
    # (a value that references its key would keep the model alive), only what it compiled.
    program = rhs_program(model)
    event_prog = compile_exprs(model, [event.expr], title="event").program if event is not None else None
    rising = event.rising if event is not None else None
    solver = get_solver(slv_key)
    controller = diffrax.ConstantStepSize() if fixed else diffrax.PIDController(rtol=rtol, atol=atol)
    dtype = jnp.result_type(float)
    states, params = tuple(model.states), tuple(model.params)

    def run(net_arrays, yvals, pvals, scalars, ts, dt0):
        nets = eqx.combine(net_arrays, net_static)
        vf = CompiledModel(nets, program, states, params)
        ev = None
        if event_prog is not None:
            ev = TerminalEvent(CompiledFunction(nets, event_prog, states, params), direction=rising)
        options = SolveOptions(solver, controller, adjoint, max_steps, dt0, ev)
        y0 = stack_members(yvals, batch, dtype)
        p = stack_members(pvals, batch, dtype)
        t0, t1 = (jnp.asarray(s, dtype) for s in scalars)
        if ts is None:
            ts = jnp.linspace(t0, t1, n_save, dtype=dtype)

        def one(y0_, p_):
            return integrate(vf, y0_, ts, p_, options, t0=t0, t1=t1)

        out = jax.vmap(one)(y0, p) if batch else one(y0, p)
        return (*out, ts, p)

    return jax.jit(run)


def _concrete(x):
    if isinstance(x, jax.core.Tracer):
        raise ValueError(
            "solver='auto' inspects the initial point and cannot run under jax transformations; "
            "pick a solver by name inside jax.grad/jax.vmap."
        )
    return np.asarray(x)
