"""`lagrangian`: a Model from a Lagrangian through the Euler–Lagrange equations.

For coordinates q and velocities v = q', the equations d/dt (dL/dv_i) - dL/dq_i = Q_i are
written out by the chain rule as ``M(q, v, t) q'' = b``, with the mass matrix
``M_ij = d^2 L / dv_i dv_j`` and
``b_i = dL/dq_i - sum_j d^2 L/(dv_i dq_j) v_j - d^2 L/(dv_i dt) + Q_i``. The Model then solves
them for q'' as it does for any equations linear in their highest derivatives.

The mass matrix is checked for invertibility at random numerical points first (exact
determinants of a many-coordinate system cost far more than the model): a singular one, the
usual sign of a coordinate without kinetic energy, is an error naming the coordinates in its
null space.

>>> import sympy as sp, symml as sm
>>> th, = sm.states("theta"); g, l = sm.parameters("g l", positive=True)
>>> pend = sm.lagrangian(l**2 * th.diff(sm.t)**2 / 2 + g * l * sp.cos(th), [th])
>>> pend.rhs[th.diff(sm.t)]
-g*sin(theta(t))/l
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy as sp

from .._declare._model import Model
from .._declare._symbols import state_name, t
from ..errors import ModelError
from ._derivative import differentiate
from ._invariants import check_coordinates, check_expression, is_zero, pair_name, rotation_pairs

__all__ = ["lagrangian"]

#: Random points at which the mass matrix must be invertible (two points make an accidental
#: singular point, e.g. a pendulum drawn exactly at its pole, practically impossible).
_PROBE_POINTS = 2


def lagrangian(
    L: Any,
    coords: Any,
    *,
    forces: Mapping[Any, Any] | None = None,
    defaults: Mapping[Any, float] | None = None,
    name: str | None = None,
) -> Model:
    """The Model of a Lagrangian ``L(q, q', t)`` (Euler–Lagrange equations, second order in ``q``).

    Args:
        L: the Lagrangian, a SymPy expression of the coordinates, their velocities
            (``q.diff(sm.t)``), parameters and `t`; may contain neural terms (a Lagrangian network).
        coords: the generalised coordinates, states from `symml.states`.
        forces: generalised non-conservative forces by coordinate, ``{q: Q}`` (e.g. damping
            ``{q: -c * q.diff(sm.t)}``), added to the right of ``d/dt dL/dq' - dL/dq``.
        defaults: parameter and initial values, as for `symml.Model`.
        name: the model's name (default ``"lagrangian"``).

    Returns:
        A `symml.Model` with states ``q`` and ``q'``, and ``invariants``: ``"energy"`` (the
        energy function ``sum q' dL/dq' - L``, `Model.energy`), the conjugate momentum
        ``"p_q"`` of every cyclic coordinate, and ``"angular_momentum_xy"`` for every pair of
        coordinates whose rotation leaves ``L`` unchanged (forced coordinates excluded).

    Raises:
        ModelError: ``L`` is not a SymPy expression, ``coords`` are not distinct states,
            ``forces`` names something that is not a coordinate, or the mass matrix
            ``d^2 L / dq'^2`` is singular (the message names the coordinates).

    Examples:
        >>> import sympy as sp, symml as sm
        >>> x, = sm.states("x"); m, k, c = sm.parameters("m k c", positive=True)
        >>> osc = sm.lagrangian(m * x.diff(sm.t)**2 / 2 - k * x**2 / 2, [x],
        ...                     forces={x: -c * x.diff(sm.t)}, defaults={m: 1.0, k: 4.0, c: 0.0})
        >>> osc.rhs[x.diff(sm.t)]
        -c*Derivative(x(t), t)/m - k*x(t)/m
        >>> osc.energy
        k*x(t)**2/2 + m*Derivative(x(t), t)**2/2
    """
    L = check_expression(L, "L")
    qs = check_coordinates(coords, "coords")
    n = len(qs)
    vs = [q.diff(t) for q in qs]
    Q = [sp.Dummy(f"q{i}", real=True) for i in range(n)]
    V = [sp.Dummy(f"v{i}", real=True) for i in range(n)]
    to_dummy_v = dict(zip(vs, V))
    to_dummy_q = dict(zip(qs, Q))
    back = {**dict(zip(V, vs)), **dict(zip(Q, qs))}

    def dummy(e):
        # Velocities first: a Derivative node contains its coordinate.
        return sp.sympify(e).xreplace(to_dummy_v).xreplace(to_dummy_q)

    Ld = dummy(L)
    force_d = _forces(forces, qs, dummy)
    dLdV = [differentiate(Ld, v) for v in V]
    M = sp.Matrix(n, n, lambda i, j: differentiate(dLdV[i], V[j]))
    _check_mass_matrix(M, qs, Q + V)
    A = [sp.Symbol(f"_a{i}") for i in range(n)]
    eqs = []
    for i in range(n):
        b = differentiate(Ld, Q[i]) + force_d[i] - differentiate(dLdV[i], t)
        b -= sum((differentiate(dLdV[i], Q[j]) * V[j] for j in range(n)), sp.S.Zero)
        lhs = sum((M[i, j] * A[j] for j in range(n)), sp.S.Zero)
        accel = {A[j]: qs[j].diff(t, 2) for j in range(n)}
        eqs.append(sp.Eq(lhs.xreplace(accel).xreplace(back), b.xreplace(back)))
    invariants = _invariants(Ld, dLdV, Q, V, qs, force_d, back)
    return Model(eqs, defaults=defaults, name=name or "lagrangian", invariants=invariants)


def _forces(forces, qs, dummy) -> list[sp.Expr]:
    out: list[sp.Expr] = [sp.S.Zero for _ in qs]
    if forces is None:
        return out
    if not isinstance(forces, Mapping):
        raise ModelError(
            f"forces must be a dict {{coordinate: force}}, got {type(forces).__name__}: {forces!r}."
        )
    for q, f in forces.items():
        if q not in qs:
            raise ModelError(
                f"forces has an entry for {q!r}, which is not one of the coordinates "
                f"{', '.join(map(str, qs))}; key each generalised force by its coordinate."
            )
        out[qs.index(q)] = dummy(check_expression(f, f"The force on {q}"))
    return out


def _check_mass_matrix(M: sp.Matrix, qs, variables) -> None:
    rng = np.random.default_rng(0)
    symbols = sorted(M.free_symbols, key=str)
    if any(isinstance(f, sp.core.function.AppliedUndef) for f in M.atoms(sp.Function)):
        return  # a Lagrangian network: its Hessian is only known numerically, after training
    for _ in range(_PROBE_POINTS):
        point = {s: sp.Float(rng.uniform(0.5, 1.5)) for s in symbols}
        numeric = np.array(M.xreplace(point).evalf(), dtype=float)
        sv, vecs = np.linalg.svd(numeric)[1:]
        if sv.size and sv[-1] > 1e-10 * max(1.0, sv[0]):
            return
    null = vecs[sv <= 1e-10 * max(1.0, sv[0] if sv.size else 1.0)]
    bad = [state_name(q) for j, q in enumerate(qs) if np.any(np.abs(null[:, j]) > 1e-8)]
    raise ModelError(
        f"The mass matrix d^2 L / dq'^2 is singular: L has no (independent) kinetic term for the "
        f"coordinate(s) {', '.join(bad)}. Each coordinate needs its velocity in L (e.g. "
        f"m * {bad[0]}.diff(t)**2 / 2); a coordinate without one is a constraint: substitute it "
        "into L, or leave it out of coords."
    )


def _invariants(Ld, dLdV, Q, V, qs, force_d, back) -> dict[str, sp.Expr]:
    n = len(qs)
    energy = sum((V[i] * dLdV[i] for i in range(n)), sp.S.Zero) - Ld
    if not Ld.atoms(sp.core.function.AppliedUndef):
        energy = sp.expand(energy)
    out = {"energy": energy.xreplace(back)}
    free = [i for i in range(n) if force_d[i] == 0]
    for i in free:
        if Q[i] not in Ld.free_symbols:
            out[f"p_{state_name(qs[i])}"] = dLdV[i].xreplace(back)
    for i, j in rotation_pairs(n):
        if i not in free or j not in free:
            continue
        # The rotation dq_i = -q_j, dq_j = q_i (and the same for velocities) leaves L unchanged.
        change = (
            differentiate(Ld, Q[j]) * Q[i] - differentiate(Ld, Q[i]) * Q[j] + dLdV[j] * V[i] - dLdV[i] * V[j]
        )
        if is_zero(change):
            out[pair_name(qs[i], qs[j])] = (Q[i] * dLdV[j] - Q[j] * dLdV[i]).xreplace(back)
    return out
