"""Expressions as JSON trees: a fixed whitelist of node types, rebuilt node by node.

Every node type is listed in `encode_expr` and `decode_expr`; anything else is refused with a
`FileFormatError`. Decoding enforces the limits of `symml._file_limits` (nesting depth, exponents,
digits, derivative orders, network sizes) before SymPy evaluates anything.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from .._compile._functions import BOOLEANS, FUNCTIONS
from .._declare._symbols import (
    ACTIVATIONS,
    Neural,
    NeuralSpec,
    Parameter,
    derivative_order,
    is_neural_call,
    neural_spec,
    t,
)
from .._file_limits import (
    MAX_DEPTH,
    MAX_DERIVATIVE_ORDER,
    MAX_DIGITS,
    MAX_NETWORK_DEPTH,
    MAX_NETWORK_PARAMETERS,
    FileFormatError,
)
from .._file_limits import checked_identifier as _ident
from .._file_limits import checked_int as _int
from .._file_limits import checked_pow as _pow
from .._file_limits import node_list as _list
from .._mechanics import NeuralDerivative

__all__ = ["encode_expr", "decode_expr", "decode_value", "encode_spec", "decode_spec"]

_FUNCS_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in FUNCTIONS}
_BOOLS_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in BOOLEANS}
_CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "-oo": -sp.oo, "nan": sp.nan, "zoo": sp.zoo}
_ASSUMPTION_KEYS = (
    "real",
    "positive",
    "negative",
    "nonnegative",
    "nonpositive",
    "integer",
    "nonzero",
    "finite",
)


# ----------------------------------------------------------------------------- expressions


def _assumptions(sym) -> dict[str, bool]:
    orig = getattr(sym, "_assumptions_orig", None)
    if orig is None:
        orig = sym.assumptions0
    return {k: bool(v) for k, v in orig.items() if k in _ASSUMPTION_KEYS and v is not None}


def _check_assumptions(a: Any) -> dict[str, bool]:
    if not isinstance(a, dict) or not all(
        k in _ASSUMPTION_KEYS and isinstance(v, bool) for k, v in a.items()
    ):
        raise FileFormatError(f"bad assumptions {a!r}")
    return a


def encode_expr(e: Any) -> Any:
    """A JSON-able tree for a SymPy expression."""
    e = sp.sympify(e)
    if e == t:
        return ["t"]
    if e is sp.true:
        return ["true"]
    if e is sp.false:
        return ["false"]
    if isinstance(e, sp.Integer):
        return ["Integer", str(int(e))]
    if isinstance(e, sp.Rational):
        return ["Rational", str(int(e.p)), str(int(e.q))]
    if isinstance(e, sp.Float):
        sign, man, exp, bc = e._mpf_
        return ["Float", int(sign), str(int(man)), int(exp), int(bc), int(e._prec)]
    for name, c in _CONSTANTS.items():
        if e == c:
            return ["Const", name]
    if isinstance(e, Parameter):
        return ["Parameter", e.name, _assumptions(e)]
    if isinstance(e, sp.Dummy):
        raise FileFormatError(f"cannot save the dummy symbol {e}")
    if isinstance(e, sp.Symbol):
        return ["Symbol", e.name, _assumptions(e)]
    if is_neural_call(e):
        spec, k = neural_spec(e)
        return ["Neural", encode_spec(spec), int(k)]
    if isinstance(e, sp.core.function.AppliedUndef):
        if e.args != (t,):
            raise FileFormatError(f"cannot save {e}: only states x(t) and neural terms are supported")
        derived = {k: getattr(e, "is_" + k) for k in _ASSUMPTION_KEYS}
        return ["State", e.func.__name__, {k: bool(v) for k, v in derived.items() if v is not None}]
    if isinstance(e, sp.Derivative):
        return ["Derivative", encode_expr(e.expr), derivative_order(e)]
    if isinstance(e, sp.Add):
        return ["Add", [encode_expr(a) for a in e.args]]
    if isinstance(e, sp.Mul):
        return ["Mul", [encode_expr(a) for a in e.args]]
    if isinstance(e, sp.Pow):
        return ["Pow", encode_expr(e.base), encode_expr(e.exp)]
    if isinstance(e, sp.Piecewise):
        # each argument is an (expression, condition) pair
        return ["Piecewise", [[encode_expr(a) for a in pair.args] for pair in e.args]]
    if type(e) in BOOLEANS:
        return ["Bool", type(e).__name__, [encode_expr(a) for a in e.args]]
    if isinstance(e, NeuralDerivative):
        # d^n U_k(x) / dx_i ... dx_j of a network output (Hamiltonian networks)
        return ["NeuralDerivative", encode_expr(e.args[0]), [encode_expr(a) for a in e.args[1:]]]
    if type(e) in FUNCTIONS:
        return ["Fn", type(e).__name__, [encode_expr(a) for a in e.args]]
    raise FileFormatError(f"cannot save expression {e} (node type {type(e).__name__})")


def decode_expr(node: Any, depth: int = 0) -> sp.Basic:
    """Rebuild an expression from `encode_expr`'s tree (whitelisted nodes only).

    Raises:
        FileFormatError: an unknown or malformed node, or one beyond the limits (``MAX_DEPTH``,
            ``MAX_EXPONENT``, ``MAX_DIGITS``, ``MAX_DERIVATIVE_ORDER``).
    """
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise FileFormatError(f"bad expression node {node!r}"[:200])
    if depth > MAX_DEPTH:
        raise FileFormatError(f"expression nested deeper than {MAX_DEPTH} levels; symml does not rebuild it")
    d = depth + 1
    kind, *rest = node
    if kind == "t":
        return t
    if kind == "true":
        return sp.true
    if kind == "false":
        return sp.false
    if kind == "Integer":
        return sp.Integer(_int(rest[0]))
    if kind == "Rational":
        return sp.Rational(_int(rest[0]), _int(rest[1]))
    if kind == "Float":
        sign, man, exp, bc, prec = rest
        sign, man, exp, bc, prec = _int(sign), _int(man), _int(exp), _int(bc), _int(prec)
        if sign not in (0, 1) or man < 0 or not 1 <= prec <= 4 * MAX_DIGITS or abs(exp) > 10**6:
            raise FileFormatError(f"bad Float node {node!r}"[:200])
        if bc != man.bit_length() and not (man == 0 and bc in (-1, -2, -3)):  # -1..-3: nan, inf, -inf
            raise FileFormatError(f"bad Float node {node!r}"[:200])
        return sp.Float._new((sign, man, exp, bc), prec)
    if kind == "Const":
        if rest[0] not in _CONSTANTS:
            raise FileFormatError(f"unknown constant {rest[0]!r}")
        return _CONSTANTS[rest[0]]
    if kind == "Parameter":
        return Parameter(_ident(rest[0]), **_check_assumptions(rest[1]))
    if kind == "Symbol":
        return sp.Symbol(_ident(rest[0]), **_check_assumptions(rest[1]))
    if kind == "State":
        return sp.Function(_ident(rest[0]), **_check_assumptions(rest[1]))(t)
    if kind == "Neural":
        spec = decode_spec(rest[0], d)
        return Neural(spec)[_int(rest[1])]
    if kind == "Derivative":
        n = _int(rest[1], "derivative order")
        if not 1 <= n <= MAX_DERIVATIVE_ORDER:
            raise FileFormatError(f"derivative order {n}; symml files allow 1 to {MAX_DERIVATIVE_ORDER}")
        return sp.Derivative(decode_value(rest[0], d), (t, n))
    if kind == "NeuralDerivative":
        call = decode_value(rest[0], d)
        wrt = [decode_value(a, d) for a in _list(rest[1])]
        if not is_neural_call(call) or not 1 <= len(wrt) <= MAX_DERIVATIVE_ORDER:
            raise FileFormatError(f"bad network derivative node {node!r}"[:200])
        return NeuralDerivative(call, *wrt)
    if kind == "Add":
        return sp.Add(*[decode_value(a, d) for a in _list(rest[0])])
    if kind == "Mul":
        return sp.Mul(*[decode_value(a, d) for a in _list(rest[0])])
    if kind == "Pow":
        return _pow(decode_value(rest[0], d), decode_value(rest[1], d))
    if kind == "Piecewise":
        return sp.Piecewise(*[(decode_value(a, d), decode_expr(c, d)) for a, c in _list(rest[0])])
    if kind == "Bool":
        if rest[0] not in _BOOLS_BY_NAME:
            raise FileFormatError(f"unknown boolean {rest[0]!r}")
        return _BOOLS_BY_NAME[rest[0]](*[decode_expr(a, d) for a in _list(rest[1])])
    if kind == "Fn":
        if rest[0] not in _FUNCS_BY_NAME:
            raise FileFormatError(f"unknown function {rest[0]!r} (not in the codegen table)")
        return _FUNCS_BY_NAME[rest[0]](*[decode_expr(a, d) for a in _list(rest[1])])
    raise FileFormatError(f"unknown expression node {kind!r}"[:200])


def decode_value(node: Any, depth: int = 0) -> sp.Expr:
    """`decode_expr` where a value is needed (an operand, not a condition)."""
    e = decode_expr(node, depth)
    if not isinstance(e, sp.Expr):
        raise FileFormatError(f"expected a value, got the boolean {e} in node {node!r}")
    return e


def encode_spec(spec: NeuralSpec) -> dict:
    return {
        "name": spec.name,
        "inputs": [encode_expr(i) for i in spec.inputs],
        "outputs": spec.outputs,
        "width": spec.width,
        "depth": spec.depth,
        "activation": spec.activation,
        "final_activation": spec.final_activation,
    }


def decode_spec(d: dict, depth: int = 0) -> NeuralSpec:
    if not isinstance(d, dict):
        raise FileFormatError(f"bad network spec {d!r}"[:200])
    for a in (d["activation"], d.get("final_activation", "identity")):
        if a not in ACTIVATIONS:
            raise FileFormatError(f"unknown activation {a!r}"[:200])
    inputs = tuple(decode_value(i, depth) for i in _list(d["inputs"]))
    outputs, width, layers = _int(d["outputs"]), _int(d["width"]), _int(d["depth"])
    n_in = len(inputs)
    # Weights are allocated from the spec before the stored arrays are read: bound them first.
    size = (n_in + 1) * width + max(layers - 1, 0) * (width + 1) * width + (width + 1) * outputs
    if not (1 <= n_in and outputs >= 1 and width >= 1 and 0 <= layers <= MAX_NETWORK_DEPTH) or (
        size > MAX_NETWORK_PARAMETERS
    ):
        raise FileFormatError(
            f"network {d.get('name')!r}: {n_in} inputs, width {width}, depth {layers}, {outputs} outputs "
            f"({size} weights) is outside the limits (depth <= {MAX_NETWORK_DEPTH}, at most "
            f"{MAX_NETWORK_PARAMETERS} weights)"[:300]
        )
    final = d.get("final_activation", "identity")
    return NeuralSpec(_ident(d["name"]), inputs, outputs, width, layers, d["activation"], final)


# ----------------------------------------------------------------------------- arrays
