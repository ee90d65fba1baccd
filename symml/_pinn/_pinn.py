"""`symml.pinn`: a physics-informed network for any symml Model, generated from its equations.

The loss is generated from the model (`symml._pinn._problem`): the residual of its equations
on collocation points (Taylor-mode derivatives of the network, `symml._pinn._residual`), the
known initial values, and the data when given; unknown parameters are trained jointly with the
network. Loss weights adapt by a published rule and long spans are trained causally
(`symml._pinn._loop`). Measured trade-offs are in ``benchmarks/pinn.py``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._compile._codegen import compile as compile_model
from .._declare._bind import bind_params
from .._train import LBFGS as LBFGSOption
from .._train import Adam, Checkpoint, TrainingWarning
from ..errors import DataError, MissingValueError, ModelError
from ._loop import BALANCING, optimise, runners
from ._march import march, radius, window_path
from ._problem import build_problem
from ._residual import states_of, taylor
from ._result import PINNResult

__all__ = ["pinn"]

_ADAM = Adam(lr=1e-2, steps=2000)
_LBFGS = LBFGSOption(steps=500)
# the defaults per window when marching: a window of half a period trains in half the steps
_ADAM_WINDOW = Adam(lr=1e-2, steps=1000)
_LBFGS_WINDOW = LBFGSOption(steps=300)


def _unknowns(model: Any, params: Any) -> dict:
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return {model.lookup(k): float(v) for k, v in params.items()}
    if isinstance(params, (str,)) or not isinstance(params, Sequence):
        params = [params]
    out = {}
    for k in params:
        sym = model.lookup(k)
        if sym not in model.params:
            raise ModelError(f"params: {k} is a state, not a parameter; pass initial values as ics={{...}}.")
        if sym not in model.defaults:
            raise MissingValueError(
                f"params: {sym} has no default to start from; pass a starting value, params={{{sym}: ...}}."
            )
        out[sym] = float(model.defaults[sym])
    return out


def _check(name: str, value: Any, lo: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}.")
    return int(value)


def pinn(
    model: Any,
    data: Any = None,
    *,
    params: Sequence[Any] | Mapping[Any, float] | None = None,
    ics: Mapping[Any, float] | None = None,
    t_span: tuple[float, float] | None = None,
    collocation: int = 256,
    chunks: int = 16,
    resample: bool = True,
    width: int = 32,
    depth: int = 3,
    optimizer: Adam = _ADAM,
    polish: LBFGSOption | None = _LBFGS,
    balance: str | None = "grad_norm",
    balance_every: int = 100,
    causal: float | None = 1.0,
    windows: int | str = "auto",
    checkpoint: Checkpoint | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> PINNResult:
    """Train a physics-informed network on ``model``'s equations (and ``data``, if given).

    One MLP ``t -> base states`` (``theta`` for the pendulum; derivative states are its exact
    derivatives) is trained on the residual of the equations at collocation points, the known
    initial values, and the data; the parameters in ``params`` are estimated with it.

    Args:
        model: a `symml.Model` of any order, autonomous or not, without neural terms.
        data: a `symml.Dataset` with one trajectory (states or expressions of them observed),
            or None for a forward problem.
        params: parameters to estimate (needs ``data``): symbols/names starting from the
            model's defaults, or ``{symbol: start}``. The others keep their defaults.
        ics: known initial values at ``t_span[0]`` by state or name. Forward problems (no
            data) use the model's defaults for the rest and need every state; with data only
            these (and values stored with the data) are imposed.
        t_span: the span to train on (default: the data's time range).
        collocation: residual points per step (in ``chunks`` equal time windows).
        chunks: time windows of the causal weights (and the stratified sampling).
        resample: draw new collocation points every Adam step (else fixed midpoints).
        width: hidden width of the MLP.
        depth: hidden layers of the MLP.
        optimizer: the Adam phase (`symml.Adam`: learning rate, steps, schedule); by default
            2000 steps on one window, 1000 per window when marching (``windows`` other than 1).
        polish: the L-BFGS phase (`symml.LBFGS`), or None; by default 500 steps, 300 per
            window when marching.
        balance: the adaptive loss weights: ``"grad_norm"`` (default: gradient-norm balance,
            Wang et al. 2023), ``"annealing"`` (learning-rate annealing, Wang et al. 2021) or None
            (all 1). On the inverse pendulum (25 points of theta at 1 % noise) the gradient-norm
            rule left g 0.13 % off, annealing 0.14 % (it weighs the data 1e5 times the
            residual) and equal weights 0.17 %; with 800 + 300 steps instead of 2000 + 500,
            equal weights collapsed to the trivial solution (g = 0.19), both rules stayed
            within 0.14 % (``benchmarks/pinn.py``).
        balance_every: Adam steps between weight updates.
        causal: the causal tolerance ``eps`` (window ``i`` weighs ``exp(-eps * earlier residual
            losses)``; doubled, up to 100 times, whenever every window is trained), or None.
        windows: time-marching (`symml._pinn._march`): the span is trained as this many
            consecutive equal windows, each window's network starting from the state the
            previous one reaches at its end (forward problems; with data 1). ``"auto"``
            (default): windows of at most one linearised period ``2 pi / rho`` (``rho`` the
            spectral radius of the Jacobian), a window that met faster dynamics being trained
            again, shorter. The optimiser steps are per window.
        checkpoint: a `symml.Checkpoint` (JSON file) to save the run to and resume from (with
            several windows, one file per window and try: ``run.window0-0.json``, ...).
        seed: seeds the network and the collocation points.
        verbose: show a progress bar (tqdm).

    Returns:
        A `PINNResult`: ``.params``, ``.predict(ts)``, ``.residual(ts)``, ``.history``,
        ``.report()`` (with the error against `symml.simulate`).

    Raises:
        ModelError: the model has neural terms (train those with `symml.train`).
        DataError: ``params`` without data, data with several trajectories, or a bad span.
        MissingValueError: a forward problem without every initial value, or a parameter
            without a value.
        ValueError: an option out of range.

    Example:
        >>> import numpy as np, symml as sm
        >>> pend = sm.zoo.pendulum(small_angle=True, theta0=0.1)
        >>> res = sm.pinn(pend, t_span=(0, 1), width=16, depth=2, collocation=64, chunks=4,
        ...               optimizer=sm.Adam(steps=300), polish=sm.LBFGS(steps=200), verbose=False)
        >>> traj = res.predict(np.array([0.0, 0.25]))
        >>> np.round(np.asarray(traj[pend.states[0]]), 2).tolist()  # 0.1 cos(sqrt(9.81) t)
        [0.1, 0.07]
    """
    t_start = time.perf_counter()
    if model.neural:
        raise ModelError(
            f"Model {model.name!r} has neural terms ({', '.join(s.name for s in model.neural)}); sm.pinn "
            "trains a network for the solution of fully specified equations. Train neural terms through "
            "the solver with sm.train(model, data), or replace them by expressions first."
        )
    unknowns = _unknowns(model, params)
    if unknowns and data is None:
        raise DataError(
            f"params={[str(p) for p in unknowns]} asks sm.pinn to estimate parameters, but data is None: "
            "parameters can only be estimated from observations. Pass data=sm.Dataset(...), or drop params."
        )
    if data is not None and len(data) != 1:
        raise DataError(
            f"data has {len(data)} trajectories; sm.pinn trains on one. Pass data with one series."
        )
    for name, value, lo in (("collocation", collocation, 1), ("chunks", chunks, 1), ("width", width, 1)):
        _check(name, value, lo)
    _check("depth", depth, 1)
    _check("balance_every", balance_every, 1)
    _check("seed", seed, 0)
    if collocation % chunks:
        raise ValueError(
            f"collocation={collocation} must be a multiple of chunks={chunks} (points per time window)."
        )
    if balance is not None and balance not in BALANCING:
        raise ValueError(f"balance must be one of {BALANCING} or None, got {balance!r}.")
    if causal is not None and not (isinstance(causal, (int, float)) and causal > 0):
        raise ValueError(f"causal must be a positive tolerance (e.g. 1.0) or None, got {causal!r}.")
    if not isinstance(optimizer, Adam):
        raise ValueError(f"optimizer must be an sm.Adam(lr=..., steps=...), got {optimizer!r}.")
    if polish is not None and not isinstance(polish, LBFGSOption):
        raise ValueError(f"polish must be an sm.LBFGS(steps=...) or None, got {polish!r}.")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise ValueError(
            f"checkpoint must be an sm.Checkpoint(path, every=..., resume=...), got {checkpoint!r}."
        )

    if t_span is None:
        if data is None:
            raise DataError("t_span is None and there is no data to take it from; pass t_span=(t0, t1).")
        t_data = data.series[0].t
        t_span = (float(np.min(t_data)), float(np.max(t_data)))
    t0, t1 = (float(v) for v in t_span)
    if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
        raise DataError(f"t_span must be (t0, t1) with t1 > t0, got {t_span!r}.")

    given = {model.lookup(k): float(v) for k, v in (ics or {}).items()}
    if any(s not in model.rhs for s in given):
        bad = [str(s) for s in given if s not in model.rhs]
        raise ModelError(f"ics: {', '.join(bad)} are parameters, not states; pass them as params.")
    if data is None:
        known = {s: model.defaults[s] for s in model.states if s in model.defaults}
        known.update(given)
        missing = [str(s) for s in model.states if s not in known]
        if missing:
            raise MissingValueError(
                f"A forward problem (no data) needs every initial value; missing {', '.join(missing)}. "
                f"Pass ics={{{missing[0]}: ...}} (or give the model defaults for them)."
            )
    else:
        known = {}
        for k, v in data.series[0].ics.items():
            sym = model.lookup(k)
            if sym in model.rhs:  # stored initial values (parameters stored with the data are settings)
                known[sym] = float(v)
        known.update(given)
    no_value = [str(p) for p in model.params if p not in unknowns and p not in model.defaults]
    if no_value:
        # the binder's advice (params={k: ...}) would mean "estimate k" here
        names = ", ".join(no_value)
        raise MissingValueError(
            f"sm.pinn: parameter(s) {names} of model {model.name!r} have no value"
            + (" and there is no data to estimate them from" if data is None else "")
            + f". Give the model values, model.with_defaults({{{no_value[0]}: ...}}), or, with data, "
            f"estimate them: params=[{no_value[0]}] (starting values: params={{{no_value[0]}: ...}})."
        )
    bind_params(model, unknowns)  # checks the values themselves (finite, real)

    if windows == "auto":
        n_win = None if data is None else 1
    elif isinstance(windows, str):
        raise ValueError(f"windows must be an int >= 1 or 'auto', got {windows!r}.")
    else:
        n_win = _check("windows", windows, 1)
        if n_win > 1 and data is not None:
            raise ValueError(
                f"windows={windows} marches a forward problem window by window, but data is given (an "
                "inverse problem, trained on the data's whole span): pass windows=1 (or 'auto')."
            )
    if n_win != 1:
        optimizer = _ADAM_WINDOW if optimizer is _ADAM else optimizer
        polish = _LBFGS_WINDOW if polish is _LBFGS else polish
    key = jax.random.PRNGKey(seed)
    options = {
        "model": model.name,
        "params": sorted(str(p) for p in unknowns),
        "collocation": collocation,
        "chunks": chunks,
        "resample": bool(resample),
        "width": width,
        "depth": depth,
        "lr": optimizer.lr if not callable(optimizer.lr) else "callable",
        "schedule": optimizer.schedule,
        "balance": balance,
        "balance_every": balance_every,
        "causal": causal,
        "seed": seed,
        "t_span": [t0, t1],
        "windows": n_win,
    }
    cfg = dict(
        adam=optimizer,
        lbfgs=polish.steps if polish is not None else 0,
        balance=balance,
        every=balance_every,
        chunks=chunks,
        per=collocation // chunks,
        resample=bool(resample),
        eps=0.0 if causal is None else float(causal),
        eps_max=0.0 if causal is None else 100.0 * float(causal),
        seed=seed,
        checkpoint=checkpoint,
        verbose=verbose,
        options=options,
    )
    run = runners(cfg)  # one compilation for every window
    several = n_win != 1

    def train(span, start, k, attempt):
        problem, theta = build_problem(
            model, data, unknowns, start, span, width=width, depth=depth, key=jax.random.fold_in(key, 1 + k)
        )
        ck = checkpoint
        if ck is not None and several:
            ck = Checkpoint(window_path(ck.path, k, attempt, True), every=ck.every, resume=ck.resume)
        fingerprint = dict(options, window=[k, attempt, *span]) if several else options
        (net, u), history = optimise(problem, theta, dict(cfg, checkpoint=ck, options=fingerprint), run)
        history["window"] = np.full(len(history["loss"]), k)
        return problem, net, u, history

    def at(piece, ts):
        problem, net = piece[0], piece[1]
        order = problem.shape.order
        return jax.vmap(lambda t_: states_of(problem.shape, taylor(net, t_, order))[0])(ts)

    def rate(piece, span):
        p = jnp.asarray(bind_params(model, unknowns), dtype=float)
        if piece is None:
            y0 = jnp.asarray([[float(known[s]) for s in model.states]])
            return radius(compile_model(model), p, jnp.asarray([t0]), y0)
        ts = jnp.linspace(span[0], span[1], 65)
        return radius(piece[0].rhs, p, ts, at(piece, ts))

    def end_state(piece, t):
        return {s: float(v) for s, v in zip(model.states, np.asarray(at(piece, jnp.asarray([t]))[0]))}

    def solved(piece):
        terms = np.asarray(piece[3]["terms"])
        return terms.size == 0 or float(terms[-1, 0]) <= UNSOLVED

    pieces = march((t0, t1), known, n_win, train, rate, end_state, solved)
    for problem, _, _, history in pieces:
        _warn_if_unsolved(
            history, int(optimizer.steps), causal is not None, tuple(map(float, problem.t_span))
        )
    return PINNResult(model, pieces, known, (t0, t1), time.perf_counter() - t_start)


#: Final mean-square residual (dimensionless: in the units of the scaled time) above which the
#: network does not solve the equation. Converged runs end near 1e-4..1e-3; runs stuck on a wrong,
#: smooth solution over too long a span end at 1..100.
UNSOLVED = 0.1


def _warn_if_unsolved(history: dict, n_adam: int, causal: bool, t_span: tuple) -> None:
    terms = np.asarray(history["terms"])
    if terms.size == 0 or float(terms[-1, 0]) <= UNSOLVED:
        return
    hint = ""
    if causal and n_adam and len(history["causal"]) >= n_adam:
        reached = float(np.max(np.asarray(history["causal"])[:n_adam]))
        if reached < 0.1:
            hint = (
                f" Causal training never reached the end of the span (the last time window weighs "
                f"at most {reached:.2g} during the {n_adam} Adam steps, 1 when trained)."
            )
    warnings.warn(
        f"sm.pinn: the network does not solve the equation on t_span={tuple(t_span)}: its final "
        f"mean-square residual is {float(terms[-1, 0]):.3g} (converged runs end below {UNSOLVED}).{hint} "
        "A PINN learns an oscillation over about one or two periods; for longer spans march in "
        "shorter time windows (windows=N, or the default 'auto'), raise the steps "
        "(optimizer=sm.Adam(steps=...)), or use sm.simulate. .report() compares the result with "
        "sm.simulate.",
        TrainingWarning,
        stacklevel=3,
    )
