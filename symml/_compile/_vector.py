"""Vectorised programs: outputs that share one expression shape are evaluated once, on vectors.

A large model repeats itself: a chain of oscillators has the same right-hand side for every
interior mass, a discretised field the same stencil at every grid point. `build_vector_program`
groups the outputs by the *shape* of their expression (the tree with states, parameters and
numbers left out), and each group becomes one straight-line program over vectors: a state that
walks along the group (``x_{i-1}``, ``x_i``, ``x_{i+1}``) is a slice of ``y``, a parameter or number
shared by the group is a scalar, one that varies is a constant array. Cost per step is then a
few vector operations per group instead of one scalar expression per state, and the traced
graph (so the compile time) no longer grows with the number of states.

Arguments of sums and products are put in a canonical order (by shape, then by the indices they
read), so the stencil terms line up across the group whatever order SymPy printed them in.

>>> import sympy as sp
>>> import jax.numpy as jnp
>>> ys = [sp.Symbol(f"_y{i}") for i in range(4)]
>>> where = {y: (i, f"x{i}") for i, y in enumerate(ys)}
>>> prog = build_vector_program([2 * y for y in ys], where, {}, "double")
>>> print(prog.source())
def double(t, y, p):
    # outputs 0..3 (4 at once)
    v1 = y[0:4]
    v2 = 2.0 * v1
    return v2
>>> prog.stacked(0.0, jnp.arange(4.0), jnp.zeros(0), {}).tolist()
[0.0, 2.0, 4.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax.numpy as jnp
import numpy as np
import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from .._declare._symbols import t
from ..errors import UnsupportedFunctionError
from ._functions import BOOLEANS, FUNCTIONS
from ._program import AbstractProgram, execute, render

__all__ = ["VECTOR_MIN", "Unvectorisable", "VectorProgram", "build_vector_program", "groups_of", "vectorised"]


class Unvectorisable(Exception):
    """An expression the vector builder does not handle (a neural term); use the scalar program."""


# ----------------------------------------------------------------------------- shapes


class _Shapes:
    """The shape key and leaf list of every subexpression (memoised: SymPy shares subtrees)."""

    def __init__(self, state_syms: Mapping[Any, Any], param_syms: Mapping[Any, Any]):
        self.state_syms = state_syms
        self.param_syms = param_syms
        self.memo: dict[Any, tuple[str, tuple]] = {}

    def of(self, e: Any) -> tuple[str, tuple]:
        """``(key, leaves)``: equal keys mean equal trees up to the leaves, listed in walk order."""
        hit = self.memo.get(e)
        if hit is None:
            hit = self.memo[e] = self._of(e)
        return hit

    def _of(self, e: Any) -> tuple[str, tuple]:
        if e in self.state_syms:
            return "y", (("y", self.state_syms[e][0]),)
        if e in self.param_syms:
            return "p", (("p", self.param_syms[e][0]),)
        if e == t:
            return "t", ()
        if e is sp.true or e is sp.false:
            return str(bool(e)), ()
        if e is sp.I:
            raise UnsupportedFunctionError(
                f"{e} is complex; symml compiles real-valued models. Split complex states into "
                "real and imaginary parts."
            )
        if e.is_Number or e.is_NumberSymbol:
            if e.is_real is False or not e.is_finite:
                raise UnsupportedFunctionError(
                    f"The constant {e} is not a finite real number; symml compiles real models only."
                )
            return "c", (("c", float(e)),)
        if e.is_Pow and e.exp.is_Number:
            key, leaves = self.of(e.base)
            return f"pow[{e.exp}]({key})", leaves
        if e.is_Add or e.is_Mul:
            parts = self.ordered(e)
            key = ("add" if e.is_Add else "mul") + "(" + ",".join(k for k, _ in parts) + ")"
            return key, tuple(leaf for _, ls in parts for leaf in ls)
        if e.is_Pow or isinstance(e, (sp.Piecewise, ExprCondPair)) or type(e) in BOOLEANS:
            name = type(e).__name__
        elif type(e) in FUNCTIONS:
            name = type(e).__name__
        else:
            raise Unvectorisable(f"{type(e).__name__} is not vectorised")
        parts = [self.of(a) for a in e.args]
        return name + "(" + ",".join(k for k, _ in parts) + ")", tuple(leaf for _, ls in parts for leaf in ls)

    def ordered(self, e: Any) -> list[tuple[str, tuple]]:
        """The arguments of a sum or product in canonical order: by shape, then by what they read."""
        return sorted((self.of(a) for a in e.args), key=_order)

    def ordered_args(self, e: Any) -> list[Any]:
        return sorted(e.args, key=lambda a: _order(self.of(a)))


def _order(part: tuple[str, tuple]) -> tuple:
    # Leaves compare as (kind, index or value): kinds are strings, indices ints, values floats.
    return part[0], part[1]


def groups_of(exprs: Sequence[Any], shapes: _Shapes) -> list[list[int]]:
    """Output indices grouped by expression shape, each group in output order, groups by first output."""
    by_key: dict[str, list[int]] = {}
    for i, e in enumerate(exprs):
        by_key.setdefault(shapes.of(e)[0], []).append(i)
    return sorted(by_key.values(), key=lambda g: g[0])


# ----------------------------------------------------------------------------- the program


class VectorProgram(AbstractProgram):
    """Groups of outputs, each one straight-line program over vectors of the group's length.

    Instructions are ``(kind, data, args)`` tuples as in `symml._compile._program.Program`, plus
    the leaf kinds ``"ys"``/``"ps"`` (a slice ``(start, stop, step)`` of ``y`` or ``p``), ``"yi"``/``"pi"``
    (one entry shared by the group), ``"yg"``/``"pg"`` (a gather by index) and ``"carr"`` (an array
    of numbers). ``groups`` pairs each group's result with its output positions; the outputs are
    the slices ``runs`` (``(group, start, stop)``) concatenated, or, when the groups interleave
    too finely for slices, the groups concatenated and reordered by ``perm``.
    """

    def __init__(self, instrs, groups, runs, perm, names, state_labels, param_labels, title):
        self.instrs = tuple(instrs)
        self.groups = tuple(groups)
        self.runs = runs
        self.perm = perm
        self._names = names
        self.state_labels = state_labels
        self.param_labels = param_labels
        self.title = title

    @property
    def n_outputs(self) -> int:
        return sum(len(pos) for _, pos in self.groups)

    def run(self, t_, y, p, networks: Mapping[str, Any]) -> list:
        return list(self.stacked(t_, y, p, networks))

    def stacked(self, t_, y, p, networks: Mapping[str, Any]):
        y = jnp.asarray(y)
        dtype = jnp.result_type(y.dtype, float)
        batch = jnp.broadcast_shapes(y.shape[1:], jnp.shape(t_))
        ones = (1,) * len(y.shape[1:])

        def column(v):  # a vector of the group's length, broadcast against the batch
            return jnp.reshape(v, (-1, *ones))

        def leaf(kind, data):
            if kind == "ys":
                return y[data[0] : data[1] : data[2]]
            if kind == "yi":
                return y[data]
            if kind == "yg":
                return y[np.asarray(data)]
            if kind == "ps":
                return column(p[data[0] : data[1] : data[2]])
            if kind == "pi":
                return p[data]
            if kind == "pg":
                return column(p[np.asarray(data)])
            return column(jnp.asarray(data, dtype=dtype))  # "carr"

        env = execute(self.instrs, t_, y, networks, leaf)
        parts = [
            jnp.broadcast_to(jnp.asarray(env[r], dtype=dtype), (len(pos), *batch)) for r, pos in self.groups
        ]
        if self.perm is not None:
            return jnp.concatenate(parts)[np.asarray(self.perm)]
        pieces = [parts[g] if (a, b) == (0, len(parts[g])) else parts[g][a:b] for g, a, b in self.runs]
        return pieces[0] if len(pieces) == 1 else jnp.concatenate(pieces)

    def source(self) -> str:
        names = self._names
        starts = {}
        for r, pos in self.groups:
            starts.setdefault(_first_instr(self.instrs, r), []).append(pos)
        lines = [f"def {self.title}(t, y, p):"]
        for i, (kind, data, args) in enumerate(self.instrs):
            for pos in starts.get(i, ()):
                lines.append(f"    # outputs {_span(pos)} ({len(pos)} at once)")
            if kind in ("ys", "ps"):
                rhs = f"{kind[0]}[{data[0]}:{data[1]}" + (f":{data[2]}]" if data[2] != 1 else "]")
            elif kind in ("yi", "pi"):
                rhs = f"{kind[0]}[{data}]"
            elif kind in ("yg", "pg"):
                rhs = f"{kind[0]}[{_short(data)}]"
            elif kind == "carr":
                rhs = f"jnp.array({_short(data)})"
            else:
                rhs = render(kind, data, [names[j] for j in args])
            if rhs is not None:
                lines.append(f"    {names[i]} = {rhs}")
        results = [names[r] for r, _ in self.groups]
        if self.perm is not None:
            body = f"jnp.concatenate([{', '.join(results)}])[{_short(self.perm)}]"
        else:
            full = {(g, 0, len(self.groups[g][1])) for g in range(len(self.groups))}
            slices = [results[g] if (g, a, b) in full else f"{results[g]}[{a}:{b}]" for g, a, b in self.runs]
            body = slices[0] if len(slices) == 1 else f"jnp.concatenate([{', '.join(slices)}])"
        lines.append(f"    return {body}")
        return "\n".join(lines)


def _first_instr(instrs, r: int) -> int:
    # The first instruction a group's result depends on, to place the group's comment line.
    todo, low = [r], r
    seen = set()
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        low = min(low, i)
        todo.extend(instrs[i][2])
    return low


def _span(pos: Sequence[int]) -> str:
    if len(pos) > 1 and list(pos) == list(range(pos[0], pos[-1] + 1)):
        return f"{pos[0]}..{pos[-1]}"
    return _short(pos)


def _short(xs: Sequence[Any]) -> str:
    xs = list(xs)
    return repr(xs) if len(xs) <= 6 else f"[{', '.join(map(repr, xs[:3]))}, ..., {xs[-1]!r}]"


# ----------------------------------------------------------------------------- building


class _Emitter:
    def __init__(self):
        self.instrs: list[tuple] = []
        self.names: list[str] = []
        self.index: dict[tuple, int] = {}

    def emit(self, kind: str, data: Any, args: Sequence[int], name: str | None = None) -> int:
        key = (kind, data, tuple(args))
        hit = self.index.get(key)
        if hit is not None:
            return hit
        self.index[key] = len(self.instrs)
        self.instrs.append(key)
        self.names.append(name if name is not None else f"v{len(self.instrs) - 1}")
        return len(self.instrs) - 1

    def leaf(self, column: Sequence[tuple]) -> int:
        """One leaf position across the group: a scalar, a slice, a gather or a constant array."""
        kind = column[0][0]
        vals = [c[1] for c in column]
        if kind == "c":
            if all(v == vals[0] for v in vals):
                return self.emit("const", vals[0], (), name=repr(vals[0]))
            return self.emit("carr", tuple(vals), ())
        if all(v == vals[0] for v in vals):
            return self.emit(kind + "i", vals[0], ())
        step = vals[1] - vals[0]
        if step > 0 and all(b - a == step for a, b in zip(vals, vals[1:])):
            return self.emit(kind + "s", (vals[0], vals[-1] + 1, step), ())
        return self.emit(kind + "g", tuple(vals), ())


def _emit_tree(
    e: Any, shapes: _Shapes, em: _Emitter, columns: Sequence[Sequence[tuple]], at: list[int]
) -> int:
    """Emit the template ``e`` (the group's first member); ``at[0]`` counts the leaves consumed."""
    key, leaves = shapes.of(e)
    if key in ("y", "p", "c"):
        i = at[0]
        at[0] += 1
        return em.leaf(columns[i])
    if key == "t":
        return em.emit("t", None, (), name="t")
    if e is sp.true or e is sp.false:
        return em.emit("bconst", bool(e), (), name=str(bool(e)))
    if e.is_Pow and e.exp.is_Number:
        x = e.exp
        b = _emit_tree(e.base, shapes, em, columns, at)
        if x.is_Integer:
            n = int(x)
            powered = em.emit("ipow", abs(n), (b,))
            return (
                powered if n > 0 else em.emit("div", None, (em.emit("const", 1.0, (), name="1.0"), powered))
            )
        if x == sp.Rational(1, 2):
            return em.emit("sqrt", None, (b,))
        if x == sp.Rational(-1, 2):
            return em.emit("rsqrt", None, (b,))
        return em.emit("pow", None, (b, em.emit("const", float(x), (), name=repr(float(x)))))
    if e.is_Add or e.is_Mul:
        args = [_emit_tree(a, shapes, em, columns, at) for a in shapes.ordered_args(e)]
        return em.emit("add" if e.is_Add else "mul", None, args)
    if e.is_Pow:
        if e.base is sp.E:
            return em.emit("fn", sp.exp, (_emit_tree(e.exp, shapes, em, columns, at),))
        b = _emit_tree(e.base, shapes, em, columns, at)
        return em.emit("pow", None, (b, _emit_tree(e.exp, shapes, em, columns, at)))
    if isinstance(e, sp.Piecewise):
        pieces = [
            (_emit_tree(c.expr, shapes, em, columns, at), _emit_tree(c.cond, shapes, em, columns, at))
            for c in cast("tuple[Any, ...]", e.args)  # SymPy types Piecewise args as Basic
        ]
        if cast(Any, e.args[-1]).cond is sp.true:
            acc = pieces.pop()[0]
        else:
            acc = em.emit("const", float("nan"), (), name="nan")
        for value, cond in reversed(pieces):
            acc = em.emit("where", None, (cond, value, acc))
        return acc
    args = [_emit_tree(a, shapes, em, columns, at) for a in e.args]
    if type(e) in BOOLEANS:
        return em.emit("bool", type(e), args)
    if isinstance(e, sp.Heaviside) and len(args) == 1:
        return em.emit("fn", sp.Heaviside, (args[0], em.emit("const", 0.5, (), name="0.5")))
    return em.emit("fn", type(e), args)


def build_vector_program(
    exprs: Sequence[Any],
    state_syms: Mapping[Any, tuple[int, str]],
    param_syms: Mapping[Any, tuple[int, str]],
    title: str = "f",
    state_labels: tuple[str, ...] = (),
    param_labels: tuple[str, ...] = (),
) -> VectorProgram:
    """A `VectorProgram` for ``exprs``, written in the symbols of ``state_syms`` and ``param_syms``.

    ``state_syms`` maps each state symbol to ``(index in y, label)``, ``param_syms`` each parameter
    symbol to ``(index in p, label)``. Raises `Unvectorisable` for a neural term.
    """
    shapes = _Shapes(state_syms, param_syms)
    exprs = list(exprs)
    em = _Emitter()
    groups = []
    for members in groups_of(exprs, shapes):
        leaf_lists = [shapes.of(exprs[i])[1] for i in members]
        columns = [tuple(col) for col in zip(*leaf_lists)] if leaf_lists[0] else []
        at = [0]
        r = _emit_tree(exprs[members[0]], shapes, em, columns, at)
        groups.append((r, tuple(members)))
    runs, perm = _layout(groups, len(exprs))
    return VectorProgram(em.instrs, groups, runs, perm, em.names, state_labels, param_labels, title)


#: The most slices the outputs are assembled from; beyond, one gather (``perm``) is cheaper.
MAX_RUNS = 64


def _layout(groups: list[tuple[int, tuple[int, ...]]], n: int) -> tuple[tuple | None, tuple | None]:
    where = [(0, 0)] * n
    for g, (_, pos) in enumerate(groups):
        for k, i in enumerate(pos):
            where[i] = (g, k)
    runs: list[list[int]] = []
    for g, k in where:
        if runs and runs[-1][0] == g and runs[-1][2] == k:
            runs[-1][2] = k + 1
        else:
            runs.append([g, k, k + 1])
    if len(runs) <= MAX_RUNS:
        return tuple(tuple(r) for r in runs), None
    order = [i for _, pos in groups for i in pos]
    return None, tuple(int(i) for i in np.argsort(order))


#: The fewest outputs for which ``vectorize=None`` considers a `VectorProgram` (below, scalar code
#: traces as fast and the grouping pass is not worth its time).
VECTOR_MIN = 16


def vectorised(exprs, state_syms, param_syms, has_networks, vectorize, title, labels, plabels):
    """The `VectorProgram` `build_program` should use, or ``None`` for scalar code (see ``vectorize``)."""
    if has_networks:
        if vectorize:
            raise UnsupportedFunctionError(
                "vectorize=True: expressions with neural terms are compiled as scalar code only; "
                "pass vectorize=None (choose automatically) or False."
            )
        return None
    if vectorize is None and len(exprs) < VECTOR_MIN:
        return None
    try:
        prog = build_vector_program(exprs, state_syms, param_syms, title, labels, plabels)
    except Unvectorisable:
        if vectorize:
            raise
        return None
    if vectorize is None and 2 * len(prog.groups) > len(exprs):
        return None  # little repeated structure: scalar code with CSE is as good
    return prog
