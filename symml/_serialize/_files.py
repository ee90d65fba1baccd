"""Files: arrays and networks exactly, models, the registry of saveable kinds, save and load."""

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

from .._compile._networks import init_network
from .._data._dataset import Dataset, Series
from .._declare._model import Model
from .._declare._symbols import Parameter
from .._file_limits import MAX_FILE_BYTES, FileFormatError
from .._file_limits import checked_int as _int
from .._file_limits import checked_name as _name
from .._file_limits import node_list as _list
from ..errors import SymmlError
from ._expr import decode_expr, decode_spec, encode_expr, encode_spec

__all__ = [
    "FORMAT_VERSION",
    "encode_array",
    "decode_array",
    "encode_module",
    "decode_module",
    "encode_network",
    "decode_network",
    "encode_model",
    "decode_model",
    "register",
    "to_json_dict",
    "from_json_dict",
    "save",
    "load",
]

FORMAT_VERSION = 1


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
        "invariants": {k: encode_expr(v) for k, v in model.invariants.items()},
    }


def decode_model(d: dict) -> Model:
    eqs = [sp.Eq(decode_expr(lhs), decode_expr(rhs), evaluate=False) for lhs, rhs in d["equations"]]
    params = [_decode_symbol(p) for p in d.get("params", [])]
    defaults = {decode_expr(k): float.fromhex(v) for k, v in d.get("defaults", [])}
    networks = {k: decode_network(v) for k, v in d.get("networks", {}).items()}
    invariants = {_name(k): decode_expr(v) for k, v in d.get("invariants", {}).items()}
    return Model(
        eqs,
        defaults=defaults,
        name=_name(d["name"]),
        params=[p for p in params if not isinstance(p, Parameter)],
        networks=networks,
        invariants=invariants,
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
