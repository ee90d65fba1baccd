"""The residual of a model's equations for a function of time, by Taylor-mode derivatives.

A physics-informed network represents each *base* state ``x(t)`` of a model (not its derivative
states): the derivative states ``x'``, ``x''``, ... are the network's own time derivatives, so
the order-reduction equations ``d x / dt = x'`` hold exactly and only the highest-order equation
of each base state is a residual. The derivatives come from ``jax.experimental.jet`` (Taylor
mode: all orders in one forward pass) or ``jax.jvp`` for first-order models, never from finite
differences. The right-hand side is the model's compiled vector field (`symml.compile`, the
one program built from ``model.rhs``), so a PINN solves exactly the equations `sm.simulate`
integrates.

>>> import jax.numpy as jnp, symml as sm
>>> pend = sm.zoo.pendulum(small_angle=True)
>>> shape = Layout.of(pend)
>>> shape.order, shape.highest
(2, (1,))
>>> exact = lambda t: jnp.stack([jnp.cos(jnp.sqrt(9.81) * t)])  # theta(t) of theta'' = -g theta
>>> r = residual(shape, sm.compile(pend), exact, jnp.linspace(0.0, 2.0, 5), jnp.array([9.81, 1.0]))
>>> float(jnp.max(jnp.abs(r))) < 1e-10
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import jet

from .._declare._symbols import base_state, derivative_order

__all__ = ["Layout", "taylor", "residual", "states_of"]


class Layout(NamedTuple):
    """Where each model state sits among the derivatives of the base states.

    ``bases``: the base states ``x(t)`` in first-appearance order of ``model.states``;
    ``pick``: per model state, ``(derivative k, base index b)``; ``order``: the highest
    derivative needed (the largest differential order); ``highest``: the indices (into
    ``model.states``) of the states whose right-hand side is a residual (the top derivative of
    each base state).
    """

    bases: tuple
    pick: tuple[tuple[int, int], ...]
    order: int
    highest: tuple[int, ...]

    @classmethod
    def of(cls, model: Any) -> Layout:
        bases: list = []
        pick = []
        for s in model.states:
            b = base_state(s)
            if b not in bases:
                bases.append(b)
            pick.append((derivative_order(s), bases.index(b)))
        top = {b: max(k for k, j in pick if j == i) for i, b in enumerate(bases)}
        highest = tuple(i for i, (k, j) in enumerate(pick) if k == top[bases[j]])
        return cls(tuple(bases), tuple(pick), max(top.values()) + 1, highest)


def taylor(fn: Callable[[jax.Array], jax.Array], t: jax.Array, order: int) -> jax.Array:
    """Derivatives ``0..order`` of ``fn`` (scalar time -> vector) at ``t``, shape ``(order + 1, n)``.

    One Taylor-mode pass (`jax.experimental.jet`) gives every order at once; first order uses
    ``jax.jvp``. Both are exact up to rounding, and both can be differentiated again (in reverse
    mode) with respect to whatever ``fn`` closes over, which is how the network is trained.

    >>> import jax.numpy as jnp
    >>> d = taylor(lambda t: jnp.stack([jnp.sin(2 * t)]), jnp.asarray(0.0), 3)
    >>> [round(float(v), 6) for v in d[:, 0]]
    [0.0, 2.0, 0.0, -8.0]
    """
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    if order == 1:
        y, dy = jax.jvp(fn, (t,), (jnp.ones_like(t),))
        return jnp.stack([y, dy])
    y, series = jet.jet(fn, (t,), ((jnp.ones_like(t),) + (jnp.zeros_like(t),) * (order - 1),))
    return jnp.stack([y, *series])


def states_of(shape: Layout, derivs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The model's state vector ``y`` and its time derivative from the base derivatives."""
    y = jnp.stack([derivs[k, b] for k, b in shape.pick])
    dy = jnp.stack([derivs[k + 1, b] for k, b in shape.pick])
    return y, dy


def residual(
    shape: Layout, rhs: Callable[..., jax.Array], fn: Callable[[jax.Array], jax.Array], ts: jax.Array, p: Any
) -> jax.Array:
    """``d y / dt - rhs(t, y, p)`` of the top equation of each base state, shape ``(len(ts), n)``.

    Args:
        shape: the model's `Layout`.
        rhs: its compiled vector field ``f(t, y, p)`` (`symml.compile`).
        fn: the candidate solution: time -> base states (in ``shape.bases`` order).
        ts: times.
        p: parameter values in ``model.params`` order.
    """
    idx = jnp.asarray(shape.highest)

    def one(t_):
        y, dy = states_of(shape, taylor(fn, t_, shape.order))
        return (dy - rhs(t_, y, p))[idx]

    return jax.vmap(one)(jnp.asarray(ts, dtype=jnp.result_type(float)))
