"""Symplectic solvers as diffrax solvers: `Leapfrog` (order 2), `Yoshida4` (order 4), `ImplicitMidpoint`.

They are ordinary ``diffrax.AbstractSolver`` subclasses, so they run inside the one solve core
(`symml._solve._core.integrate`) with everything it offers: jit, vmap, grad (through the
checkpointed adjoint), events, `symml.fit`, `symml.train`. Steps are fixed (``dt0``).

**Which states are positions?** The explicit methods split the state vector in two: positions,
whose derivatives depend only on momenta, and momenta, whose derivatives depend only on
positions (a separable Hamiltonian ``T(p) + V(q)``, or a Lagrangian with a constant mass matrix,
whose states are ``q`` and ``q'``). The split is read from the compiled right-hand side itself
(its program, scalar or vector code, says which states each derivative reads) when the solver
first traces a step, so the solvers take no arguments and work for `symml.hamiltonian` and
`symml.lagrangian` models alike, whatever the state order. A system that cannot be split is an
error naming the derivative at fault; `ImplicitMidpoint` (symplectic for any Hamiltonian,
implicit) or an adaptive Runge–Kutta method handles it.

Each explicit step is a composition of kicks (momenta move with the current forces) and drifts
(positions move with the current momenta): leapfrog is kick-drift-kick with halves (velocity
Verlet), Yoshida's fourth-order method three leapfrogs of lengths ``w1, w0, w1`` (the
Forest–Ruth scheme). Every kick and drift evaluates the whole vector field: with the split
unknown to the compiler that is simplest, and costs a factor of two at most.

>>> import jax.numpy as jnp, symml as sm
>>> q, p = sm.states("q p"); k, = sm.parameters("k")
>>> osc = sm.hamiltonian(p**2 / 2 + k * q**2 / 2, [q], [p], defaults={q: 1.0, p: 0.0, k: 1.0})
>>> traj = sm.simulate(osc, t_span=(0, 6.283185307179586), saveat=2, solver="leapfrog", dt0=0.01)
>>> round(float(traj[q][-1]), 6), round(float(traj[osc.energy][-1]), 6)
(1.0, 0.5)
"""

from __future__ import annotations

from typing import Any, ClassVar

import diffrax
import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._compile import Program
from .._compile._program import AbstractProgram
from .._compile._vector import VectorProgram
from .._declare._symbols import state_name
from ..errors import ModelError

__all__ = ["AbstractSymplecticSolver", "Leapfrog", "Yoshida4", "ImplicitMidpoint", "split_states"]

_W1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
_W0 = -(2.0 ** (1.0 / 3.0)) / (2.0 - 2.0 ** (1.0 / 3.0))


def _vector_field(terms: Any) -> Any:
    # diffeqsolve wraps each term (direction of integration); the compiled model is inside.
    term = terms
    while getattr(term, "term", None) is not None:
        term = term.term
    return getattr(term, "vector_field", None)


def _labels(vf: Any, n: int) -> list[str]:
    states = getattr(vf, "states", None)
    if states is not None and len(states) == n:
        return [state_name(s) for s in states]
    return [f"y[{i}]" for i in range(n)]


