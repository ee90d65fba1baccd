"""What crosses to the symbolic worker: plain SymPy in, a result or a `NoClosedForm` out.

Closed forms (`symml._analytic._closed_form`) and derived quantities
(`symml._analytic._derived`) both send work to the worker process; this module is what they
share, so that neither needs the other at import time. The worker never imports symml, so only
plain SymPy objects may cross: `_Plain` maps symml's Symbol subclasses (`symml.Parameter`) to
plain symbols and back.

>>> import sympy as sp, symml as sm
>>> k, = sm.parameters("k")
>>> plain = _Plain()
>>> e = plain.to(2 * k)
>>> type(e.free_symbols.pop()) is sp.Symbol, plain.restore(e) == 2 * k
(True, True)
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .._declare._symbols import derivative_order, t
from ..errors import SymmlError
from ._worker import WORKER

__all__ = ["NoClosedForm"]

_FAILURES = {
    "no_method": "no method applies",
    "timeout": "timed out",
    "unverified": "could not be verified",
    "error": "SymPy failed",
    "crashed": "the symbolic worker died",
    "unsupported": "not compilable to JAX",
}


class NoClosedForm(SymmlError):
    """No closed form was found (no method applies, timed out, or not verified).

    ``reason`` is one of ``"no_method"``, ``"timeout"``, ``"unverified"``, ``"error"``,
    ``"crashed"`` (the worker process died; not cached, the next call tries again) or
    ``"unsupported"`` (found, but uses a function without a JAX translation).
    """

    def __init__(self, message: str, reason: str = "no_method"):
        super().__init__(message)
        self.reason = reason


def _assumptions(sym: sp.Symbol) -> dict:
    orig = getattr(sym, "_assumptions_orig", None)
    return dict(orig if orig is not None else sym.assumptions0)


class _Plain:
    """Maps symml's Symbol subclasses (Parameter) to plain SymPy symbols and back, so that
    only plain SymPy objects cross the pipe to the worker (which never imports symml)."""

    def __init__(self) -> None:
        self.back: dict[sp.Symbol, sp.Symbol] = {}

    def to(self, expr: Any) -> Any:
        e = sp.sympify(expr)
        rep = {}
        for s in e.free_symbols:
            if type(s) is not sp.Symbol and isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy):
                p = sp.Symbol(s.name, **_assumptions(s))
                rep[s] = p
                self.back[p] = s
        return e.xreplace(rep) if rep else e

    def restore(self, obj: Any) -> Any:
        if isinstance(obj, sp.Basic):
            return obj.xreplace(self.back) if self.back else obj
        if isinstance(obj, dict):
            return {self.restore(k): self.restore(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.restore(v) for v in obj)
        return obj


def _odes(model: Any, plain: _Plain) -> list[tuple[Any, int, sp.Expr]]:
    """``[(x, n, rhs)]``: each base state's highest derivative, in plain SymPy."""
    out = []
    for s in model.states:
        if derivative_order(s) == 0:
            n = model.order[s]
            top = s if n == 1 else sp.Derivative(s, (t, n - 1))
            out.append((s, n, plain.to(model.rhs[top])))
    return out


def _call(task: str, args: tuple, budget: float, what: str) -> Any:
    """Run a worker task; raise `NoClosedForm` on any failure."""
    if budget <= 0:
        raise NoClosedForm(f"{what}: timed out (no time left in the budget)", "timeout")
    status, payload = WORKER.call(task, args, budget)
    if status == "ok":
        return payload
    raise NoClosedForm(f"{what}: {_FAILURES.get(status, status)} ({payload})", status)
