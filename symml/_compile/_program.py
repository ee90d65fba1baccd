"""Programs: straight-line lists of instructions over ``t``, ``y[i]``, ``p[j]``, run while JAX traces.

A `Program` is what `symml._compile._codegen.build_program` makes from SymPy expressions:
each instruction is one entry of the table `symml._compile._functions.FUNCTIONS` (or an
arithmetic operator) applied to earlier results. `Program.run` interprets it on JAX values, so
the jitted function contains exactly the operations listed; `Program.source` renders the same
instructions as readable Python, which is never executed.

>>> import jax.numpy as jnp
>>> prog = Program([("y", 0, ()), ("const", 2.0, ()), ("mul", None, (0, 1))], [2],
...                ["x", "2.0", "v0"], ("x",), (), "double")
>>> prog.run(0.0, jnp.array([3.0]), jnp.zeros(0), {})[0].item()
6.0
>>> print(prog.source())
def double(t, y, p):
    x = y[0]
    v0 = x * 2.0
    return jnp.stack([v0])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._functions import BOOLEANS, FUNCTIONS

__all__ = ["Program", "label"]


def _add(*xs):
    return functools.reduce(lambda a, b: a + b, xs)


def _mul(*xs):
    return functools.reduce(lambda a, b: a * b, xs)


def _sub(a, b):
    return a - b


def _div(a, b):
    return a / b


def _neg(a):
    return -a


def _ipow(a, n):
    return jax.lax.integer_pow(a, n)


def _rsqrt(a):
    return 1.0 / jnp.sqrt(a)


def _where(c, a, b):
    return jnp.where(c, a, b)


def _net_grad(net, k, wrt, x):
    """``d^n net(x)[k] / dx[wrt[0]] ... dx[wrt[-1]]``: nested jax.grad, so jit, vmap and grad go through."""

    def f(z):
        return net(z)[k]

    def partial(g, i):
        return lambda z: jax.grad(g)(z)[i]

    for i in wrt:
        f = partial(f, i)
    return f(x)


_ARITH: dict[str, tuple[str, Callable[..., Any]]] = {
    "add": ("+", _add),
    "mul": ("*", _mul),
    "sub": ("-", _sub),
    "div": ("/", _div),
    "neg": ("-", _neg),
    "pow": ("**", jnp.power),
    "ipow": ("**", _ipow),
    "sqrt": ("jnp.sqrt", jnp.sqrt),
    "rsqrt": ("1/jnp.sqrt", _rsqrt),
    "where": ("jnp.where", _where),
}


class Program:
    """A straight-line program: instructions over inputs ``t``, ``y[i]``, ``p[j]``.

    Instructions are tuples ``(kind, data, args)`` where ``kind`` is one of ``"t"``, ``"y"``,
    ``"p"``, ``"const"``, ``"net"``, ``"netgrad"`` (a derivative of a network output),
    ``"item"``, ``"fn"`` (a `FUNCTIONS` entry),
    ``"bool"`` (a `BOOLEANS` entry) or an arithmetic operator. Hashing is by identity so
    that jit caches keyed on a program are cheap.
    """

    def __init__(self, instrs, outputs, names, state_labels, param_labels, title):
        self.instrs = tuple(instrs)
        self.outputs = tuple(outputs)
        self._names = names
        self.state_labels = state_labels
        self.param_labels = param_labels
        self.title = title

    def run(self, t_, y, p, networks: Mapping[str, Any]) -> list:
        env: list[Any] = []
        for kind, data, args in self.instrs:
            if kind == "t":
                v = t_
            elif kind == "y":
                v = y[data]
            elif kind == "p":
                v = p[data]
            elif kind == "const" or kind == "bconst":
                v = data
            elif kind == "net":
                v = networks[data](jnp.stack([jnp.asarray(env[a], dtype=y.dtype) for a in args]))
            elif kind == "netgrad":  # data: (network name, output index, input indices)
                x = jnp.stack([jnp.asarray(env[a], dtype=y.dtype) for a in args])
                v = _net_grad(networks[data[0]], data[1], data[2], x)
            elif kind == "item":
                v = env[args[0]][data]
            elif kind == "fn":
                v = FUNCTIONS[data][1](*(env[a] for a in args))
            elif kind == "bool":
                v = BOOLEANS[data][1](*(env[a] for a in args))
            elif kind == "ipow":
                v = _ipow(env[args[0]], data)
            else:
                v = _ARITH[kind][1](*(env[a] for a in args))
            env.append(v)
        return [env[o] for o in self.outputs]

    def stacked(self, t_, y, p, networks: Mapping[str, Any]):
        """All outputs as one array (shape ``(n_outputs, *t.shape)``), in output order."""
        y = jnp.asarray(y)
        outs = self.run(t_, y, p, networks)
        dtype = jnp.result_type(y.dtype, float)
        return jnp.stack([jnp.broadcast_to(jnp.asarray(o, dtype=dtype), jnp.shape(t_)) for o in outs])

    def source(self) -> str:
        """Readable Python for the program (for inspection; it is never executed)."""
        lines = [f"def {self.title}(t, y, p):"]
        names = self._names
        for i, (kind, data, args) in enumerate(self.instrs):
            a = [names[j] for j in args]
            if kind == "t":
                continue
            if kind == "y":
                rhs = f"y[{data}]"
            elif kind == "p":
                rhs = f"p[{data}]"
            elif kind in ("const", "bconst"):
                continue
            elif kind == "net":
                rhs = f"networks[{data!r}](jnp.stack([{', '.join(a)}]))"
            elif kind == "netgrad":
                rhs = f"grad(networks[{data[0]!r}], {data[1]}, wrt={data[2]})(jnp.stack([{', '.join(a)}]))"
            elif kind == "item":
                rhs = f"{a[0]}[{data}]"
            elif kind == "fn":
                rhs = f"{FUNCTIONS[data][0]}({', '.join(a)})"
            elif kind == "bool":
                sym = BOOLEANS[data][0]
                if sym == "~":
                    rhs = f"~({a[0]})"
                elif sym.isidentifier() or "." in sym:
                    rhs = f"{sym}({', '.join(a)})"
                else:
                    rhs = f"({f' {sym} '.join(a)})"
            elif kind == "ipow":
                rhs = f"{a[0]} ** {data}"
            elif kind in ("add", "mul"):
                rhs = f" {_ARITH[kind][0]} ".join(a)
            elif kind in ("sub", "div"):
                rhs = f"{a[0]} {_ARITH[kind][0]} {_paren(a[1])}"
            elif kind == "neg":
                rhs = f"-({a[0]})"
            elif kind == "pow":
                rhs = f"jnp.power({a[0]}, {a[1]})"
            else:
                rhs = f"{_ARITH[kind][0]}({', '.join(a)})"
            lines.append(f"    {names[i]} = {rhs}")
        outs = ", ".join(names[o] for o in self.outputs)
        lines.append(f"    return jnp.stack([{outs}])")
        return "\n".join(lines)


def _paren(s: str) -> str:
    return s if s.isidentifier() or _is_number(s) else f"({s})"


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def label(name: str) -> str:
    """``name`` as a Python identifier for generated source (``x'`` -> ``x_``; never ``t``, ``y``, ``p``)."""
    s = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    if not s or s[0].isdigit():
        s = "_" + s
    if s in ("t", "y", "p", "jnp", "jsp", "networks"):
        s = s + "_"
    return s
