"""Post-processing of found expressions: SymPy under the worker's budget, constants refitted.

SymPy's ``simplify`` and ``integrate`` can run for minutes on an expression a search happened
to produce, and a SymPy call cannot be interrupted from inside this process (a SIGALRM
handler only runs between bytecodes, and then possibly inside JAX's garbage-collection
callback, which swallows the exception). So `simplify`, `simplify_all` and `integrate` run
in the symbolic worker (`symml._analytic._worker`), the one killable child process with the
one time budget: each returns its input unchanged (or ``None``) when the budget runs out.
Only plain SymPy crosses the pipe: states, derivatives and symml's own symbols are replaced
by plain placeholder symbols (`Placeholders`) and restored afterwards.

`refine_constants` refits the ``Float`` constants of one expression with SciPy's
Levenberg–Marquardt (MINPACK) on a JAX-compiled residual and Jacobian, rather than through
`symml.fit` or an optimistix loop: the problem has a handful of constants and a few hundred
rows, and each call is a different expression, so a compiled optimiser loop would be compiled
anew every time; MINPACK iterates on the host around the two jitted functions. Measured on
``1.2 exp(-0.45 a) + 0.31 b`` with 80 rows (a loaded 2-core machine): 0.5-0.7 s per refit with
SciPy, 2.5-2.6 s for an optimistix Levenberg–Marquardt of the same residual (compile and run),
same constants. It is numeric and bounded (``max_nfev``), so it runs in this process.

>>> import sympy as sp
>>> x = sp.Symbol("x")
>>> simplify((sp.Float(2.0) * x) * (sp.Float(0.5) * x) + x * x)
2.0*x**2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from scipy.optimize import least_squares

from .._analytic._worker import WORKER, WorkerError
from .._compile._codegen import build_program
from .base import parametrize

__all__ = ["Placeholders", "simplify", "simplify_all", "integrate", "refine_constants", "WORKER_SLACK"]

#: Seconds added to a worker task's budget for pickling and the round trip (the task itself
#: stops its SymPy work within the seconds it was given).
WORKER_SLACK = 0.25

_ASSUMPTIONS = ("positive", "negative", "nonnegative", "nonpositive", "nonzero", "real", "integer")


class Placeholders:
    """Plain SymPy symbols standing in for states, derivatives and symml's symbols.

    The worker's child imports SymPy only, so it can unpickle plain SymPy objects but not
    symml's `Parameter` or a neural call; a state ``x(t)`` becomes an opaque symbol, which
    also spares SymPy from differentiating through it. The placeholder keeps what SymPy knows
    about the sign and realness of what it replaces.

    >>> t = sp.Symbol("t", real=True)
    >>> x = sp.Function("x", real=True)(t)
    >>> p = Placeholders()
    >>> e = p.to(x.diff(t) * x + t)
    >>> sorted(map(str, e.free_symbols)), p.restore(e) == x.diff(t) * x + t
    (['_symml_0', '_symml_1', 't'], True)
    """

    def __init__(self) -> None:
        self.back: dict[sp.Symbol, sp.Expr] = {}
        self._fwd: dict[sp.Expr, sp.Symbol] = {}

    def to(self, expr: Any) -> sp.Expr:
        """``expr`` with every non-plain atom replaced by its placeholder."""
        e = sp.sympify(expr)
        atoms = e.atoms(sp.Derivative, sp.core.function.AppliedUndef) | {
            s for s in e.free_symbols if type(s) is not sp.Symbol
        }
        taken = {s.name for s in e.free_symbols}
        for a in sorted(atoms - set(self._fwd), key=sp.default_sort_key):
            k = len(self._fwd)
            while f"_symml_{k}" in taken:
                k += 1
            known = {name: True for name in _ASSUMPTIONS if getattr(a, f"is_{name}") is True}
            s = sp.Symbol(f"_symml_{k}", **known)
            self._fwd[a] = s
            self.back[s] = a
        return cast(sp.Expr, e.xreplace(self._fwd)) if self._fwd else e

    def restore(self, expr: sp.Basic) -> sp.Expr:
        """``expr`` with the placeholders replaced back."""
        return cast(sp.Expr, expr.xreplace(self.back) if self.back else expr)


def _call(task: str, args: tuple, budget: float) -> Any:
    """The task's result, or ``None`` if the worker did not finish it (or cannot start)."""
    try:
        status, payload = WORKER.call(task, args, budget + WORKER_SLACK)
    except WorkerError:
        return None
    return payload if status == "ok" else None


