"""`minimize`: the minimum of a SymPy energy, gradient-based, jit-compiled, differentiable.

The energy is compiled once per call through the one SymPy -> JAX table (`symml.compile_exprs`'s
program builder) with the unknowns and the parameters as inputs, and minimised with
optimistix's BFGS. optimistix differentiates the result by the implicit function theorem, so
``jax.grad`` of anything computed from the minimiser with respect to parameter values works
(``dx*/dtheta = -H^-1 d^2E/dx dtheta``) without unrolling the iterations.

Constraints are imposed by substitution: ``constraints={y0: 0, y3: 2 * y2}`` replaces those
unknowns by the given values or expressions before minimising, and reports them in the result.

>>> import sympy as sp, symml as sm
>>> x, y = sp.symbols("x y"); a, = sm.parameters("a")
>>> res = sm.minimize((x - a)**2 + (y + 1)**2 + x * y / 10, over=[x, y], params={a: 2.0})
>>> [round(float(v), 4) for v in res.values], bool(res.converged)
([2.0551, -1.1028], True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import sympy as sp

from .._compile import build_program
from ..errors import MissingValueError, ModelError, UnknownNameError, suggest
from ._invariants import check_expression

__all__ = ["minimize", "Minimum"]


@dataclasses.dataclass(frozen=True)
class Minimum:
    """What `minimize` found.

    Attributes:
        over: the unknowns, in order (constrained ones included, after the free ones).
        values: their values at the minimum (a JAX array: traced under ``jax.grad``).
        fun: the energy there.
        grad_norm: the largest absolute component of the gradient there.
        steps: optimiser steps taken.
        converged: whether the optimiser met its tolerance within ``max_steps``.
    """

    over: tuple[sp.Symbol, ...]
    values: Any
    fun: Any
    grad_norm: Any
    steps: Any
    converged: Any

    @property
    def x(self) -> dict[sp.Symbol, Any]:
        """``{unknown: value}``."""
        return dict(zip(self.over, self.values))

    def __getitem__(self, key: Any) -> Any:
        for s in self.over:
            if s == key or s.name == key:
                return self.values[self.over.index(s)]
        raise UnknownNameError(
            f"{key!r} is not one of the unknowns {', '.join(map(str, self.over))}."
            + suggest(str(key), [s.name for s in self.over])
        )


def _bind(symbols: Sequence[sp.Symbol], params: Mapping[Any, Any] | None) -> list[Any]:
    """Values of ``symbols`` from ``params`` (keys by symbol or name), in order.

    The one binder (`symml._declare._bind.bind_params`) takes Models only; an energy is not one,
    so its symbols are bound here by the same rules: by symbol or name, missing ones named.
    """
    names = {s.name: s for s in symbols}
    given: dict[sp.Basic, Any] = {}
    for k, v in (params or {}).items():
        s = names.get(k) if isinstance(k, str) else (k if k in symbols else None)
        if s is None:
            raise UnknownNameError(
                f"params has a value for {k!r}, which is not a parameter of the energy (its "
                f"parameters: {', '.join(names) or 'none'})." + suggest(str(k), names)
            )
        given[s] = v
    missing = [s.name for s in symbols if s not in given]
    if missing:
        raise MissingValueError(
            f"No value for {', '.join(missing)} of the energy: pass params={{"
            + ", ".join(f"{m}: ..." for m in missing)
            + "}, or list them in over to minimise over them too."
        )
    return [given[s] for s in symbols]


def _symbols(over: Any) -> tuple[sp.Symbol, ...]:
    if isinstance(over, (sp.Basic, str)) or not isinstance(over, Sequence):
        over = [over]
    out = []
    for s in over:
        if not isinstance(s, sp.Symbol):
            raise ModelError(
                f"over must list SymPy symbols (sp.symbols('y0:10') or sm.parameters), got {s!r} "
                f"({type(s).__name__})."
            )
        out.append(s)
    if not out:
        raise ModelError("over is empty; pass the symbols to vary, e.g. over=[x, y].")
    return tuple(out)


def minimize(
    E: Any,
    over: Any,
    *,
    x0: Any = None,
    params: Mapping[Any, Any] | None = None,
    constraints: Mapping[Any, Any] | None = None,
    tol: float = 1e-10,
    max_steps: int = 2000,
) -> Minimum:
    """Minimise the SymPy expression ``E`` over the symbols ``over`` (BFGS, compiled with JAX).

    Args:
        E: the energy, a SymPy expression of ``over`` and parameters.
        over: the unknowns, SymPy symbols.
        x0: starting values: a dict by symbol or name (missing ones start at 0) or an array in
            ``over`` order (default all zeros).
        params: values of the other symbols of ``E``, by symbol or name; JAX tracers work, and
            ``jax.grad`` through the minimiser follows from the implicit function theorem.
        constraints: ``{unknown: value or expression}`` substituted into ``E`` before minimising.
        tol: relative and absolute tolerance of the optimiser.
        max_steps: the step limit (the result says whether it converged).

    Returns:
        A `Minimum` (``res.values``, ``res.x[y]``, ``res[y]``, ``res.fun``, ``res.converged``).

    Raises:
        ModelError: ``E`` is not a SymPy expression, ``over`` is not a list of symbols, or a
            constraint names a symbol that is not an unknown.
        MissingValueError: a symbol of ``E`` is neither an unknown nor given in ``params``.
        UnknownNameError: ``params`` or ``x0`` names a symbol ``E`` does not have.

    Examples:
        >>> import jax, sympy as sp, symml as sm
        >>> x = sp.Symbol("x"); k, = sm.parameters("k")
        >>> res = sm.minimize(k * x**2 / 2 - x, over=[x], params={k: 4.0})
        >>> round(float(res[x]), 6)  # x* = 1/k
        0.25
        >>> x_star = lambda kv: sm.minimize(k * x**2 / 2 - x, over=[x], params={k: kv})[x]
        >>> round(float(jax.grad(x_star)(4.0)), 6)  # d(1/k)/dk = -1/k^2
        -0.0625
    """
    E = check_expression(E, "E")
    unknowns = _symbols(over)
    fixed = {}
    for s, v in (constraints or {}).items():
        if s not in unknowns:
            raise ModelError(
                f"constraints has an entry for {s!r}, which is not one of the unknowns in over; "
                "list it in over, or pass its value in params."
            )
        fixed[s] = check_expression(v, f"The constraint on {s}")
    free = tuple(s for s in unknowns if s not in fixed)
    E_sub = E.xreplace(fixed) if fixed else E
    others = tuple(sorted((E_sub.free_symbols | _free(fixed)) - set(free), key=lambda s: s.name))
    loops = [s for s in others if s in unknowns]
    if loops:
        raise ModelError(
            "The constraints express unknowns through other constrained unknowns "
            f"({', '.join(map(str, loops))}); write each in terms of free unknowns and parameters."
        )
    pvals = _bind(others, params)
    groups = _group_terms(E_sub, free, others)
    x_start = _start(x0, free, unknowns)
    theta = jnp.asarray(pvals, dtype=float) if pvals else jnp.zeros(0)
    dtype = jnp.result_type(float)
    empty = jnp.zeros(0, dtype)

    def energy(x, th):
        total = jnp.zeros((), dtype)
        for prog, idx in groups:

            def term(u, prog=prog):
                return prog.run(0.0, empty, jnp.concatenate([u, th]), {})[0]

            total = total + jnp.sum(jax.vmap(term)(x[idx]))
        return total

    solver = optx.BFGS(rtol=tol, atol=tol)
    sol = optx.minimise(energy, solver, x_start, args=theta, max_steps=int(max_steps), throw=False)
    x = sol.value
    grad = jax.grad(energy)(jax.lax.stop_gradient(x), jax.lax.stop_gradient(theta))
    values = x
    if fixed:
        cexprs = [fixed[s] for s in unknowns if s in fixed]
        cprog = build_program(cexprs, (), free + others, "constraints", vectorize=False)
        cvals = jnp.stack(cprog.run(0.0, empty, jnp.concatenate([x, theta]), {}))
        values = jnp.concatenate([x, jnp.broadcast_to(cvals, (len(fixed),)).astype(x.dtype)])
    order = free + tuple(s for s in unknowns if s in fixed)
    return Minimum(
        over=order,
        values=values,
        fun=energy(x, theta),
        grad_norm=jnp.max(jnp.abs(grad)) if grad.size else jnp.zeros(()),
        steps=sol.stats["num_steps"],
        converged=sol.result == optx.RESULTS.successful,
    )


def _group_terms(
    E: sp.Expr, free: tuple[sp.Symbol, ...], others: tuple[sp.Symbol, ...]
) -> list[tuple[Any, Any]]:
    """The terms of ``E`` grouped by shape: one program and an index array per group.

    Energies of many-body systems are sums of the same term over neighbours (a spring between
    y_j and y_{j+1}). A term with its unknowns replaced, in index order, by placeholders ``_u0,
    _u1, ...`` is its shape; each shape is compiled once and evaluated with ``jax.vmap`` over
    the members' unknowns. A chain of 1000 springs then compiles two small programs instead of
    one with tens of thousands of instructions (compile time grows faster than linearly in it).
    """
    position = {s: i for i, s in enumerate(free)}
    shapes: dict[sp.Expr, list[list[int]]] = {}
    for term in sp.Add.make_args(
        sp.expand(E, deep=False, mul=False, multinomial=False, power_exp=False, power_base=False, log=False)
    ):
        used: list[Any] = sorted((s for s in term.free_symbols if s in position), key=lambda s: position[s])
        shape = cast(sp.Expr, term.xreplace({s: sp.Symbol(f"_u{k}", real=True) for k, s in enumerate(used)}))
        shapes.setdefault(shape, []).append([position[s] for s in used])
    out = []
    for shape, members in shapes.items():
        k = len(members[0])
        placeholders = tuple(sp.Symbol(f"_u{i}", real=True) for i in range(k))
        prog = build_program([shape], (), placeholders + others, "energy_term", vectorize=False)
        out.append((prog, np.asarray(members, dtype=np.int64).reshape(len(members), k)))
    return out


def _free(fixed: Mapping[sp.Symbol, sp.Expr]) -> set:
    out: set = set()
    for v in fixed.values():
        out |= v.free_symbols
    return out


def _start(x0: Any, free: tuple[sp.Symbol, ...], unknowns: tuple[sp.Symbol, ...]) -> jax.Array:
    dtype = jnp.result_type(float)
    if x0 is None:
        return jnp.zeros(len(free), dtype)
    if isinstance(x0, Mapping):
        names = {s.name: s for s in unknowns}
        given = {}
        for k, v in x0.items():
            s = names.get(k) if isinstance(k, str) else (k if k in unknowns else None)
            if s is None:
                raise UnknownNameError(
                    f"x0 has a value for {k!r}, which is not one of the unknowns "
                    f"{', '.join(map(str, unknowns))}." + suggest(str(k), names)
                )
            given[s] = v
        return jnp.asarray([given.get(s, 0.0) for s in free], dtype)
    arr = jnp.asarray(np.asarray(x0) if not isinstance(x0, jax.Array) else x0, dtype).reshape(-1)
    if arr.shape[0] == len(unknowns) and len(unknowns) != len(free):
        keep = np.array([s in free for s in unknowns])
        arr = arr[keep]
    if arr.shape[0] != len(free):
        raise ModelError(
            f"x0 has {arr.shape[0]} values for {len(free)} unknowns ({', '.join(map(str, free))})."
        )
    return arr
