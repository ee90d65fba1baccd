"""SymPy expressions compiled to JAX for evaluation: `ClosedForm` (closed-form solutions, in
complex arithmetic where needed) and `to_jax` / `ExprFunction` (any formula of given arguments).

Both go through the one SymPy -> JAX table (`symml._compile`); nothing here touches SymPy's
solvers, so it needs no time budget.

>>> import symml as sm
>>> k = sp.Symbol("k", positive=True)
>>> decay = ClosedForm.build([sp.exp(-k * sm.t)], [k])
>>> round(float(decay(1.0, jnp.array([2.0]))[0]), 6)
0.135335
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import equinox as eqx
import jax.numpy as jnp
import sympy as sp

from .._compile._codegen import build_program, label
from .._compile._program import AbstractProgram
from .._declare._symbols import state_name
from ..errors import MissingValueError

__all__ = ["ClosedForm", "ExprFunction", "to_jax", "needs_complex"]

_I = sp.Symbol("_symml_imaginary_unit")


def needs_complex(exprs) -> bool:
    """True when a closed form may pass through complex values for real inputs (for example
    ``sqrt(c**2 - 4*k*m)`` in an underdamped oscillator): it is then evaluated in complex
    arithmetic and its real part returned."""
    for e in exprs:
        if e.has(sp.I):
            return True
        for p in e.atoms(sp.Pow):
            if not p.exp.is_integer and p.base.is_nonnegative is not True:
                return True
        for f in e.atoms(sp.log):
            if f.args[0].is_positive is not True:
                return True
    return False


class ClosedForm(eqx.Module):
    """Compiled closed forms ``f(t, p) -> array(len(exprs))`` (``p`` in ``symbols`` order).

    Expressions that may be complex in between (see `needs_complex`) are evaluated in
    complex arithmetic; the real part is returned.
    """

    program: AbstractProgram = eqx.field(static=True)
    symbols: tuple = eqx.field(static=True)
    complex_mode: bool = eqx.field(static=True)

    @classmethod
    def build(
        cls, exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol], complex_mode=None, title="closed_form"
    ):
        given = [sp.sympify(e) for e in exprs]
        cm = needs_complex(given) if complex_mode is None else bool(complex_mode)
        params = list(symbols)
        if cm:
            given = [e.xreplace({sp.I: _I}) for e in given]
            params.append(_I)
        program = build_program(given, (), params, title)
        return cls(program, tuple(symbols), cm)

    def __call__(self, t_, p):
        dtype = jnp.result_type(float)
        p = jnp.asarray(p, dtype)
        if self.complex_mode:
            cdtype = jnp.result_type(dtype, jnp.complex64)
            p = jnp.concatenate([p.astype(cdtype), jnp.ones((1,), cdtype) * 1j])
        outs = self.program.run(t_, jnp.zeros((0,), dtype), p, {})
        if self.complex_mode:
            outs = [jnp.real(o) for o in outs]
        return jnp.stack([jnp.broadcast_to(jnp.asarray(o, dtype), jnp.shape(t_)) for o in outs])


# ----------------------------------------------------------------------------- any formula


class ExprFunction(eqx.Module):
    """SymPy expression(s) compiled to JAX: ``f(*values)`` evaluates elementwise with NumPy
    broadcasting (one vectorised call for a whole grid), under ``jit``, ``vmap`` and ``grad``.

    ``values`` follow `args` (also accepted by name as keywords). A list of expressions
    returns an array with a leading axis of that length.
    """

    program: AbstractProgram = eqx.field(static=True)
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
    the codegen table (``symml._compile.FUNCTIONS``, which includes Lambert W on both real
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
    exprs = [cast(sp.Expr, e.lhs) - cast(sp.Expr, e.rhs) if isinstance(e, sp.Equality) else e for e in exprs]
    args = tuple(sp.sympify(a) for a in args)
    placeholders, rep = [], {}
    used = set()
    for a in args:
        if not isinstance(a, (sp.Symbol, sp.Derivative, sp.core.function.AppliedUndef)):
            raise TypeError(f"to_jax: argument {a} is not a symbol, a state or t")
        name = label(_arg_name(a))
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
