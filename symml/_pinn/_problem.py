"""A PINN problem: the network, what is trained, and the loss terms (residual, initial values, data).

Everything the user gave is bound here once (parameters through the one binder, initial values
and data by symbol), and the loss is a pure function of the trainable pytree
``(network, u)``, ``u`` being the unknown parameters in scaled form
(``p = p_start + scale * u``, ``scale = |p_start|`` or 1).

Scales: the network sees time mapped to ``tau`` in [-1, 1] and its outputs are
``mean + scale * MLP(tau)`` per base state (``mean``/``scale`` from the data when a state is
observed, else from its initial value), so a default network fits any units. The residual of
the equation of order ``n`` is measured in the units of ``tau`` (multiplied by
``(span / 2)**n / scale``), which makes it dimensionless; the causal weights below rely on that.

Causal training (Wang, Sankaran and Perdikaris, "Respecting causality", 2022): the
collocation points are cut into ``chunks`` consecutive time windows and window ``i`` counts
with weight ``exp(-eps * sum of the residual losses of the earlier windows)``, so the network
learns the start of the span before the end; without it a PINN over several periods typically
converges to a wrong, smooth solution that satisfies the equation late but not from the
initial values on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile._codegen import compile as compile_model
from .._compile._codegen import compile_exprs
from .._declare._bind import bind_params
from ._residual import Layout, states_of, taylor

__all__ = ["Net", "Problem", "TERMS"]

#: The loss terms, in the order of the weight and loss vectors.
TERMS = ("residual", "ic", "data")


class Net(eqx.Module):
    """``x_b(t) = mean_b + scale_b * MLP((t - t0) / half - 1)``: every base state from one MLP.

    The scales are arrays rather than static fields so that the networks of successive time
    windows share one compilation; they are constants (no gradient flows into them, so the
    optimisers leave them exactly where they are).
    """

    mlp: eqx.nn.MLP
    t0: jax.Array
    half: jax.Array
    mean: jax.Array
    scale: jax.Array

    def __call__(self, t: jax.Array) -> jax.Array:
        t0, half, mean, scale = jax.lax.stop_gradient((self.t0, self.half, self.mean, self.scale))
        tau = (t - t0) / half - 1.0
        return mean + scale * self.mlp(jnp.atleast_1d(tau))


class Problem(eqx.Module):
    """The loss of a PINN as a function of the trainable ``(net, u)``; built by `symml.pinn`."""

    shape: Layout = eqx.field(static=True)
    rhs: Any  # the compiled vector field (a CompiledModel; no trainable leaves)
    observe: Any  # compiled observables of the data (a CompiledFunction) or None
    p_base: jax.Array  # every parameter in model.params order (unknowns at their start)
    unknown: tuple[int, ...] = eqx.field(static=True)
    p_scale: jax.Array
    ic_index: tuple[tuple[int, int], ...] = eqx.field(static=True)  # (derivative, base) per known IC
    ic_value: jax.Array
    ic_scale: jax.Array
    data_t: jax.Array
    data_y: jax.Array
    data_mask: jax.Array
    data_scale: jax.Array
    res_scale: jax.Array  # per residual equation: (span / 2)**n / scale
    t_span: jax.Array  # (t0, t1): an array, so that every time window shares one compilation
    active: tuple[bool, bool, bool] = eqx.field(static=True)

    def params(self, u: jax.Array) -> jax.Array:
        if not self.unknown:
            return self.p_base
        idx = jnp.asarray(self.unknown)
        return self.p_base.at[idx].set(self.p_base[idx] + self.p_scale * u)

    def residual_chunks(self, net: Net, u: jax.Array, tc: jax.Array) -> jax.Array:
        """Mean squared dimensionless residual per time window; ``tc`` has shape (chunks, points)."""
        p = self.params(u)
        idx = jnp.asarray(self.shape.highest)

        def one(t_):
            y, dy = states_of(self.shape, taylor(net, t_, self.shape.order))
            return (dy - self.rhs(t_, y, p))[idx] * self.res_scale

        r = jax.vmap(jax.vmap(one))(tc)
        return jnp.mean(r**2, axis=(1, 2))

    def ic_loss(self, net: Net) -> jax.Array:
        d = taylor(net, self.t_span[0], self.shape.order)
        got = jnp.stack([d[k, b] for k, b in self.ic_index])
        return jnp.mean(((got - self.ic_value) / self.ic_scale) ** 2)

    def data_loss(self, net: Net, u: jax.Array) -> jax.Array:
        p = self.params(u)

        def one(t_):
            y, _ = states_of(self.shape, taylor(net, t_, self.shape.order))
            return self.observe(t_, y, p)

        pred = jax.vmap(one)(self.data_t)
        err = jnp.where(self.data_mask, (pred - self.data_y) / self.data_scale[None, :], 0.0)
        return jnp.sum(err**2) / jnp.maximum(jnp.sum(self.data_mask), 1)

    def terms(self, theta: tuple, tc: jax.Array, eps: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The active loss terms (residual, ic, data; inactive ones omitted) and the causal weights."""
        net, u = theta
        chunks = self.residual_chunks(net, u, tc)
        before = jnp.concatenate([jnp.zeros(1), jnp.cumsum(chunks)[:-1]])
        w = jax.lax.stop_gradient(jnp.exp(-eps * before))
        out = [jnp.mean(w * chunks)]
        if self.active[1]:
            out.append(self.ic_loss(net))
        if self.active[2]:
            out.append(self.data_loss(net, u))
        return jnp.stack(out), w


