"""Derived quantities of closed forms: eliminating ``t``, closed-form roots (event times,
ranges, inverse questions), each under the symbolic worker's time budget. Formulas compile to
vectorised JAX functions with `to_jax` (`symml._analytic._evaluate`, re-exported here).

The projectile of docs/problems.md §1, end to end:

>>> import sympy as sp, symml as sm
>>> proj = sm.zoo.projectile()
>>> x, y, vx, vy = proj.states
>>> g, k, m = proj.params
>>> u, w = sm.parameters("u w", positive=True)          # launch velocity components
>>> sol = sm.solve_analytic(proj, ics={x: 0, y: 0, vx: u, vy: w})
>>> path = sol.eliminate_t(x, y)                        # y as a function of x
>>> D = max(roots(path, x, exclude=[0]), key=lambda r: r.has(sp.LambertW))
>>> D.has(sp.LambertW)
True
>>> f = to_jax(D, [u, w, g, k, m])
>>> round(float(f(7.5, 12.99038105676658, 9.81, 0.45, 7.26)), 10)
17.8800198525
"""

from __future__ import annotations

import cmath
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import sympy as sp

from .._declare._symbols import state_name, t
from . import _child as _sympy_support
from ._bridge import NoClosedForm, _call, _Plain
from ._evaluate import ExprFunction, to_jax

__all__ = ["ExprFunction", "to_jax", "eliminate_t", "roots", "when", "at", "Solution"]


class Solution(Protocol):
    """What derived quantities read from a closed-form solution (`symml.AnalyticSolution`).

    A structural type, so that this module needs nothing from `symml._analytic._closed_form`,
    which builds its methods (``sol.when``, ``sol.eliminate_t``) on this module.
    """

    model: Any
    exprs: Mapping[Any, sp.Expr]
    symbols: tuple[sp.Symbol, ...]
    t0: sp.Expr

    def _resolve(self, key: Any) -> sp.Symbol: ...


# ----------------------------------------------------------------------------- sample values


def _sample_values(sol: Solution | None, symbols, at: Mapping[Any, Any] | None) -> dict:
    """Values for screening candidate roots: ``at``, then the model's defaults, then
    deterministic draws that respect each symbol's assumptions (positive -> [0.5, 2])."""
    vals: dict = {}
    if sol is not None:
        vals.update({p: v for p, v in sol.model.defaults.items() if p in sol.model.params})
        for k, v in (at or {}).items():
            vals[sol._resolve(k)] = v
    else:
        for k, v in (at or {}).items():
            vals[sp.sympify(k)] = v
    rng = random.Random(7)
    for s in sorted(symbols, key=str):
        if s not in vals and s != t:
            vals[s] = _sympy_support._sample(s, rng)
    return vals


def _num(expr, vals) -> complex:
    """``expr`` at ``vals`` in 30-digit arithmetic (substituting Floats evaluates as it builds,
    hundreds of times faster than ``evalf(subs=...)`` on large expressions)."""
    exact = {k: _float30(v) for k, v in vals.items()}
    try:
        return complex(sp.sympify(expr).xreplace(exact).evalf(30))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return complex("nan")


def _float30(v):
    if isinstance(v, sp.Basic):
        return v
    if isinstance(v, complex):
        return sp.Float(v.real, 30) + sp.I * sp.Float(v.imag, 30)
    return sp.Float(float(v), 30)


def _ok(z: complex) -> bool:
    return cmath.isfinite(z)


# ----------------------------------------------------------------------------- roots

# SymPy's candidate roots by (expression, unknown): screening is cheap, solving is not.
_SOLVED: dict[tuple, list] = {}


def roots(
    expr,
    unknown,
    *,
    timeout: float = 10.0,
    exclude: Sequence[Any] = (),
    at: Mapping[Any, Any] | None = None,
    real: bool = True,
    _sol: Solution | None = None,
) -> list[sp.Expr]:
    """Closed-form solutions of ``expr = 0`` (or an ``Eq``) for ``unknown``.

    ``unknown`` is a symbol, ``t`` or a state (standing for its value). SymPy's solutions are
    completed with the lower real branch ``W₋₁`` wherever the principal Lambert W appears, then
    screened at sample values (``at``, else model defaults, else draws respecting the symbols'
    assumptions): complex, non-finite or spurious roots and those equal to a value in
    ``exclude`` (such as the trivial root ``0``) are dropped. Sorted by their sample value.
    Raises `NoClosedForm` when SymPy finds none within ``timeout`` seconds.
    """
    e = sp.sympify(expr)
    if isinstance(e, sp.Equality):
        e = cast(sp.Expr, e.lhs) - cast(sp.Expr, e.rhs)
    unknown = sp.sympify(unknown)
    U = sp.Symbol("_symml_unknown", real=True)
    e = e.xreplace({unknown: U})
    if not e.has(U):
        raise ValueError(f"roots: the expression does not depend on {unknown}")
    plain = _Plain()
    key = (plain.to(e), U)
    found = _SOLVED.get(key)
    if found is None:
        found = _call("solve_for", key, timeout, f"solving for {unknown}")
        if len(_SOLVED) >= 256:
            _SOLVED.pop(next(iter(_SOLVED)))
        _SOLVED[key] = found
    found = [plain.restore(r) for r in found]
    syms = set().union(*(r.free_symbols for r in found), e.free_symbols) - {U}
    vals = _sample_values(_sol, syms, at)
    exc = [_num(x, vals) for x in exclude]
    kept: list[tuple[float, sp.Expr]] = []
    for r in found:
        z = _num(r, vals)
        if not _ok(z) or (real and abs(z.imag) > 1e-9 * (1 + abs(z.real))):
            continue
        res = _num(e, {**vals, U: z.real if real else z})
        scale = 1 + sum(abs(_num(a, {**vals, U: z.real})) for a in sp.Add.make_args(cast(sp.Expr, e)))
        if not _ok(res) or abs(res) > 1e-8 * scale:
            continue
        if any(_ok(x) and abs(z - x) <= 1e-8 * (1 + abs(x)) for x in exc):
            continue
        if any(abs(z.real - v) <= 1e-10 * (1 + abs(v)) for v, _ in kept):
            continue
        kept.append((z.real, r))
    if not kept:
        raise NoClosedForm(
            f"no real closed-form root of {expr} = 0 for {unknown} passed screening at the sample "
            f"values {_show(vals)} (SymPy found {len(found)} candidate(s)). Pass at={{...}} with values "
            "where a root exists.",
            "no_method",
        )
    return [r for _, r in sorted(kept, key=lambda kv: kv[0])]


