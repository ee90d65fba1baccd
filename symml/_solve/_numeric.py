"""The numeric path of `symml.simulate`: values bound, runners called, stiffness switched.

`simulate_numeric` binds values by symbol (the one binder), chooses the argument layout of the
runner (`symml._solve._runner`), solves, and returns the `Trajectory` together with the
`NumericPlan` it used. The plan holds what a later call with the same argument structure needs
(the runner, the layout of the packed values, the default values), never the model, so that
`symml.simulate`'s fast path can skip binding and validation entirely.

``solver="auto"`` runs Tsit5 with the stiffness test of `symml._solve._switch`: where the step
size becomes stability-limited the explicit solve stops, and the whole solve restarts with the
Rosenbrock method Rodas4 (`symml._solve._rosenbrock`); the Trajectory records which solver ran
and why (``traj.solver``, ``traj.solver_reason``).

>>> import symml as sm
>>> traj, plan = simulate_numeric(sm.zoo.lotka_volterra(), None, (0, 1), 3, None, solver="auto")
>>> traj.solver, plan.auto
('tsit5', True)
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from .._compile._binding import bind
from .._compile._cache import artefact
from .._compile._codegen import compile
from .._declare._bind import batch_shape, pack, save_grid, stack_members
from .._declare._event import Event
from .._trajectory import Trajectory
from ..errors import SolveError
from ._core import OK, check_result
from ._domain import domain_hint
from ._ensemble import DEFAULT_MEMORY_BUDGET, check_output_fits, chunk_members, member_bytes, solve_members
from ._options import IMPLICIT, require_dt0, resolve_solver
from ._runner import make_runner, new_trajectory

__all__ = ["NumericPlan", "simulate_numeric", "AUTO_EXPLICIT", "AUTO_IMPLICIT"]

#: ``solver="auto"`` starts with this explicit solver ...
AUTO_EXPLICIT = "tsit5"
#: ... and restarts with this implicit one where the explicit steps become stability-limited
#: (Rodas4 took 0.7 ms on Robertson's kinetics to t = 2e4 where Kvaerno5 took 8.6 ms and SciPy's
#: LSODA 3.7 ms: benchmarks/stiff.py).
AUTO_IMPLICIT = "rodas4"


class NumericPlan:
    """What a numeric solve of one argument structure needs on every call (not the model).

    Attributes:
        runner: the jitted runner (Tsit5 with stiffness detection under ``solver="auto"``).
        auto: ``solver="auto"``.
        solver_name: the solver named in messages and in ``traj.solver``.
        base, index: the packed values ``[y0..., p..., t0, t1]`` of the first call and where
            the given values go (set by `symml.simulate` for its fast path; ``None`` otherwise).
    """

    __slots__ = (
        "runner",
        "implicit",
        "implicit_key",
        "auto",
        "solver_name",
        "reason",
        "rtol",
        "max_steps",
        "base",
        "index",
        "implicit_member",
    )

    def __init__(self, runner, implicit_key, auto, solver_name, reason, rtol, max_steps, implicit_member):
        self.runner = runner
        self.implicit = None
        self.implicit_key = implicit_key
        self.auto = auto
        self.solver_name = solver_name
        self.reason = reason
        self.rtol = rtol
        self.max_steps = max_steps
        self.implicit_member = implicit_member
        self.base: np.ndarray | None = None
        self.index: np.ndarray | None = None

    def solve(self, model: Any, execute, networks: dict) -> Trajectory:
        """Run ``execute(runner)`` (the runner's outputs), switch solvers if stiff, check, wrap."""
        ys, ev_t, ev_y, steps, ts, p, status = execute(self.runner)
        solver_name, reason = self.solver_name, self.reason
        if isinstance(status, jax.core.Tracer):
            ys = check_result(status[..., 0], ys, solver_name, self.rtol, self.max_steps, auto=self.auto)
        else:
            codes = np.asarray(status)  # the one read from the device
            if codes.ndim == 1 and codes[0] == 0.0 and codes[1] == np.inf:  # one solve, all well
                return new_trajectory(ts, ys, p, ev_t, ev_y, steps, networks, model, solver_name, reason)
            if self.auto and np.isfinite(codes[..., 1]).any():
                t_stiff = float(np.min(codes[..., 1]))
                ys, ev_t, ev_y, steps, ts, p, status = execute(self._implicit(model))
                codes = np.asarray(status)
                solver_name = AUTO_IMPLICIT
                reason = (
                    f"solver='auto': {AUTO_EXPLICIT}'s step size became stability-limited at "
                    f"t = {t_stiff:.6g} (the problem is stiff there); restarted with {AUTO_IMPLICIT}"
                )
            try:
                ys = check_result(codes[..., 0], ys, solver_name, self.rtol, self.max_steps, auto=self.auto)
            except SolveError:
                hint = (
                    None if model.neural else domain_hint(model, compile(model), ts, ys, p, codes[..., 0], OK)
                )
                if hint is None:
                    raise
                raise SolveError(hint) from None
        return new_trajectory(ts, ys, p, ev_t, ev_y, steps, networks, model, solver_name, reason)

    def _implicit(self, model):
        if self.implicit is None:
            build = self.implicit_key[1]
            self.implicit = artefact(model, "runner", self.implicit_key[0], lambda: build(model))
        return self.implicit


def _traced(values) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in values)


