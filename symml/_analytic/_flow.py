"""``simulate`` through a closed form: the flow map ``states(t) = F(t - t0, y0, p)``.

When ``simulate(method="auto" | "analytic")`` finds a closed form for a model, the general
solution is solved once for *symbolic* initial values ``y0`` (at ``t = 0`` for an autonomous
model, whose flow then serves every ``t0``; at the concrete ``t0`` for a model driven by an
explicit ``t``), compiled to JAX and kept in the artefact cache (`symml._compile._cache`).
Every later call, with numbers, ensembles or tracers for ``ics`` and ``params``, is one jitted
evaluation. Terminal events are located on the closed form (bracketing on a uniform grid, then
bisection to round-off); the
derivative of the event time comes from the implicit function theorem.

>>> import symml as sm
>>> proj = sm.zoo.projectile()
>>> x, y, *_ = proj.states
>>> traj = sm.simulate(proj, t_span=(0, 3), saveat=4, event=sm.Event(y, direction="down"))
>>> traj.method, round(float(traj.event_state[0]), 10)
('analytic', 17.8800198525)
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile._binding import bind
from .._compile._cache import artefact, peek
from .._compile._codegen import compile_exprs
from .._declare._bind import batch_shape, pack, save_grid, stack_members
from .._declare._event import Event
from .._declare._model import Model
from .._declare._symbols import t
from .._trajectory import Trajectory
from ..errors import SolveError, SymmlError
from . import _closed_form as analytic
from ._bridge import NoClosedForm, _call
from ._closed_form import _general_solution, _with_derivatives, flow_record, structure
from ._evaluate import ClosedForm

__all__ = ["AUTO_MAX_STATES", "closed_form_trajectory", "flow_map", "EVENT_GRID"]


#: The most states for which ``method="auto"`` tries a closed form. SymPy's linear solve grows
#: quickly with the size of the system: a damped chain of two oscillators (4 states) already
#: spends the whole `AUTO_TIMEOUT`; 40 decoupled decays need about 2 s, as long as the numeric
#: first solve; and on the 1000-oscillator chain (2000 states) the attempt alone cost 5.2-5.6 s
#: (the structural check, the worker's budget and building its input) for nothing.
#: ``method="analytic"`` still tries any size.
AUTO_MAX_STATES = 32


def _too_large(model: Model) -> str:
    return (
        f"the model has {len(model.states)} states (auto tries closed forms up to {AUTO_MAX_STATES}; "
        "method='analytic' tries any size)"
    )


class _Flow:
    """The closed form with symbolic initial values ``y0``, compiled: ``states(t) =
    F(t - t0, y0, p)`` for an autonomous model (one flow serves every ``t0``), ``F(t, y0, p)``
    with ``t0`` fixed for a driven one (one flow per initial time). It holds no reference to
    the model, whose artefact it is."""

    def __init__(self, cf: ClosedForm, autonomous: bool, method: str, poles: ClosedForm | None = None):
        self.cf = cf
        self.autonomous = autonomous
        self.method = method
        self.poles = poles  # the closed form's denominators and log arguments (see _pole_parts)


def _pole_parts(exprs) -> list[sp.Expr]:
    """Parts of the closed forms whose zero crossing in ``t`` is a singularity: bases of negative
    or fractional powers and arguments of logarithms. x' = x**2 has x = x0 / (1 - x0 t); its denominator
    crosses zero where the solution blows up, and the formula beyond it is another branch that is
    not the solution, so evaluation must stop there."""
    parts: list[sp.Expr] = []
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, sp.Pow) and (node.exp.is_negative or node.exp.is_integer is False):
                part = node.base
            elif isinstance(node, sp.log):
                part = node.args[0]
            else:
                continue
            if t in part.free_symbols and part not in parts:
                parts.append(part)
    return parts


def _exact(value: float) -> sp.Expr:
    return sp.Integer(int(value)) if float(value).is_integer() else sp.Float(float(value), 17)


def _build_flow(model: Model, budget: float, t0_key) -> _Flow:
    start = time.monotonic()
    payload, plain, odes = _general_solution(model, budget)
    autonomous = t0_key is None
    ic_syms = [sp.Symbol(f"_symml_ic{i}", real=True) for i in range(len(model.states))]
    t0 = sp.Integer(0) if autonomous else _exact(t0_key)
    ics = dict(zip(model.states, ic_syms))
    args = (odes, payload["branches"], payload["constants"], ics, t0, t, False)
    left = budget - (time.monotonic() - start)
    got = _call("apply_ics", args, left, f"model {model.name!r}: initial values")
    exprs = _with_derivatives(model, got["exprs"])
    symbols = [plain.to(p) for p in model.params] + ic_syms
    cf = ClosedForm.build([exprs[s] for s in model.states], symbols, title=f"{model.name}_closed_form")
    parts = _pole_parts([exprs[s] for s in model.states])
    poles = ClosedForm.build(parts, symbols, title=f"{model.name}_poles") if parts else None
    return _Flow(cf, autonomous, payload["route"], poles)


def _flow_for(model: Model, required: bool, t0) -> tuple[_Flow | None, Any]:
    """``(flow, key)``: the compiled flow and its key, ``(None, None)`` (auto: fall back to
    numeric) or raise (``required``)."""
    budget = analytic.ANALYTIC_TIMEOUT if required else analytic.AUTO_TIMEOUT
    record = flow_record(model)
    if not required and not record.built and len(model.states) > AUTO_MAX_STATES:
        # before `structure`, which alone takes 1.5 s at 2000 states; a flow built earlier
        # (method="analytic") is still used
        record.failure = (f"model {model.name!r}: {_too_large(model)}", "no_method", budget)
        return None, None
    record.autonomous = bool(structure(model)["autonomous"])
    if record.autonomous:
        key = None
    elif isinstance(t0, jax.core.Tracer):
        err = NoClosedForm(
            f"model {model.name!r} is driven (its equations contain t): its closed form is built for a "
            "concrete initial time, but t0 is a traced value here. Use method='numeric'.",
            "no_method",
        )
        if required:
            raise err
        return None, None
    else:
        key = float(np.asarray(t0))
    flow = peek(model, "flow", ("flow", key))
    if flow is not None:
        return flow, key
    if record.failure is not None and record.failure[2] >= budget:
        if required:
            raise record.error()
        return None, None
    if not required:
        reason = _auto_precheck(model)
        if reason is not None:
            # Recorded at the auto budget only: a later method="analytic" call still tries.
            record.failure = (f"model {model.name!r}: {reason}", "no_method", budget)
            return None, None
    try:
        flow = artefact(model, "flow", ("flow", key), lambda: _build_flow(model, budget, key))
    except NoClosedForm as err:
        return _flow_failed(record, err, budget, required)
    except SymmlError as err:  # found, but not compilable (a function without a JAX translation)
        err = NoClosedForm(f"model {model.name!r}: the closed form is not compilable: {err}", "unsupported")
        return _flow_failed(record, err, float("inf"), required)
    record.built += 1
    return flow, key


def _flow_failed(record, err: NoClosedForm, budget: float, required: bool) -> tuple[None, None]:
    record.failure = (str(err), err.reason, budget)
    if required:
        raise err.with_traceback(None) from None
    return None, None


def flow_map(model: Model, t0: float = 0.0, *, required: bool = False) -> tuple[ClosedForm, bool] | None:
    """The cached, compiled flow of ``model`` (what ``simulate`` evaluates), or ``None``.

    Args:
        model: a `symml.Model`.
        t0: the initial time (it matters for a driven model only).
        required: ``False`` applies the ``method="auto"`` rules (linear models,
            `symml._analytic.AUTO_TIMEOUT`); ``True`` tries any model within
            `symml._analytic.ANALYTIC_TIMEOUT`.

    Returns:
        ``(cf, autonomous)``: ``cf(tau, jnp.concatenate([p, y0]))`` gives every state
        (``model.states`` order) from parameters ``p`` (``model.params`` order) and initial values
        ``y0`` (``model.states`` order) at ``t0``, with ``tau = t - t0`` when ``autonomous`` and
        ``tau = t`` otherwise (a driven model's flow is built for that ``t0``). ``None`` when
        there is none and ``required`` is false.

    Raises:
        NoClosedForm: ``required`` and no closed form was found.
    """
    flow, _ = _flow_for(model, required, t0)
    return None if flow is None else (flow.cf, flow.autonomous)


def _auto_precheck(model: Model) -> str | None:
    """Why ``method="auto"`` should not try a closed form (``None``: worth a try)."""
    if model.neural:
        return "the model has neural terms"
    if len(model.states) > AUTO_MAX_STATES:
        return _too_large(model)
    info = structure(model)
    if not info["linear"]:
        return "the model is nonlinear (auto tries closed forms for linear models only)"
    return None


def closed_form_trajectory(
    model: Model, ics=None, t_span=None, saveat=None, params=None, *, event=None, required: bool = False
) -> Trajectory | None:
    """``simulate`` through the closed form: a Trajectory with ``method="analytic"``, or ``None``
    when there is none (``required=False``; ``simulate(method="auto")`` then solves numerically).

    Raises:
        NoClosedForm: ``required`` and no closed form was found.
        TypeError: ``event`` is not an `symml.Event`.
    """
    record = peek(model, "structure", "flow_record")
    if not required and record is not None and record.failure is not None and not record.built:
        return None  # known to have no closed form: skip the binding work on this hot path
    pvals, yvals = bind(model, params, ics)
    batch = batch_shape(pvals, yvals)
    if event is not None and not isinstance(event, Event):
        raise TypeError(f"event must be sm.Event(expr, direction=...), got {type(event).__name__}")
    t0, t1, n_save, ts_arg = save_grid(t_span, saveat)
    runner = None
    if record is not None and record.autonomous:  # the hot path: one lookup
        runner = peek(model, "flow_runner", (None, event, n_save, batch))
    if runner is None:
        flow, key = _flow_for(model, required, t0)
        if flow is None:
            return None
        runner = artefact(
            model,
            "flow_runner",
            (key, event, n_save, batch),
            lambda: _make_runner(model, flow, event, n_save, batch),
        )
    ys, ev_t, ev_y, ts, p, pole = runner(pack(yvals), pack(pvals), pack([t0, t1]), ts_arg)
    if pole is not None and not isinstance(pole, jax.core.Tracer) and np.any(np.isfinite(np.asarray(pole))):
        at = float(np.nanmin(np.asarray(pole)))
        raise SolveError(
            f"model {model.name!r}: the closed form is singular at t ~ {at:.6g}, inside t_span=("
            f"{float(t0):g}, {float(t1):g}): the solution blows up (or stops existing) there and does not "
            "continue beyond it. End t_span before it (or stop at an sm.Event)."
        )
    return Trajectory(
        t=ts, y=ys, p=p, event_time=ev_t, event_state=ev_y, num_steps=None, model=model, method="analytic"
    )


#: Uniform samples used to bracket the first event crossing in [t0, t1].
EVENT_GRID = 1024


def _make_runner(model: Model, flow: _Flow, event, n_save, batch):
    # An artefact of the model: it closes over what it compiled, never the model itself.
    cf, poles = flow.cf, flow.poles
    ev_prog = compile_exprs(model, [event.expr], title="event").program if event is not None else None
    direction = event.direction if event is not None else None
    autonomous = flow.autonomous

    def run(yvals, pvals, scalars, ts):
        dtype = jnp.result_type(float)
        t0, t1 = (jnp.asarray(s, dtype) for s in scalars)
        y0 = stack_members(yvals, batch, dtype)
        p = stack_members(pvals, batch, dtype)
        if ts is None:
            ts = jnp.linspace(t0, t1, n_save, dtype=dtype)

        def one(y0_, p_):
            args = jnp.concatenate([p_, y0_])

            def state_at(tt):
                return cf(tt - t0 if autonomous else tt, args)

            ys = jax.vmap(state_at)(ts)
            pole = None
            if poles is not None:
                pf = poles
                pole = _first_pole(lambda tt: pf(tt - t0 if autonomous else tt, args), t0, t1)
            if ev_prog is None:
                return ys, None, None, pole
            prog: Any = ev_prog  # a Program or VectorProgram: both have .run(t, y, p, nets)

            def g(tt):
                return prog.run(tt, state_at(tt), p_, {})[0]

            t_ev = _event_time(g, t0, t1, direction)
            y_ev = state_at(t_ev)
            ys = jnp.where((ts > t_ev)[:, None], jnp.nan, ys)
            if pole is not None:  # a pole after the event is never reached
                pole = jnp.where(jnp.abs(pole - t0) > jnp.abs(t_ev - t0), jnp.nan, pole)
            return ys, t_ev, y_ev, pole

        ys, t_ev, y_ev, pole = jax.vmap(one)(y0, p) if batch else one(y0, p)
        return ys, t_ev, y_ev, ts, p, pole

    return jax.jit(run)


def _first_pole(parts, t0, t1):
    """The first sample time in [t0, t1] where a denominator or log argument reaches or crosses
    zero (NaN when none does), on the event grid."""
    grid = jnp.linspace(t0, t1, EVENT_GRID + 1)
    vals = jax.vmap(parts)(grid)
    hit = jnp.any((vals[:-1] * vals[1:] <= 0) | ~jnp.isfinite(vals[1:]), axis=-1)
    return jnp.where(jnp.any(hit), grid[jnp.argmax(hit) + 1], jnp.nan)


def _event_time(g, t0, t1, direction):
    """First crossing of ``g`` in (t0, t1] in the given direction (NaN if none), located by
    bisection on a bracketing sample interval; its derivative with respect to the parameters
    comes from one Newton step (the implicit function theorem: dt = -g_p / g_t)."""
    grid = jnp.linspace(t0, t1, EVENT_GRID + 1)
    vals = jax.vmap(g)(grid)
    a, b = vals[:-1], vals[1:]
    down = (a > 0) & (b <= 0)
    up = (a < 0) & (b >= 0)
    mask = down if direction == "down" else up if direction == "up" else down | up
    found = jnp.any(mask)
    i = jnp.argmax(mask)
    lo, hi, glo = grid[i], grid[i + 1], a[i]

    def step(_, carry):
        lo, hi, glo = carry
        mid = 0.5 * (lo + hi)
        gm = g(mid)
        same = jnp.sign(gm) == jnp.sign(glo)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid), jnp.where(same, gm, glo)

    lo, hi, _ = jax.lax.fori_loop(0, 80, step, (lo, hi, glo))
    root = jax.lax.stop_gradient(0.5 * (lo + hi))
    slope = jax.lax.stop_gradient(jax.grad(g)(root))
    safe = jnp.where(slope == 0, 1.0, slope)
    t_ev = root - g(root) / safe
    return jnp.where(found, t_ev, jnp.nan)
