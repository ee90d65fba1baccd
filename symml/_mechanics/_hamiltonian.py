"""`hamiltonian`: a Model from a Hamiltonian through Hamilton's equations.

``q_i' = dH/dp_i``, ``p_i' = -dH/dq_i``: first order in the coordinates and momenta, in that
order (the states are ``(q..., p...)``). ``H`` may contain neural terms: with
``Hn = sm.neural("H", inputs=[q, p])``, ``sm.hamiltonian(Hn[0], [q], [p])`` is a Hamiltonian
neural network whose vector field is the symplectic gradient of the network (the derivatives
compile to ``jax.grad``, see `symml._mechanics._derivative`), trained with `symml.train` like any
universal ODE.

>>> import sympy as sp, symml as sm
>>> q, p = sm.states("q p"); k, = sm.parameters("k", positive=True)
>>> osc = sm.hamiltonian(p**2 / 2 + k * q**2 / 2, [q], [p])
>>> osc.states, osc.rhs[q], osc.rhs[p]
((q(t), p(t)), p(t), -k*q(t))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy as sp

from .._declare._model import Model
from .._declare._symbols import state_name, t
from ..errors import ModelError
from ._derivative import differentiate
from ._invariants import check_coordinates, check_expression, is_zero, pair_name, rotation_pairs

__all__ = ["hamiltonian"]


def hamiltonian(
    H: Any,
    coords: Any,
    momenta: Any,
    *,
    defaults: Mapping[Any, float] | None = None,
    name: str | None = None,
) -> Model:
    """The Model of a Hamiltonian ``H(q, p, t)``: ``q' = dH/dp``, ``p' = -dH/dq``.

    Args:
        H: the Hamiltonian, a SymPy expression of the coordinates, momenta, parameters and `t`;
            may be (or contain) a neural term, which makes a Hamiltonian neural network.
        coords: the coordinates ``q``, states from `symml.states`.
        momenta: their conjugate momenta ``p``, states, one per coordinate, in the same order.
        defaults: parameter and initial values, as for `symml.Model`.
        name: the model's name (default ``"hamiltonian"``).

    Returns:
        A `symml.Model` with states ``(q..., p...)`` and ``invariants``: ``"energy"`` (``H``,
        `Model.energy`), the momentum of every cyclic coordinate (by the momentum's name), and
        ``"angular_momentum_xy"`` (``x p_y - y p_x``) for every pair of coordinates whose
        rotation commutes with ``H`` (zero Poisson bracket).

    Raises:
        ModelError: ``H`` is not a SymPy expression, ``coords`` and ``momenta`` differ in length,
            are not distinct states, or share a state.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> x, y, px, py = sm.states("x y p_x p_y"); mu, = sm.parameters("mu", positive=True)
        >>> kep = sm.hamiltonian((px**2 + py**2) / 2 - mu / sp.sqrt(x**2 + y**2), [x, y], [px, py])
        >>> sorted(kep.invariants)
        ['angular_momentum_xy', 'energy']
        >>> kep.invariants["angular_momentum_xy"]
        -p_x(t)*y(t) + p_y(t)*x(t)
    """
    H = check_expression(H, "H")
    qs = check_coordinates(coords, "coords")
    ps = check_coordinates(momenta, "momenta")
    if len(qs) != len(ps):
        raise ModelError(
            f"coords and momenta must have the same length (one momentum per coordinate), got "
            f"{len(qs)} coords ({', '.join(map(str, qs))}) and {len(ps)} momenta "
            f"({', '.join(map(str, ps))})."
        )
    shared = [str(s) for s in qs if s in ps]
    if shared:
        raise ModelError(f"{', '.join(shared)} is both a coordinate and a momentum; use distinct states.")
    dHdp = [differentiate(H, p) for p in ps]
    dHdq = [differentiate(H, q) for q in qs]
    eqs = [sp.Eq(q.diff(t), f) for q, f in zip(qs, dHdp)]
    eqs += [sp.Eq(p.diff(t), -f) for p, f in zip(ps, dHdq)]
    return Model(
        eqs, defaults=defaults, name=name or "hamiltonian", invariants=_invariants(H, qs, ps, dHdq, dHdp)
    )


def _invariants(H, qs, ps, dHdq, dHdp) -> dict[str, sp.Expr]:
    out = {"energy": H}
    for p, f in zip(ps, dHdq):
        if f == 0:
            out[state_name(p)] = p
    for i, j in rotation_pairs(len(qs)):
        # {q_i p_j - q_j p_i, H} = 0: the angular momentum in the (q_i, q_j) plane is conserved.
        bracket = ps[j] * dHdp[i] - ps[i] * dHdp[j] - (qs[i] * dHdq[j] - qs[j] * dHdq[i])
        if is_zero(bracket):
            out[pair_name(qs[i], qs[j])] = qs[i] * ps[j] - qs[j] * ps[i]
    return out