def make_plan(
    model, solver, fixed, rtol, atol, max_steps, event, adjoint, n_save, dt0, nets_key, net_static
) -> NumericPlan:
    """The `NumericPlan` (and its runner, from the artefact cache) of one configuration."""
    auto = isinstance(solver, str) and solver == "auto"
    slv_key, solver_name, _ = resolve_solver(AUTO_EXPLICIT if auto else solver)

    def key_of(slv, detect):
        return (slv, fixed, rtol, atol, dt0 is None, max_steps, event, adjoint, n_save, detect, nets_key)

    def build_for(slv, detect):
        return lambda m: make_runner(
            m, slv, fixed, rtol, atol, max_steps, event, adjoint, n_save, net_static, detect
        )

    runner = artefact(model, "runner", key_of(slv_key, auto), lambda: build_for(slv_key, auto)(model))
    if auto:
        reason = f"solver='auto': {AUTO_EXPLICIT}'s steps stayed accuracy-limited (no stiffness detected)"
    else:
        reason = f"solver={solver_name!r} was asked for"
    implicit_key = (key_of(AUTO_IMPLICIT, False), build_for(AUTO_IMPLICIT, False))
    implicit = slv_key in IMPLICIT or auto  # the ensemble memory estimate: the worst case
    return NumericPlan(runner, implicit_key, auto, solver_name, reason, rtol, max_steps, implicit)


def simulate_numeric(
    model: Any,
    ics: Any,
    t_span: Any,
    saveat: Any,
    params: Any,
    *,
    solver: Any = "tsit5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    event: Any = None,
    dt0: Any = None,
    max_steps: int = 65536,
    adaptive: bool = True,
    adjoint: Any = None,
    networks: Any = None,
    memory_budget: float | None = None,
) -> tuple[Trajectory, NumericPlan]:
    """Solve numerically (the arguments of `symml.simulate`); returns ``(trajectory, plan)``.

    Raises:
        MissingValueError: as `symml.simulate`.
        ValueError: ``solver="auto"`` under a jax transformation; an unknown solver; bad times.
        TypeError: ``event`` is not an `symml.Event`.
        SolveError: the solve failed.
        InvalidValueError: an ensemble whose result alone does not fit in memory.
    """
    pvals, yvals = bind(model, params, ics)
    batch = batch_shape(pvals, yvals)
    t0, t1, n_save, ts_arg = save_grid(t_span, saveat)
    auto = isinstance(solver, str) and solver == "auto"
    traced = _traced([*pvals, *yvals, t0, t1, ts_arg, dt0])
    if auto and traced:
        raise ValueError(
            "solver='auto' decides on the host while it solves (it restarts with an implicit "
            "method where it detects stiffness), so it cannot run under jax transformations "
            "(jax.grad, jax.vmap, jax.jit); pick a solver by name there, e.g. solver='rodas4'."
        )
    _, solver_name, can_adapt = resolve_solver(AUTO_EXPLICIT if auto else solver)
    fixed = not (adaptive and can_adapt)
    require_dt0(solver_name, fixed, adaptive, dt0)
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if model.neural:
        nets = compile(model, networks=networks).networks
        net_arrays, net_static = eqx.partition(nets, eqx.is_array)
        nets_key = jax.tree_util.tree_structure(nets)
    else:
        nets, net_arrays, net_static, nets_key = {}, {}, {}, None
    rtol, atol, max_steps = float(rtol), float(atol), int(max_steps)
    plan = make_plan(
        model, solver, fixed, rtol, atol, max_steps, event, adjoint, n_save, dt0, nets_key, net_static
    )
    dtype = jnp.result_type(float)
    ypack, ppack, span = pack(yvals), pack(pvals), pack([t0, t1])
    if not batch and all(isinstance(a, np.ndarray) for a in (ypack, ppack, span)):
        vec = np.concatenate([ypack, ppack, span])  # one transfer to the device

        def run_packed(runner):
            return runner(net_arrays, vec, None, None, ts_arg, dt0)

        execute = run_packed
        plan.base = vec
    elif batch and not traced:
        n_members = batch[0]
        saves = n_save if n_save is not None else int(np.shape(ts_arg)[0])
        check_output_fits(n_members, saves, len(model.states))  # before anything is allocated
        y0 = _host_members(yvals, batch)
        p = _host_members(pvals, batch)
        per = member_bytes(len(model.states), len(model.params), saves, plan.implicit_member)
        budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else float(memory_budget)
        chunk = chunk_members(n_members, per, budget, jax.local_device_count())
        host_span = (
            np.asarray(span, dtype=dtype)
            if isinstance(span, np.ndarray)
            else np.asarray([np.asarray(s) for s in span], dtype=dtype)
        )

        whole = chunk >= n_members and jax.local_device_count() == 1

        def run_members(runner):
            if whole:
                return runner(net_arrays, y0, p, host_span, ts_arg, dt0)
            out = solve_members(runner, net_arrays, y0, p, host_span, ts_arg, dt0, chunk)
            return tuple(None if a is None else jnp.asarray(a) for a in out)

        execute = run_members
    else:
        y0 = stack_members(yvals, batch, dtype)
        p = stack_members(pvals, batch, dtype)
        span_arr = span if isinstance(span, np.ndarray) else jnp.stack([jnp.asarray(s, dtype) for s in span])

        def run_stacked(runner):
            return runner(net_arrays, y0, p, span_arr, ts_arg, dt0)

        execute = run_stacked
    return plan.solve(model, execute, dict(nets)), plan


def _host_members(values, batch) -> np.ndarray:
    """``batch + (len(values),)`` on the host: chunks and shards are cut from it."""
    dtype = np.float64 if jax.config.read("jax_enable_x64") else np.float32
    if not len(values):
        return np.zeros(batch + (0,), dtype)
    return np.stack([np.broadcast_to(np.asarray(v, dtype), batch) for v in values], -1)
