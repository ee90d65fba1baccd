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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import numpy as np
from jax.typing import ArrayLike

from .._analytic._flow import closed_form_trajectory
from .._compile._cache import artefact, peek
from .._declare._bind import bind_ics, bind_params, check_model
from .._declare._event import Event
from .._trajectory import Trajectory
from ._numeric import simulate_numeric
from ._options import SOLVERS, check_tolerances, get_solver, step_fits_span
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
    dt: float | None = None,
    max_steps: int = 65536,
    adaptive: bool = True,
    adjoint: diffrax.AbstractAdjoint | None = None,
    networks: Mapping[str, Any] | None = None,
    method: str = "auto",
    memory_budget: float | None = None,
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
        solver: a name in `SOLVERS`, ``"auto"`` or a diffrax solver. ``"auto"`` starts with
            Tsit5 and watches its step size; where it becomes stability-limited (the problem is
            stiff) the solve restarts with the Rosenbrock method ``"rodas4"`` (which uses the
            model's exact Jacobian). ``traj.solver`` and ``traj.solver_reason``
            say which solver ran and why.
        rtol: tolerances of the adaptive step-size controller.
        atol: tolerances of the adaptive step-size controller.
        event: a terminal `Event`.
        dt0: initial step (required for fixed-step solvers such as ``euler``).
        dt: a fixed step: shorthand for ``dt0=dt, adaptive=False``, the way the symplectic
            solvers (``"leapfrog"``, ``"yoshida4"``, ``"implicit_midpoint"``) run.
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
        memory_budget: bytes one vmapped solve of an ensemble may use (default 1 GiB); a
            bigger ensemble is solved in chunks, and with several local devices each chunk is
            sharded over them. The results do not depend on it.

    Returns:
        The `Trajectory` (``batch + (n_times, n_states)`` states, event time and state).

    Raises:
        MissingValueError: a parameter or initial value without a value, no time span, or
            fixed steps without ``dt0``.
        SolveError: the solve failed (step limit reached, divergence).
        NoClosedForm: ``method="analytic"`` and no closed form was found.
        ValueError: an unknown solver or method, ensemble sizes that differ, bad times, both
            ``dt`` and ``dt0``.
        InvalidValueError: ``model`` is not a Model; a value, ``t_span`` or ``saveat`` that is
            NaN, infinite or complex; ``saveat`` outside ``t_span``; negative tolerances.
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
    check_model(model, "simulate")
    if dt is not None:
        if dt0 is not None:
            raise ValueError(
                f"Both dt={dt!r} and dt0={dt0!r} given; pass dt= for fixed steps or dt0= for the "
                "first step of an adaptive solve, not both."
            )
        dt0, adaptive = dt, False
    # the options of the call as they key the fast path (checked and keyed by `_fast_key`)
    options = (solver, rtol, atol, event, dt0, max_steps, adaptive, adjoint, method)
    key = _fast_key(model, ics, t_span, saveat, params, networks, options)
    if key is not None:
        plan = peek(model, "call_plan", key)
        if plan is not None:
            traj = _fast_call(model, plan, ics, t_span, params, dt0)
            if traj is not None:
                return traj
    check_tolerances(rtol, atol)
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
    traj, plan = simulate_numeric(
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
        memory_budget=memory_budget,
    )
    if key is not None and plan.base is not None:
        index = _given_index(model, params, ics)
        if index is not None:
            plan.index = index
            artefact(model, "call_plan", key, lambda: plan)
    return traj


# ----------------------------------------------------------------------------- the fast path
# A repeated call with the same structure (the same keys in params and ics, plain numbers as
# values, a count of save times, the same options) skips binding, validation of the options,
# the closed-form check and the choice of runner: it writes its values into the packed vector
# of the first call, makes one transfer to the device, one call and one read back.

_PLAIN = (float, int, np.floating, np.integer)


def _plain_type(tp: type) -> bool:
    return issubclass(tp, _PLAIN) and not issubclass(tp, bool)


def _plain(v) -> bool:
    # NaN and infinity leave the fast path, so that the binder refuses them with their name.
    return _plain_type(type(v)) and math.isfinite(v)


def _plain_types(values) -> bool:
    return all(map(_plain_type, set(map(type, values))))


def _is_solver(v) -> bool:
    return isinstance(v, (str, diffrax.AbstractSolver))


def _is_event(v) -> bool:
    return v is None or isinstance(v, Event)


def _is_step(v) -> bool:
    return v is None or _plain(v)


def _is_int(v) -> bool:
    return type(v) is int


def _is_adjoint(v) -> bool:
    return v is None or isinstance(v, diffrax.AbstractAdjoint)


def _anything(v) -> bool:
    return True


# One check per entry of simulate's ``options``:
# (solver, rtol, atol, event, dt0, max_steps, adaptive, adjoint, method)
_OPTION_CHECKS = (_is_solver, _plain, _plain, _is_event, _is_step, _is_int, _anything, _is_adjoint, _anything)


def _fast_key(model, ics, t_span, saveat, params, networks, options):
    """The structure of a call, or ``None`` when the call cannot take the fast path."""
    if networks is not None or model.neural:
        return None
    if not (saveat is None or (type(saveat) is int and saveat > 0)):
        return None
    if not (type(t_span) is tuple and len(t_span) == 2 and _plain(t_span[0]) and _plain(t_span[1])):
        return None
    solver, rtol, atol, event, dt0, max_steps, _, adjoint, _ = options
    common = (
        type(solver) is str
        and type(rtol) is float
        and type(atol) is float
        and event is None
        and dt0 is None
        and type(max_steps) is int
        and adjoint is None
    )  # the defaults' types, checked without a call per option
    if not (common or all(check(v) for check, v in zip(_OPTION_CHECKS, options))):
        return None
    for values in (params, ics):
        # one pass over the types (a big model binds thousands of values per call); NaN and
        # infinity are caught by _fast_call, which then leaves for the general path
        if values is not None and not (type(values) is dict and _plain_types(values.values())):
            return None
    keys = (tuple(params) if params else (), tuple(ics) if ics else (), saveat)
    # dt0 is a runner argument: only whether it is given changes the runner
    return (*keys, *options[:4], options[4] is None, options[5], bool(options[6]), *options[7:])


def _given_index(model, params, ics):
    """Where the values of ``params`` then ``ics`` go in ``[y0..., p..., t0, t1]`` (``None``:
    a key the binder ignores, so the fast path would not bind the same way)."""
    ny = len(model.states)
    # positions by dictionary: tuple.index per value was quadratic in the states (25 s at 2000)
    param_at = {s: i for i, s in enumerate(model.params)}
    state_at = {s: i for i, s in enumerate(model.states)}
    index = []
    for k in params or ():
        s = model.lookup(k)
        if s not in param_at:
            return None
        index.append(ny + param_at[s])
    for k in ics or ():
        index.append(state_at[model.lookup(k)])
    index += [ny + len(model.params), ny + len(model.params) + 1]  # t0, t1
    return np.asarray(index, dtype=np.intp)


def _fast_call(model, plan, ics, t_span, params, dt0):
    if params or ics:
        given = [*(params.values() if params else ()), *(ics.values() if ics else ()), *t_span]
        if not all(map(math.isfinite, given)):
            return None  # the general path names the bad value
    else:
        given = t_span  # checked finite by _fast_key
    if dt0 is not None and not step_fits_span(dt0, t_span[0], t_span[1]):
        return None  # the general path names the bad step
    vec = plan.base.copy()
    vec[plan.index] = given
    return plan.solve_packed(model, vec, t_span, dt0)