def _reads(program: AbstractProgram, n: int) -> list[frozenset]:
    """The states each of the ``n`` outputs of ``program`` reads.

    A scalar `symml._compile._program.Program` reads ``y[i]`` in its ``"y"`` instructions. A
    `symml._compile._vector.VectorProgram` (a large model with repeated structure) evaluates
    each group of outputs on vectors: element ``k`` of a group reads element ``k`` of its slice
    (``"ys"``) or gather (``"yg"``) leaves and the whole of its shared (``"yi"``) ones. Every
    other instruction is elementwise, so an instruction's dependencies are either one set (a
    value shared by the group) or a tuple of sets, one per element.
    """
    deps: list[frozenset | tuple[frozenset, ...]] = []
    for kind, data, args in program.instrs:
        if kind in ("y", "yi"):
            deps.append(frozenset([data]))
        elif kind == "ys":
            deps.append(tuple(frozenset([i]) for i in range(*data)))
        elif kind == "yg":
            deps.append(tuple(frozenset([i]) for i in data))
        else:
            parts = [deps[a] for a in args]
            shared = frozenset().union(*(d for d in parts if isinstance(d, frozenset)))
            columns = [d for d in parts if isinstance(d, tuple)]
            if not columns:
                deps.append(shared)
            else:
                deps.append(tuple(shared.union(*row) for row in zip(*columns)))

    def element(d: frozenset | tuple[frozenset, ...], k: int) -> frozenset:
        return d[k] if isinstance(d, tuple) else d

    if isinstance(program, VectorProgram):
        reads: list[frozenset] = [frozenset()] * n
        for r, pos in program.groups:
            for k, o in enumerate(pos):
                reads[o] = element(deps[r], k)
        return reads
    if isinstance(program, Program):  # scalar code: every value is one set
        return [element(deps[o], 0) for o in program.outputs]
    raise TypeError(f"split_states: unknown program type {type(program).__name__}.")


def split_states(vf: Any, n: int, solver: str = "leapfrog") -> np.ndarray:
    """Boolean mask of the positions among ``n`` states of the compiled vector field ``vf``.

    Positions are the states whose derivatives read only momenta, and momenta read only
    positions; in each connected group the first state in model order is a position.

    Raises:
        ModelError: the system is not separable (a derivative reads its own state, or the
            states cannot be split in two such groups).
    """
    program = getattr(vf, "program", None)
    labels = _labels(vf, n)
    if program is None:
        if n % 2:
            raise ModelError(
                f"Solver {solver} needs a model compiled by symml (to find positions and momenta), "
                f"or an even number of states, got a vector field with {n} states."
            )
        return np.arange(n) < n // 2
    reads = _reads(program, n)
    hint = (
        f" The explicit symplectic solver {solver} needs a separable system (H = T(p) + V(q), or a "
        "Lagrangian with a constant mass matrix and no velocity-dependent forces). Use "
        "solver='implicit_midpoint' (symplectic for any H) or an adaptive solver such as 'tsit5'."
    )
    for i in range(n):
        if i in reads[i]:
            raise ModelError(
                f"The system is not separable: d{labels[i]}/dt depends on {labels[i]} itself." + hint
            )
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i in range(n):
        for j in reads[i]:
            neighbours[i].add(j)
            neighbours[j].add(i)
    colour = [-1] * n
    for start in range(n):
        if colour[start] >= 0:
            continue
        colour[start], todo = 0, [start]
        while todo:
            i = todo.pop()
            for j in sorted(neighbours[i]):
                if colour[j] < 0:
                    colour[j] = 1 - colour[i]
                    todo.append(j)
                elif colour[j] == colour[i]:
                    a, b = (i, j) if j in reads[i] else (j, i)
                    raise ModelError(
                        f"The system is not separable: d{labels[a]}/dt depends on {labels[b]}, and both "
                        "would have to be positions (or both momenta)." + hint
                    )
    return np.array([c == 0 for c in colour])


