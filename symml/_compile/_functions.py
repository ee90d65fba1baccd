"""The SymPy -> JAX mapping table: every function the compiler can emit, in one place.

`FUNCTIONS` maps a SymPy function class to the name shown in generated source and its
JAX implementation; `BOOLEANS` does the same for relations and logic (Piecewise
conditions). `register_function` adds user-defined special functions.

>>> import sympy as sp
>>> FUNCTIONS[sp.sec][0]
'sec'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import jax.scipy.special as jsp
import sympy as sp

from ._special import lambertw


def _cot(x):
    return 1.0 / jnp.tan(x)


def _sec(x):
    return 1.0 / jnp.cos(x)


def _csc(x):
    return 1.0 / jnp.sin(x)


def _coth(x):
    return 1.0 / jnp.tanh(x)


def _sech(x):
    return 1.0 / jnp.cosh(x)


def _csch(x):
    return 1.0 / jnp.sinh(x)


def _acot(x):
    return jnp.arctan(1.0 / x)


def _asec(x):
    return jnp.arccos(1.0 / x)


def _acsc(x):
    return jnp.arcsin(1.0 / x)


def _acoth(x):
    return jnp.arctanh(1.0 / x)


def _asech(x):
    return jnp.arccosh(1.0 / x)


def _acsch(x):
    return jnp.arcsinh(1.0 / x)


def _sinc(x):
    # SymPy's sinc is sin(x)/x; numpy's is normalised by pi.
    return jnp.sinc(x / jnp.pi)


def _heaviside(x, h0):
    return jnp.where(x > 0, 1.0, jnp.where(x < 0, 0.0, h0))


def _lambertw(z, k=0):
    # SymPy's LambertW(z) / LambertW(z, k); k arrives as a compile-time constant.
    return lambertw(z, int(k))


def _minimum(*xs):
    return functools.reduce(jnp.minimum, xs)


def _maximum(*xs):
    return functools.reduce(jnp.maximum, xs)


#: SymPy function class -> (name shown in ``source``, JAX implementation). One entry per
#: function; everything the compiler can emit is here or in the arithmetic operators below.
FUNCTIONS: dict[type, tuple[str, Callable[..., Any]]] = {
    sp.exp: ("jnp.exp", jnp.exp),
    sp.log: ("jnp.log", jnp.log),
    sp.sin: ("jnp.sin", jnp.sin),
    sp.cos: ("jnp.cos", jnp.cos),
    sp.tan: ("jnp.tan", jnp.tan),
    sp.cot: ("cot", _cot),
    sp.sec: ("sec", _sec),
    sp.csc: ("csc", _csc),
    sp.asin: ("jnp.arcsin", jnp.arcsin),
    sp.acos: ("jnp.arccos", jnp.arccos),
    sp.atan: ("jnp.arctan", jnp.arctan),
    sp.acot: ("acot", _acot),
    sp.asec: ("asec", _asec),
    sp.acsc: ("acsc", _acsc),
    sp.atan2: ("jnp.arctan2", jnp.arctan2),
    sp.sinh: ("jnp.sinh", jnp.sinh),
    sp.cosh: ("jnp.cosh", jnp.cosh),
    sp.tanh: ("jnp.tanh", jnp.tanh),
    sp.coth: ("coth", _coth),
    sp.sech: ("sech", _sech),
    sp.csch: ("csch", _csch),
    sp.asinh: ("jnp.arcsinh", jnp.arcsinh),
    sp.acosh: ("jnp.arccosh", jnp.arccosh),
    sp.atanh: ("jnp.arctanh", jnp.arctanh),
    sp.acoth: ("acoth", _acoth),
    sp.asech: ("asech", _asech),
    sp.acsch: ("acsch", _acsch),
    sp.Abs: ("jnp.abs", jnp.abs),
    sp.sign: ("jnp.sign", jnp.sign),
    sp.Min: ("minimum", _minimum),
    sp.Max: ("maximum", _maximum),
    sp.Heaviside: ("heaviside", _heaviside),
    sp.erf: ("jsp.erf", jsp.erf),
    sp.erfc: ("jsp.erfc", jsp.erfc),
    sp.gamma: ("jsp.gamma", jsp.gamma),
    sp.loggamma: ("jsp.gammaln", jsp.gammaln),
    sp.floor: ("jnp.floor", jnp.floor),
    sp.ceiling: ("jnp.ceil", jnp.ceil),
    sp.Mod: ("jnp.mod", jnp.mod),
    sp.sinc: ("sinc", _sinc),
    sp.LambertW: ("lambertw", _lambertw),
}

#: Relational and boolean operators (used by Piecewise conditions).
BOOLEANS: dict[type, tuple[str, Callable[..., Any]]] = {
    sp.StrictLessThan: ("<", jnp.less),
    sp.LessThan: ("<=", jnp.less_equal),
    sp.StrictGreaterThan: (">", jnp.greater),
    sp.GreaterThan: (">=", jnp.greater_equal),
    sp.Equality: ("==", jnp.equal),
    sp.Unequality: ("!=", jnp.not_equal),
    # SymPy flattens And/Or to any number of arguments; the jnp ufuncs take two.
    sp.And: ("&", lambda *xs: functools.reduce(jnp.logical_and, xs)),
    sp.Or: ("|", lambda *xs: functools.reduce(jnp.logical_or, xs)),
    sp.Not: ("~", jnp.logical_not),
    sp.Xor: ("^", lambda *xs: functools.reduce(jnp.logical_xor, xs)),
    sp.Implies: ("implies", lambda p, q: jnp.logical_or(jnp.logical_not(p), q)),
    sp.ITE: ("jnp.where", jnp.where),
}


def register_function(cls: type, name: str, fn: Callable[..., Any]) -> None:
    """Add a SymPy function class to the table (for user-defined special functions).

    Compiled models, `simulate`, `fit` and `save`/`load` then accept expressions that
    use ``cls``; the entry replaces an existing one for the same class.

    Args:
        cls: a SymPy function class (``sp.Function`` subclass, or an existing one such as
            ``sp.besselj``).
        name: the name shown for it in generated source (`CompiledModel.source`).
        fn: its JAX implementation, taking the arguments in the SymPy order; it must be
            traceable by JAX (``jit``, ``grad`` and ``vmap`` go through it).

    Raises:
        TypeError: ``cls`` is not a SymPy function class, or ``fn`` is not callable.

    >>> import sympy as sp, symml as sm
    >>> class double(sp.Function):
    ...     pass
    >>> register_function(double, "double", lambda z: 2 * z)
    >>> x, = sm.states("x")
    >>> model = sm.Model([sp.Eq(x.diff(sm.t), -double(x))], defaults={x: 1.0})
    >>> "double(x)" in sm.compile(model).source
    True
    >>> del FUNCTIONS[double]  # leave the table as it was
    """
    if not (isinstance(cls, type) and issubclass(cls, sp.Function)):
        raise TypeError(
            f"register_function needs a SymPy function class (a subclass of sp.Function), got {cls!r}."
        )
    if not callable(fn):
        raise TypeError(f"register_function needs a callable JAX implementation for {name!r}, got {fn!r}.")
    FUNCTIONS[cls] = (name, fn)


def unsupported_message(e: sp.Basic) -> str:
    """What to tell a user whose expression holds ``e``, which has no JAX translation."""
    if isinstance(e, sp.core.function.AppliedUndef):
        return (
            f"{e} is an undefined function; symml can only compile states x(t), neural terms "
            "(sm.neural) and the functions in symml.codegen.FUNCTIONS."
        )
    if isinstance(e, sp.Derivative):
        return f"{e} cannot be compiled: only derivatives of states (which are states) may appear."
    supported = sorted(c.__name__ for c in FUNCTIONS)
    return (
        f"No JAX translation for SymPy function {type(e).__name__} (in {e}). Supported: "
        f"{', '.join(supported)}. Rewrite the expression or add a translation with "
        "sm.register_function."
    )
