"""The one solve core: `integrate`, a pure function around ``diffrax.diffeqsolve``.

Every numerical solve in symml goes through `integrate`: `symml.simulate`'s compiled runner,
`symml.solver_fn`, the residuals of `symml.fit` and the training loss of `symml.train`. It is a
function of (compiled vector field, initial values, times, parameters, `SolveOptions`), with no
side effects and no Python control flow on values, so ``jax.jit``, ``jax.vmap`` and
``jax.grad`` (through terminal events too) go through it. It never raises on a failed solve:
it returns diffrax's result code, and `check_result` turns codes into errors in one place.

>>> import jax.numpy as jnp, symml as sm
>>> lv = sm.compile(sm.zoo.lotka_volterra())
>>> sol = integrate(lv, jnp.array([1.0, 1.0]), jnp.linspace(0.0, 1.0, 3), jnp.array([1.3, 0.9, 1.8, 0.8]))
>>> sol.ys.shape, check_result(sol.result, sol.ys, "tsit5", 1e-7, 65536).shape
((3, 2), (3, 2))
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import diffrax
import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ..errors import SolveError
from ._options import SolveOptions
from ._switch import StiffnessDetector, stiff_time

__all__ = ["integrate", "CoreSolution", "check_result", "OK"]

_DEFAULT = SolveOptions()


class CoreSolution(NamedTuple):
    """What `integrate` returns (fixed shapes, so that it vmaps).

    Attributes:
        ys: states at the save times, ``(len(ts), n_states)``; NaN after a terminal event.
        event_time: the event time (NaN where none occurred), or ``None`` without an event.
        event_state: the states at the event, or ``None``.
        result: diffrax's result code (see `check_result`).
        num_steps: steps taken.
        stiff_time: with ``options.detect_stiffness``, where the explicit solve became
            stability-limited and stopped (``inf``: never); else ``None``.
    """

    ys: jax.Array
    event_time: jax.Array | None
    event_state: jax.Array | None
    result: jax.Array
    num_steps: jax.Array
    stiff_time: jax.Array | None = None


def integrate(
    vf: Any,
    y0: jax.Array,
    ts: jax.Array,
    p: jax.Array,
    options: SolveOptions = _DEFAULT,
    *,
    t0: Any = None,
    t1: Any = None,
) -> CoreSolution:
    """Solve ``y' = vf(t, y, p)`` from ``y0`` and save at ``ts``.

    Args:
        vf: the vector field ``f(t, y, p)`` (a `symml.CompiledModel`).
        y0: initial values at ``t0``, in the model's state order.
        ts: save times (non-decreasing, inside ``[t0, t1]``; a numpy array is a constant of the
            compiled solve, which diffrax then checks while tracing).
        p: parameter values, in the model's parameter order.
        options: the solver, controller, adjoint, ``max_steps``, ``dt0`` and event.
        t0, t1: the span (default ``ts[0]`` and ``ts[-1]``); a terminal event may end it earlier.

    Returns:
        A `CoreSolution`.
    """
    t0 = ts[0] if t0 is None else t0
    t1 = ts[-1] if t1 is None else t1
    spec = options.event
    if spec is not None:
        fn = spec.fn

        def cond(t, y, args, **_):  # diffrax passes these by keyword
            return fn(t, y, args)[0]

        tol = spec.tol
        if tol is None:
            tol = 1e-12 if jnp.result_type(float) == jnp.float64 else 1e-6
        event = diffrax.Event(cond, root_finder=optx.Newton(rtol=tol, atol=tol), direction=spec.direction)
        saveat = diffrax.SaveAt(ts=ts, t1=True, solver_state=options.detect_stiffness)
    else:
        event = None
        saveat = diffrax.SaveAt(ts=ts, solver_state=options.detect_stiffness)
    solver = options.solver
    if options.detect_stiffness:
        if not isinstance(solver, diffrax.Tsit5):
            raise ValueError(f"detect_stiffness works with Tsit5, got {type(solver).__name__}.")
        solver = StiffnessDetector(solver)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vf),
        solver,
        t0,
        t1,
        options.dt0,
        y0,
        args=p,
        saveat=saveat,
        stepsize_controller=options.controller,
        adjoint=options.adjoint,
        event=event,
        max_steps=options.max_steps,
        throw=False,
    )
    sol_ys, sol_ts = cast(jax.Array, sol.ys), cast(jax.Array, sol.ts)
    result, steps = cast(jax.Array, sol.result._value), cast(jax.Array, sol.stats["num_steps"])
    t_stiff = stiff_time(sol.solver_state) if options.detect_stiffness else None
    if spec is None:
        return CoreSolution(sol_ys, None, None, result, steps, t_stiff)
    # With an event, diffrax writes the samples before the event, then the state at the event
    # time (the t1 save), then inf. Unpack that layout into fixed-shape arrays.
    n = ts.shape[0]
    idx = jnp.sum(jnp.isfinite(sol_ts)) - 1
    happened = jax.tree_util.tree_leaves(sol.event_mask)[0]
    event_time = jnp.where(happened, sol_ts[idx], jnp.nan)
    event_state = jnp.where(happened, sol_ys[idx], jnp.nan)
    ys = jnp.where((jnp.arange(n) < idx)[:, None], sol_ys[:n], jnp.nan)
    return CoreSolution(ys, event_time, event_state, result, steps, t_stiff)


#: diffrax result codes of a solve that went well (reached t1, or stopped at its event)
OK = (diffrax.RESULTS.successful._value, diffrax.RESULTS.event_occurred._value)
_OK = OK
_OK_SET = {int(v) for v in OK}


def check_result(
    result: Any, ys: Any, solver_name: str, rtol: float, max_steps: int, *, auto: bool = False
) -> Any:
    """``ys`` if every solve succeeded, else a `SolveError` (``eqx.error_if`` under tracing).

    Args:
        result: diffrax result codes (`CoreSolution.result`), any shape.
        ys: what to return (under tracing, the error is attached to it).
        solver_name, rtol, max_steps: named in the message.
        auto: the solver was chosen by ``solver="auto"`` (the message then does not suggest it).

    Returns:
        ``ys``.

    Raises:
        SolveError: the step limit was reached (perhaps stiff, perhaps blowing up) or the
            solve failed otherwise.
    """
    if auto and solver_name.lower() == "tsit5":
        advice = (
            f"solver='auto' ran {solver_name}, whose steps stayed accuracy-limited (not stiff). Try "
            "a larger max_steps or a looser rtol/atol, or force a stiff solver with "
            "solver='rodas4'."
        )
    elif auto:
        advice = (
            f"solver='auto' switched to the implicit {solver_name} on stiffness and it still ran out "
            "of steps. Try a larger max_steps or a looser rtol/atol."
        )
    else:
        advice = (
            "The problem may be stiff: try solver='auto' or 'rodas4', a looser rtol/atol, or a "
            "larger max_steps."
        )
    msg_steps = (
        f"The solve stopped after max_steps={max_steps} steps without reaching t1 (solver "
        f"{solver_name}, rtol={rtol:g}). {advice} Or the solution may blow up "
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
    raise SolveError(
        f"The solve failed: {_result_message(code)} (solver {solver_name}, rtol={rtol:g}). The "
        "solution may diverge (blow up) for these values; check parameters and initial values, "
        "or try a stiff solver such as 'rodas4' or a tighter tolerance."
    )


def _result_message(code: int) -> str:
    for name in dir(diffrax.RESULTS):
        item: Any = getattr(diffrax.RESULTS, name, None)
        if getattr(item, "_value", None) is not None:
            try:
                if int(item._value) == code:
                    return str(item).split("<", 1)[-1].rstrip(">")
            except TypeError:
                continue
    return f"diffrax result code {code}"
