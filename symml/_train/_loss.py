"""The training loss as a pure JAX function of the trainable pytree.

``objective(theta, fixed, sel, valid, den, cden, pen_w)`` solves the selected rows of the data
layout (`symml._train._shooting`) with the model's compiled vector field (networks from ``theta``,
parameters from ``fixed`` with the trained ones substituted), compares the observed keys (states,
or compiled observables) and adds the continuity and weight penalties. Everything the function
closes over is in `Config`, which is hashable: it keys the compile cache, so a new seed,
dataset of the same shapes, learning rate or penalty weight (all traced values) recompile nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp

from .._compile._codegen import CompiledFunction, CompiledModel
from .._compile._networks import weight_penalty
from .._solve._core import integrate
from .._solve._options import SolveOptions

#: XLA options for the compiled training step and loss. LLVM optimisation level 1 instead of the
#: default 3: measured on the Lotka–Volterra UDE (CPU), compilation 20-35 % faster and the same
#: time per step (level 0 doubles the step time). Per function: nothing else in the process changes.
COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the compiled loss closes over (hashable: the key of the compile cache)."""

    program: Any
    states: tuple
    params: tuple
    obs_idx: tuple | None
    obs_program: Any
    nets_treedef: Any
    solver: Any
    rtol: float
    atol: float
    max_steps: int
    adjoint: Any
    checkpoints: int | None
    loss: Any
    penalty: bool
    shooting: bool
    train_idx: tuple
    learn_idx: tuple
    single: bool
    batch_size: int | None
    n_batches: int


def _trained(theta, fixed):
    z = theta["params"]
    return jnp.where(fixed["pos"], jnp.exp(z), z * fixed["pscale"])


def _param_table(cfg: Config, theta, fixed):
    """Parameter values per trajectory ``(T, n_params)``; settings stored with a trajectory win."""
    p = fixed["p"]
    if cfg.train_idx:
        idx = jnp.asarray(cfg.train_idx)
        vals = jnp.where(fixed["pmask"], _trained(theta, fixed)[None, :], p[:, idx])
        p = p.at[:, idx].set(vals)
    return p


def _y0_table(cfg: Config, theta, fixed):
    y0 = fixed["y0"]
    if cfg.learn_idx:
        y0 = y0.at[:, jnp.asarray(cfg.learn_idx)].set(theta["ics"])
    return jnp.concatenate([y0, theta["nodes"]], axis=0)


def make_adjoint(cfg: Config):
    if not isinstance(cfg.adjoint, str):
        return cfg.adjoint
    if cfg.adjoint == "checkpoint":
        return diffrax.RecursiveCheckpointAdjoint(checkpoints=cfg.checkpoints)
    if cfg.adjoint == "backsolve":
        return diffrax.BacksolveAdjoint()
    return diffrax.ForwardMode()


def make_objective(cfg: Config, net_static):
    """``objective(theta, fixed, sel, valid, den, cden, pen_w) -> scalar``.

    ``sel`` picks batch rows (``None``: all rows), ``valid`` masks padded picks, ``den``/``cden``
    normalise the data and continuity sums, ``pen_w`` weighs the network penalty.
    """
    controller = diffrax.PIDController(rtol=cfg.rtol, atol=cfg.atol)
    adjoint = make_adjoint(cfg)
    dtype = jnp.result_type(float)
    obs_idx = None if cfg.obs_idx is None else jnp.asarray(cfg.obs_idx)

    def solve_one(vf, y0, p, t0, t1, ts):
        options = SolveOptions(cfg.solver, controller, adjoint, cfg.max_steps)
        return integrate(vf, y0, ts, p, options, t0=t0, t1=t1).ys

    def objective(theta, fixed, sel, valid, den, cden, pen_w):
        rest = eqx.combine(fixed["networks"], net_static)
        nets = {k: eqx.combine(theta["networks"][k], rest[k]) for k in rest}
        ptable = _param_table(cfg, theta, fixed)
        table = _y0_table(cfg, theta, fixed)

        def rows(x):
            return x if sel is None else x[sel]

        ts, t0, t1 = rows(fixed["ts"]), rows(fixed["t0"]), rows(fixed["t1"])
        Y, W = rows(fixed["Y"]), rows(fixed["W"])
        y0 = table[rows(fixed["y0_src"])]
        p = ptable[rows(fixed["traj"])]
        if valid is not None:
            W = W * valid[:, None, None]
        vf = CompiledModel(nets, cfg.program, cfg.states, cfg.params)
        if cfg.single:
            ys = solve_one(vf, y0[0], p[0], t0[0], t1[0], ts[0])[None]
        else:
            ys = jax.vmap(lambda a, pp, b, c, d: solve_one(vf, a, pp, b, c, d))(y0, p, t0, t1, ts)
        if obs_idx is not None:
            pred = ys[..., obs_idx]
        else:
            obs = CompiledFunction(nets, cfg.obs_program, cfg.states, cfg.params)
            one = jax.vmap(lambda tt, yy, pp: obs(tt, yy, pp), in_axes=(0, 0, None))
            pred = jax.vmap(one)(ts, ys, p)
        if isinstance(cfg.loss, str):
            r = jnp.where(W > 0, pred - Y, 0.0)
            value = jnp.sum(W * r * r) / den
        else:
            value = jnp.asarray(cfg.loss(jnp.where(W > 0, pred, Y), Y, W), dtype) / den
        if cfg.shooting:
            idx = jnp.arange(ys.shape[0])
            end = ys[idx, rows(fixed["last"])]
            target = table[rows(fixed["next_src"])]
            cm = rows(fixed["cmask"]) if valid is None else rows(fixed["cmask"]) * valid
            d = jnp.where(cm[:, None] > 0, end - target, 0.0)
            value = value + fixed["continuity"] * jnp.sum(cm[:, None] * d * d) / cden
        if cfg.penalty:
            value = value + pen_w * weight_penalty(theta["networks"], fixed["l1"], fixed["l2"])
        return value

    return objective


