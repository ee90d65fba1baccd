"""The optimiser stack of training: optax for the first phase, and an L-BFGS of its own.

Why this stack, and not the one of `symml.fit` (optimistix, in a while loop): a universal ODE
has hundreds to thousands of network weights and a loss whose every evaluation is an ODE solve
plus its adjoint; compiling that solve dominates the cost of small problems, so the whole of
training is built around compiling it exactly once. The first phase is an optax transformation
(Adam by default) applied to the flat parameter vector inside the one jitted training step
(`symml._train._iteration`), with a learning rate and schedule that are traced values. The polish
is this module's L-BFGS, not ``optax.lbfgs`` or optimistix's: both of those evaluate the loss and
gradient in more than one place (the step and its line search), so the ODE solve and its adjoint
would be compiled again next to the Adam step. Here every iteration evaluates ``(loss, grad)``
once at a *trial point* and then either accepts it (Armijo condition) and computes the next
L-BFGS direction, or backtracks; Adam and L-BFGS share one compiled evaluation, which halves the
compile time. fit keeps optimistix: its least-squares problems are small and Levenberg–Marquardt
needs the residual Jacobian, which optimistix provides and optax does not.

>>> import jax, jax.numpy as jnp
>>> f = lambda x: jnp.sum((x - jnp.arange(3.0)) ** 2 * jnp.array([1.0, 10.0, 100.0]))
>>> value_and_grad, step = jax.jit(jax.value_and_grad(f)), jax.jit(lbfgs_step)
>>> x = jnp.zeros(3); st = lbfgs_init(x)
>>> for _ in range(40):
...     st, x, _ = step(st, x, *value_and_grad(x))
>>> [round(float(v), 6) for v in lbfgs_result(st)[0]]
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._phases import LBFGS, SCHEDULES, Adam, AdamW, Optax


def learning_rate(kind: str | int | jax.Array, count: Any, peak: Any, total: Any) -> jax.Array:
    """The learning rate at step ``count`` of ``total`` for schedule ``kind`` (a name in
    `SCHEDULES` or its index there; all arguments may be traced, so a new schedule, ``lr``
    or number of steps does not recompile anything).

    ``"warmup_cosine"`` rises linearly from ``peak/10`` over the first 5 % of the steps, then
    follows a cosine down to ``peak/100``; ``"cosine"`` starts at ``peak``; ``"constant"`` keeps
    ``peak``; ``"exponential"`` decays to ``peak/100`` over ``total`` steps.

    >>> [round(float(learning_rate("warmup_cosine", jnp.asarray(c), 1.0, 100.0)), 4) for c in (0, 5, 100)]
    [0.1, 1.0, 0.01]

    Raises:
        ValueError: an unknown schedule name.
    """
    if isinstance(kind, str):
        if kind not in SCHEDULES:
            raise ValueError(
                f"Unknown schedule {kind!r}; choose one of {SCHEDULES} or pass an optax schedule as lr."
            )
        kind = SCHEDULES.index(kind)
    count = jnp.asarray(count, jnp.result_type(float))
    total = jnp.maximum(jnp.asarray(total, count.dtype), 2.0)
    lo = peak / 100.0
    warm = jnp.maximum(jnp.floor(total / 20.0), 1.0)
    rise = peak / 10.0 + (peak - peak / 10.0) * count / warm
    frac_w = jnp.clip((count - warm) / jnp.maximum(total - warm, 1.0), 0.0, 1.0)
    warmup_cosine = jnp.where(count < warm, rise, lo + (peak - lo) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac_w)))
    frac = jnp.minimum(count / total, 1.0)
    cosine = lo + (peak - lo) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    exponential = peak * 0.01**frac
    constant = peak * jnp.ones_like(count)
    return jnp.select([kind == 0, kind == 1, kind == 2], [warmup_cosine, cosine, constant], exponential)


class FirstPhase(NamedTuple):
    """How the first-phase optimiser is applied by the training step.

    ``flat``: the transformation acts on the flat parameter vector and yields a direction that
    the step scales by ``-lr(step)`` (`Adam`, `AdamW`); otherwise it is an optax transformation
    used as given on the parameter pytree (`Optax`: it carries its own learning rate).
    ``decay``: AdamW's decoupled weight decay, applied to network weights only.
    ``transform=None``: the first phase is `LBFGS`.
    """

    transform: optax.GradientTransformation | None
    flat: bool
    decay: float


def make_optimizer(option: Adam | AdamW | Optax | LBFGS) -> FirstPhase:
    """The first-phase optimiser of an option object.

    >>> make_optimizer(LBFGS()).transform is None
    True

    Raises:
        ValueError: ``option`` is not one of the first-phase options.
    """
    if isinstance(option, Optax):
        return FirstPhase(option.transform, False, 0.0)
    if isinstance(option, LBFGS):
        return FirstPhase(None, True, 0.0)
    if isinstance(option, (Adam, AdamW)):
        return FirstPhase(
            optax.scale_by_adam(), True, option.weight_decay if isinstance(option, AdamW) else 0.0
        )
    raise ValueError(
        f"Unknown optimizer {option!r}; pass sm.Adam(...), sm.AdamW(...), sm.LBFGS(...), "
        "sm.Optax(transformation, steps=...) or an optax.GradientTransformation."
    )


# ----------------------------------------------------------------------------- L-BFGS


#: A device array, or a NumPy array for a state built on the host (the training carry).
Array = jax.Array | np.ndarray


class LBFGSState(NamedTuple):
    """State of `lbfgs_step` (all arrays; flat parameter vectors of length n)."""

    x: jax.Array  # last accepted point
    f: jax.Array  # its loss
    g: jax.Array  # its gradient
    d: jax.Array  # search direction from x
    alpha: jax.Array  # step length of the pending trial x + alpha d
    slope: jax.Array  # g . d
    S: jax.Array  # (m, n) stored steps s
    Y: jax.Array  # (m, n) stored gradient changes y
    rho: jax.Array  # (m,) 1 / (y . s)
    count: jax.Array  # pairs stored (<= m)
    ptr: jax.Array  # next slot to write
    started: jax.Array  # an accepted point exists
    backtracks: jax.Array  # consecutive rejected trials
    stall: jax.Array  # consecutive accepted steps with negligible decrease
    done: jax.Array  # 0 running, 1 converged, 2 cannot decrease further


#: Armijo constant, backtracking limits and stopping tolerances.
C1 = 1e-4
MAX_BACKTRACKS = 12
FTOL = 1e-10
STALL_STEPS = 10
FIRST_STEP = 0.1


def lbfgs_init(x: Any, memory: int = 10) -> LBFGSState:
    """A fresh state (NumPy arrays, converted by JAX on use). The first `lbfgs_step`
    accepts the point it is given (if finite)."""
    x = np.asarray(x)
    n, dt = x.shape[0], x.dtype
    z = np.zeros((), dt)
    i0 = np.zeros((), np.int32)
    fields: dict[str, Any] = dict(  # host arrays: JAX converts them on first use, without a kernel
        x=x,
        f=np.asarray(np.inf, dt),
        g=np.zeros(n, dt),
        d=np.zeros(n, dt),
        alpha=z,
        slope=z,
        S=np.zeros((memory, n), dt),
        Y=np.zeros((memory, n), dt),
        rho=np.zeros(memory, dt),
        count=i0,
        ptr=i0,
        started=np.zeros((), bool),
        backtracks=i0,
        stall=i0,
        done=i0,
    )
    return LBFGSState(**fields)


def _direction(st: LBFGSState, g: jax.Array) -> jax.Array:
    """-H g by the two-loop recursion over the stored pairs (newest first)."""
    m = st.S.shape[0]

    def first(j, carry):
        q, alphas = carry
        i = (st.ptr - 1 - j) % m
        valid = j < st.count
        a = st.rho[i] * jnp.dot(st.S[i], q)
        a = jnp.where(valid, a, 0.0)
        return q - a * st.Y[i], alphas.at[i].set(a)

    q, alphas = jax.lax.fori_loop(0, m, first, (g, jnp.zeros(m, g.dtype)))
    newest = (st.ptr - 1) % m
    yy = jnp.dot(st.Y[newest], st.Y[newest])
    gamma = jnp.where((st.count > 0) & (yy > 0), 1.0 / (st.rho[newest] * jnp.where(yy > 0, yy, 1.0)), 1.0)
    r = gamma * q

    def second(j, r):
        i = (st.ptr - st.count + j) % m
        valid = j < st.count
        b = st.rho[i] * jnp.dot(st.Y[i], r)
        return r + jnp.where(valid, alphas[i] - b, 0.0) * st.S[i]

    r = jax.lax.fori_loop(0, m, second, r)
    return -r


def _steepest(g: jax.Array) -> tuple[jax.Array, jax.Array]:
    gn = jnp.linalg.norm(g)
    return -g, FIRST_STEP / jnp.where(gn > 0, gn, 1.0)


def lbfgs_step(
    st: LBFGSState, x_trial: jax.Array, f: jax.Array, g: jax.Array
) -> tuple[LBFGSState, jax.Array, jax.Array]:
    """Consume ``(f, g)`` evaluated at ``x_trial``; return the new state, the next point to
    evaluate and whether ``x_trial`` was non-finite (rejected).

    A trial is accepted when the loss and gradient are finite and the Armijo condition holds;
    otherwise the step length is reduced (quadratic interpolation, at least by 2x, at most
    10x). After `MAX_BACKTRACKS` failures the memory is reset to steepest descent; a
    failure from steepest descent means no further decrease is possible (``done = 2``). The
    first call accepts ``x_trial`` if it is finite (``done = 2`` otherwise). Both outcomes are
    computed and selected (no ``lax.cond``), which keeps the compiled step small.
    """
    finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g))
    started = st.started
    accept = jnp.where(started, finite & (f <= st.f + C1 * st.alpha * st.slope), finite)
    m = st.S.shape[0]

    # accepted: store the pair (not for the first point), next direction from the new memory
    s = x_trial - st.x
    y = g - st.g
    sy = jnp.dot(s, y)
    good = started & (sy > 1e-10 * jnp.linalg.norm(s) * jnp.linalg.norm(y)) & jnp.isfinite(sy)
    i = st.ptr
    S = st.S.at[i].set(jnp.where(good, s, st.S[i]))
    Y = st.Y.at[i].set(jnp.where(good, y, st.Y[i]))
    rho = st.rho.at[i].set(jnp.where(good, 1.0 / jnp.where(good, sy, 1.0), st.rho[i]))
    ptr = jnp.where(good, (i + 1) % m, i)
    count = jnp.where(good, jnp.minimum(st.count + 1, m), st.count)
    mem = st._replace(S=S, Y=Y, rho=rho, ptr=ptr, count=count)
    d_lb = _direction(mem, g)
    slope_lb = jnp.dot(g, d_lb)
    use_lb = started & (slope_lb < 0) & jnp.isfinite(slope_lb)
    d_sd, a_sd = _steepest(g)
    decrease = (st.f - f) / jnp.maximum(jnp.abs(st.f), 1e-300)
    stall_acc = jnp.where(started & (decrease < FTOL), st.stall + 1, 0)

    # rejected: backtrack along the same direction (restart from steepest descent if stuck)
    a = st.alpha
    denom = 2.0 * (f - st.f - st.slope * a)
    interp = jnp.where(finite & (denom > 0), -st.slope * a * a / jnp.where(denom > 0, denom, 1.0), 0.1 * a)
    a_bt = jnp.clip(interp, 0.1 * a, 0.5 * a)
    bt = st.backtracks + 1
    give_up = bt > MAX_BACKTRACKS
    was_steepest = st.count == 0
    restart = give_up & ~was_steepest
    d_sd_old, a_sd_old = _steepest(st.g)

    d = jnp.where(accept, jnp.where(use_lb, d_lb, d_sd), jnp.where(restart, d_sd_old, st.d))
    alpha = jnp.where(accept, jnp.where(use_lb, 1.0, a_sd), jnp.where(restart, a_sd_old, a_bt))
    g_new = jnp.where(accept, g, st.g)
    done_acc = jnp.where(stall_acc >= STALL_STEPS, 1, 0)
    done_rej = jnp.where(give_up & was_steepest, 2, jnp.where(started, st.done, 2))
    new = LBFGSState(
        x=jnp.where(accept, x_trial, st.x),
        f=jnp.where(accept, f, st.f),
        g=g_new,
        d=d,
        alpha=jnp.asarray(alpha, st.alpha.dtype),
        slope=jnp.dot(g_new, d),
        S=jnp.where(accept, S, st.S),
        Y=jnp.where(accept, Y, st.Y),
        rho=jnp.where(accept, rho, st.rho),
        count=jnp.where(accept, jnp.where(use_lb, count, 0), jnp.where(restart, 0, st.count)),
        ptr=jnp.where(accept, ptr, st.ptr),
        started=started | accept,
        backtracks=jnp.where(accept | restart, 0, bt).astype(st.backtracks.dtype),
        stall=jnp.where(accept, stall_acc, st.stall).astype(st.stall.dtype),
        done=jnp.where(accept, done_acc, done_rej).astype(st.done.dtype),
    )
    return new, new.x + new.alpha * new.d, ~finite


def lbfgs_result(st: LBFGSState) -> tuple[jax.Array, jax.Array]:
    """``(x, f)``: the best (last accepted) point and its loss."""
    return st.x, st.f
