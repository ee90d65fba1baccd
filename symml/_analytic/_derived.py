"""Derived quantities of closed forms: eliminating ``t``, closed-form roots (event times,
ranges, inverse questions), and compiling any SymPy expression to a vectorised JAX function.

The projectile of PROBLEMS.md §1, end to end:

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
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import sympy as sp

from .._compile._codegen import Program, _label, build_program
from .._declare._symbols import state_name, t
from ..errors import MissingValueError
from . import _child as _sympy_support
from ._closed_form import AnalyticSolution, NoClosedForm, _call, _Plain

__all__ = ["ExprFunction", "to_jax", "eliminate_t", "roots", "when", "at"]

_I = sp.Symbol("_symml_imaginary_unit")


# ----------------------------------------------------------------------------- compiling


class ExprFunction(eqx.Module):
    """SymPy expression(s) compiled to JAX: ``f(*values)`` evaluates elementwise with NumPy
    broadcasting (one vectorised call for a whole grid), under ``jit``, ``vmap`` and ``grad``.

    ``values`` follow `args` (also accepted by name as keywords). A list of expressions
    returns an array with a leading axis of that length.
    """

    program: Program = eqx.field(static=True)
    args: tuple = eqx.field(static=True)
    single: bool = eqx.field(static=True)
    complex_mode: bool = eqx.field(static=True)

    def __call__(self, *values, **named):
        vals = list(values)
        if len(vals) > len(self.args):
            raise TypeError(f"expected {len(self.args)} values ({self._names()}), got {len(vals)}")
        names = [_arg_name(a) for a in self.args]
        for name in names[len(vals) :]:
            if name not in named:
                raise MissingValueError(f"No value for {name!r}; the arguments are ({self._names()}).")
            vals.append(named.pop(name))
        if named:
            raise TypeError(f"unexpected argument(s) {sorted(named)}; the arguments are ({self._names()}).")
        dtype = jnp.result_type(float)
        arrays = [jnp.asarray(v, dtype) for v in vals]
        shape = jnp.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        if self.complex_mode:
            cdtype = jnp.result_type(dtype, jnp.complex64)
            arrays = [a.astype(cdtype) for a in arrays] + [jnp.asarray(1j, cdtype)]
        outs = self.program.run(jnp.zeros((), dtype), jnp.zeros((0,), dtype), tuple(arrays), {})
        outs = [
            jnp.broadcast_to(jnp.real(o) if self.complex_mode else jnp.asarray(o, dtype), shape) for o in outs
        ]
        return outs[0] if self.single else jnp.stack(outs)

    def _names(self) -> str:
        return ", ".join(_arg_name(a) for a in self.args)

    @property
    def source(self) -> str:
        """The generated program as readable Python (never executed)."""
        return self.program.source()


def _arg_name(a) -> str:
    return state_name(a) if isinstance(a, (sp.Derivative, sp.core.function.AppliedUndef)) else str(a)


def to_jax(expr, args: Sequence[Any], *, complex_mode: bool = False, title: str = "f") -> ExprFunction:
    """Compile ``expr`` (or a list of expressions) of ``args`` to an `ExprFunction`.

    ``args`` are symbols, states (``x`` stands for its value) or ``t``. Functions go through
    the codegen table (``symml.codegen.FUNCTIONS``, which includes Lambert W on both real
    branches). With ``complex_mode=True`` the evaluation is complex and the real part is
    returned (for formulas such as ``sqrt(c**2 - 4*k*m)`` that are real overall).

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> f = to_jax(sp.LambertW(a) + b**2, [a, b])
    >>> f(jnp.array([0.0, 1.0]), 2.0).tolist()
    [4.0, 4.567143290409784]
    """
    single = not isinstance(expr, (list, tuple))
    exprs = [sp.sympify(e) for e in ([expr] if single else expr)]
    exprs = [e.lhs - e.rhs if isinstance(e, sp.Equality) else e for e in exprs]
    args = tuple(sp.sympify(a) for a in args)
    placeholders, rep = [], {}
    used = set()
    for a in args:
        if not isinstance(a, (sp.Symbol, sp.Derivative, sp.core.function.AppliedUndef)):
            raise TypeError(f"to_jax: argument {a} is not a symbol, a state or t")
        name = _label(_arg_name(a))
        while name in used:
            name += "_"
        used.add(name)
        ph = sp.Dummy(name, real=True)  # unique: never confused with a symbol left in expr
        placeholders.append(ph)
        rep[a] = ph
    out = [e.xreplace(rep) for e in exprs]
    leftover = set()
    for e in out:
        leftover |= {s for s in e.free_symbols if s not in placeholders}
        leftover |= {f for f in e.atoms(sp.core.function.AppliedUndef)}
    if leftover:
        raise MissingValueError(
            f"to_jax: the expression depends on {', '.join(sorted(map(str, leftover)))}, which are not "
            f"among the arguments ({', '.join(map(str, args))}). Add them to args or substitute values."
        )
    params = list(placeholders)
    if complex_mode:
        out = [e.xreplace({sp.I: _I}) for e in out]
        params.append(_I)
    program = build_program(out, (), params, title)
    return ExprFunction(program, args, single, bool(complex_mode))


# ----------------------------------------------------------------------------- sample values


def _sample_values(sol: AnalyticSolution | None, symbols, at: Mapping[Any, Any] | None) -> dict:
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
    _sol: AnalyticSolution | None = None,
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
        e = e.lhs - e.rhs
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
        scale = 1 + sum(abs(_num(a, {**vals, U: z.real})) for a in sp.Add.make_args(e))
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


def _on_solution(sol: AnalyticSolution, expr) -> sp.Expr:
    return sp.sympify(expr).xreplace(dict(sol.exprs))


def when(
    sol: AnalyticSolution,
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


def at(sol: AnalyticSolution, time_, timeout: float = 5.0) -> dict:
    """``{state: closed form at t = time_}``, simplified within ``timeout`` seconds."""
    plain = _Plain()
    keys = list(sol.model.states)
    exprs = [plain.to(sol.exprs[s].xreplace({t: sp.sympify(time_)})) for s in keys]
    try:
        exprs = _call("simplify", (exprs, 0.9 * timeout), timeout, "simplifying")
    except NoClosedForm:
        pass
    return dict(zip(keys, (plain.restore(e) for e in exprs)))


def eliminate_t(sol: AnalyticSolution, x, y, timeout: float = 10.0) -> sp.Expr:
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
