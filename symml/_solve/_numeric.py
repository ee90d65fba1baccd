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
from .._compile._cache import artefact, peek
from .._compile._codegen import compile
from .._declare._bind import batch_shape, pack, save_grid, stack_members
from .._declare._event import Event
from .._trajectory import Trajectory
from ..errors import SolveError
from ._core import OK, check_result
from ._domain import domain_hint
from ._ensemble import DEFAULT_MEMORY_BUDGET, check_output_fits, chunk_members, member_bytes, solve_members
from ._options import IMPLICIT, check_dt0, require_dt0, resolve_solver
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
        runner: the jitted runner (Tsit5 with stiffness detection under ``solver="auto"``) that
            takes the span as an argument; ``None`` until a call needs it.
        span, baked: the span baked into the runner ``baked`` as constants (``None``: none).
        auto: ``solver="auto"``.
        solver_name: the solver named in messages and in ``traj.solver``.
        base, index: the packed values ``[y0..., p..., t0, t1]`` of the first call and where
            the given values go (set by `symml.simulate` for its fast path; ``None`` otherwise).
    """

    __slots__ = (
        "runner",
        "span",
        "baked",
        "builds",
        "implicit",
        "auto",
        "solver_name",
        "reason",
        "rtol",
        "max_steps",
        "base",
        "index",
        "implicit_member",
    )

    def __init__(
        self, runner, span, baked, builds, auto, solver_name, reason, rtol, max_steps, implicit_member
    ):
        self.runner = runner
        self.span = span
        self.baked = baked
        self.builds = builds
        self.implicit: dict = {}
        self.auto = auto
        self.solver_name = solver_name
        self.reason = reason
        self.rtol = rtol
        self.max_steps = max_steps
        self.implicit_member = implicit_member
        self.base: np.ndarray | None = None
        self.index: np.ndarray | None = None

    def runner_for(self, model: Any, span: Any, solver: str | None = None) -> Any:
        """The runner for ``span`` (the baked one for its own span), built on first use;
        ``solver``: `AUTO_IMPLICIT` for ``solver="auto"``'s restart."""
        baked = self.span is not None and span == self.span
        if solver is None:
            if baked:
                return self.baked
            if self.runner is None:
                self.runner = self.builds(model, None, None)
            return self.runner
        if baked not in self.implicit:
            self.implicit[baked] = self.builds(model, solver, self.span if baked else None)
        return self.implicit[baked]

    def solve_packed(self, model: Any, vec: np.ndarray, span: Any, dt0: Any) -> Trajectory:
        """`solve` for the packed layout ``vec`` of one solve with concrete ``span``
        (`symml.simulate`'s fast path), its common case written out.

        Why written out: after a solve, each Python call of the generic route costs 2-4 us (cold
        caches; measured per step of the call), and the route took ~30 us on the Brusselator.
        """

        def execute(runner):
            return runner(_NO_NETWORKS, vec, None, None, None, dt0)

        if self.span is None or span != self.span:
            return self.solve(model, execute, {}, span)
        out = self.baked(_NO_NETWORKS, vec, None, None, None, dt0)
        result, stiff, steps = np.asarray(out[5]).tolist()  # the one read from the device
        if result == 0.0 and stiff == _NOT_STIFF:
            steps = np.int64(steps)
            return new_trajectory(
                out[3], out[0], out[4], out[1], out[2], steps, {}, model, self.solver_name, self.reason
            )
        return self.solve(model, execute, {}, span, out)

    def solve(self, model: Any, execute, networks: dict, span: Any = None, first: Any = None) -> Trajectory:
        """Run ``execute(runner)`` (the runner's outputs), switch solvers if stiff, check, wrap.

        ``span``: the concrete ``(t0, t1)`` of the call (picks a runner with it baked in);
        ``first``: the outputs of the runner for ``span`` when the caller ran it already."""
        out = execute(self.runner_for(model, span)) if first is None else first
        ys, ev_t, ev_y, ts, p, status = out
        solver_name, reason = self.solver_name, self.reason
        if isinstance(status, jax.core.Tracer):
            ys = check_result(status[..., 0], ys, solver_name, self.rtol, self.max_steps, auto=self.auto)
            steps = status[..., 2].astype(int)
        else:
            codes = np.asarray(status)  # the one read from the device
            if codes.ndim == 1:
                result, stiff, steps = codes.tolist()
                if result == 0.0 and stiff == _NOT_STIFF:  # one solve, all well
                    steps = np.int64(steps)
                    return new_trajectory(ts, ys, p, ev_t, ev_y, steps, networks, model, solver_name, reason)
            if self.auto and np.isfinite(codes[..., 1]).any():
                t_stiff = float(np.min(codes[..., 1]))
                ys, ev_t, ev_y, ts, p, status = execute(self.runner_for(model, span, AUTO_IMPLICIT))
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
            steps = codes[..., 2].astype(np.int64)
        return new_trajectory(ts, ys, p, ev_t, ev_y, steps, networks, model, solver_name, reason)


