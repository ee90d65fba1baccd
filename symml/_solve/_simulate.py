"""Numerical solves with diffrax: ``simulate``, terminal events, solver choice, ensembles.

A solve is a pure function of (model, initial values, times, parameters); options are small
keyword arguments. Everything is JAX, so ``jax.grad``/``jax.vmap`` work through ``simulate``.

>>> import symml as sm
>>> pend = sm.zoo.pendulum()
>>> theta, omega = pend.states
>>> traj = sm.simulate(pend, ics={theta: 0.1, omega: 0.0}, t_span=(0, 2), saveat=3)
>>> traj.t.tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import sympy as sp

from .._compile._codegen import CompiledFunction, CompiledModel, compile, compile_exprs
from .._declare._symbols import state_name
from .._trajectory import Trajectory
from ..errors import MissingValueError, SolveError

# ----------------------------------------------------------------------------- options

#: Solver names accepted by ``simulate(solver=...)``.
SOLVERS: dict[str, type] = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "bosh3": diffrax.Bosh3,
    "heun": diffrax.Heun,
    "ralston": diffrax.Ralston,
    "midpoint": diffrax.Midpoint,
    "euler": diffrax.Euler,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
    "implicit_euler": diffrax.ImplicitEuler,
}
IMPLICIT = ("kvaerno3", "kvaerno4", "kvaerno5", "implicit_euler")
_SOLVER_INSTANCES: dict[str, diffrax.AbstractSolver] = {}
_DEFAULT_ADJOINT = diffrax.RecursiveCheckpointAdjoint()

#: ``solver="auto"`` switches to an implicit solver above this stiffness index
#: ``max(-Re λ) × (t1 - t0)`` (λ: eigenvalues of the Jacobian at the initial point).
STIFFNESS_THRESHOLD = 1000.0


@dataclasses.dataclass(frozen=True)
class Event:
    """A terminal event: the solve stops where ``expr`` crosses zero.

    Args:
        expr: an expression of states, parameters and ``t`` (e.g. ``y`` for "hits the ground").
        direction: ``"down"`` (positive to negative), ``"up"``, or ``None`` for either.

    The crossing time is located by Newton's method on the dense solution and is
    differentiable with respect to parameters and initial values.
    """

    expr: Any
    direction: str | None = None

    def __post_init__(self):
        if self.direction not in (None, "up", "down", "both"):
            raise ValueError(f"Event direction must be 'up', 'down' or None (either), got {self.direction!r}")
        object.__setattr__(self, "expr", sp.sympify(self.expr))

    @property
    def _diffrax_direction(self):
        return {"up": True, "down": False}.get(self.direction)


def get_solver(solver: Any) -> diffrax.AbstractSolver:
    """A diffrax solver from a name in `SOLVERS` or a solver object."""
    if isinstance(solver, diffrax.AbstractSolver):
        return solver
    if isinstance(solver, str) and solver.lower() in SOLVERS:
        name = solver.lower()
        if name not in _SOLVER_INSTANCES:
            _SOLVER_INSTANCES[name] = SOLVERS[name]()
        return _SOLVER_INSTANCES[name]
    raise ValueError(
        f"Unknown solver {solver!r}. Use one of {', '.join(SOLVERS)}, 'auto', or a diffrax "
        "solver object such as diffrax.Tsit5()."
    )


def stiffness_index(model, y0, p, t0: float, t1: float) -> float:
    """``max(0, max(-Re λ)) × |t1 - t0|`` with λ the eigenvalues of the Jacobian at (t0, y0).

    This is the number of time constants of the fastest decaying mode inside the span: an
    explicit solver needs about that many steps for stability alone, whatever the accuracy.
    """
    y0 = np.asarray(y0, dtype=float).reshape(-1, len(model.states))[0]
    p = np.asarray(p, dtype=float).reshape(-1, max(len(model.params), 1))[0][: len(model.params)]
    if model.neural:
        vf = compile(model)
        jac = np.asarray(jax.jacfwd(lambda y: vf(t0, y, jnp.asarray(p)))(jnp.asarray(y0)))
    else:
        jf = model._cache.get("jacobian_fn")
        if jf is None:
            J = model.jacobian()
            jf = compile_exprs(model, list(J), title="jacobian")
            model._cache["jacobian_fn"] = jf
        n = len(model.states)
        jac = np.asarray(jf(t0, jnp.asarray(y0), jnp.asarray(p))).reshape(n, n)
    if not np.all(np.isfinite(jac)):
        return 0.0
    lam = np.linalg.eigvals(jac)
    return float(max(0.0, float(np.max(-lam.real))) * abs(t1 - t0))


def choose_solver(model, y0, p, t0: float, t1: float) -> str:
    """The ``solver="auto"`` rule: ``kvaerno5`` if the stiffness index exceeds
    `STIFFNESS_THRESHOLD`, else ``tsit5``."""
    return "kvaerno5" if stiffness_index(model, y0, p, t0, t1) > STIFFNESS_THRESHOLD else "tsit5"


# ----------------------------------------------------------------------------- the core


def _core(vf, event_fn, y0, p, t0, t1, ts, solver, controller, direction, adjoint, max_steps, dt0, event_tol):
    term = diffrax.ODETerm(vf)
    if event_fn is not None:

        def cond(t, y, args, **_):  # diffrax passes these by keyword
            return event_fn(t, y, args)[0]

        event = diffrax.Event(
            cond, root_finder=optx.Newton(rtol=event_tol, atol=event_tol), direction=direction
        )
        saveat = diffrax.SaveAt(ts=ts, t1=True)
    else:
        event = None
        saveat = diffrax.SaveAt(ts=ts)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=p,
        saveat=saveat,
        stepsize_controller=controller,
        adjoint=adjoint,
        event=event,
        max_steps=max_steps,
        throw=False,
    )
    if event_fn is not None:
        # With an event, diffrax writes the samples before the event, then the state at the
        # event time (the t1 save), then inf. Unpack that layout into fixed-shape arrays.
        n = ts.shape[0]
        finite = jnp.isfinite(sol.ts)
        idx = jnp.sum(finite) - 1
        t_end = sol.ts[idx]
        happened = jax.tree_util.tree_leaves(sol.event_mask)[0]
        event_time = jnp.where(happened, t_end, jnp.nan)
        event_state = jnp.where(happened, sol.ys[idx], jnp.nan)
        keep = (jnp.arange(n) < idx)[:, None]
        ys = jnp.where(keep, sol.ys[:n], jnp.nan)
    else:
        ys, event_time, event_state = sol.ys, None, None
    return ys, event_time, event_state, sol.result._value, sol.stats["num_steps"]


_core_jit = eqx.filter_jit(_core)


def _core_batched(vf, event_fn, y0, p, t0, t1, ts, *static):
    return jax.vmap(lambda a, b: _core(vf, event_fn, a, b, t0, t1, ts, *static))(y0, p)


_core_batched_jit = eqx.filter_jit(_core_batched)


_OK = (diffrax.RESULTS.successful._value, diffrax.RESULTS.event_occurred._value)
_OK_SET = {int(v) for v in _OK}


def _check(result, ys, solver_name: str, rtol: float, max_steps: int):
    """Turn a diffrax failure code into a SolveError (or a runtime error under tracing)."""
    msg_steps = (
        f"The solve stopped after max_steps={max_steps} steps without reaching t1 (solver "
        f"{solver_name}, rtol={rtol:g}). The problem may be stiff: try solver='auto' or "
        "'kvaerno5', a looser rtol/atol, or a larger max_steps. Or the solution may blow up "
        "(grow without bound) before t1: check the parameters and initial values."
    )
    if isinstance(result, jax.core.Tracer):
        bad = ~jnp.isin(result, jnp.asarray(_OK))
        return eqx.error_if(ys, jnp.any(bad), msg_steps)
    res = np.asarray(result)
    if res.ndim == 0 and int(res) in _OK_SET:
        return ys
    if np.all(np.isin(res, _OK)):
        return ys
    code = int(res[~np.isin(res, _OK)].flat[0])
    if code == diffrax.RESULTS.max_steps_reached._value:
        raise SolveError(msg_steps)
    message = _result_message(code)
    raise SolveError(
        f"The solve failed: {message} (solver {solver_name}, rtol={rtol:g}). The solution may "
        "diverge (blow up) for these values; check parameters and initial values, or try an "
        "implicit solver such as 'kvaerno5' or a tighter tolerance."
    )


def _result_message(code: int) -> str:
    for name in dir(diffrax.RESULTS):
        item = getattr(diffrax.RESULTS, name, None)
        if getattr(item, "_value", None) is not None:
            try:
                if int(item._value) == code:
                    return str(item).split("<", 1)[-1].rstrip(">")
            except TypeError:
                continue
    return f"diffrax result code {code}"


# ----------------------------------------------------------------------------- binding


def bind_params(model, params: Mapping[Any, Any] | None):
    """Parameter values in ``model.params`` order (defaults overridden by ``params``)."""
    if not params and "params_default" in model._cache:  # models are immutable: safe to keep
        return list(model._cache["params_default"])
    values = model.free_values(params)
    missing = [p for p in model.params if p not in values]
    if missing:
        names = ", ".join(p.name for p in missing)
        raise MissingValueError(
            f"No value for parameter(s) {names} of model {model.name!r}. Pass params={{"
            + ", ".join(f"{p.name}: ..." for p in missing)
            + "} or give the model defaults."
        )
    out = [values[p] for p in model.params]
    if not params:
        model._cache["params_default"] = tuple(out)
    return out


def bind_ics(model, ics: Mapping[Any, Any] | None):
    """Initial values in ``model.states`` order (model defaults overridden by ``ics``)."""
    if not ics and "ics_default" in model._cache:
        return list(model._cache["ics_default"])
    values = {k: v for k, v in model.defaults.items() if k in model.rhs}
    for k, v in (ics or {}).items():
        s = model.lookup(k)
        if s not in model.rhs:
            raise MissingValueError(
                f"ics has a value for parameter {s}; pass parameters with params={{...}}."
            )
        values[s] = v
    missing = [s for s in model.states if s not in values]
    if missing:
        names = ", ".join(state_name(s) for s in missing)
        hint = ", ".join(f"{_ic_key(s)}: ..." for s in missing)
        raise MissingValueError(
            f"No initial value for state(s) {names} of model {model.name!r}. Pass ics={{{hint}}} "
            "(states by symbol, derivative states as x.diff(t), or by name such as 'x_t')."
        )
    out = [values[s] for s in model.states]
    if not ics:
        model._cache["ics_default"] = tuple(out)
    return out


def _ic_key(s) -> str:
    if isinstance(s, sp.Derivative):
        n = sum(c for _, c in s.variable_count)
        base = s.expr.func.__name__
        return f"{base}.diff(t)" if n == 1 else f"{base}.diff(t, {n})"
    return s.func.__name__


def _stack(values: Sequence[Any]) -> tuple[jax.Array, tuple[int, ...]]:
    """Stack scalars/arrays into ``batch + (len(values),)``; batch from the array-valued ones."""
    arrs = [jnp.asarray(v, dtype=jnp.result_type(float)) for v in values]
    shapes = [a.shape for a in arrs]
    try:
        batch = np.broadcast_shapes(*shapes) if shapes else ()
    except ValueError:
        raise ValueError(f"Ensemble values must all have the same length; got shapes {shapes}.") from None
    if len(batch) > 1:
        raise ValueError(f"Ensemble values must be 1-D arrays (one per member); got shape {batch}.")
    if not arrs:
        return jnp.zeros(batch + (0,)), batch
    return jnp.stack([jnp.broadcast_to(a, batch) for a in arrs], axis=-1), batch


def time_grid(t_span, saveat) -> tuple[float, float, jax.Array]:
    """``(t0, t1, ts)`` from ``t_span`` and ``saveat`` (a count or an array of times)."""
    if saveat is None:
        saveat = 200
    if isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool):
        if t_span is None:
            raise MissingValueError("No time span: pass t_span=(t0, t1), or saveat as an array of times.")
        t0, t1 = t_span
        if int(saveat) < 1:
            raise ValueError(f"saveat must be a positive count or an array of times, got {saveat}")
        ts = jnp.linspace(t0, t1, int(saveat))
        return t0, t1, ts
    ts = jnp.asarray(saveat, dtype=jnp.result_type(float))
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"saveat must be a count or a 1-D array of times, got shape {ts.shape}")
    if not isinstance(ts, jax.core.Tracer) and np.any(np.diff(np.asarray(ts)) < 0):
        raise ValueError("saveat times must be non-decreasing.")
    if t_span is None:
        return ts[0], ts[-1], ts
    return t_span[0], t_span[1], ts


def save_grid(t_span, saveat) -> tuple[Any, Any, int | None, Any]:
    """``(t0, t1, n_save, ts)`` for a solve: a count gives ``n_save`` (the times are made inside
    the compiled solve), an array gives ``ts``. Concrete times are checked and read on the host,
    where indexing costs nothing (a device array costs a dispatch per index); traced times
    stay traced."""
    if saveat is None:
        saveat = 200
    if isinstance(saveat, (int, np.integer)) and not isinstance(saveat, bool):
        if t_span is None:
            raise MissingValueError("No time span: pass t_span=(t0, t1), or saveat as an array of times.")
        if int(saveat) < 1:
            raise ValueError(f"saveat must be a positive count or an array of times, got {saveat}")
        t0, t1 = t_span
        return t0, t1, int(saveat), None
    if isinstance(saveat, jax.core.Tracer):
        t0, t1, ts = time_grid(t_span, saveat)
        return t0, t1, None, ts
    host = np.asarray(saveat, dtype=np.float64 if jax.config.jax_enable_x64 else np.float32)
    if host.ndim != 1 or host.size == 0:
        raise ValueError(f"saveat must be a count or a 1-D array of times, got shape {host.shape}")
    if np.any(np.diff(host) < 0):
        raise ValueError("saveat times must be non-decreasing.")
    t0, t1 = (host[0], host[-1]) if t_span is None else t_span
    keep = isinstance(saveat, jax.Array) and jnp.issubdtype(saveat.dtype, jnp.floating)
    return t0, t1, None, saveat if keep else host


# ----------------------------------------------------------------------------- simulate


def simulate(
    model,
    ics: Mapping[Any, Any] | None = None,
    t_span: tuple[float, float] | None = None,
    saveat: int | Sequence[float] | jax.Array | None = None,
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
        rtol, atol: tolerances of the adaptive step-size controller.
        event: a terminal `Event`.
        dt0: initial step (required for fixed-step solvers such as ``euler``).
        max_steps: solver step limit; exceeding it raises `SolveError`.
        adaptive: ``False`` takes fixed steps of size ``dt0`` (for convergence studies).
        adjoint: a diffrax adjoint for gradients (default: recursive checkpointing).
        networks: weights for neural terms, overriding those stored on the model.
        method: ``"auto"`` (default) evaluates the closed form when symml finds one for a
            linear model within a short budget (`symml._analytic._closed_form.AUTO_TIMEOUT`, once per
            model: the outcome is cached) and integrates numerically otherwise;
            ``"analytic"`` requires the closed form (raises `symml.NoClosedForm`);
            ``"numeric"`` always integrates. ``traj.method`` records which was used. Options
            that only make sense numerically (a solver other than ``"tsit5"``/``"auto"``,
            ``adaptive=False``, ``dt0``, ``adjoint``, ``networks``) make ``"auto"`` numeric.

    Gradients with respect to ``ics`` and ``params`` values (and through an event) work with
    ``jax.grad``.
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
        # flow.py builds on this module (binding, time grids, Trajectory): imported here.
        from .._analytic._flow import closed_form_trajectory

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


def _batch_shape(pvals, yvals) -> tuple[int, ...]:
    if all(isinstance(v, (int, float)) for v in pvals) and all(isinstance(v, (int, float)) for v in yvals):
        return ()
    pshapes = [np.shape(v) for v in pvals]
    yshapes = [np.shape(v) for v in yvals]
    try:
        pbatch = np.broadcast_shapes(*pshapes) if pshapes else ()
        ybatch = np.broadcast_shapes(*yshapes) if yshapes else ()
    except ValueError:
        raise ValueError(
            f"Ensemble values must all have the same length; got shapes {pshapes + yshapes}."
        ) from None
    try:
        batch = np.broadcast_shapes(pbatch, ybatch)
    except ValueError:
        raise ValueError(
            f"Ensemble sizes differ: parameters have batch shape {pbatch}, initial values {ybatch}."
        ) from None
    if len(batch) > 1:
        raise ValueError(f"Ensemble values must be 1-D arrays (one per member); got shape {batch}.")
    return tuple(int(b) for b in batch)


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
    # Everything that depends only on the configuration is prepared once per model and cached
    # as a jitted runner; a call then costs one dispatch (the symbolic layer costs nothing).
    pvals = bind_params(model, params)
    yvals = bind_ics(model, ics)
    batch = _batch_shape(pvals, yvals)
    t0, t1, n_save, ts_arg = save_grid(t_span, saveat)
    if solver == "auto":
        y0c = np.stack([np.broadcast_to(_concrete(v), batch) for v in yvals], -1) if yvals else None
        p0c = np.stack([np.broadcast_to(_concrete(v), batch) for v in pvals], -1) if pvals else np.zeros(0)
        solver_name = choose_solver(model, y0c, p0c, float(_concrete(t0)), float(_concrete(t1)))
        slv = get_solver(solver_name)
    else:
        slv = get_solver(solver)
        solver_name = solver if isinstance(solver, str) else type(solver).__name__
    fixed = not (adaptive and isinstance(slv, diffrax.AbstractAdaptiveSolver))
    if fixed and dt0 is None:
        why = "takes fixed steps" if adaptive else "was asked for fixed steps (adaptive=False)"
        raise MissingValueError(f"Solver {solver_name} {why}: pass dt0, the step size.")
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    if model.neural:
        nets = compile(model, networks=networks).networks
        net_arrays, net_static = eqx.partition(nets, eqx.is_array)
    else:
        nets, net_arrays, net_static = {}, {}, {}
    adjoint = adjoint if adjoint is not None else _DEFAULT_ADJOINT
    # Tolerances are compile-time constants (XLA compiles a fixed-tolerance controller ~30 %
    # faster); the time span stays a traced value so new spans never recompile.
    rtol, atol = float(rtol), float(atol)
    key = (
        slv,
        fixed,
        rtol,
        atol,
        dt0 is None,
        int(max_steps),
        event,
        adjoint,
        n_save,
        batch,
        jax.tree_util.tree_structure(nets),
    )
    runners = model._cache.setdefault("runners", {})
    runner = runners.get(key)
    if runner is None:
        runner = _make_runner(
            model, slv, fixed, rtol, atol, int(max_steps), event, adjoint, n_save, batch, net_static
        )
        runners[key] = runner
    ys, ev_t, ev_y, result, steps, ts, p = runner(
        net_arrays, _pack(yvals), _pack(pvals), _pack([t0, t1]), ts_arg, dt0
    )
    ys = _check(result, ys, solver_name, rtol, max_steps)
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


def _pack(values):
    # Plain numbers travel to the device as one array (one transfer instead of one per value);
    # arrays and tracers (ensembles, jax.grad) stay as they are.
    if all(isinstance(v, (int, float, np.floating, np.integer)) for v in values):
        return np.asarray(values, dtype=np.result_type(float) if jax.config.jax_enable_x64 else np.float32)
    return tuple(values)


def _make_runner(model, slv, fixed, rtol, atol, max_steps, event, adjoint, n_save, batch, net_static):
    program = compile(model, networks={}).program if not model.neural else None
    event_prog = compile_exprs(model, [event.expr], title="event").program if event is not None else None
    direction = event._diffrax_direction if event is not None else None
    dtype = jnp.result_type(float)
    event_tol = 1e-12 if dtype == jnp.float64 else 1e-6
    states, params = tuple(model.states), tuple(model.params)
    if program is None:
        program = model._cache["program"]

    def run(net_arrays, yvals, pvals, scalars, ts, dt0):
        t0, t1 = scalars
        nets = eqx.combine(net_arrays, net_static)
        vf = CompiledModel(nets, program, states, params)
        ev = CompiledFunction(nets, event_prog, states, params) if event_prog is not None else None
        y0 = jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype), batch) for v in yvals], -1)
        if len(pvals):
            p = jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype), batch) for v in pvals], -1)
        else:
            p = jnp.zeros(batch + (0,), dtype)
        t0 = jnp.asarray(t0, dtype)
        t1 = jnp.asarray(t1, dtype)
        if ts is None:
            ts = jnp.linspace(t0, t1, n_save, dtype=dtype)
        controller = diffrax.ConstantStepSize() if fixed else diffrax.PIDController(rtol=rtol, atol=atol)
        static = (slv, controller, direction, adjoint, max_steps, dt0, event_tol)

        def one(y0_, p_):
            return _core(vf, ev, y0_, p_, t0, t1, ts, *static)

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
