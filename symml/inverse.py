"""Inverse problems: the solve as a pure JAX function, and ``solve_for`` quantity = target.

:func:`solver_fn` turns a model into an equinox module ``f(params, ics) -> Trajectory`` that
``jax.jit``, ``jax.grad`` and ``jax.vmap`` go through (terminal events included), so any
quantity computed from a solve can be differentiated. :func:`solve_for` then finds the
unknowns that make such a quantity hit a target (a damped Gauss–Newton iteration run by
optimistix, returning the minimum-norm correction when there are more unknowns than targets).

It also holds the optimisation machinery that :func:`symml.fit` shares: :class:`Bound`
(reparametrisation of bounded unknowns) and compiled optimiser loops that record the loss.

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

``solve_for`` takes any such function (here a cheap one: the speed with ``v² = 2``):

>>> sol = sm.solve_for(lambda v, w: v**2 + w, ["v", "w"], 2.0, [1.0, 0.0], fixed=["w"])
>>> round(sol["v"], 10), sol.converged
(1.4142135624, True)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
import sympy as sp

from ._symbols import state_name
from .codegen import CompiledFunction, CompiledModel, build_program, compile, compile_exprs
from .errors import MissingValueError, SymmlError
from .solve import _DEFAULT_ADJOINT, Event, _check, _core, get_solver, time_grid
from .trajectory import Trajectory

__all__ = [
    "solver_fn",
    "SolverFn",
    "solve_for",
    "InverseSolution",
    "InverseError",
    "ConvergenceWarning",
    "Bound",
    "iterate_optimistix",
    "iterate_optax",
    "finite_tangent",
]


class InverseError(SymmlError, ValueError):
    """``solve_for`` was set up inconsistently (unknown names, shapes, bounds)."""


class ConvergenceWarning(UserWarning):
    """An iterative estimate stopped before meeting its tolerance."""


# ----------------------------------------------------------------------------- transforms


@dataclasses.dataclass(frozen=True)
class Bound:
    """Maps an unconstrained z to a value in [lo, hi].

    One-sided bounds use ``lo + exp(z)`` / ``hi - exp(z)``; two-sided bounds use MINUIT's
    ``lo + (hi - lo)(sin z + 1)/2``, which reaches a bound at a finite z, so that an optimum
    on a bound is approached quadratically instead of crawling towards z = ±∞.
    """

    lo: float | None = None
    hi: float | None = None

    @classmethod
    def parse(cls, key: Any, spec: Any, error: type[Exception] | None = None) -> Bound:
        error = error or InverseError
        if spec is None:
            return cls()
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            raise error(f"bounds[{key}] must be a pair (lo, hi) with None for no limit; got {spec!r}.")
        lo = None if spec[0] is None or spec[0] == -np.inf else float(spec[0])
        hi = None if spec[1] is None or spec[1] == np.inf else float(spec[1])
        if lo is not None and hi is not None and not lo < hi:
            raise error(f"bounds[{key}] = {spec!r}: the lower bound must be below the upper bound.")
        return cls(lo, hi)

    @property
    def kind(self) -> str:
        """``"free"``, ``"lower"``, ``"upper"`` or ``"both"``."""
        if self.lo is None:
            return "free" if self.hi is None else "upper"
        return "lower" if self.hi is None else "both"

    @staticmethod
    def apply(kind: str, z, lo, hi):
        """The transform of ``kind`` with (possibly traced) limits ``lo``, ``hi``."""
        if kind == "free":
            return z
        if kind == "lower":
            return lo + jnp.exp(z)
        if kind == "upper":
            return hi - jnp.exp(z)
        return lo + (hi - lo) * (jnp.sin(z) + 1.0) / 2.0

    def forward(self, z):
        return self.apply(self.kind, z, self.lo, self.hi)

    def inverse(self, value: float, label: str, error: type[Exception] | None = None) -> float:
        lo, hi = self.lo, self.hi
        if (lo is not None and value <= lo) or (hi is not None and value >= hi):
            raise (error or InverseError)(
                f"The starting value of {label} is {value:g}, not strictly inside its bounds "
                f"({'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}). "
                "Start inside the bounds or widen them."
            )
        if lo is None and hi is None:
            return value
        if hi is None:
            return math.log(value - lo)
        if lo is None:
            return math.log(hi - value)
        return math.asin(2.0 * (value - lo) / (hi - lo) - 1.0)

    @property
    def unbounded(self) -> bool:
        return self.lo is None and self.hi is None

    def at_bound(self, value: float, rtol: float = 1e-6) -> str | None:
        """``"lower bound 0.1"`` / ``"upper bound 0.4"`` when ``value`` sits on a bound."""
        for side, b in (("lower", self.lo), ("upper", self.hi)):
            if b is not None:
                width = (self.hi - self.lo) if (self.lo is not None and self.hi is not None) else abs(b) + 1.0
                if abs(value - b) <= rtol * width:
                    return f"{side} bound {b:g}"
        return None


# ----------------------------------------------------------------------------- optimisation loops

#: Steps over which a stalled loss ends an optimisation (see :func:`iterate_optimistix`).
STALL = 10
#: Window of the optax stopping rule (see :func:`iterate_optax`).
OPTAX_WINDOW = 100


@jax.custom_jvp
def finite_tangent(x):
    """Identity whose derivative drops non-finite entries: an observable that is not
    differentiable at some sample (``sqrt(a² + b²)`` at a = b = 0) then adds a zero row to the
    Jacobian there instead of turning every step into NaN."""
    return x


@finite_tangent.defjvp
def _finite_tangent_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return x, jnp.where(jnp.isfinite(dx), dx, 0.0)


def iterate_optimistix(solver, fn, z0, args, options, max_iter, size, tol, verbose):
    """optimistix's loop, keeping the best loss after every step (the loss history).

    Besides the solver's own test, the loop stops (converged) when the best loss improved by
    less than ``tol`` (relative) over the last ``STALL`` steps: an optimum on a bound, where
    the transformed unknown keeps moving while nothing changes, then ends cleanly."""
    tags = frozenset()
    f_struct, aux_struct = jax.eval_shape(lambda: fn(z0, args))
    state = solver.init(fn, z0, args, options, f_struct, aux_struct, tags)
    dyn, static = eqx.partition(state, eqx.is_array)
    ok = optx.RESULTS.successful
    hist = jnp.full((size,), jnp.nan, z0.dtype)

    def cond(c):
        return jnp.invert(c[5]) & (c[6] == ok) & (c[1] < max_iter)

    def body(c):
        z, i, dyn, best, hist, _, _ = c
        st = eqx.combine(static, dyn)
        z, st, aux = solver.step(fn, z, args, options, st, tags)
        # the loss at the accepted point (the aux returned by a step lags one step behind);
        # as_min() is ½‖r‖² for least squares and f = ½‖r‖² for fit's minimisation objective
        loss = 2 * st.f_info.as_min() if hasattr(st, "f_info") else aux[0]
        term, res = solver.terminate(fn, z, args, options, st, tags)
        res = optx.RESULTS.where(jnp.all(jnp.isfinite(z)), res, optx.RESULTS.nonfinite)
        best = jnp.where(jnp.isfinite(loss) & (loss < best), loss, best)
        if verbose:
            jax.debug.print("fit: step {i}  loss {l:.6e}", i=i + 1, l=best)
        hist = hist.at[jnp.minimum(i, size - 1)].set(best)
        before = hist[jnp.clip(i - STALL, 0, size - 1)]
        stalled = (i >= STALL) & jnp.isfinite(best) & (before - best <= tol * best)
        return z, i + 1, eqx.partition(st, eqx.is_array)[0], best, hist, term | stalled, res

    init = (z0, jnp.array(0), dyn, jnp.array(jnp.inf, z0.dtype), hist, jnp.array(False), ok)
    z, n, dyn, _, hist, term, res = jax.lax.while_loop(cond, body, init)
    converged = term & (res == ok)
    return z, n, converged, res._value, hist, eqx.combine(static, dyn)


def iterate_optax(opt, loss_fn, z0, args, max_iter, size, tol, mode, verbose):
    """Gradient steps with an optax optimiser; stops when the best loss improved by less than
    ``tol`` (relative) over the last ``OPTAX_WINDOW`` steps."""

    def grad_fn(z):
        if mode == "fwd":
            return jax.jacfwd(lambda zz: loss_fn(zz, args)[0])(z), loss_fn(z, args)[1]
        (_, rss), g = jax.value_and_grad(lambda zz: loss_fn(zz, args), has_aux=True)(z)
        return g, rss

    def cond(c):
        i, stop = c[4], c[6]
        return jnp.invert(stop) & (i < max_iter)

    def body(c):
        z, st, best, best_z, i, hist, _ = c
        g, rss = grad_fn(z)
        better = jnp.isfinite(rss) & (rss < best)
        best_z = jnp.where(better, z, best_z)
        best = jnp.where(better, rss, best)
        hist = hist.at[jnp.minimum(i, size - 1)].set(best)
        before = hist[jnp.clip(i - OPTAX_WINDOW, 0, size - 1)]
        stop = (i >= OPTAX_WINDOW) & (before - best <= tol * best)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        upd, st = opt.update(g, st, z)
        if verbose:
            jax.debug.print("fit: step {i}  loss {l:.6e}", i=i + 1, l=best)
        return optax.apply_updates(z, upd), st, best, best_z, i + 1, hist, stop

    hist = jnp.full((size,), jnp.nan, z0.dtype)
    init = (z0, opt.init(z0), jnp.array(jnp.inf, z0.dtype), z0, jnp.array(0), hist, jnp.array(False))
    _, _, _, best_z, n, hist, stop = jax.lax.while_loop(cond, body, init)
    return best_z, n, stop, jnp.where(stop, 0, 1), hist


# ----------------------------------------------------------------------------- solver_fn


class SolverFn(eqx.Module):
    """A model's solve as a pure function ``f(params=None, ics=None, ts=None) -> Trajectory``.

    ``params`` and ``ics`` are arrays in ``model.params`` / ``model.states`` order, or dicts by
    symbol or name (missing entries take the model's defaults); 1-D array values make an
    ensemble. Build with :func:`solver_fn`.
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
        model: a :class:`symml.Model`.
        t_span: ``(t0, t1)``; with an ``event``, the solve stops there earlier.
        saveat: a count of equally spaced samples (default 2 with an event, else 200) or an
            array of times; a call may pass other times as ``ts=``.
        event: a terminal :class:`symml.Event`; ``traj.event_time`` and
            :meth:`SolverFn.event_value` are differentiable.
        solver, rtol, atol, max_steps, dt0: as in :func:`symml.simulate`.
        adjoint: diffrax adjoint; the default (recursive checkpointing) serves ``jax.grad``;
            pass ``diffrax.ForwardMode()`` for ``jax.jacfwd`` / ``jax.jvp``.
        networks: weights of neural terms (default: those stored on the model).
        check: turn solver failures into errors (``eqx.error_if`` under ``jax.jit``).

    Returns:
        A :class:`SolverFn` (an equinox module: its arrays and network weights are leaves).
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


# ----------------------------------------------------------------------------- solve_for


@dataclasses.dataclass(frozen=True, repr=False)
class InverseSolution:
    """The result of :func:`solve_for`: ``values`` by unknown, the final ``residual``
    (quantity − target), ``converged``, ``iterations`` and a ``message``."""

    values: dict
    residual: np.ndarray
    converged: bool
    iterations: int
    message: str
    labels: tuple

    def __getitem__(self, key: Any) -> float:
        if key in self.values:
            return self.values[key]
        for k, v in self.values.items():
            if str(k) == str(key):
                return v
        raise KeyError(f"{key!r} is not an unknown of this solve (unknowns: {', '.join(self.labels)}).")

    @property
    def x(self) -> np.ndarray:
        return np.array(list(self.values.values()))

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v:.10g}" for k, v in zip(self.labels, self.values.values()))
        return f"InverseSolution({vals}; max|residual|={np.max(np.abs(self.residual)):.3g}; {self.message})"


