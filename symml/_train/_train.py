"""Universal-ODE training: networks (and chosen parameters, initial values) trained through the
ODE solver.

>>> import numpy as np, sympy as sp, symml as sm
>>> x, = sm.states("x"); k, = sm.parameters("k", positive=True)
>>> U = sm.neural("U", inputs=[x], width=4, depth=1)
>>> model = sm.Model([sp.Eq(x.diff(sm.t), -k * x + U[0])], defaults={k: 0.5, x: 1.0})
>>> ts = np.linspace(0, 2, 9)
>>> data = sm.Dataset(t=ts, y={x: np.exp(-ts)})         # the truth is x' = -x
>>> trained = sm.train(model, data, steps=100, polish=100, verbose=False)
>>> trained.loss < 1e-8
True
>>> round(float(trained.network(U)([[0.5]])[0, 0]), 2)  # the missing -0.5 x, at x = 0.5
-0.25

How it runs: the loss is a pure function of a trainable pytree (network weights, parameters in
an unconstrained form, learned initial values, shooting nodes; see `symml.problem`). One
jitted step (`symml.steps`) evaluates the loss and gradient once and applies the phase's
update: first the optimiser (Adam with a warmup-cosine schedule by default), then an L-BFGS
polish; both phases share one compilation, and learning rate, step counts and penalty weights
are traced values, so changing them never recompiles. Steps are dispatched asynchronously in
chunks; the host syncs once per chunk (about every 0.25 s) to record the losses and update the
progress bar. A step whose loss or gradient is NaN/inf is never applied: the parameters go back
to the last point with a finite loss, the step size is halved and the step is reported (a
`TrainingWarning`); after ``max_rejected`` consecutive rejections training stops with
`TrainingError` (``err.trained`` holds the last good result).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._declare._model import Model
from .._declare._symbols import Parameter
from . import _checkpoint
from ._optimizers import SCHEDULES, FirstPhase, make_optimizer
from ._problem import Problem
from ._step import (
    COMPILER_OPTIONS,
    EVAL,
    LBFGS,
    MAIN,
    STOP_INITIAL,
    STOP_REJECTED,
    STOP_TARGET,
    Carry,
    best_theta,
    initial_carry,
    make_step,
    start_lbfgs,
    strong,
)
from ._trained import History, Trained, TrainingError, TrainingWarning

__all__ = ["train", "Trained", "TrainingError", "TrainingWarning", "DEFAULTS"]


#: Default options of `train`, chosen by measurement on the Lotka–Volterra universal ODE
#: of PROBLEMS.md §3 (see benchmarks/ude_speed.py).
DEFAULTS = dict(
    steps=100, polish=700, lr=1e-2, schedule="warmup_cosine", rtol=1e-6, atol=1e-8, max_steps=4096
)

CHUNK_MAX = 2000  # steps dispatched before the host syncs, at most
CHUNK_SECONDS = 0.25  # aim for a progress update (and a host sync) this often
_FIRST_PHASE: dict = {}


def _first_phase(optimizer) -> FirstPhase:
    """Named optimisers are built once, so that their identity (a cache key) is stable."""
    if isinstance(optimizer, optax.GradientTransformation):
        return make_optimizer(optimizer)
    key = optimizer.lower() if isinstance(optimizer, str) else optimizer
    if key not in _FIRST_PHASE:
        _FIRST_PHASE[key] = make_optimizer(optimizer)
    return _FIRST_PHASE[key]


def _step_function(problem: Problem, first: FirstPhase, optimizer, schedule, use_lbfgs: bool):
    """The jitted step for this configuration, cached on the model across calls: a new seed,
    lr, number of steps, penalty weight or dataset of the same shapes reuses its compilation."""
    cache = problem.model._cache.setdefault("train_steps", {})
    opt_key = optimizer if isinstance(optimizer, str) else id(optimizer)
    key = (problem.config, opt_key, schedule, use_lbfgs)
    fn = cache.get(key)
    if fn is None:
        step = make_step(problem.config, problem.net_static, first, schedule, use_lbfgs)
        fn = jax.jit(step, compiler_options=COMPILER_OPTIONS)
        cache[key] = (fn, first)  # keep the optimiser alive with the cached step
        return fn
    return fn[0]


# ----------------------------------------------------------------------------- train


def train(
    model,
    data,
    *,
    params: Sequence[Any] | Mapping[Any, float] | None = None,
    steps: int | None = None,
    optimizer: str | optax.GradientTransformation = "adam",
    lr: float | Callable[[Any], Any] | None = None,
    schedule: str | None = None,
    polish: int | None = None,
    target_loss: float | None = None,
    adjoint: str | diffrax.AbstractAdjoint = "checkpoint",
    loss: str | Callable = "mse",
    ics: Mapping[Any, float] | Sequence[Mapping[Any, float]] | None = None,
    learn_ics: bool | Sequence[Any] = False,
    shooting: int | None = None,
    continuity: float = 100.0,
    batch_size: int | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int | None = None,
    standardize: bool = True,
    seed: int = 0,
    verbose: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
    max_rejected: int = 10,
) -> Trained:
    """Train the neural terms (and chosen parameters) of ``model`` on ``data`` through the solver.

    Args:
        model: a `symml.Model` with neural terms (``sm.neural``) anywhere in its
            equations. Networks already on the model (``model.with_networks``, a previous
            ``trained.model``) are the starting point; missing ones are drawn from ``seed``,
            with inputs standardised to the data range and a small output layer
            (`symml.neural.INIT_LAST_LAYER_SCALE`), so training starts near the physics.
        data: a `symml.Dataset` (one or several trajectories; states, names or
            expressions of the states as observed keys; unobserved states are hidden).
        params: physical parameters trained with the networks: a list (start from the model
            defaults) or ``{param: initial guess}``. Positive parameters are trained as ``log p``.
        steps: iterations of the first-phase optimiser (default 100: a short warm-up).
        optimizer: ``"adam"`` (default), ``"adamw"``, ``"lbfgs"`` or an ``optax`` transformation.
        lr, schedule: peak learning rate (default 1e-2) and its schedule: ``"warmup_cosine"``
            (default), ``"cosine"``, ``"exponential"``, ``"constant"``; or ``lr`` = an optax
            schedule.
        polish: L-BFGS iterations (loss evaluations) after the first phase (default 700; it
            stops early once converged); 0 turns it off.
        target_loss: stop as soon as the training loss is at or below this level (early
            stopping), in either phase; the parameters returned are those that reached it. With
            noisy data, the noise variance is a natural target: a lower loss fits the noise.
            Default ``None``: train for all ``steps`` and ``polish`` iterations.
        adjoint: ``"checkpoint"`` (default; discretise-then-optimise, exact gradients of the
            discrete solve), ``"backsolve"`` (continuous adjoint solved backwards, O(1) memory)
            or ``"forward"`` (forward mode; for few parameters), or a diffrax adjoint.
        loss: ``"mse"`` (mean squared error over all observed values) or a callable
            ``loss(pred, target, weights) -> scalar`` on arrays of shape (rows, times, keys),
            ``weights`` being 1 where a value is observed and 0 elsewhere.
        ics: initial values (dict, or one dict per trajectory); default: the dataset's stored
            initial values, then each trajectory's first observed samples, then the model
            defaults.
        learn_ics: ``True`` or a list of states whose initial values are trained (per trajectory).
        shooting: number of multiple-shooting segments per trajectory (see
            `symml.shooting`), for long or chaotic series; ``continuity`` weighs the
            penalty on the jumps between segments.
        batch_size: trajectories (or segments) per first-phase step; default all.
        l1, l2: penalties ``l1 * sum|W| + l2 * sum W^2`` on the networks' weight matrices.
        solver, rtol, atol, max_steps: the ODE solver during training (defaults tsit5, 1e-6,
            1e-8, 4096).
        standardize: set the networks' input standardisation from the data range.
        seed: seeds the initial weights and the mini-batches; same seed, same result.
        verbose: show a progress bar with the loss (tqdm).
        checkpoint, checkpoint_every: write the state to this JSON file every N iterations
            (and at the end); ``sm.load`` reads it as a `Trained`.
        resume: continue from ``checkpoint`` if the file exists (same options).
        max_rejected: stop after this many consecutive NaN/inf steps.

    Returns:
        a `Trained`.
    """
    steps = DEFAULTS["steps"] if steps is None else int(steps)
    if optimizer == "lbfgs" and polish is None:
        polish = 0
    polish = DEFAULTS["polish"] if polish is None else int(polish)
    if steps < 0 or polish < 0:
        raise ValueError(f"steps and polish must be >= 0, got steps={steps}, polish={polish}")
    lr = DEFAULTS["lr"] if lr is None else lr
    schedule = DEFAULTS["schedule"] if schedule is None else schedule
    rtol = DEFAULTS["rtol"] if rtol is None else float(rtol)
    atol = DEFAULTS["atol"] if atol is None else float(atol)
    max_steps = DEFAULTS["max_steps"] if max_steps is None else int(max_steps)
    if int(max_rejected) < 1 or int(checkpoint_every) < 1:
        raise ValueError("max_rejected and checkpoint_every must be >= 1")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=path, the file to continue from.")
    if target_loss is not None and not (
        isinstance(target_loss, (int, float, np.floating)) and np.isfinite(target_loss) and target_loss > 0
    ):
        raise ValueError(
            f"target_loss must be a positive number (e.g. the noise variance of the data) or None, "
            f"got {target_loss!r}"
        )
    t_start = time.perf_counter()
    problem = Problem(
        model,
        data,
        params=params,
        ics=ics,
        learn_ics=learn_ics,
        shooting=shooting,
        continuity=continuity,
        loss=loss,
        l1=l1,
        l2=l2,
        solver=solver,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        adjoint=adjoint,
        batch_size=batch_size,
        standardize=standardize,
        key=jax.random.PRNGKey(seed),
    )
    if not callable(lr) and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
        raise ValueError(f"lr must be a positive number or an optax schedule, got {lr!r}")
    if not callable(lr) and schedule not in SCHEDULES:
        raise ValueError(
            f"Unknown schedule {schedule!r}; choose one of {SCHEDULES} or pass an optax schedule as lr."
        )
    first = _first_phase(optimizer)
    lbfgs_main = first.transform is None
    use_lbfgs = lbfgs_main or polish > 0
    options = dict(
        steps=steps,
        polish=polish,
        target_loss=None if target_loss is None else float(target_loss),
        optimizer=optimizer if isinstance(optimizer, str) else repr(optimizer),
        lr=lr if isinstance(lr, (int, float)) else repr(lr),
        schedule=schedule,
        adjoint=adjoint if isinstance(adjoint, str) else repr(adjoint),
        loss=loss if isinstance(loss, str) else repr(loss),
        params=[p.name for p in problem.train_params],
        learn_ics=[str(s) for s in problem.learn],
        shooting=problem.shooting if problem.shooting > 1 else None,
        continuity=float(continuity),
        batch_size=batch_size,
        l1=float(l1),
        l2=float(l2),
        solver=solver if isinstance(solver, str) else repr(solver),
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        standardize=bool(standardize),
        seed=int(seed),
    )
    carry = initial_carry(problem.theta0, first, use_lbfgs)
    run = _Run(problem, options, t_start, verbose, checkpoint, int(checkpoint_every))
    if resume and os.path.exists(checkpoint):
        carry = run.restore(carry)
    run.key = strong(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    kind = 0 if callable(lr) else SCHEDULES.index(schedule)
    target = -np.inf if target_loss is None else float(target_loss)
    hyper = [
        float(lr) if not callable(lr) else 0.0,
        float(max(steps, 1)),
        float(max_rejected),
        float(kind),
        target,
    ]
    run.hyper = strong(jnp.asarray(hyper, jnp.result_type(float)))
    run.step = _step_function(problem, first, optimizer, lr if callable(lr) else None, use_lbfgs)
    try:
        carry = run.phase(carry, LBFGS if lbfgs_main else MAIN, steps, "main")
        if polish > 0 and not lbfgs_main:
            carry = run.phase(carry, LBFGS, polish, "polish")
        carry = run.finish(carry)
    finally:
        run.close()
    trained = run.result(carry)
    if checkpoint is not None:
        run.write_checkpoint(carry, trained)
    return trained


class _Run:
    """Host side of one training run: chunks of asynchronously dispatched steps, the progress
    bar, the history, checkpoints."""

    def __init__(self, problem, options, t_start, verbose, checkpoint, checkpoint_every):
        self.problem, self.options = problem, options
        self.t_start = t_start
        self.checkpoint, self.every = checkpoint, checkpoint_every
        self.losses: list[np.ndarray] = []
        self.phases: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.flags: list[np.ndarray] = []
        self.done = {"main": 0, "polish": 0}
        self.timing = {"compile": 0.0, "main": 0.0, "polish": 0.0}
        self.offset = 0.0
        self.verbose = verbose
        self.bar = None
        self.step = self.key = self.hyper = None
        self.compiled = False
        self.since_checkpoint = 0

    # -------------------------------------------------------------- progress
    def _bar(self):
        if self.bar is None:
            from tqdm.auto import tqdm

            total = self.options["steps"] + self.options["polish"]
            self.bar = tqdm(total=total, disable=not self.verbose, desc="train", unit="it", leave=True)
        return self.bar

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def _elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.t_start

    # -------------------------------------------------------------- phases
    def _chunk(self, carry: Carry, code: int, n: int):
        """Dispatch ``n`` steps, then sync once; returns the carry, the records up to and
        including a stop, and the wall time of the steps (compilation excluded)."""
        code_ = jnp.asarray(code, jnp.int32)
        fixed, key, hyper = self.problem.fixed, self.key, self.hyper
        records = []
        if not self.compiled:
            # The first call traces and compiles synchronously, then dispatches.
            t0 = time.perf_counter()
            carry, rec = self.step(carry, fixed, key, code_, hyper)
            records.append(rec)
            self.timing["compile"] = time.perf_counter() - t0
            self.compiled = True
            n -= 1
        t0 = time.perf_counter()
        for _ in range(n):
            carry, rec = self.step(carry, fixed, key, code_, hyper)
            records.append(rec)
        recs = np.asarray(jax.device_get(records)).reshape(len(records), 3)  # the one sync per chunk
        dt = time.perf_counter() - t0
        stops = np.flatnonzero(recs[:, 2] != 0)
        k = int(stops[0]) + 1 if stops.size else len(records)
        return carry, recs[:k], dt

    def phase(self, carry: Carry, code: int, total: int, name: str) -> Carry:
        bar = self._bar()
        if self.done[name] >= total:  # nothing left (e.g. the target loss was reached before)
            return carry
        bar.set_description(f"train ({'L-BFGS' if code == LBFGS else self.options['optimizer']})")
        if code == LBFGS and self.done[name] == 0:
            carry = start_lbfgs(carry)
        n = 10
        while self.done[name] < total:
            remaining = total - self.done[name]
            to_ckpt = self.every - self.since_checkpoint if self.checkpoint is not None else remaining
            n = max(1, min(n, remaining, to_ckpt, CHUNK_MAX))
            t_before = self._elapsed()
            carry, recs, dt = self._chunk(carry, code, n)
            k = recs.shape[0]
            self.timing[name] += dt
            warn = recs[:, 2] != STOP_INITIAL
            self._record(recs[:, 0], recs[:, 1] != 0, 0 if name == "main" else 1, t_before, warn)
            self.done[name] += k
            self.since_checkpoint += k
            bar.update(k)
            bar.set_postfix(loss=f"{recs[-1, 0]:.4g}", refresh=False)
            stop = int(recs[-1, 2])
            if stop:
                self._stopped(carry, stop)
                carry = carry._replace(stop=jnp.zeros_like(carry.stop))
                if stop == STOP_TARGET:  # early stopping: no further iterations in any phase
                    bar.total = bar.n
                    bar.refresh()
                    self.done = {"main": self.options["steps"], "polish": self.options["polish"]}
                elif code == LBFGS:  # converged, or no further decrease possible
                    bar.total = max(bar.n, bar.total - (total - self.done[name]))
                    bar.refresh()
                    self.done[name] = total
            if self.checkpoint is not None and self.since_checkpoint >= self.every:
                self.write_checkpoint(carry, self.result(carry))
                self.since_checkpoint = 0
            if k and dt > 0:
                n = int(min(CHUNK_MAX, max(1, round(k * CHUNK_SECONDS / dt))))
        return carry

    def finish(self, carry: Carry) -> Carry:
        """Evaluate the parameters to be returned once, unless L-BFGS already did."""
        if self.losses and self.phases[-1].size and self.phases[-1][-1] == 1:
            return carry
        t_before = self._elapsed()
        carry, recs, _ = self._chunk(carry, EVAL, 1)
        self._record(recs[:, 0], recs[:, 1] != 0, 2, t_before)
        if int(recs[-1, 2]) == STOP_INITIAL:
            raise self._initial_error()
        return carry

    def _record(self, losses, flags, phase, t_before, warn=None):
        now = self._elapsed()
        k = losses.shape[0]
        offset = sum(x.shape[0] for x in self.losses)
        self.losses.append(losses.astype(float))
        self.flags.append(np.asarray(flags, bool))
        self.phases.append(np.full(k, phase, np.int8))
        self.times.append(t_before + (now - t_before) * (np.arange(1, k + 1) / max(k, 1)))
        bad = np.flatnonzero(flags & (True if warn is None else warn)) + offset
        if phase == 0 and bad.size:
            warnings.warn(
                f"Training step(s) {', '.join(map(str, bad[:5]))}{' ...' if bad.size > 5 else ''} gave a "
                "NaN/inf loss or gradient (the ODE solve diverged or failed after the previous update); "
                "the update was undone and the step size halved. If this keeps happening, lower lr, "
                "use shooting=..., tighten rtol, or raise max_steps.",
                TrainingWarning,
                stacklevel=5,
            )

    def _stopped(self, carry: Carry, stop: int) -> None:
        if stop == STOP_INITIAL:
            raise self._initial_error()
        if stop == STOP_REJECTED:
            step = sum(x.shape[0] for x in self.losses) - 1
            raise TrainingError(
                f"Training stopped at step {step}: {int(carry.bad_run)} consecutive steps gave a NaN/inf "
                "loss or gradient even though the step size was halved each time. The ODE solve "
                "diverges or fails near these parameters. Try a smaller lr, shooting=... (multiple "
                "shooting), a tighter rtol or a larger max_steps, or check the data and initial values. "
                "The last good result is in err.trained.",
                trained=self.result(carry),
            )

    def _initial_error(self) -> TrainingError:
        return TrainingError(
            "The loss is NaN/inf at the starting parameters: the ODE solve fails or diverges before the "
            "last data time (or the loss function returns NaN). Check the initial values and parameter "
            "values, use shooting=... to integrate over shorter segments, or raise max_steps."
        )

    # -------------------------------------------------------------- results
    def history(self) -> History:
        def cat(xs, dtype):
            return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)

        return History(
            loss=cat(self.losses, float),
            phase=cat(self.phases, np.int8),
            time=cat(self.times, float),
            rejected=np.flatnonzero(cat(self.flags, bool)).astype(np.int64),
        )

    def result(self, carry: Carry) -> Trained:
        """A `Trained` at the last point with a finite loss."""
        problem = self.problem
        theta = best_theta(carry)
        trained_params = problem.trained_values(theta)
        ics = [dict(zip(problem.states, map(float, row))) for row in problem.initial_values(theta)]
        defaults = dict(problem.model.defaults)
        defaults.update(trained_params)
        if len(ics) == 1:
            defaults.update(ics[0])
        base = problem.model
        model = Model(
            base.equations,
            defaults=defaults,
            name=base.name,
            params=[p for p in base.params if not isinstance(p, Parameter)],
            networks=problem.networks_of(theta),
        )
        timing = dict(self.timing)
        timing["total"] = self._elapsed()
        nodes = np.asarray(theta["nodes"])
        loss = float(carry.prev_f) if bool(carry.has_prev) else float("nan")
        history = self.history()
        return Trained(
            model,
            problem.data,
            trained_params,
            ics,
            history,
            self.options,
            timing,
            nodes,
            loss,
            problem.model,
        )

    # -------------------------------------------------------------- checkpoints
    def write_checkpoint(self, carry: Carry, trained: Trained) -> None:
        progress = dict(done=dict(self.done), since=self.since_checkpoint, elapsed=self._elapsed())
        _checkpoint.write(self.checkpoint, trained, carry, progress, self.options)

    def restore(self, carry: Carry) -> Carry:
        carry, progress, prev = _checkpoint.read(self.checkpoint, carry, self.options)
        h = prev.history
        keep = len(h) - (1 if len(h) and h.phase[-1] == 2 else 0)  # drop the final evaluation
        if keep:
            flags = np.zeros(len(h), bool)
            flags[h.rejected] = True
            self.losses.append(h.loss[:keep])
            self.phases.append(h.phase[:keep])
            self.times.append(h.time[:keep])
            self.flags.append(flags[:keep])
        self.done = progress["done"]
        self.since_checkpoint = progress["since"]
        self.offset = progress["elapsed"]
        self.t_start = time.perf_counter()
        for k in ("main", "polish"):
            self.timing[k] = float(prev.timing.get(k, 0.0))
        return carry
