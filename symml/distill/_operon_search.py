"""Operon's search and its trees in SymPy, run inside the symbolic worker's child process.

`symml.distill.operon.Operon` sends its search here (``WORKER.call((path, "search"), ...)``):
Operon's C++ search cannot be interrupted from Python, so it runs in the worker's killable
child, whose kill is the hard limit on top of Operon's own ``max_time``. The child loads
this file standalone (never the package, which imports JAX): it imports only the standard
library and SymPy at the top, and ``pyoperon`` (with NumPy) inside `search`. Arrays come in
pickled; the Pareto front goes back as SymPy expressions of the plain input symbols given.

>>> import sympy as sp
>>> OPERON_TO_SYMPY["aq"]([sp.Symbol("a"), sp.Symbol("b")])
a/sqrt(b**2 + 1)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import sympy as sp


class TreeError(ValueError):
    """An Operon tree that cannot be translated (`symml.distill.operon.OperonError` in the parent)."""


def _fold(op):
    def f(args):
        out = args[0]
        for a in args[1:]:
            out = op(out, a)
        return out

    return f


def _sub(args):
    return -args[0] if len(args) == 1 else args[0] - sp.Add(*args[1:])


def _div(args):
    return 1 / args[0] if len(args) == 1 else args[0] / sp.Mul(*args[1:])


def _unary(f):
    return lambda args: f(args[0])


#: Operon node name -> SymPy construction from the children (first child first). Verified
#: against Operon's own evaluator in tests/test_distill_operon.py.
OPERON_TO_SYMPY: dict[str, Any] = {
    "+": lambda a: sp.Add(*a),
    "*": lambda a: sp.Mul(*a),
    "-": _sub,
    "/": _div,
    "aq": lambda a: a[0] / sp.sqrt(1 + a[1] ** 2),
    "pow": _fold(lambda u, v: u**v),
    "powabs": _fold(lambda u, v: sp.Abs(u) ** v),
    "fmin": lambda a: sp.Min(*a),
    "fmax": lambda a: sp.Max(*a),
    "abs": _unary(sp.Abs),
    "acos": _unary(sp.acos),
    "asin": _unary(sp.asin),
    "atan": _unary(sp.atan),
    "cbrt": _unary(lambda u: sp.sign(u) * sp.Abs(u) ** sp.Rational(1, 3)),
    "ceil": _unary(sp.ceiling),
    "cos": _unary(sp.cos),
    "cosh": _unary(sp.cosh),
    "exp": _unary(sp.exp),
    "floor": _unary(sp.floor),
    "log": _unary(sp.log),
    "logabs": _unary(lambda u: sp.log(sp.Abs(u))),
    "log1p": _unary(lambda u: sp.log(1 + u)),
    "sin": _unary(sp.sin),
    "sinh": _unary(sp.sinh),
    "sqrt": _unary(sp.sqrt),
    "sqrtabs": _unary(lambda u: sp.sqrt(sp.Abs(u))),
    "tan": _unary(sp.tan),
    "tanh": _unary(sp.tanh),
    "square": _unary(lambda u: u**2),
}


ARITY = {name: 2 for name in ("aq", "pow", "powabs", "fmin", "fmax")}
ARITY.update({name: 1 for name in OPERON_TO_SYMPY if name not in ARITY and name not in ("+", "*", "-", "/")})


def tree_to_sympy(tree: Any, variables: Mapping[int, sp.Expr]) -> sp.Expr:
    """Convert an Operon tree to SymPy, node by node.

    Operon stores a tree in postfix order; the first child of a node is the node just before
    it. ``variables`` maps a variable node's hash to the SymPy input it stands for.
    """
    stack: list[sp.Expr] = []
    for node in tree.Nodes:
        if node.IsConstant:
            stack.append(sp.Float(float(node.Value)))
            continue
        if node.IsVariable:
            if node.HashValue not in variables:
                raise TreeError(f"Operon tree uses an unknown variable (hash {node.HashValue}).")
            stack.append(sp.Float(float(node.Value)) * variables[node.HashValue])
            continue
        name = node.Name
        if name not in OPERON_TO_SYMPY:
            raise TreeError(
                f"Operon node {name!r} has no SymPy translation; known: {', '.join(OPERON_TO_SYMPY)}."
            )
        k = int(node.Arity)
        need = ARITY.get(name)
        if k < 1 or k > len(stack) or (need is not None and k != need):
            raise TreeError(f"Malformed Operon tree: node {name!r} has arity {k}.")
        args = [stack.pop() for _ in range(k)]  # the last pushed subtree is the first child
        stack.append(OPERON_TO_SYMPY[name](args))
    if len(stack) != 1:
        raise TreeError(f"Malformed Operon tree: {len(stack)} values left after conversion.")
    return stack[0]


def prepare() -> str:
    """Import pyoperon (seconds: it brings scikit-learn), so that a search's budget counts only
    the search; returns pyoperon's version. Later calls in the same child return at once."""
    import pyoperon
    import pyoperon.sklearn  # noqa: F401

    return str(getattr(pyoperon, "__version__", "unknown"))


def search(X: Any, y: Any, inputs: list, options: Mapping[str, Any]) -> dict:
    """Run ``pyoperon.sklearn.SymbolicRegressor(**options)`` on ``X``, ``y``.

    Args:
        X: samples, shape ``(n, d)`` (a NumPy array).
        y: targets, shape ``(n,)``.
        inputs: ``d`` plain SymPy symbols, one per column of ``X``.
        options: keyword arguments of ``SymbolicRegressor``.

    Returns:
        ``{"front": [(expr, length)], "generations": int, "search_seconds": float}``: the
        Pareto front in SymPy (in ``inputs``) with Operon's tree lengths.

    Raises:
        TreeError: a tree on the front has a node with no SymPy translation.
    """
    from pyoperon.sklearn import SymbolicRegressor

    reg = SymbolicRegressor(**options)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y)
    seconds = time.perf_counter() - t0
    variables = {h: inputs[i] for i, h in enumerate(reg.variables_)}
    front = [(tree_to_sympy(m["tree"], variables), int(m["length"])) for m in reg.pareto_front_]
    return {"front": front, "generations": int(reg.stats_.get("generations", 0)), "search_seconds": seconds}
