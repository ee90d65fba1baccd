"""`symml.train`: networks (and chosen parameters, initial values) trained through the ODE solver.

How it runs: the loss is a pure function of a trainable pytree (network weights, parameters in
an unconstrained form, learned initial values, shooting nodes; see `symml._train._ude_problem`).
One jitted step (`symml._train._iteration`) evaluates the loss and gradient once and applies the
phase's update: first the optimiser (`Adam` with a warmup-cosine schedule by default), then an
`LBFGS` polish; both phases share one compilation, and learning rate, step counts and penalty
weights are traced values, so changing them never recompiles. The compiled step lives in the
artefact cache (`symml._compile._cache`, kind ``"train_step"``), keyed by the model and the
problem's configuration. The host loop (`symml._train._run`) dispatches steps in chunks and
syncs once per chunk to record the losses and update the progress bar. A step whose loss or
gradient is NaN/inf is never applied: the parameters go back to the last point with a finite
loss, the step size is halved and the step is reported (a `TrainingWarning`); after
``max_rejected`` consecutive rejections training stops with `TrainingError` (``err.trained``
holds the last good result).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._compile import artefact
from .._data._dataset import Dataset
from .._declare._model import Model
from ._iteration import COMPILER_OPTIONS, MAIN, initial_carry, make_step, strong
from ._iteration import LBFGS as LBFGS_CODE
from ._legacy import accept_old_keywords
from ._optimizers import FirstPhase, make_optimizer
from ._option_base import describe
from ._options import Checkpoint, Loss, Shooting, Solve, as_loss, as_solve
from ._phases import FIRST_PHASES, LBFGS, SCHEDULES, Adam, AdamW, Optax
from ._result import Trained
from ._run import Run
from ._ude_problem import UDEProblem

__all__ = ["train"]

_ADAM, _LBFGS, _SOLVE = Adam(), LBFGS(), Solve()


def _train(
    model,
    data,
    *,
    params,
    ics,
    learn_ics,
    optimizer,
    polish,
    loss,
    solve,
    checkpoint,
    seed,
    verbose,
    standardize,
) -> Trained:
    t_start = time.perf_counter()
    first = _first_phase(optimizer)
    polish = _polish(polish)
    loss, solve = as_loss(loss), as_solve(solve)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise ValueError(
            f"checkpoint must be an sm.Checkpoint(path, every=..., resume=...) or None, got {checkpoint!r}."
        )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}.")
    problem = UDEProblem(
        model,
        data,
        params=params,
        ics=ics,
        learn_ics=learn_ics,
        loss=loss,
        solve=solve,
        batch_size=getattr(first, "batch_size", None),
        standardize=standardize,
        key=jax.random.PRNGKey(seed),
    )
    lbfgs_main = isinstance(first, LBFGS)
    totals = {"main": first.steps, "polish": 0 if lbfgs_main else polish.steps}
    use_lbfgs = lbfgs_main or totals["polish"] > 0
    step, phase = _step_function(problem, first, use_lbfgs)
    record = _record(problem, first, totals["polish"], loss, solve, standardize, int(seed))
    options = {
        "optimizer": first.to_json(),
        "polish": LBFGS(steps=totals["polish"]).to_json(),
        "loss": loss.to_json(),
        "solve": solve.to_json(),
        "params": record["params"],
        "learn_ics": record["learn_ics"],
        "ics": problem.traj_y0.tolist(),
        "standardize": bool(standardize),
        "seed": int(seed),
    }
    run = Run(problem, record, options, totals, first.label, checkpoint, bool(verbose), t_start)
    carry = initial_carry(problem.theta0, phase, use_lbfgs)
    if checkpoint is not None and checkpoint.resume and os.path.exists(checkpoint.path):
        carry = run.restore(carry)
    run.key = strong(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    run.hyper = strong(jnp.asarray(_hyper(first, loss), jnp.result_type(float)))
    run.step = step
    try:
        carry = run.phase(carry, LBFGS_CODE if lbfgs_main else MAIN, "main")
        carry = run.phase(carry, LBFGS_CODE, "polish")
        carry = run.finish(carry)
    finally:
        run.close()
    trained = run.result(carry)
    if checkpoint is not None:
        run.write_checkpoint(carry, trained)
    return trained


@accept_old_keywords(_train)
def train(
    model: Model,
    data: Dataset,
    *,
    params: Sequence[Any] | Mapping[Any, float] | None = None,
    ics: Mapping[Any, float] | Sequence[Mapping[Any, float]] | None = None,
    learn_ics: bool | Sequence[Any] = False,
    optimizer: Adam | AdamW | LBFGS | Optax | optax.GradientTransformation = _ADAM,
    polish: LBFGS | None = _LBFGS,
    loss: str | Callable[..., Any] | Loss = "mse",
    solve: Solve | Shooting = _SOLVE,
    checkpoint: Checkpoint | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> Trained:
    """Train the neural terms (and chosen parameters) of ``model`` on ``data`` through the solver.

    Args:
        model: a `symml.Model` with neural terms (``sm.neural``) anywhere in its
            equations. Networks already on the model (``model.with_networks``, a previous
            ``trained.model``) are the starting point; missing ones are drawn from ``seed``,
            with inputs standardised to the data range and a small output layer, so training
            starts near the physics.
        data: a `symml.Dataset` (one or several trajectories; states, names or
            expressions of the states as observed keys; unobserved states are hidden).
        params: physical parameters trained with the networks: a list (start from the model
            defaults) or ``{param: initial guess}``. Positive parameters are trained as ``log p``.
        ics: initial values (dict, or one dict per trajectory); default: the dataset's stored
            initial values, then each trajectory's first observed samples, then the model
            defaults.
        learn_ics: ``True`` or a list of states whose initial values are trained (per trajectory).
        optimizer: the first phase: `Adam` (default ``sm.Adam(lr=1e-2, steps=100,
            schedule="warmup_cosine")``, a short warm-up), `AdamW`, `LBFGS` (then there is no
            separate polish), or any optax transformation (``sm.Optax(transformation, steps=...)``;
            a bare transformation runs 100 steps).
        polish: the L-BFGS phase after the first one (default ``sm.LBFGS(steps=700)``; it stops
            early once converged); ``None`` or ``sm.LBFGS(steps=0)`` skips it.
        loss: ``"mse"`` (mean squared error over every observed value), a callable
            ``loss(pred, target, weights) -> scalar``, or a `Loss` with weight penalties (``l1``,
            ``l2``) and a ``target_loss`` for early stopping.
        solve: how the model is solved for the loss: `Solve` (solver, ``rtol``, ``atol``,
            ``max_steps``, adjoint; default ``sm.Solve()``: tsit5, 1e-6, 1e-8, 4096,
            ``"checkpoint"``), or `Shooting` for multiple shooting (long or chaotic series).
        checkpoint: a `Checkpoint`: write the run to a JSON file every ``every`` iterations and
            at the end (``sm.load`` reads it as a `Trained`), and resume from it.
        seed: seeds the initial weights and the mini-batches; same seed, same result.
        verbose: show a progress bar with the loss (tqdm).

    Returns:
        A `Trained`: the model with the trained networks and values, the loss history,
        predictions (``trained.predict``) and the network data for distillation.

    Raises:
        ValueError: an option of the wrong kind or out of range, nothing to train, or a state and
            a parameter mixed up (the message says what to pass).
        DataError: ``data`` is not a `symml.Dataset`, or values are not finite.
        MissingValueError: a parameter or initial value that nothing provides.
        TrainingError: the loss is NaN/inf at the start, too many consecutive steps failed, or a
            checkpoint to resume from does not match.

    The keyword arguments of symml 0.1 (``steps=``, ``lr=``, ``shooting=``, ...) still work for
    one release, with a `DeprecationWarning` that names the option object replacing each.

    >>> import numpy as np, sympy as sp, symml as sm
    >>> x, = sm.states("x"); k, = sm.parameters("k", positive=True)
    >>> U = sm.neural("U", inputs=[x], width=4, depth=1)
    >>> model = sm.Model([sp.Eq(x.diff(sm.t), -k * x + U[0])], defaults={k: 0.5, x: 1.0})
    >>> ts = np.linspace(0, 2, 9)
    >>> data = sm.Dataset(t=ts, y={x: np.exp(-ts)})         # the truth is x' = -x
    >>> trained = sm.train(model, data, optimizer=sm.Adam(steps=100), polish=sm.LBFGS(steps=100),
    ...                    verbose=False)
    >>> trained.loss < 1e-8
    True
    >>> round(float(trained.network(U)([[0.5]])[0, 0]), 2)  # the missing -0.5 x, at x = 0.5
    -0.25
    """
    return _train(
        model,
        data,
        params=params,
        ics=ics,
        learn_ics=learn_ics,
        optimizer=optimizer,
        polish=polish,
        loss=loss,
        solve=solve,
        checkpoint=checkpoint,
        seed=seed,
        verbose=verbose,
        standardize=True,
    )


# ----------------------------------------------------------------------------- options


def _first_phase(optimizer: Any) -> Adam | AdamW | LBFGS | Optax:
    if isinstance(optimizer, optax.GradientTransformation):
        return Optax(optimizer)
    if isinstance(optimizer, FIRST_PHASES):
        return optimizer
    raise ValueError(
        f"Unknown optimizer {optimizer!r}; pass sm.Adam(...), sm.AdamW(...), sm.LBFGS(...), "
        "sm.Optax(transformation, steps=...) or an optax.GradientTransformation."
    )


def _polish(polish: Any) -> LBFGS:
    if polish is None:
        return LBFGS(steps=0)
    if not isinstance(polish, LBFGS):
        raise ValueError(
            f"polish must be an sm.LBFGS(steps=...) or None (no polish), got {polish!r}; "
            "e.g. polish=sm.LBFGS(steps=700)."
        )
    return polish


def _hyper(first: Adam | AdamW | LBFGS | Optax, loss: Loss) -> list[float]:
    """The traced settings of the step: ``[lr, steps, max_rejected, schedule index, target]``."""
    named = isinstance(first, (Adam, AdamW)) and isinstance(first.lr, float)
    return [
        float(first.lr) if isinstance(first, (Adam, AdamW)) and isinstance(first.lr, float) else 0.0,
        float(max(first.steps, 1)),
        float(getattr(first, "max_rejected", 10)),
        float(SCHEDULES.index(first.schedule)) if isinstance(first, (Adam, AdamW)) and named else 0.0,
        -np.inf if loss.target_loss is None else loss.target_loss,
    ]


def _record(
    problem: UDEProblem, first, polish_steps: int, loss: Loss, solve: Solve, standardize, seed
) -> dict:
    """The options as a flat record of names and numbers (`Trained.options`)."""
    name = {Adam: "adam", AdamW: "adamw", LBFGS: "lbfgs"}.get(type(first))
    return dict(
        steps=first.steps,
        polish=polish_steps,
        target_loss=loss.target_loss,
        optimizer=name if name is not None else describe(first.transform),
        lr=describe(first.lr) if isinstance(first, (Adam, AdamW)) else None,
        schedule=first.schedule if isinstance(first, (Adam, AdamW)) else None,
        adjoint=describe(solve.adjoint),
        loss=describe(loss.fn),
        params=[p.name for p in problem.train_params],
        learn_ics=[str(s) for s in problem.learn],
        shooting=solve.segments if solve.segments > 1 else None,
        continuity=solve.continuity if solve.segments > 1 else None,
        batch_size=getattr(first, "batch_size", None),
        l1=loss.l1,
        l2=loss.l2,
        solver=describe(solve.solver),
        rtol=solve.rtol,
        atol=solve.atol,
        max_steps=solve.max_steps,
        standardize=bool(standardize),
        seed=seed,
    )


def _step_function(problem: UDEProblem, first, use_lbfgs: bool) -> tuple[Any, FirstPhase]:
    """The jitted step for this configuration and its first-phase optimiser, from the artefact
    cache: a new seed, lr, number of steps, penalty weight or dataset of the same shapes reuses
    the compilation. Keyed by what the step closes over: the problem's configuration, the
    optimiser (named ones by name; an optax transformation or schedule by identity, and the cache
    keeps them alive) and whether L-BFGS runs."""
    schedule = getattr(first, "lr", None)
    schedule = schedule if callable(schedule) else None
    if isinstance(first, Optax):
        opt_key: tuple = ("optax", first.transform)
    elif isinstance(first, AdamW):
        opt_key = ("adamw", first.weight_decay)
    else:
        opt_key = (type(first).__name__,)
    key = (problem.config, opt_key, schedule, use_lbfgs)

    def build() -> tuple[Any, FirstPhase]:
        phase = make_optimizer(first)
        step = make_step(problem.config, problem.net_static, phase, schedule, use_lbfgs)
        return jax.jit(step, compiler_options=COMPILER_OPTIONS), phase

    return artefact(problem.model, "train_step", key, build)
