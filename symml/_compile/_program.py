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

import abc
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from ._functions import BOOLEANS, FUNCTIONS

__all__ = ["AbstractProgram", "Program", "execute", "label", "render"]


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


class AbstractProgram(abc.ABC):
    """What `symml._compile._codegen.build_program` returns: instructions run while JAX traces.

    `Program` (one scalar instruction stream) and `symml._compile._vector.VectorProgram` (groups
    of outputs evaluated on vectors) share the interpreter `execute`, and both give
    ``run(t, y, p, networks)`` (the outputs as a list), ``stacked(...)`` (the outputs as one array)
    and ``source()``. Hashing is by identity, so that jit caches keyed on a program are cheap.
    """

    instrs: tuple
    state_labels: tuple
    param_labels: tuple
    title: str

    @abc.abstractmethod
    def run(self, t_: Any, y: Any, p: Any, networks: Mapping[str, Any]) -> list:
        """The outputs, in output order (entries may be scalars where an output is constant)."""

    @abc.abstractmethod
    def stacked(self, t_: Any, y: Any, p: Any, networks: Mapping[str, Any]) -> jax.Array:
        """All outputs as one array (shape ``(n_outputs, *batch)``), in output order."""

    @abc.abstractmethod
    def source(self) -> str:
        """Readable Python for the program (for inspection; it is never executed)."""


def execute(instrs, t_, y, networks: Mapping[str, Any], leaf: Callable[[str, Any], Any]) -> list:
    """Run the instructions on JAX values; the value of every instruction, in order.

    ``leaf(kind, data)`` gives the value of an input instruction (``"y"``, ``"p"`` and the vector
    leaves of `symml._compile._vector`); everything else is interpreted here, for both kinds of
    program.
    """
    env: list[Any] = []
    for kind, data, args in instrs:
        if kind == "t":
            v = t_
        elif kind == "const" or kind == "bconst":
            v = data
        elif kind == "fn":
            v = FUNCTIONS[data][1](*(env[a] for a in args))
        elif kind == "bool":
            v = BOOLEANS[data][1](*(env[a] for a in args))
        elif kind == "ipow":
            v = _ipow(env[args[0]], data)
        elif kind in _ARITH:
            v = _ARITH[kind][1](*(env[a] for a in args))
        elif kind == "net":
            v = networks[data](jnp.stack([jnp.asarray(env[a], dtype=y.dtype) for a in args]))
        elif kind == "netgrad":  # data: (network name, output index, input indices)
            x = jnp.stack([jnp.asarray(env[a], dtype=y.dtype) for a in args])
            v = _net_grad(networks[data[0]], data[1], data[2], x)
        elif kind == "item":
            v = env[args[0]][data]
        else:
            v = leaf(kind, data)
        env.append(v)
    return env


def render(kind: str, data: Any, a: list[str]) -> str | None:
    """The right-hand side of an instruction in generated source (``None``: not rendered, or a
    leaf kind the program renders itself); ``a`` are the names of its arguments."""
    if kind in ("t", "const", "bconst"):
        return None
    if kind == "fn":
        return f"{FUNCTIONS[data][0]}({', '.join(a)})"
    if kind == "bool":
        sym = BOOLEANS[data][0]
        if sym == "~":
            return f"~({a[0]})"
        if sym.isidentifier() or "." in sym:
            return f"{sym}({', '.join(a)})"
        return f"({f' {sym} '.join(a)})"
    if kind == "ipow":
        return f"{a[0]} ** {data}"
    if kind in ("add", "mul"):
        return f" {_ARITH[kind][0]} ".join(a)
    if kind in ("sub", "div"):
        return f"{a[0]} {_ARITH[kind][0]} {_paren(a[1])}"
    if kind == "neg":
        return f"-({a[0]})"
    if kind == "pow":
        return f"jnp.power({a[0]}, {a[1]})"
    if kind in _ARITH:
        return f"{_ARITH[kind][0]}({', '.join(a)})"
    if kind == "net":
        return f"networks[{data!r}](jnp.stack([{', '.join(a)}]))"
    if kind == "netgrad":
        return f"grad(networks[{data[0]!r}], {data[1]}, wrt={data[2]})(jnp.stack([{', '.join(a)}]))"
    if kind == "item":
        return f"{a[0]}[{data}]"
    return None


class Program(AbstractProgram):
    """A straight-line program: instructions over inputs ``t``, ``y[i]``, ``p[j]``.

    Instructions are tuples ``(kind, data, args)`` where ``kind`` is one of ``"t"``, ``"y"``,
    ``"p"``, ``"const"``, ``"net"``, ``"netgrad"`` (a derivative of a network output),
    ``"item"``, ``"fn"`` (a `FUNCTIONS` entry),
    ``"bool"`` (a `BOOLEANS` entry) or an arithmetic operator.
    """

    def __init__(self, instrs, outputs, names, state_labels, param_labels, title):
        self.instrs = tuple(instrs)
        self.outputs = tuple(outputs)
        self._names = names
        self.state_labels = state_labels
        self.param_labels = param_labels
        self.title = title

    def run(self, t_, y, p, networks: Mapping[str, Any]) -> list:
        def leaf(kind, i):
            return y[i] if kind == "y" else p[i]

        env = execute(self.instrs, t_, y, networks, leaf)
        return [env[o] for o in self.outputs]

    def stacked(self, t_, y, p, networks: Mapping[str, Any]):
        y = jnp.asarray(y)
        outs = self.run(t_, y, p, networks)
        dtype = jnp.result_type(y.dtype, float)
        return jnp.stack([jnp.broadcast_to(jnp.asarray(o, dtype=dtype), jnp.shape(t_)) for o in outs])

    def source(self) -> str:
        lines = [f"def {self.title}(t, y, p):"]
        names = self._names
        for i, (kind, data, args) in enumerate(self.instrs):
            rhs = f"{kind}[{data}]" if kind in ("y", "p") else render(kind, data, [names[j] for j in args])
            if rhs is not None:
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
