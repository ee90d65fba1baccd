"""Save and load symml objects as JSON, without executing anything from the file.

Expressions are written as explicit trees whose node types come from a fixed whitelist
(arithmetic, the SymPy -> JAX function table, states, parameters, neural terms); loading rebuilds
them node by node. There is no ``eval``, no ``sympify`` of file text and no pickle. Floats are
stored exactly (mpmath mantissa/exponent for SymPy floats, raw little-endian bytes for arrays),
so a round trip is bit-exact.

>>> import symml as sm, tempfile, os
>>> lv = sm.zoo.lotka_volterra()
>>> path = os.path.join(tempfile.mkdtemp(), "lv.json")
>>> sm.save(lv, path)
>>> sm.load(path) == lv
True
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._compile._functions import BOOLEANS, FUNCTIONS
from ._compile._networks import init_network
from ._data._dataset import Dataset, Series
from ._declare._model import Model
from ._declare._symbols import (
    ACTIVATIONS,
    Neural,
    NeuralSpec,
    Parameter,
    derivative_order,
    is_neural_call,
    neural_spec,
    t,
)
from ._file_limits import (
    MAX_DEPTH,
    MAX_DERIVATIVE_ORDER,
    MAX_DIGITS,
    MAX_FILE_BYTES,
    MAX_NETWORK_DEPTH,
    MAX_NETWORK_PARAMETERS,
    FileFormatError,
)
from ._file_limits import checked_int as _int
from ._file_limits import checked_name as _name
from ._file_limits import checked_pow as _pow
from ._file_limits import node_list as _list
from .errors import SymmlError

FORMAT_VERSION = 1

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
        return Parameter(_name(rest[0]), **_check_assumptions(rest[1]))
    if kind == "Symbol":
        return sp.Symbol(_name(rest[0]), **_check_assumptions(rest[1]))
    if kind == "State":
        return sp.Function(_name(rest[0]), **_check_assumptions(rest[1]))(t)
    if kind == "Neural":
        spec = decode_spec(rest[0], d)
        return Neural(spec)[_int(rest[1])]
    if kind == "Derivative":
        n = _int(rest[1], "derivative order")
        if not 1 <= n <= MAX_DERIVATIVE_ORDER:
            raise FileFormatError(f"derivative order {n}; symml files allow 1 to {MAX_DERIVATIVE_ORDER}")
        return sp.Derivative(decode_value(rest[0], d), (t, n))
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
    return NeuralSpec(_name(d["name"]), inputs, outputs, width, layers, d["activation"], final)


# ----------------------------------------------------------------------------- arrays


def encode_array(a: Any) -> dict:
    """Exact encoding: dtype, shape and the raw little-endian bytes in base64."""
    arr = np.asarray(a)
    dt = arr.dtype.newbyteorder("<")
    return {
        "dtype": dt.str,
        "shape": list(arr.shape),
        "data": base64.b64encode(np.ascontiguousarray(arr, dtype=dt).tobytes()).decode("ascii"),
    }


def decode_array(d: dict) -> np.ndarray:
    if not isinstance(d, dict) or not isinstance(d.get("dtype"), str) or not isinstance(d.get("data"), str):
        raise FileFormatError(f"bad array entry {d!r}"[:200])
    try:
        dt = np.dtype(d["dtype"])
    except TypeError:
        raise FileFormatError(f"unsupported array dtype {d['dtype']!r}"[:200]) from None
    if dt.kind not in "fiub" or dt.hasobject:
        raise FileFormatError(f"unsupported array dtype {d['dtype']!r}"[:200])
    shape = [_int(n, "array dimension") for n in _list(d["shape"])]
    raw = base64.b64decode(d["data"], validate=True)
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=object)) * dt.itemsize != len(raw):
        raise FileFormatError(f"array of shape {shape} does not match its {len(raw)} bytes of data"[:200])
    return np.frombuffer(raw, dtype=dt).reshape(shape).astype(dt.newbyteorder("="))


def encode_module(module: Any) -> list[dict]:
    """The array leaves of an equinox module, in tree order."""
    return [encode_array(x) for x in jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_array))]


def decode_module(skeleton: Any, leaves: list[dict]) -> Any:
    """Put stored leaves into a freshly built module of the same structure."""
    arrays, static = eqx.partition(skeleton, eqx.is_array)
    flat, treedef = jax.tree_util.tree_flatten(arrays)
    if len(flat) != len(leaves):
        raise FileFormatError(f"expected {len(flat)} arrays for the network, found {len(leaves)}")
    new = []
    for old, d in zip(flat, leaves):
        a = decode_array(d)
        if tuple(a.shape) != tuple(old.shape):
            raise FileFormatError(f"array shape {a.shape} does not match the network's {old.shape}")
        new.append(jnp.asarray(a))
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)


def encode_network(net: Any) -> dict:
    return {"spec": encode_spec(net.spec), "leaves": encode_module(net)}


def decode_network(d: dict) -> Any:
    if not isinstance(d, dict):
        raise FileFormatError(f"bad network entry {d!r}"[:200])
    spec = decode_spec(d["spec"])
    skeleton = init_network(spec, jax.random.PRNGKey(0))
    return decode_module(skeleton, d["leaves"])


# ----------------------------------------------------------------------------- models


def _decode_symbol(node: Any) -> sp.Symbol:
    """`decode_expr` where a symbol is needed (a parameter of a model)."""
    e = decode_expr(node)
    if not isinstance(e, sp.Symbol):
        raise FileFormatError(f"expected a parameter symbol, got {e} in node {node!r}")
    return e


def encode_model(model: Model) -> dict:
    return {
        "name": model.name,
        "equations": [[encode_expr(eq.lhs), encode_expr(eq.rhs)] for eq in model.equations],
        "params": [encode_expr(p) for p in model.params],
        "defaults": [[encode_expr(k), float(v).hex()] for k, v in model.defaults.items()],
        "networks": {k: encode_network(v) for k, v in model.networks.items()},
    }


def decode_model(d: dict) -> Model:
    eqs = [sp.Eq(decode_expr(lhs), decode_expr(rhs), evaluate=False) for lhs, rhs in d["equations"]]
    params = [_decode_symbol(p) for p in d.get("params", [])]
    defaults = {decode_expr(k): float.fromhex(v) for k, v in d.get("defaults", [])}
    networks = {k: decode_network(v) for k, v in d.get("networks", {}).items()}
    return Model(
        eqs,
        defaults=defaults,
        name=_name(d["name"]),
        params=[p for p in params if not isinstance(p, Parameter)],
        networks=networks,
    )


# ----------------------------------------------------------------------------- save / load

_ENCODERS: dict[type, tuple[str, Callable[[Any], dict]]] = {}
_DECODERS: dict[str, Callable[[dict], Any]] = {}
_BUILTIN: list[bool] = []


def register(kind: str, cls: type, encode: Callable[[Any], dict], decode: Callable[[dict], Any]) -> None:
    """Make ``cls`` saveable under the tag ``kind`` (used by Trained, Distilled, ...)."""
    _ENCODERS[cls] = (kind, encode)
    _DECODERS[kind] = decode


def _register_builtin() -> None:
    if _BUILTIN:
        return
    _BUILTIN.append(True)
    register("model", Model, encode_model, decode_model)

    def enc_data(ds):
        return {
            "series": [
                {
                    "t": encode_array(s.t),
                    "values": [[_key(k), encode_array(v)] for k, v in s.values.items()],
                    "ics": [[_key(k), float(v).hex()] for k, v in s.ics.items()],
                }
                for s in ds.series
            ]
        }

    def dec_data(d):
        series = [
            Series(
                decode_array(s["t"]),
                {_unkey(k): decode_array(v) for k, v in s["values"]},
                {_unkey(k): float.fromhex(v) for k, v in s["ics"]},
            )
            for s in d["series"]
        ]
        return Dataset(series=series)

    register("dataset", Dataset, enc_data, dec_data)


def _key(k):
    return ["name", k] if isinstance(k, str) else ["expr", encode_expr(k)]


def _unkey(k):
    if k[0] == "name":
        return _name(k[1])
    if k[0] == "expr":
        return decode_expr(k[1])
    raise FileFormatError(f"bad key {k!r}")


def to_json_dict(obj: Any) -> dict:
    _register_builtin()
    for cls in type(obj).__mro__:
        if cls in _ENCODERS:
            kind, enc = _ENCODERS[cls]
            return {"symml": kind, "version": FORMAT_VERSION, "content": enc(obj)}
    known = ", ".join(sorted(k for k, _ in _ENCODERS.values()))
    raise TypeError(f"sm.save cannot save a {type(obj).__name__}; it saves: {known}")


def from_json_dict(d: dict) -> Any:
    _register_builtin()
    if not isinstance(d, dict) or "symml" not in d:
        raise FileFormatError("not a symml file (no 'symml' tag)")
    if d.get("version") != FORMAT_VERSION:
        raise FileFormatError(
            f"unsupported symml file version {d.get('version')!r} (this is {FORMAT_VERSION})"
        )
    kind = d["symml"]
    if not isinstance(kind, str) or kind not in _DECODERS:
        raise FileFormatError(f"unknown object kind {kind!r} (known: {', '.join(sorted(_DECODERS))})"[:300])
    try:
        return _DECODERS[kind](d["content"])
    except SymmlError:
        raise
    except RecursionError:
        raise FileFormatError("the file's expressions are nested too deeply to rebuild") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as err:
        # Malformed structure (a missing field, a wrong type): say so instead of a raw traceback.
        raise FileFormatError(f"malformed symml {kind} file ({type(err).__name__}: {err})"[:300]) from None


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (a Model, Dataset, trained or distilled result, ...) to a JSON file.

    Args:
        obj: a `Model`, `Dataset`, `Trained`, `Distilled`, `FitResult` or another registered kind.
        path: the file to write (overwritten).

    Raises:
        TypeError: ``obj`` is of a kind symml cannot save (the message lists those it can).
        FileFormatError: ``obj`` holds an expression outside the whitelist (a dummy symbol, a
            function with no JAX translation).

    >>> import symml as sm, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pendulum.json")
    >>> sm.save(sm.zoo.pendulum(), path)
    >>> sm.load(path).name
    'pendulum'
    """
    d = to_json_dict(obj)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f)


def load(path: str | os.PathLike) -> Any:
    """Read an object written by `save`. Nothing in the file is executed.

    Args:
        path: a file written by `save`.

    Returns:
        The object, of the kind that was saved (``load(p) == obj`` for a Model).

    Raises:
        FileFormatError: the file is not JSON, not a symml file, of another format version,
            malformed, holds a node symml does not know, or is beyond the limits (``MAX_*``:
            file size, nesting depth, exponents, derivative orders, network sizes).
        OSError: the file cannot be read.

    >>> import symml as sm, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "lv.json")
    >>> sm.save(sm.zoo.lotka_volterra(), path)
    >>> sorted(str(p) for p in sm.load(path).params)
    ['alpha', 'beta', 'delta', 'gamma']
    """
    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise FileFormatError(f"{path} is larger than {MAX_FILE_BYTES} bytes, the limit for a symml file")
    try:
        d = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path} is not a JSON file: {err}") from None
    except RecursionError:
        raise FileFormatError(f"{path} is nested too deeply to be a symml file") from None
    return from_json_dict(d)
