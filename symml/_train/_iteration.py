"""One training iteration, jitted once and shared by every phase (the device side of `symml.train`).

``step(carry, fixed, key, phase, hyper) -> (carry, record)`` evaluates the loss and its gradient
once, at ``carry.theta``, then applies the phase's rule:

* ``MAIN``: the first-phase optimiser (Adam by default). A NaN/inf loss or gradient means the
  previous update went somewhere the solve fails: the step is backtracked (half of that update,
  from the last point with a finite loss, ``prev_x``; the optimiser state is left as it was),
  and later steps are halved too until steps succeed again (the multiplier doubles back).
  ``hyper[2]`` consecutive rejections stop training (``stop = STOP_REJECTED``).
* ``LBFGS``: `symml._train._optimizers.lbfgs_step` (the same evaluation serves the line search).
* ``EVAL``: only records the loss (falls back to ``prev_x`` if it is not finite).

In both phases a finite loss at or below ``hyper[4]`` (``Loss.target_loss``; ``-inf`` when unset)
stops training at that point (``stop = STOP_TARGET``; the first phase then does not move on).

``record = [loss, rejected, stop code]``. The optimiser works on the flat parameter vector
(one array, not one per leaf), which keeps the compiled update small; no ``lax.cond`` is used,
both outcomes are computed and selected.

Why a Python loop over a jitted step rather than a ``lax.while_loop`` over many steps:
measured on CPU, an outer XLA loop around the diffrax solve and its adjoint ran 30-50 % slower
per step than the same step dispatched from Python (dispatch is asynchronous: the host runs
ahead of the device and waits only once per chunk of steps).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from ._loss import COMPILER_OPTIONS, Config, make_value_and_grad  # noqa: F401 (re-exported)
from ._optimizers import Array, FirstPhase, LBFGSState, lbfgs_init, lbfgs_step, learning_rate

MAIN, LBFGS, EVAL = 0, 1, 2
STOP_REJECTED, STOP_INITIAL, STOP_CONVERGED, STOP_STUCK, STOP_TARGET = 1, 2, 3, 4, 5

#: How many times a training step was traced (tests check that nothing re-traces).
TRACES = {"count": 0}


class Carry(NamedTuple):
    """Everything that changes from one iteration to the next (a pytree of arrays)."""

    theta: Any  # the point evaluated next (pytree)
    opt_state: Any  # first-phase optimiser state (on the flat vector for named optimisers)
    prev_x: Array  # last point with a finite loss (flat)
    last_upd: Array  # the update applied at prev_x (halved on each rejection)
    prev_f: Array
    has_prev: Array
    scale: Array  # step multiplier, halved after each rejection
    bad_run: Array  # consecutive rejections
    lb: LBFGSState | None
    count: Array  # accepted first-phase steps (drives the schedule)
    step: Array  # iterations (drives the mini-batch keys)
    stop: Array


def flat(theta) -> jax.Array:
    return jax.flatten_util.ravel_pytree(theta)[0]


def unflatten(theta_like, x):
    return jax.flatten_util.ravel_pytree(theta_like)[1](x)


# Host-side versions (NumPy): eager jax.numpy calls outside the jitted step would each compile a
# small kernel the first time they meet a shape, adding up to about a second per training run.


def flat_host(theta) -> np.ndarray:
    leaves = jax.tree_util.tree_leaves(theta)
    return np.concatenate([np.ravel(np.asarray(x)) for x in leaves]) if leaves else np.zeros(0)


def unflatten_host(theta_like, x) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(theta_like)
    x = np.asarray(x)
    out, i = [], 0
    for leaf in leaves:
        n = int(np.size(leaf))
        out.append(jnp.asarray(x[i : i + n].reshape(np.shape(leaf)).astype(np.asarray(leaf).dtype)))
        i += n
    return jax.tree_util.tree_unflatten(treedef, out)


def decay_mask(theta) -> jax.Array:
    """1 on network weights, 0 on parameters, initial values and nodes (flat)."""
    tree = {
        "networks": jax.tree_util.tree_map(jnp.ones_like, theta["networks"]),
        "params": jnp.zeros_like(theta["params"]),
        "ics": jnp.zeros_like(theta["ics"]),
        "nodes": jnp.zeros_like(theta["nodes"]),
    }
    return flat(tree)


def initial_carry(theta, first: FirstPhase, use_lbfgs: bool) -> Carry:
    dtype = np.dtype(jnp.result_type(float))  # float64 unless symml runs in float32 (SYMML_X64=0)
    x = flat_host(theta).astype(dtype)
    opt = first.transform
    state = None if opt is None else opt.init(jnp.asarray(x) if first.flat else theta)
    carry = Carry(
        theta=theta,
        opt_state=state,
        prev_x=x,
        last_upd=np.zeros_like(x),
        prev_f=np.asarray(np.inf, dtype),
        has_prev=np.asarray(False),
        scale=np.asarray(1.0, dtype),
        bad_run=np.asarray(0, np.int32),
        lb=lbfgs_init(x) if use_lbfgs else None,
        count=np.asarray(0, np.int32),
        step=np.asarray(0, np.int32),
        stop=np.asarray(0, np.int32),
    )
    return strong(carry)


def strong(tree):
    """Device arrays with explicit (non-weak) dtypes: every call then matches the first trace.
    (Through NumPy, so that no kernel is compiled for the conversion.)"""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), tree)


def _where(pred, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), a, b)


def make_step(cfg: Config, net_static, first: FirstPhase, schedule: Any, use_lbfgs: bool):
    """The (unjitted) training step for a problem configuration; see the module docstring.

    ``schedule``: an optax schedule (a callable of the step count), or ``None`` for the named
    schedules, whose index travels in ``hyper``.
    """
    vg = make_value_and_grad(cfg, net_static)
    opt = first.transform

    def rate(c: Carry, hyper):
        if schedule is not None:
            return jnp.asarray(schedule(c.count), hyper.dtype)
        return learning_rate(hyper[3], c.count, hyper[0], hyper[1])

    # Each branch returns (carry without theta, next point x, recorded loss, rejected).
    def main_branch(c: Carry, x, f, gx, hyper):
        assert opt is not None  # this branch exists only with a first-order optimiser
        ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(gx))
        if first.flat:
            direction, state = opt.update(gx, c.opt_state, x)
            direction = jnp.asarray(direction)
            if first.decay:
                direction = direction + first.decay * decay_mask(c.theta) * x
            upd = -(c.scale * rate(c, hyper)) * direction
        else:
            tree_upd, state = opt.update(unflatten(c.theta, gx), c.opt_state, c.theta)
            upd = c.scale * flat(tree_upd)
        run = jnp.where(ok, 0, c.bad_run + 1)
        max_rejected = hyper[2].astype(run.dtype)
        hit = ok & (f <= hyper[4])
        stop = jnp.where(
            ok,
            jnp.where(hit, STOP_TARGET, 0),
            jnp.where(~c.has_prev, STOP_INITIAL, jnp.where(run >= max_rejected, STOP_REJECTED, 0)),
        )
        # rejected: backtrack, i.e. half of the last update from the last good point (the
        # optimiser state is not updated: there is no usable gradient here)
        last_upd = jnp.where(ok, upd, 0.5 * c.last_upd)
        x_next = jnp.where(hit, x, jnp.where(ok, x, c.prev_x) + last_upd)
        new = c._replace(
            opt_state=_where(ok, state, c.opt_state),
            prev_x=jnp.where(ok, x, c.prev_x),
            last_upd=last_upd,
            prev_f=jnp.where(ok, f, c.prev_f),
            has_prev=c.has_prev | ok,
            scale=jnp.where(ok, jnp.minimum(1.0, 2.0 * c.scale), 0.5 * c.scale),
            bad_run=run,
            count=c.count + ok.astype(c.count.dtype),
            stop=stop.astype(c.stop.dtype),
        )
        return new, x_next, f, ~ok

    def lbfgs_branch(c: Carry, x, f, gx, hyper):
        assert c.lb is not None  # this branch exists only when L-BFGS runs
        fresh = ~c.lb.started
        lb, x_next, nonfinite = lbfgs_step(c.lb, x, f, gx)
        # A non-finite starting point falls back to the last good point of the first phase.
        fallback = fresh & nonfinite & c.has_prev
        x_next = jnp.where(fallback, c.prev_x, x_next)
        lb = lb._replace(done=jnp.where(fallback, 0, lb.done).astype(lb.done.dtype))
        stop = jnp.where(lb.done == 1, STOP_CONVERGED, jnp.where(lb.done == 2, STOP_STUCK, 0))
        stop = jnp.where(lb.started & (lb.f <= hyper[4]), STOP_TARGET, stop)
        stop = jnp.where(fresh & nonfinite & ~c.has_prev, STOP_INITIAL, stop)
        new = c._replace(
            lb=lb,
            prev_x=jnp.where(lb.started, lb.x, c.prev_x),
            prev_f=jnp.where(lb.started, lb.f, c.prev_f),
            has_prev=c.has_prev | lb.started,
            stop=stop.astype(c.stop.dtype),
        )
        return new, x_next, lb.f, nonfinite

    def eval_branch(c: Carry, x, f, gx, hyper):
        ok = jnp.isfinite(f)
        back = ~ok & c.has_prev
        new = c._replace(
            prev_x=jnp.where(ok, x, c.prev_x),
            prev_f=jnp.where(ok, f, c.prev_f),
            has_prev=c.has_prev | ok,
            stop=jnp.where(ok | back, 0, STOP_INITIAL).astype(c.stop.dtype),
        )
        return new, jnp.where(back, c.prev_x, x), jnp.where(ok, f, c.prev_f), ~ok

    def stopped_branch(c: Carry, x, f, gx, hyper):
        # Once stopped, the remaining steps of a chunk change nothing (the host reads the
        # records once per chunk and drops those after the stop).
        return c, x, c.prev_f, jnp.asarray(False)

    branches = [
        main_branch if opt is not None else eval_branch,
        lbfgs_branch if use_lbfgs else eval_branch,
        eval_branch,
        stopped_branch,
    ]

    def step(carry: Carry, fixed, key, phase, hyper):
        TRACES["count"] += 1
        f, g = vg(carry.theta, fixed, jax.random.fold_in(key, carry.step), phase != MAIN)
        x, gx = flat(carry.theta), flat(g)
        index = jnp.where(carry.stop != 0, 3, phase)
        c, x_next, rec, bad = jax.lax.switch(index, branches, carry, x, f, gx, hyper)
        c = c._replace(theta=unflatten(carry.theta, x_next), step=carry.step + 1)
        record = jnp.stack([rec, bad.astype(rec.dtype), c.stop.astype(rec.dtype)])
        return c, record

    return step


def start_lbfgs(carry: Carry) -> Carry:
    """Reset the L-BFGS state at the current point (entering the polish phase)."""
    return carry._replace(lb=strong(lbfgs_init(flat_host(carry.theta))), stop=strong(np.asarray(0, np.int32)))


def best_theta(carry: Carry):
    """The parameters to return: the last point with a finite loss."""
    x = np.asarray(carry.prev_x) if bool(carry.has_prev) else flat_host(carry.theta)
    return unflatten_host(carry.theta, x)
