"""The structure of an ODE system, in plain SymPy: first-order form, decoupled blocks, integration constants.

Used by the closed-form routes (`symml._analytic._routes`) inside the symbolic worker, and by
`symml.solve_analytic` in the parent to skip hopeless attempts (`classify`). Imports nothing
but the standard library and SymPy, so that the worker's child can load it standalone.

>>> import sympy as sp
>>> t = sp.Symbol("t")
>>> x, y = sp.Function("x")(t), sp.Function("y")(t)
>>> classify([(x, 1, -x), (y, 2, x - y)], t)["components"]
[1, 1]
"""

from __future__ import annotations

import math
import re
from typing import Any

import sympy as sp

# ----------------------------------------------------------------------------- structure


def D(f, n: int, t):
    """``f`` differentiated ``n`` times (``f`` itself for ``n = 0``)."""
    return f if n == 0 else sp.Derivative(f, (t, n))


def _rows(odes, t):
    """``(Y, z, rows)``: the first-order states ``Y``, a plain symbol ``z_i`` for each, and the
    right-hand side of each ``Y_i' = row_i`` written in the ``z``."""
    Y = [D(b, j, t) for b, n, _ in odes for j in range(n)]
    z = [sp.Symbol(f"_z{i}") for i in range(len(Y))]
    fwd = dict(zip(Y, z))
    rows = []
    for b, n, rhs in odes:
        rows += [f.xreplace(fwd) for f in [D(b, j + 1, t) for j in range(n - 1)] + [rhs]]
    return Y, z, rows


def first_order(odes, t):
    """``(Y, A, forcing, linear, constant)`` of ``Y' = A Y + forcing(t)`` for the states of
    ``odes`` (a list of ``(x, n, rhs)`` meaning ``x^(n) = rhs``)."""
    Y, z, rows = _rows(odes, t)
    Fz = sp.Matrix(rows)
    A = Fz.jacobian(z)
    linear = not any(a.has(*z) for a in A)
    constant = linear and not any(a.has(t) for a in A)
    forcing = Fz.xreplace({s: 0 for s in z}) if linear else None
    return Y, A, forcing, linear, constant


def components(odes, t):
    """Strongly connected components of the base states' dependencies, dependencies first.

    Tarjan's algorithm with an explicit stack: a chain of a thousand coupled states is a
    dependency path a thousand deep, past Python's recursion limit.
    """
    bases = [b for b, _, _ in odes]
    order = {b: i for i, b in enumerate(bases)}
    deps = {}
    for b, _, rhs in odes:
        funcs = {f for f in rhs.atoms(sp.core.function.AppliedUndef) if f.args == (t,)}
        deps[b] = sorted((funcs & order.keys()) - {b}, key=order.__getitem__)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = 0
    for root in bases:
        if root in index:
            continue
        work = [(root, iter(deps[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, edges = work[-1]
            w = next(edges, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(deps[w])))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                out.append(sorted(comp, key=order.__getitem__))
    return out


def linearity(odes, t) -> tuple[bool, bool]:
    """``(linear, constant)`` as `first_order` finds them, without the dense Jacobian (N²
    derivatives, minutes for a few hundred states, in the calling process): each right-hand side
    is read syntactically (its degree in the states; the linear part ``f - f(0)`` free of ``t``),
    and only a row whose syntactic degree exceeds 1 is differentiated, by the states it contains
    (``(x + 1)**2 - x**2`` is linear)."""
    _, z, rows = _rows(odes, t)
    zs, zero = frozenset(z), {s: 0 for s in z}
    constant = True
    fz: Any  # an Expr (xreplace is typed as returning Basic)
    for fz in rows:
        if _degree(fz, zs) > 1:
            for s in fz.free_symbols & zs:
                d = fz.diff(s)
                if d.free_symbols & zs:
                    return False, False
                constant = constant and not d.has(t)
        elif constant and fz.has(t):
            constant = not (fz - fz.xreplace(zero)).has(t)
    return True, constant


def _degree(e, zs) -> float:
    """The degree of ``e`` in the symbols ``zs`` read off its tree (inf: not a polynomial)."""
    if e in zs:
        return 1
    if not (e.free_symbols & zs):
        return 0
    if e.is_Add:
        return max(_degree(a, zs) for a in e.args)
    if e.is_Mul:
        return sum(_degree(a, zs) for a in e.args)
    if e.is_Pow and e.exp.is_Integer and e.exp >= 0:
        return _degree(e.base, zs) * int(e.exp)
    return math.inf


def classify(odes, t) -> dict:
    """Cheap structural facts used to skip hopeless attempts."""
    linear, constant = linearity(odes, t)
    comps = components(odes, t)
    return {
        "linear": linear,
        "constant": constant,
        "components": [len(c) for c in comps],
        "order": max(n for _, n, _ in odes),
        "autonomous": _autonomous(odes, t),
    }


def _autonomous(odes, t) -> bool:
    """No explicit ``t`` (states ``x(t)`` replaced by symbols first)."""
    funcs = {f for _, _, rhs in odes for f in rhs.atoms(sp.core.function.AppliedUndef)}
    derivs = {d for _, _, rhs in odes for d in rhs.atoms(sp.Derivative)}
    rep = {f: sp.Symbol(f"_a{i}") for i, f in enumerate(sorted(derivs | funcs, key=str))}
    return not any(rhs.xreplace(rep).has(t) for _, _, rhs in odes)


# ----------------------------------------------------------------------------- constants

_CONST = re.compile(r"^C\d+$")


class Constants:
    """Fresh integration constants ``C1, C2, ...`` avoiding names already in use."""

    def __init__(self, taken):
        self.taken = {str(s) for s in taken}
        self.n = 0
        self.made: list[sp.Symbol] = []

    def new(self) -> sp.Symbol:
        while True:
            self.n += 1
            name = f"C{self.n}"
            if name not in self.taken:
                c = sp.Symbol(name)
                self.made.append(c)
                return c

    def rename(self, exprs, before):
        """Replace the constants a SymPy routine introduced (``C<k>`` not in ``before``)."""
        found = sorted(
            {s for e in exprs for s in e.free_symbols if _CONST.match(s.name) and s not in before},
            key=lambda s: int(s.name[1:]),
        )
        rep = {c: self.new() for c in found}
        return [e.xreplace(rep) for e in exprs]