def make_value_and_grad(cfg: Config, net_static):
    """``vg(theta, fixed, key, full) -> (loss, grad)`` with the configured adjoint.

    With mini-batching, ``full=False`` draws one random batch of rows and ``full=True`` sums over
    all rows batch by batch (one compiled evaluation serves both).
    """
    objective = make_objective(cfg, net_static)
    forward = cfg.adjoint == "forward"

    def vg_one(theta, fixed, sel, valid, den, cden, pen_w):
        f = lambda th: objective(th, fixed, sel, valid, den, cden, pen_w)  # noqa: E731
        if not forward:
            return jax.value_and_grad(f)(theta)
        flat, unravel = jax.flatten_util.ravel_pytree(theta)

        def g(x):
            v = f(unravel(x))
            return v, v

        jac, v = jax.jacfwd(g, has_aux=True)(flat)
        return v, unravel(jac)

    if cfg.batch_size is None:

        def vg_all(theta, fixed, key, full):
            return vg_one(theta, fixed, None, None, fixed["den"], fixed["cden"], 1.0)

        return vg_all

    bs, nb = cfg.batch_size, cfg.n_batches

    def vg(theta, fixed, key, full):
        B = fixed["ts"].shape[0]
        order = jnp.arange(nb * bs, dtype=jnp.int32)
        valid_all = (order < B).astype(fixed["ts"].dtype)
        order = jnp.where(order < B, order, 0)
        perm = jax.random.permutation(key, B)[:bs].astype(jnp.int32)

        def batch(j):
            sel = jnp.where(full, jax.lax.dynamic_slice(order, (j * bs,), (bs,)), perm)
            valid = jnp.where(full, jax.lax.dynamic_slice(valid_all, (j * bs,), (bs,)), 1.0)
            W = fixed["W"][sel] * valid[:, None, None]
            if isinstance(cfg.loss, str):
                den_b = jnp.maximum(jnp.sum(W), 1.0)
            else:
                den_b = jnp.asarray(1.0, W.dtype)
            cden_b = jnp.maximum(jnp.sum(fixed["cmask"][sel] * valid) * len(cfg.states), 1.0)
            den = jnp.where(full, fixed["den"], den_b)
            cden = jnp.where(full, fixed["cden"], cden_b)
            return sel, valid, den, cden

        def body(j, acc):
            tot, grad = acc
            sel, valid, den, cden = batch(j)
            v, g = vg_one(theta, fixed, sel, valid, den, cden, jnp.where(j == 0, 1.0, 0.0))
            return tot + v, jax.tree_util.tree_map(jnp.add, grad, g)

        zero = (jnp.zeros((), fixed["ts"].dtype), jax.tree_util.tree_map(jnp.zeros_like, theta))
        n = jnp.where(full, nb, 1)
        return jax.lax.fori_loop(0, n, body, zero)

    return vg
