"""Inverse problems: ``solve_for`` finds unknowns with ``quantity(unknowns) = target``.

The quantity is any JAX-traceable function, typically built on `symml.solver_fn` (the
solve as a pure, differentiable function; `symml._solve._solver_fn`), e.g. the range of a
projectile at its ground-hit event, or a SymPy expression such as a closed form. The iteration
is a damped Gauss–Newton method run by optimistix, returning the minimum-norm correction when
there are more unknowns than targets.

>>> import symml as sm
>>> sol = sm.solve_for(lambda v, w: v**2 + w, ["v", "w"], 2.0, [1.0, 0.0], fixed=["w"])
>>> round(sol["v"], 10), sol.converged
(1.4142135624, True)

``Bound`` (`symml._fit._bounds`), ``solver_fn`` / ``SolverFn`` (`symml._solve`) and the
optimiser loops (`symml._fit._loops`) are re-exported here for convenience.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import sympy as sp

from .._compile._codegen import build_program
from .._declare._symbols import state_name
from .._solve._solver_fn import SolverFn, solver_fn
from ..errors import SymmlError
from ._bounds import Bound
from ._loops import ConvergenceWarning, finite_tangent, iterate_optax, iterate_optimistix

__all__ = [
    "solve_for",
    "InverseSolution",
    "InverseError",
    # re-exported from bounds, pure_solve and iterate
    "solver_fn",
    "SolverFn",
    "ConvergenceWarning",
    "Bound",
    "iterate_optimistix",
    "iterate_optax",
    "finite_tangent",
]


class InverseError(SymmlError, ValueError):
    """``solve_for`` was set up inconsistently (unknown names, shapes, bounds)."""


@dataclasses.dataclass(frozen=True, repr=False)
class InverseSolution:
    """The result of `solve_for`: ``values`` by unknown, the final ``residual``
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
            order) returning a scalar or array, e.g. a range computed with `solver_fn`;
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
            transformed coordinates of `Bound` for bounded unknowns), else the first
            solution found.
        tol: accept when ``|quantity − target| <= tol × max(1, |target|)``.
        max_iter: optimiser steps.

    The iteration is a damped Gauss–Newton method run by ``optimistix.fixed_point`` (see
    `_solve`): Newton for square systems, least squares for over-determined ones, and
    for under-determined ones (more free unknowns than target values) the iteration
    ``ξ ← J⁺ (J ξ − r(ξ))`` on the scaled correction ``ξ`` from the guess, whose fixed points
    are the solutions (locally) closest to the guess. Jacobians are taken in reverse mode, so
    ``quantity`` may contain solves with the default adjoint and terminal events. A solve
    that misses the tolerance warns with `ConvergenceWarning`.

    Raises:
        InverseError: (a ``ValueError``) an inconsistent setup: unknowns that are empty or
            repeated, ``fixed`` / ``bounds`` / ``initial_guess`` naming other unknowns or with
            the wrong number of values, every unknown fixed, a bad ``scale``, an initial guess
            outside its bounds, a quantity that is neither callable nor a SymPy expression (or
            an expression with symbols besides the unknowns), or a quantity whose shape does
            not match ``target``.

    Examples:
        >>> import symml as sm
        >>> sol = sm.solve_for(lambda k: k**2, ["k"], 4.0, [1.0])
        >>> round(sol["k"], 6), sol.converged
        (2.0, True)
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
        bnd[j[0]] = Bound.parse(k, spec, InverseError)
    if scale is None:
        sc = np.where(np.abs(x0) > 0, np.abs(x0), 1.0)
    else:
        sc = np.asarray(scale, dtype=float)
        if sc.shape != x0.shape or np.any(sc <= 0):
            raise InverseError(f"scale needs {len(labels)} positive values; got {scale!r}.")
    sc = np.where([b.unbounded for b in bnd], sc, 1.0)
    z0 = np.array([b.inverse(v, lab, InverseError) for b, v, lab in zip(bnd, x0, labels)])
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
