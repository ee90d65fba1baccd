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

import re

import sympy as sp

# ----------------------------------------------------------------------------- structure


def D(f, n: int, t):
    """``f`` differentiated ``n`` times (``f`` itself for ``n = 0``)."""
    return f if n == 0 else sp.Derivative(f, (t, n))


def first_order(odes, t):
    """``(Y, A, forcing, linear, constant)`` of ``Y' = A Y + forcing(t)`` for the states of
    ``odes`` (a list of ``(x, n, rhs)`` meaning ``x^(n) = rhs``)."""
    Y = [D(b, j, t) for b, n, _ in odes for j in range(n)]
    F = []
    for b, n, rhs in odes:
        F += [D(b, j + 1, t) for j in range(n - 1)] + [rhs]
    z = [sp.Symbol(f"_z{i}") for i in range(len(Y))]
    fwd = dict(zip(Y, z))
    Fz = sp.Matrix([f.xreplace(fwd) for f in F])
    A = Fz.jacobian(z)
    linear = not any(a.has(*z) for a in A)
    constant = linear and not any(a.has(t) for a in A)
    forcing = Fz.xreplace({s: 0 for s in z}) if linear else None
    return Y, A, forcing, linear, constant


def components(odes, t):
    """Strongly connected components of the base states' dependencies, dependencies first."""
    bases = [b for b, _, _ in odes]
    deps = {}
    for b, _, rhs in odes:
        funcs = {f for f in rhs.atoms(sp.core.function.AppliedUndef) if f.args == (t,)}
        deps[b] = [c for c in bases if c in funcs and c != b]
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append([b for b in bases if b in comp])

    for b in bases:
        if b not in index:
            visit(b)
    return out


def classify(odes, t) -> dict:
    """Cheap structural facts used to skip hopeless attempts."""
    _, _, _, linear, constant = first_order(odes, t)
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