def simplify_all(exprs: Sequence[sp.Expr], timeout: float = 5.0) -> list[sp.Expr]:
    """The shortest form found for each expression, each within ``timeout`` s of the worker.

    Among the expression itself, its expansion, its expansion with common factors pulled out
    and SymPy's ``simplify`` of the best of those, the one with the fewest operations wins.

    Args:
        exprs: SymPy expressions (states, derivatives and symml's symbols are allowed).
        timeout: seconds per expression; one worker task runs them all.

    Returns:
        The expressions in the same order; each is returned unchanged when nothing shorter
        was found in its time (or when the worker ran out of its budget or could not start).

    >>> x = sp.Symbol("x")
    >>> simplify_all([sp.sin(x) ** 2 + sp.cos(x) ** 2, x + x], timeout=2.0)
    [1, 2*x]
    """
    exprs = [sp.sympify(e) for e in exprs]
    if not exprs or not timeout > 0:
        return exprs
    ph = Placeholders()
    got = _call("shortest", ([ph.to(e) for e in exprs], float(timeout)), float(timeout) * len(exprs))
    if not isinstance(got, list) or len(got) != len(exprs):
        return exprs
    return [ph.restore(e) for e in got]


def simplify(expr: sp.Expr, timeout: float = 5.0) -> sp.Expr:
    """The shortest of a few SymPy simplifications of ``expr`` found within ``timeout`` s.

    Runs in the symbolic worker under its budget (see `simplify_all`).

    Args:
        expr: a SymPy expression.
        timeout: seconds allowed; the worker's child is killed shortly after if SymPy does
            not give way.

    Returns:
        The shortest form found, or ``expr`` itself when nothing shorter was found in time.

    >>> x = sp.Symbol("x")
    >>> simplify(sp.exp(x) * sp.exp(-x) + x)
    x + 1
    """
    return simplify_all([expr], timeout)[0]


def integrate(expr: sp.Expr, var: sp.Symbol, timeout: float = 2.0) -> sp.Expr | None:
    """An antiderivative of ``expr`` in ``var`` from SymPy, within ``timeout`` s of the worker.

    Args:
        expr: the integrand (SymPy).
        var: the variable of integration (a symbol).
        timeout: seconds allowed for ``sp.integrate``.

    Returns:
        The antiderivative (it may still hold an unevaluated ``Integral``), or ``None`` when
        SymPy did not finish in time.

    >>> x = sp.Symbol("x")
    >>> integrate(x * sp.exp(x), x)
    (x - 1)*exp(x)
    """
    ph = Placeholders()
    pe, pv = ph.to(expr), ph.to(var)
    got = _call("antiderivative", (pe, pv, float(timeout)), float(timeout))
    return ph.restore(got) if isinstance(got, sp.Basic) else None


def refine_constants(
    expr: sp.Expr, inputs: Sequence[sp.Expr], X: np.ndarray, y: np.ndarray, max_nfev: int = 200
) -> sp.Expr:
    """Least-squares refit of the Float constants of ``expr`` in double precision.

    Levenberg–Marquardt (SciPy's MINPACK, see the module docstring for why) with a JAX
    Jacobian.

    Args:
        expr: the expression whose ``Float`` constants are refitted.
        inputs: the SymPy inputs, in the column order of ``X``.
        X: samples, shape ``(n, len(inputs))``.
        y: targets, shape ``(n,)``.
        max_nfev: at most this many residual evaluations.

    Returns:
        ``expr`` with refitted constants, or ``expr`` unchanged unless the fit improves.
    """
    pexpr, found = parametrize(expr, lambda i: sp.Symbol(f"_refine{i}", real=True))
    if not found or len(found) >= len(y):
        return expr
    syms = [s for s, _ in found]
    p0 = np.array([v for _, v in found])
    prog = build_program([pexpr], list(inputs), syms, "refine")
    Xt = jnp.asarray(np.asarray(X, dtype=float).T)
    yj = jnp.asarray(y)

    def resid(p):
        return jnp.broadcast_to(prog.run(jnp.asarray(0.0), Xt, p, {})[0], yj.shape) - yj

    f = jax.jit(resid)
    J = jax.jit(jax.jacfwd(resid))

    def fun(p):
        r = np.asarray(f(jnp.asarray(p)))
        return np.where(np.isfinite(r), r, 1e150)

    r0 = fun(p0)
    try:
        sol = least_squares(
            fun,
            p0,
            jac=lambda p: np.nan_to_num(np.asarray(J(jnp.asarray(p)))),  # pyright: ignore[reportArgumentType]
            method="lm",
            max_nfev=max_nfev,
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
    except (ValueError, np.linalg.LinAlgError):
        return expr
    r1 = fun(sol.x)
    if not (np.all(np.isfinite(sol.x)) and float(r1 @ r1) <= float(r0 @ r0)):
        return expr
    return cast(sp.Expr, pexpr.xreplace({s: sp.Float(float(v)) for s, v in zip(syms, sol.x)}))