class AbstractSymplecticSolver(diffrax.AbstractSolver):
    """A fixed-step splitting method: kicks and drifts with the coefficients in ``stages``."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation
    stages: ClassVar[tuple[tuple[str, float], ...]] = ()
    method_order: ClassVar[int] = 0
    solver_name: ClassVar[str] = ""

    def order(self, terms):
        return self.method_order

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        positions = split_states(_vector_field(terms), int(jnp.shape(y0)[-1]), self.solver_name)
        dt = t1 - t0
        y, tau = y0, t0
        for kind, c in self.stages:
            f = terms.vf(tau, y, args)
            if kind == "kick":
                y = jnp.where(~positions, y + (c * dt) * f, y)
            else:
                y = jnp.where(positions, y + (c * dt) * f, y)
                tau = tau + c * dt
        return y, None, dict(y0=y0, y1=y), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


class Leapfrog(AbstractSymplecticSolver):
    """Leapfrog (velocity Verlet, Störmer–Verlet): symplectic, time-reversible, order 2.

    ``solver="leapfrog"`` in `symml.simulate` (fixed steps ``dt0``); for separable systems.

    Example:
        >>> import symml as sm
        >>> q, p = sm.states("q p"); k, = sm.parameters("k")
        >>> osc = sm.hamiltonian(p**2 / 2 + k * q**2 / 2, [q], [p], defaults={q: 1.0, p: 0.0, k: 1.0})
        >>> traj = sm.simulate(osc, t_span=(0, 100), saveat=3, solver=sm.Leapfrog(), dt0=0.1)
        >>> [round(float(e), 4) for e in traj[osc.energy]]  # bounded energy error
        [0.5, 0.4999, 0.4997]
    """

    stages: ClassVar = (("kick", 0.5), ("drift", 1.0), ("kick", 0.5))
    method_order: ClassVar[int] = 2
    solver_name: ClassVar[str] = "leapfrog"


class Yoshida4(AbstractSymplecticSolver):
    """Yoshida's (Forest–Ruth's) fourth-order symplectic method: three leapfrogs of lengths w1, w0, w1.

    ``solver="yoshida4"`` in `symml.simulate` (fixed steps ``dt0``); for separable systems.

    Example:
        >>> import symml as sm
        >>> q, p = sm.states("q p"); k, = sm.parameters("k")
        >>> osc = sm.hamiltonian(p**2 / 2 + k * q**2 / 2, [q], [p], defaults={q: 1.0, p: 0.0, k: 1.0})
        >>> traj = sm.simulate(osc, t_span=(0, 100), saveat=3, solver="yoshida4", dt0=0.1)
        >>> float(abs(traj[osc.energy] - 0.5).max()) < 1e-5
        True
    """

    stages: ClassVar = (
        ("kick", _W1 / 2),
        ("drift", _W1),
        ("kick", (_W0 + _W1) / 2),
        ("drift", _W0),
        ("kick", (_W0 + _W1) / 2),
        ("drift", _W1),
        ("kick", _W1 / 2),
    )
    method_order: ClassVar[int] = 4
    solver_name: ClassVar[str] = "yoshida4"


class ImplicitMidpoint(diffrax.AbstractSolver):
    """The implicit midpoint rule: symplectic for any Hamiltonian (separable or not), order 2.

    ``y1 = y0 + dt f(t0 + dt/2, (y0 + y1)/2)``, solved by ``iterations`` fixed-point sweeps
    (they converge when ``dt`` times the Lipschitz constant of ``f`` is below one; a fixed
    count keeps the step a straight line of code for jit and grad). ``solver="implicit_midpoint"``
    in `symml.simulate` (fixed steps ``dt0``). Use it for Hamiltonian networks.

    Example:
        >>> import symml as sm
        >>> q, p = sm.states("q p"); k, = sm.parameters("k")
        >>> osc = sm.hamiltonian((p**2 + k * q**2)**2 / 4, [q], [p], defaults={q: 1.0, p: 0.0, k: 1.0})
        >>> traj = sm.simulate(osc, t_span=(0, 50), saveat=3, solver="implicit_midpoint", dt0=0.05)
        >>> [round(float(e), 6) for e in traj[osc.energy]]  # a non-separable H, energy kept
        [0.25, 0.25, 0.25]
    """

    iterations: int = eqx.field(static=True, default=12)
    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar = diffrax.LocalLinearInterpolation

    def order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        dt = t1 - t0
        tm = t0 + dt / 2
        y = y0 + dt * terms.vf(t0, y0, args)
        for _ in range(self.iterations):
            y = y0 + dt * terms.vf(tm, (y0 + y) / 2, args)
        return y, None, dict(y0=y0, y1=y), None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