def solve_for(
    quantity: Callable[..., Any] | sp.Expr,
    unknowns: Sequence[Any],
    target: Any,
    initial_guess: Sequence[float] | Mapping[Any, float],
    *,
    fixed: Sequence[Any] = (),
    bounds: Mapping[Any, tuple[float | None, float | None]] | None = None,
    scale: Sequence[float] | None = None,
    minimum_norm: bool = True,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> InverseSolution:
    """Find unknowns with ``quantity(*unknowns) = target``.

    Args:
        quantity: a JAX-traceable function of the unknowns (positionally, in ``unknowns``
            order) returning a scalar or array, e.g. a range computed with :func:`solver_fn`;
            or a SymPy expression of the unknown symbols.
        unknowns: their symbols or names (labels for the result; a SymPy ``quantity`` is
            evaluated with them).
        target: the value (scalar or array) the quantity must take.
        initial_guess: starting values, in ``unknowns`` order or as a dict.
        fixed: unknowns held at their initial guess (e.g. solve for the speed at a given angle).
        bounds: ``{unknown: (lo, hi)}`` (None for no limit), enforced by reparametrisation.
        scale: typical size of each unknown (default ``|initial guess|``, or 1 where that is 0).
        minimum_norm: with more free unknowns than target values the solutions form a family;
            return the one closest to the initial guess (in units of ``scale``; in the
            transformed coordinates of :class:`Bound` for bounded unknowns), else the first
            solution found.
        tol: accept when ``|quantity − target| <= tol × max(1, |target|)``.
        max_iter: optimiser steps.

    The iteration is a damped Gauss–Newton method run by ``optimistix.fixed_point`` (see
    :func:`_solve`): Newton for square systems, least squares for over-determined ones, and
    for under-determined ones (more free unknowns than target values) the iteration
    ``ξ ← J⁺ (J ξ − r(ξ))`` on the scaled correction ``ξ`` from the guess, whose fixed points
    are the solutions (locally) closest to the guess. Jacobians are taken in reverse mode, so
    ``quantity`` may contain solves with the default adjoint and terminal events. A solve
    that misses the tolerance warns with :class:`ConvergenceWarning`.
    """
    labels = [
        u.name if isinstance(u, sp.Symbol) else state_name(u) if isinstance(u, sp.Basic) else str(u)
        for u in unknowns
    ]
    if len(set(labels)) != len(labels) or not labels:
        raise InverseError(f"unknowns must be distinct and non-empty; got {labels}.")
    x0 = _guess(unknowns, labels, initial_guess)
    fn = _as_callable(quantity, unknowns) if isinstance(quantity, sp.Basic) else quantity
    if not callable(fn):
        raise InverseError(
            f"quantity must be a function of the unknowns or a SymPy expression; got {quantity!r}."
        )
    free = [j for j in range(len(labels)) if not _is_in(unknowns[j], labels[j], fixed)]
    for f in fixed:
        if not any(_is_in(u, lab, [f]) for u, lab in zip(unknowns, labels)):
            raise InverseError(f"fixed names {f!r}, which is not among the unknowns ({', '.join(labels)}).")
    if not free:
        raise InverseError("Every unknown is fixed; leave at least one free.")
    bnd = [Bound()] * len(labels)
    for k, spec in (bounds or {}).items():
        j = [i for i, (u, lab) in enumerate(zip(unknowns, labels)) if _is_in(u, lab, [k])]
        if not j:
            raise InverseError(f"bounds names {k!r}, which is not among the unknowns ({', '.join(labels)}).")
        bnd[j[0]] = Bound.parse(k, spec)
    if scale is None:
        sc = np.where(np.abs(x0) > 0, np.abs(x0), 1.0)
    else:
        sc = np.asarray(scale, dtype=float)
        if sc.shape != x0.shape or np.any(sc <= 0):
            raise InverseError(f"scale needs {len(labels)} positive values; got {scale!r}.")
    sc = np.where([b.unbounded for b in bnd], sc, 1.0)
    z0 = np.array([b.inverse(v, lab) for b, v, lab in zip(bnd, x0, labels)])
    target = jnp.asarray(target, dtype=jnp.result_type(float))
    scale_t = max(1.0, float(np.max(np.abs(np.asarray(target)))))
    mask = np.zeros(len(labels))
    mask[free] = 1.0
    lims = np.array([[np.nan if b.lo is None else b.lo, np.nan if b.hi is None else b.hi] for b in bnd]).T
    args = tuple(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (z0, sc, mask, lims))
    kinds = tuple(b.kind for b in bnd)
    xi, steps, res = _solve(
        fn,
        kinds,
        bool(minimum_norm),
        int(max_iter),
        args + (target, jnp.asarray(tol * scale_t, dtype=target.dtype)),
    )
    xi, res = np.asarray(xi), np.asarray(res).reshape(-1)
    z = z0 + mask * xi * sc
    x = np.array([float(b.forward(jnp.asarray(zz))) for b, zz in zip(bnd, z)])
    ok = bool(np.all(np.isfinite(res)) and np.max(np.abs(res)) <= tol * scale_t)
    msg = "converged" if ok else f"did not reach tol={tol:g} (max|residual| = {np.max(np.abs(res)):.3g})"
    if not ok:
        warnings.warn(
            f"solve_for {msg} after {int(steps)} steps. Try another initial_guess, bounds, a larger "
            "max_iter, or fix one of the unknowns (fixed=[...]) if the target is out of reach.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return InverseSolution(
        values={u: float(v) for u, v in zip(unknowns, x)},
        residual=res,
        converged=ok,
        iterations=int(steps),
        message=msg,
        labels=tuple(labels),
    )


def _is_in(u, label, names) -> bool:
    return any(
        n is u or (isinstance(n, str) and n == label) or (not isinstance(n, str) and n == u) for n in names
    )


def _guess(unknowns, labels, guess) -> np.ndarray:
    if isinstance(guess, Mapping):
        vals = []
        for u, lab in zip(unknowns, labels):
            hit = [v for k, v in guess.items() if _is_in(u, lab, [k])]
            if not hit:
                raise InverseError(f"initial_guess has no value for {lab}.")
            vals.append(float(hit[0]))
        return np.array(vals)
    vals = np.asarray(guess, dtype=float).reshape(-1)
    if vals.size != len(labels):
        raise InverseError(
            f"initial_guess has {vals.size} values for {len(labels)} unknowns ({', '.join(labels)})."
        )
    return vals


_CALLABLES: dict = {}


def _as_callable(expr: sp.Basic, unknowns):
    """The SymPy quantity as a JAX function (cached: the same expression reuses its compiled solve)."""
    key = (expr, tuple(unknowns))
    fn = _CALLABLES.get(key)
    if fn is None:
        if len(_CALLABLES) >= 64:
            _CALLABLES.pop(next(iter(_CALLABLES)))
        fn = _CALLABLES[key] = _make_callable(expr, unknowns)
    return fn


def _make_callable(expr: sp.Basic, unknowns):
    syms = [u for u in unknowns if isinstance(u, sp.Symbol)]
    if len(syms) != len(unknowns):
        raise InverseError("A SymPy quantity needs its unknowns as SymPy symbols.")
    extra = sorted(map(str, expr.free_symbols - set(syms)))
    if extra:
        raise InverseError(
            f"The quantity also depends on {', '.join(extra)}: substitute their values first "
            "(expr.subs({...})) or list them as unknowns and fix them."
        )
    program = build_program((expr,), (), tuple(syms), "quantity")

    def fn(*values):
        p = jnp.stack([jnp.asarray(v, dtype=jnp.result_type(float)) for v in values])
        return jnp.asarray(program.run(0.0, jnp.zeros(0), p, {})[0], dtype=p.dtype)

    return fn


_BACKTRACK = 12


@eqx.filter_jit
def _solve(fn, kinds, minimum_norm, max_iter, args):
    """Damped Gauss–Newton on ξ (scaled correction of the free unknowns) as an optimistix
    fixed-point iteration ξ ← ξ + α (G(ξ) − ξ) with

    * ``G(ξ) = J⁺ (J ξ − r(ξ))`` (``minimum_norm``): Newton for square systems, Gauss–Newton
      for over-determined ones, and for under-determined ones the iteration whose fixed points
      are the solutions with ξ in the row space of J, i.e. closest to the guess;
    * ``G(ξ) = ξ − J⁺ r(ξ)`` otherwise;

    and α halved until ``|r|`` decreases (or is within tolerance). J is one reverse-mode
    Jacobian per step: quantities may contain solves with checkpointed adjoints and events.
    """
    z0, sc, mask, lims, target, ftol = args

    def residual(xi):
        z = z0 + mask * xi * sc
        vals = [Bound.apply(k, z[j], lims[0, j], lims[1, j]) for j, k in enumerate(kinds)]
        q = jnp.asarray(fn(*vals), dtype=z0.dtype)
        if jnp.broadcast_shapes(q.shape, target.shape) != q.shape:  # checked once, while tracing
            raise InverseError(f"quantity returns shape {q.shape} but target has shape {target.shape}.")
        r = jnp.reshape(q - target, (-1,))
        return r, r

    def step(xi, _):
        J, r = jax.jacrev(residual, has_aux=True)(xi)
        Jp = jnp.linalg.pinv(J)
        d = (Jp @ (J @ xi - r) - xi) if minimum_norm else -(Jp @ r)
        d = jnp.where(jnp.isfinite(d), d, 0.0)
        norm0 = jnp.sqrt(jnp.sum(r**2))

        def cond(c):
            a, ok, i = c
            return jnp.invert(ok) & (i < _BACKTRACK)

        def body(c):
            a, _, i = c
            rn = residual(xi + a * d)[0]
            norm1 = jnp.sqrt(jnp.sum(rn**2))
            ok = jnp.isfinite(norm1) & (norm1 <= (1 - 1e-4 * a) * norm0 + ftol)
            return jnp.where(ok, a, a / 2), ok, i + 1

        a, ok, _ = jax.lax.while_loop(cond, body, (jnp.asarray(1.0, xi.dtype), jnp.array(False), 0))
        return xi + jnp.where(ok, a, 0.0) * d

    solver = optx.FixedPointIteration(rtol=1e-11, atol=1e-11)
    xi0 = jnp.zeros_like(z0)
    sol = optx.fixed_point(step, solver, xi0, max_steps=max_iter, throw=False)
    return sol.value, sol.stats["num_steps"], residual(sol.value)[0]