def _show(vals) -> str:
    return (
        "{"
        + ", ".join(f"{k}: {float(v):.4g}" for k, v in sorted(vals.items(), key=lambda kv: str(kv[0])))
        + "}"
    )


# ----------------------------------------------------------------------------- on solutions


def _on_solution(sol: Solution, expr) -> sp.Expr:
    return sp.sympify(expr).xreplace(dict(sol.exprs))


def when(
    sol: Solution,
    expr,
    value=0,
    *,
    timeout: float = 10.0,
    at: Mapping[Any, Any] | None = None,
    exclude_t0: bool = True,
) -> list[sp.Expr]:
    """Closed-form times ``t > t0`` at which ``expr`` (states, parameters, t) equals ``value``
    on the solution, e.g. the flight time of a projectile ``sol.when(y)`` (via Lambert W).

    Roots are screened at sample values (see `roots`); ``exclude_t0`` drops ``t = t0``.
    """
    e = _on_solution(sol, expr) - sp.sympify(value)
    syms = e.free_symbols | sol.t0.free_symbols
    vals = _sample_values(sol, syms, at)
    exclude = [sol.t0] if exclude_t0 else []
    found = roots(e, t, timeout=timeout, exclude=exclude, at=vals, _sol=sol)
    t0v = _num(sol.t0, vals).real
    out = [r for r in found if _num(r, vals).real > t0v - (0 if exclude_t0 else 1e-12)]
    if not out:
        raise NoClosedForm(f"{expr} = {value} has no closed-form solution after t0 = {sol.t0}", "no_method")
    return out


def at(sol: Solution, time_, timeout: float = 5.0) -> dict:
    """``{state: closed form at t = time_}``, simplified within ``timeout`` seconds."""
    plain = _Plain()
    keys = list(sol.model.states)
    exprs = [plain.to(sol.exprs[s].xreplace({t: sp.sympify(time_)})) for s in keys]
    try:
        exprs = _call("simplify", (exprs, 0.9 * timeout), timeout, "simplifying")
    except NoClosedForm:
        pass
    return dict(zip(keys, (plain.restore(e) for e in exprs)))


def eliminate_t(sol: Solution, x, y, timeout: float = 10.0) -> sp.Expr:
    """``y`` as a closed-form function of ``x`` along the solution (t eliminated); the state
    ``x`` in the result stands for its value, so ``traj[path]`` or ``path.subs(x, 3.0)`` work.

    Solves ``x(t) = X`` for ``t`` (SymPy) and keeps the inverse that is valid on the solution
    (checked numerically at sample times after ``t0``).
    """
    model = sol.model
    x = model.lookup(x) if isinstance(x, str) else sp.sympify(x)
    y = model.lookup(y) if isinstance(y, str) else sp.sympify(y)
    for s in (x, y):
        if s not in sol.exprs:
            raise ValueError(
                f"eliminate_t: {s} is not a state of model {model.name!r} (states: "
                f"{', '.join(state_name(q) for q in model.states)})"
            )
    X = sp.Symbol("_symml_X", real=True)
    plain = _Plain()
    xe, ye = plain.to(sol.exprs[x]), plain.to(sol.exprs[y])
    if not xe.has(t):
        raise NoClosedForm(
            f"eliminate_t: {state_name(x)} is constant along the solution ({state_name(x)} = {xe}); t "
            "cannot be eliminated. Express the quantity in terms of a state that changes with t."
        )
    cands = _call("eliminate", (xe, ye, X, t), timeout, f"eliminating t between {x} and {y}")
    cands = [(plain.restore(tx), plain.restore(yx)) for tx, yx in cands]
    syms = set(sol.symbols) | sol.t0.free_symbols
    vals = _sample_values(sol, syms, None)
    t0v = _num(sol.t0, vals).real
    for tx, yx in cands:
        good = 0
        for dt in (0.5, 0.25, 1.0, 0.1):
            xs = _num(sol.exprs[x], {**vals, t: t0v + dt})
            if not _ok(xs):
                continue
            back = _num(tx, {**vals, X: xs.real})
            good += int(_ok(back) and abs(back - (t0v + dt)) <= 1e-8 * (1 + abs(t0v + dt)))
        if good >= 2:
            return yx.xreplace({X: x})
    raise NoClosedForm(
        f"eliminate_t: no inverse t({x}) of the solution was valid at the sample values "
        f"({len(cands)} candidate(s) from SymPy).",
        "unverified",
    )
