"""The exact Jacobian of a model's right-hand side, compiled as dense blocks (`BlockJacobian`).

Implicit and Rosenbrock solvers factor ``I / (γh) - J`` on every step. symml knows ``J``
symbolically, and with it its sparsity: `jacobian_entries` differentiates each right-hand side by
the states it contains only (linear in the size of the model, where the dense ``Model.jacobian``
is quadratic), and `block_structure` finds the groups of states that the Jacobian couples (the
connected components of its sparsity graph). When these are ``G`` groups of equal size ``b``
(``N`` copies of a small kinetic network, independent cells of a discretised reaction), the
matrix is compiled and factored as ``G`` dense ``b × b`` blocks: ``O(G b³)`` per factorisation
instead of ``O((G b)³)``, and the entries of the repeated blocks are evaluated as vectors (the
program is a `symml._compile._vector.VectorProgram`). Otherwise it is one dense block.

>>> import symml as sm
>>> jac = block_jacobian(sm.zoo.lotka_volterra())
>>> jac.blocks, jac.size, jac.time_dependent
(1, 2, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._declare._symbols import t
from ._cache import artefact
from ._codegen import CompiledFunction, build_program

__all__ = ["BlockJacobian", "block_jacobian", "block_structure", "jacobian_entries"]


class BlockJacobian(eqx.Module):
    """The Jacobian of a vector field as ``blocks`` dense ``size × size`` blocks.

    ``fn(t, y, p)`` returns the blocks' entries flattened (``blocks * size * size`` values, block
    by block, row by row) for the states taken in the order ``perm``: block ``g`` couples the
    states ``perm[g * size : (g + 1) * size]`` and nothing else. One block of all the states is
    the dense Jacobian.

    Attributes:
        fn: the compiled entries (a `symml.CompiledFunction`).
        perm: the state order that makes the matrix block-diagonal.
        blocks: the number of blocks ``G``.
        size: the size ``b`` of each block.
        time_dependent: whether the right-hand side depends on ``t`` explicitly.
    """

    fn: Callable
    perm: tuple = eqx.field(static=True)
    blocks: int = eqx.field(static=True)
    size: int = eqx.field(static=True)
    time_dependent: bool = eqx.field(static=True, default=True)

    def matrix(self, t_: Any, y: jax.Array, p: Any) -> jax.Array:
        """The blocks, shape ``(blocks, size, size)``."""
        return jnp.reshape(self.fn(t_, y, p), (self.blocks, self.size, self.size))

    def gather(self, v: jax.Array) -> jax.Array:
        """A state vector as ``(blocks, size)``, in block order."""
        if self.perm != tuple(range(len(self.perm))):
            v = v[np.asarray(self.perm)]
        return jnp.reshape(v, (self.blocks, self.size))

    def scatter(self, v: jax.Array) -> jax.Array:
        """The inverse of `gather`: ``(blocks, size)`` back to a state vector."""
        flat = jnp.reshape(v, (-1,))
        if self.perm == tuple(range(len(self.perm))):
            return flat
        return flat[np.argsort(np.asarray(self.perm))]


def jacobian_entries(model: Any) -> tuple[dict[tuple[int, int], sp.Expr], bool]:
    """The nonzero entries ``{(row, column): expression}`` of ``d rhs / d states``, and whether
    the right-hand side depends on ``t`` explicitly.

    Each right-hand side is differentiated by the states it contains only.
    """
    states = tuple(model.states)
    index = {s: i for i, s in enumerate(states)}
    entries: dict[tuple[int, int], sp.Expr] = {}
    explicit_t = False
    for i, s in enumerate(states):
        e = model.rhs[s]
        found = _states_in(e, index)
        explicit_t = explicit_t or found.pop(-1, False)
        deps = sorted(found)
        dummies = {states[j]: sp.Dummy(f"y{j}") for j in deps}
        back = {d: states[j] for j, d in zip(deps, dummies.values())}
        # derivative states are matched whole before their base function (xreplace)
        ed = e.xreplace(dummies)
        for j in deps:
            entry = ed.diff(dummies[states[j]])
            if entry != 0:
                entries[(i, j)] = entry.xreplace(back)
    return entries, explicit_t


def _states_in(e: Any, index: dict) -> dict:
    """``{state index: True}`` of the states in ``e``, and ``{-1: True}`` if ``t`` appears outside them."""
    found: dict = {}
    seen: set = set()
    stack = [e]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        i = index.get(node)
        if i is not None:
            found[i] = True
        elif node == t:
            found[-1] = True
        else:
            stack.extend(node.args)
    return found


def block_structure(n: int, pairs: Sequence[tuple[int, int]]) -> tuple[tuple[int, ...], int, int]:
    """``(perm, blocks, size)``: the states grouped by the connected components of the sparsity
    pattern ``pairs``, when these are at least two groups of one size; else one dense block.

    >>> block_structure(4, [(0, 2), (2, 0), (1, 3)])
    ((0, 2, 1, 3), 2, 2)
    >>> block_structure(3, [(0, 1)])  # sizes 2 and 1: dense
    ((0, 1, 2), 1, 3)
    """
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    sizes = {len(g) for g in groups.values()}
    if len(groups) < 2 or len(sizes) != 1:
        return tuple(range(n)), 1, n
    perm = tuple(i for g in sorted(groups.values()) for i in g)
    return perm, len(groups), sizes.pop()


def block_jacobian(model: Any) -> BlockJacobian:
    """The compiled `BlockJacobian` of ``model``'s right-hand side (built once per model).

    Raises:
        UnsupportedFunctionError: an entry holds a function without a JAX translation.
    """

    def build() -> BlockJacobian:
        entries, explicit_t = jacobian_entries(model)
        n = len(model.states)
        perm, blocks, size = block_structure(n, list(entries))
        zero = sp.Integer(0)
        exprs = [
            entries.get((perm[g * size + r], perm[g * size + c]), zero)
            for g in range(blocks)
            for r in range(size)
            for c in range(size)
        ]
        prog = build_program(exprs, model.states, model.params, f"{model.name}_jacobian", vectorize=None)
        fn = CompiledFunction({}, prog, tuple(model.states), tuple(model.params))
        return BlockJacobian(fn, perm, blocks, size, explicit_t)

    return artefact(model, "jacobian", "blocks", build)
