"""The scalar program builder: SymPy expressions (after common-subexpression elimination) to the
instructions of a `symml._compile._program.Program`, one instruction per operation.

`symml._compile._codegen.build_program` replaces states and parameters by plain symbols, runs
SymPy's CSE and hands the result to `ScalarBuilder`; repeated structure in large models goes to
the vector builder (`symml._compile._vector`) instead.

>>> import sympy as sp
>>> x, k = sp.symbols("_y0 _p0", real=True)
>>> b = ScalarBuilder({x: (0, "x")}, {k: (0, "k")}, {})
>>> out = b.build(-k * x)
>>> [kind for kind, _, _ in b.instrs]
['p', 'y', 'mul', 'neg']
"""

from __future__ import annotations

from typing import Any, cast

import sympy as sp

from .._declare._symbols import t
from ..errors import MissingValueError, UnsupportedFunctionError
from ._functions import BOOLEANS, FUNCTIONS, unsupported_message

__all__ = ["ScalarBuilder"]


class ScalarBuilder:
    """Emits the instructions of a `symml._compile._program.Program`, one SymPy node at a time.

    ``state_syms`` and ``param_syms`` map the plain symbols standing for states and parameters to
    ``(index, label)``; ``net_syms`` maps the symbols standing for neural outputs to ``(network
    name, input expressions, output index[, input indices differentiated by])``. ``cse_ids``
    maps the symbols of SymPy's common subexpressions to the instructions computing them.
    """

    def __init__(self, state_syms, param_syms, net_syms):
        self.instrs: list[tuple] = []
        self.names: list[str] = []
        self.memo: dict[sp.Basic, int] = {}
        self.cse_ids: dict[sp.Basic, int] = {}
        self.state_syms = state_syms  # Symbol -> (index, label)
        self.param_syms = param_syms  # Symbol -> (index, label)
        self.net_syms = net_syms  # Symbol -> (name, input exprs, output index)
        self.counter = 0
        self.index: dict[tuple, int] = {}

    def emit(self, kind, data, args, name=None) -> int:
        key = (kind, data, tuple(args))
        if key in self.index:
            return self.index[key]
        self.index[key] = len(self.instrs)
        self.instrs.append(key)
        if name is None:
            name = f"v{self.counter}"
            self.counter += 1
        self.names.append(name)
        return len(self.instrs) - 1

    def const(self, value: float) -> int:
        return self.emit("const", float(value), (), name=repr(float(value)))

    def build(self, e: Any) -> int:
        if e in self.memo:
            return self.memo[e]
        i = self._build(e)
        self.memo[e] = i
        return i

    def _build(self, e: Any) -> int:
        if e in self.cse_ids:
            return self.cse_ids[e]
        if e == t:
            return self.emit("t", None, (), name="t")
        if e in self.state_syms:
            idx, label = self.state_syms[e]
            return self.emit("y", idx, (), name=label)
        if e in self.param_syms:
            idx, label = self.param_syms[e]
            return self.emit("p", idx, (), name=label)
        if e in self.net_syms:
            name, inputs, k, *wrt = self.net_syms[e]
            args = tuple(self.build(a) for a in inputs)
            if wrt:  # a derivative of a network output (see build_program)
                tag = "".join(map(str, wrt[0]))
                return self.emit("netgrad", (name, k, wrt[0]), args, name=f"d{name}_{k}_{tag}")
            n = self.emit("net", name, args, name=f"{name}_out")
            return self.emit("item", k, (n,), name=f"{name}_{k}")
        if e is sp.true or e is sp.false:
            return self.emit("bconst", bool(e), (), name=str(bool(e)))
        if e.is_Number or e.is_NumberSymbol:
            if e.is_real is False or not e.is_finite:
                raise UnsupportedFunctionError(
                    f"The constant {e} is not a finite real number; symml compiles real models only."
                )
            return self.const(float(e))
        if e is sp.I or (e.is_number and e.is_real is False):
            raise UnsupportedFunctionError(
                f"{e} is complex; symml compiles real-valued models. Split complex states into "
                "real and imaginary parts."
            )
        if e.is_Symbol:
            raise MissingValueError(
                f"Symbol {e} is neither a state, a parameter nor t of the compiled expression."
            )
        if e.is_Add:
            return self._build_add(e)
        if e.is_Mul:
            return self._build_mul(e)
        if e.is_Pow:
            return self._build_pow(e)
        if isinstance(e, sp.Piecewise):
            return self._build_piecewise(e)
        if type(e) in BOOLEANS:
            return self.emit("bool", type(e), tuple(self.build(a) for a in e.args))
        if isinstance(e, sp.Heaviside) and len(e.args) == 1:
            return self.emit("fn", sp.Heaviside, (self.build(e.args[0]), self.const(0.5)))
        cls = type(e)
        if cls in FUNCTIONS:
            return self.emit("fn", cls, tuple(self.build(a) for a in e.args))
        raise UnsupportedFunctionError(unsupported_message(e))

    def _build_add(self, e):
        pos, neg = [], []
        for term in sp.Add.make_args(e):
            c, rest = term.as_coeff_Mul()
            if c.is_negative:
                neg.append(-term)
            else:
                pos.append(term)
        pos.sort(key=sp.default_sort_key)
        neg.sort(key=sp.default_sort_key)
        if not pos:
            first = self.build(sp.Add(*neg, evaluate=False) if len(neg) > 1 else neg[0])
            return self.emit("neg", None, (first,))
        acc = (
            self.emit("add", None, tuple(self.build(p) for p in pos)) if len(pos) > 1 else self.build(pos[0])
        )
        for n_ in neg:
            acc = self.emit("sub", None, (acc, self.build(n_)))
        return acc

    def _build_mul(self, e):
        coeff, rest = e.as_coeff_Mul()
        if coeff.is_negative:
            return self.emit("neg", None, (self.build(-e),))
        num, den = [], []
        factors = sp.Mul.make_args(rest)
        if coeff != 1:
            num.append(coeff)
        for f in cast(tuple[Any, ...], factors):
            if f.is_Pow and f.exp.is_Number and f.exp.is_negative:
                den.append(sp.Pow(f.base, -f.exp))
            else:
                num.append(f)
        num_id = (
            self.emit("mul", None, tuple(self.build(f) for f in num))
            if len(num) > 1
            else (self.build(num[0]) if num else self.const(1.0))
        )
        if not den:
            return num_id
        den_id = (
            self.emit("mul", None, tuple(self.build(f) for f in den)) if len(den) > 1 else self.build(den[0])
        )
        return self.emit("div", None, (num_id, den_id))

    def _build_pow(self, e):
        b, x = e.base, e.exp
        if b is sp.E:
            return self.emit("fn", sp.exp, (self.build(x),))
        if x.is_Integer:
            n = int(x)
            if n < 0:
                return self.emit("div", None, (self.const(1.0), self.build(sp.Pow(b, -n))))
            return self.emit("ipow", n, (self.build(b),))
        if x == sp.Rational(1, 2):
            return self.emit("sqrt", None, (self.build(b),))
        if x == sp.Rational(-1, 2):
            return self.emit("rsqrt", None, (self.build(b),))
        if x.is_Rational and x.q == 2:
            # b**(n/2) as sqrt(b)**n: exact for half-integers and cheaper than exp(log(b) * x).
            root = self.emit("sqrt", None, (self.build(b),))
            powered = self.emit("ipow", abs(int(x.p)), (root,))
            return powered if x.p > 0 else self.emit("div", None, (self.const(1.0), powered))
        return self.emit("pow", None, (self.build(b), self.build(x)))

    def _build_piecewise(self, e):
        pieces = list(e.args)
        if pieces[-1].cond is sp.true:
            acc = self.build(pieces.pop().expr)
        else:
            acc = self.const(float("nan"))
        for piece in reversed(pieces):
            acc = self.emit("where", None, (self.build(piece.cond), self.build(piece.expr), acc))
        return acc