_NOT_STIFF = float("inf")  # the stiffness time of a solve that never turned stiff
_NO_NETWORKS: dict = {}  # the runner's network weights for a model without networks


def _traced(values) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in values)


def make_plan(
    model, solver, fixed, rtol, atol, max_steps, event, adjoint, n_save, dt0, nets_key, net_static, span=None
) -> NumericPlan:
    """The `NumericPlan` (and its runner, from the artefact cache) of one configuration.

    ``span``: the concrete ``(t0, t1)`` of the call (``None``: traced). The first span a
    configuration solves is baked into its runner as constants; once a configuration has seen a
    second span, its runners take the span as an argument (one more compilation, then none per
    new span). Why: a traced span costs 10-15 % per solve (see `make_runner`), while a sweep over
    spans must not compile once per span.
    """
    auto = isinstance(solver, str) and solver == "auto"
    slv_key, solver_name, _ = resolve_solver(AUTO_EXPLICIT if auto else solver)

    def key_of(slv, detect, baked):
        return (
            slv,
            fixed,
            rtol,
            atol,
            dt0 is None,
            max_steps,
            event,
            adjoint,
            n_save,
            detect,
            nets_key,
            baked,
        )

    def builds(m, slv, baked):
        slv, detect = (slv_key, auto) if slv is None else (slv, False)

        def build():
            return make_runner(
                m, slv, fixed, rtol, atol, max_steps, event, adjoint, n_save, net_static, detect, baked
            )

        return artefact(m, "runner", key_of(slv, detect, baked), build)

    general = key_of(slv_key, auto, None)
    runner = peek(model, "runner", general)
    baked = None
    if span is not None and BAKE_SPAN:
        baked = peek(model, "runner", key_of(slv_key, auto, span))
        # a configuration whose span never changed so far bakes it (the first span is recorded)
        if baked is None and runner is None and artefact(model, "first_span", general, lambda: span) == span:
            baked = builds(model, None, span)
    if baked is None:
        span = None
        if runner is None:
            runner = builds(model, None, None)
    if auto:
        reason = f"solver='auto': {AUTO_EXPLICIT}'s steps stayed accuracy-limited (no stiffness detected)"
    else:
        reason = f"solver={solver_name!r} was asked for"
    implicit = slv_key in IMPLICIT or auto  # the ensemble memory estimate: the worst case
    return NumericPlan(runner, span, baked, builds, auto, solver_name, reason, rtol, max_steps, implicit)


#: Bake the first span of a configuration into its runner (see `make_plan`).
BAKE_SPAN = True


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
    if not traced:
        check_dt0(dt0, float(t0), float(t1))
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if model.neural:
        nets = compile(model, networks=networks).networks
        net_arrays, net_static = eqx.partition(nets, eqx.is_array)
        nets_key = jax.tree_util.tree_structure(nets)
    else:
        nets, net_arrays, net_static, nets_key = {}, {}, {}, None
    rtol, atol, max_steps = float(rtol), float(atol), int(max_steps)
    concrete = None if traced else (float(t0), float(t1))
    plan = make_plan(
        model,
        solver,
        fixed,
        rtol,
        atol,
        max_steps,
        event,
        adjoint,
        n_save,
        dt0,
        nets_key,
        net_static,
        concrete,
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
    return plan.solve(model, execute, dict(nets), concrete), plan


def _host_members(values, batch) -> np.ndarray:
    """``batch + (len(values),)`` on the host: chunks and shards are cut from it."""
    dtype = np.float64 if jax.config.read("jax_enable_x64") else np.float32
    if not len(values):
        return np.zeros(batch + (0,), dtype)
    return np.stack([np.broadcast_to(np.asarray(v, dtype), batch) for v in values], -1)