def _scale_of(values: np.ndarray) -> float:
    s = float(np.std(values)) if values.size > 1 else 0.0
    s = max(s, float(np.max(np.abs(values))) if values.size else 0.0, 0.0)
    return s if s > 1e-12 else 1.0


def build_problem(
    model: Any,
    data: Any,
    unknowns: Mapping[sp.Symbol, float],
    ics: Mapping[sp.Basic, float],
    t_span: tuple[float, float],
    *,
    width: int,
    depth: int,
    key: jax.Array,
) -> tuple[Problem, tuple]:
    """The `Problem` and the initial trainable ``(net, u)``.

    ``unknowns`` maps each parameter to estimate to its starting value; ``ics`` the known
    initial values (states at ``t_span[0]``).
    """
    shape = Layout.of(model)
    nb = len(shape.bases)
    t0, t1 = float(t_span[0]), float(t_span[1])
    half = (t1 - t0) / 2.0
    # network scales: from the data of a directly observed base state, else its initial value
    mean, scale = [0.0] * nb, [1.0] * nb
    series = None
    if data is not None:
        series, exprs = data.resolve(model)[0]
        for key_, e in zip(series.values, exprs):
            if e in shape.bases:
                v = np.asarray(series.values[key_], dtype=float)
                v = v[np.isfinite(v)]
                b = shape.bases.index(e)
                mean[b], scale[b] = float(np.mean(v)), _scale_of(v - np.mean(v))
    for b, base in enumerate(shape.bases):
        if (data is None or scale[b] == 1.0) and base in ics:
            mean[b] = float(ics[base])
            scale[b] = _scale_of(np.asarray([ics[base]]))
    mlp = eqx.nn.MLP(1, nb, width, depth, activation=jnp.tanh, key=key)
    f = lambda v: jnp.asarray(v, dtype=float)  # noqa: E731
    net = Net(mlp, f(t0), f(half), f(mean), f(scale))

    p_start = dict(unknowns)
    p_base = jnp.asarray(bind_params(model, p_start), dtype=float)
    unknown = tuple(model.params.index(p) for p in unknowns)
    p_scale = jnp.asarray([abs(v) if abs(v) > 0 else 1.0 for v in unknowns.values()], dtype=float)

    ic_index = []
    ic_value, ic_scale = [], []
    for i, s in enumerate(model.states):
        if s in ics:
            k, b = shape.pick[i]
            ic_index.append((k, b))
            ic_value.append(float(ics[s]))
            ic_scale.append(scale[b] / half**k)

    res_scale = jnp.asarray([half ** (shape.pick[i][0] + 1) / scale[shape.pick[i][1]] for i in shape.highest])
    if series is not None:
        keys = list(series.values)
        Y = np.stack([np.asarray(series.values[k], dtype=float) for k in keys], -1)
        mask = np.isfinite(Y)
        observe = compile_exprs(model, exprs, title="observed")
        dscale = np.asarray([_scale_of(Y[mask[:, j], j]) for j in range(Y.shape[1])])
        data_t, data_y = jnp.asarray(series.t, dtype=float), jnp.asarray(np.where(mask, Y, 0.0))
        data_mask, data_scale = jnp.asarray(mask), jnp.asarray(dscale)
    else:
        observe = None
        data_t = data_y = data_mask = data_scale = jnp.zeros((0,))
    problem = Problem(
        shape=shape,
        rhs=compile_model(model),
        observe=observe,
        p_base=p_base,
        unknown=unknown,
        p_scale=p_scale,
        ic_index=tuple(ic_index),
        ic_value=jnp.asarray(ic_value, dtype=float),
        ic_scale=jnp.asarray(ic_scale, dtype=float),
        data_t=data_t,
        data_y=data_y,
        data_mask=data_mask,
        data_scale=data_scale,
        res_scale=res_scale,
        t_span=jnp.asarray([t0, t1], dtype=float),
        active=(True, bool(ic_index), series is not None),
    )
    return problem, (net, jnp.zeros(len(unknown)))
