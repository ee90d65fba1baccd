"""Parameter estimation through the solver: ``fit`` and its `FitResult`.

``fit`` builds one jitted residual function over every trajectory of a `Dataset`
(predictions by the compiled diffrax solve, observables compiled from SymPy), reparametrises
bounded and positive unknowns, and minimises the sum of squared (weighted) residuals with
Levenberg–Marquardt (optimistix), BFGS or an optax optimiser, all inside one compiled loop.
At the optimum the Jacobian gives the Gauss–Newton covariance ``s² (JᵀJ)⁻¹`` with
``s² = RSS / (n - p)``, the standard errors and the 95 % intervals (Student t).

>>> import numpy as np, sympy as sp, symml as sm
>>> x, = sm.states("x"); k, = sm.parameters("k", positive=True)
>>> decay = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay")
>>> data = sm.Dataset.from_model(decay, ts=np.linspace(0, 4, 21), noise=0.01, seed=0)
>>> res = sm.fit(decay, data, params={k: 1.0})  # a linear model: its closed form serves
>>> res.converged
True
>>> lo, hi = res.confidence_intervals()["k"]
>>> bool(lo < 0.5 < hi)
True
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping, Sequence
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from .._analytic._bridge import NoClosedForm
from .._analytic._flow import flow_map
from .._compile._cache import artefact, peek
from .._compile._codegen import compile, compile_exprs
from .._data._dataset import Dataset
from .._declare._model import Model
from .._solve._core import integrate
from .._solve._options import DEFAULT_ADJOINT, SolveOptions, get_solver
from .._solve._stiffness import choose_solver
from ._bounds import Bound
from ._loops import finite_tangent, iterate_optax, iterate_optimistix
from ._result import FitResult, FitWarning, make_result
from ._setup import FitError, FitProblem, build_problem

__all__ = ["fit", "FitResult", "FitError", "FitWarning", "METHODS", "SOLUTIONS"]

METHODS = ("lm", "bfgs", "adam")
_DEFAULT_ITER = {"lm": 200, "bfgs": 500, "adam": 5000}
_DEFAULT_TOL = {"lm": 1e-8, "bfgs": 1e-8, "adam": 1e-7}
#: Above this many unknowns, derivatives are taken in reverse mode (checkpointed adjoint).
FORWARD_MODE_MAX = 40
# kept importable under its former name
_build = build_problem


# ----------------------------------------------------------------------------- compiled parts


SOLUTIONS = ("auto", "analytic", "numeric")


def _closed_form(model, problem: FitProblem, solution: str):
    """``(ClosedForm, autonomous, t0)`` of the model's flow ``y(t) = F(t - t0, y0, p)``, or None.

    The flow is the one `symml.simulate` uses (`symml._analytic.flow_map`: the general
    solution for symbolic initial values, found once per model under a time budget and kept
    in the artefact cache), so a fit and the simulations of its result share one symbolic solve. ``"auto"``
    tries linear models without neural terms only; ``"analytic"`` tries any model and raises
    `symml.NoClosedForm` when there is none.
    """
    if solution == "numeric":
        return None
    t0s = {float(v) for a in problem.args for v in np.asarray(a["ts"])[:, 0]}
    why = None
    if model.neural:
        why = "the model has neural terms"
    elif not model.is_autonomous and len(t0s) > 1:
        why = "the model is driven (contains t) and the trajectories start at different times"
    if why is not None:
        if solution == "analytic":
            raise NoClosedForm(f"fit(solution='analytic'): no closed form for {model.name!r}: {why}.")
        return None
    t0 = 0.0 if model.is_autonomous else next(iter(t0s))
    try:
        got = flow_map(model, t0, required=solution == "analytic")
    except NoClosedForm as err:
        raise NoClosedForm(
            f"fit(solution='analytic'): no closed form for {model.name!r}: {err}", err.reason
        ) from None
    if got is None:
        return None
    cf, autonomous = got
    return cf, autonomous, t0


def _residual_fn(model, problem: FitProblem, slv, rtol, atol, max_steps, mode, flow=None):
    """``r(theta, args) -> (residual vector, (observables per group, solver codes))``."""
    vf = compile(model)
    obs = [compile_exprs(model, list(g.exprs), title="observable") for g in problem.groups]
    options = SolveOptions(
        solver=slv,
        controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.ForwardMode() if mode == "fwd" else DEFAULT_ADJOINT,
        max_steps=max_steps,
    )
    groups = problem.groups

    def solve_one(y0, p, ts):
        if flow is not None:  # the closed form: y(t) = F(t - t0, y0, p)
            cf, autonomous, _ = flow
            shift = ts[0] if autonomous else 0.0  # a driven flow is built for its own t0
            args = jnp.concatenate([p, y0])
            return jax.vmap(lambda tt: cf(tt - shift, args))(ts), jnp.asarray(0, jnp.int32)
        sol = integrate(vf, y0, ts, p, options)
        return sol.ys, sol.result

    def residuals(theta, args):
        out, preds, codes = [], [], []
        for g, f, a in zip(groups, obs, args):
            p, y0 = a["p"], a["y0"]
            if g.p_cols:
                p = p.at[:, jnp.asarray(g.p_cols)].set(theta[jnp.asarray(g.p_unk)])
            if g.ic_rows:
                y0 = y0.at[jnp.asarray(g.ic_rows), jnp.asarray(g.ic_cols)].set(theta[jnp.asarray(g.ic_unk)])
            ys, code = jax.vmap(solve_one)(y0, p, a["ts"])
            pred = finite_tangent(jax.vmap(jax.vmap(f, in_axes=(0, 0, None)))(a["ts"], ys, p))
            out.append(((pred - a["Y"]) * a["W"]).reshape(-1))
            preds.append(pred)
            codes.append(code)
        return jnp.concatenate(out), (preds, codes)

    return residuals


def _runner(model, problem, method, slv, rtol, atol, max_steps, size, tol, verbose, flow):
    n_unk = len(problem.labels)
    mode = "fwd" if n_unk <= FORWARD_MODE_MAX else "bwd"
    residuals = _residual_fn(model, problem, slv, rtol, atol, max_steps, mode, flow)
    kinds = tuple(b.kind for b in problem.bounds)

    def transform(z, lims):
        return jnp.stack([Bound.apply(k, z[j], lims[0][j], lims[1][j]) for j, k in enumerate(kinds)])

    def evaluate(z, args):
        data, lims = args
        r, (preds, codes) = residuals(transform(z, lims), data)
        r = jnp.where(jnp.isfinite(r), r, jnp.inf)
        return r, (jnp.sum(r**2), preds, [c.astype(r.dtype) for c in codes])

    def lsq(z, args):
        if mode != "fwd":
            return evaluate(z, args)

        # One forward pass gives the residuals and their Jacobian (primal + p tangents in one
        # loop through the solver); the optimiser's linearisation is then a matrix product.
        @jax.custom_jvp
        def f(zz):
            return evaluate(zz, args)

        @f.defjvp
        def f_jvp(primals, tangents):
            (zz,), (dz,) = primals, tangents
            J, out = jax.jacfwd(lambda q: _with_value(evaluate, q, args), has_aux=True)(zz)
            zeros = jax.tree_util.tree_map(jnp.zeros_like, out[1])
            return out, (J @ dz, zeros)

        return f(z)

    def scalar(z, args):
        r, aux = lsq(z, args)
        return 0.5 * jnp.sum(r**2), aux

    def run(z0, data, lims, max_iter):
        args = (data, lims)
        if method == "lm" or isinstance(method, optx.AbstractLeastSquaresSolver):
            solver = method if not isinstance(method, str) else optx.LevenbergMarquardt(rtol=tol, atol=tol)
            z, n, conv, code, hist, state = iterate_optimistix(
                solver, lsq, z0, args, {"jac": mode}, max_iter, size, tol, verbose
            )
            theta = transform(z, lims)
            if isinstance(solver, optx.AbstractGaussNewton):
                # The Jacobian at the accepted point is in the solver state: no extra solve to
                # compile. Chain rule back to the original parametrisation (diagonal transform).
                _, dtheta = jax.jvp(lambda zz: transform(zz, lims), (z,), (jnp.ones_like(z),))
                Jz = state.f_info.jac.as_matrix()
                d = dtheta[None, :]  # one column per unknown
                J = jnp.where(d != 0, Jz / jnp.where(d != 0, d, 1.0), 0.0)
                _, preds, codes = state.aux
                return theta, n, conv, code, hist, state.f_info.residual, J, preds, codes
        elif method == "bfgs" or isinstance(method, optx.AbstractMinimiser):
            solver = method if not isinstance(method, str) else optx.BFGS(rtol=tol, atol=tol)
            opts = {"autodiff_mode": mode}
            z, n, conv, code, hist, _ = iterate_optimistix(
                solver, scalar, z0, args, opts, max_iter, size, tol, verbose
            )
        else:
            opt = optax.adam(1e-2) if method == "adam" else method
            n_obs = max(problem.n_obs, 1)

            def mean_loss(z, args):
                r, aux = lsq(z, args)
                return jnp.sum(r**2) / n_obs, aux[0]

            z, n, conv, code, hist = iterate_optax(
                opt, mean_loss, z0, args, max_iter, size, tol, mode, verbose
            )
        theta = transform(z, lims)
        jac = jax.jacfwd if mode == "fwd" else jax.jacrev
        J, (r, (preds, codes)) = jac(lambda th: _with_value(residuals, th, data), has_aux=True)(theta)
        return theta, n, conv, code, hist, r, J, preds, [c.astype(r.dtype) for c in codes]

    return jax.jit(run)


def _with_value(residuals, theta, args):
    r, aux = residuals(theta, args)
    return r, (r, aux)


# ----------------------------------------------------------------------------- fit


def fit(
    model,
    data: Dataset,
    params: Sequence[Any] | Mapping[Any, float] | None = None,
    ics: str | Mapping[Any, Any] | Sequence[Any] = "data",
    bounds: Mapping[Any, tuple[float | None, float | None]] | None = None,
    method: Any = "lm",
    *,
    weights: str | Mapping[Any, float] | None = None,
    solver: str | diffrax.AbstractSolver = "tsit5",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 16384,
    max_iter: int | None = None,
    tol: float | None = None,
    solution: str = "auto",
    verbose: bool = False,
) -> FitResult:
    """Estimate parameters (and initial values) of ``model`` from ``data`` through the solver.

    Args:
        model: a `symml.Model`.
        data: a `symml.Dataset` (one or several trajectories; states or expressions of
            them observed).
        params: parameters to estimate: a list of symbols/names (starting from the model's
            defaults), a dict ``{symbol: starting value}``, or None for every parameter that
            is not stored as a per-trajectory setting in the data. The others keep their
            defaults (change them with ``model.with_defaults``).
        ics: ``"data"`` (default): initial values stored with the data, else the first sample
            of each observed state, else the model's defaults (an error names any state left
            without one); ``"fit"``: estimate every initial value of every trajectory; a dict
            ``{state: value or "fit"}`` or a list of states to estimate, the rest from the data.
        bounds: ``{symbol: (lo, hi)}`` with None for no limit. Bounded unknowns are fitted
            through log / sine transforms (`symml._fit._bounds.Bound`); parameters declared
            ``positive=True`` are kept positive by default (``bounds={k: None}`` lifts that).
        method: ``"lm"`` (Levenberg–Marquardt, default), ``"bfgs"``, ``"adam"`` (optax, rate
            1e-2 in the transformed coordinates), or an optimistix least-squares solver or
            minimiser, or an optax optimiser.
        weights: None (all 1), ``"relative"`` (1 / mean|value| per observed key, for relative
            noise), or ``{key: weight}``; residuals are multiplied by the weights (use 1/σ).
        solver: the ODE solve (see `symml.simulate`).
        rtol: the ODE solve (see `symml.simulate`).
        atol: the ODE solve (see `symml.simulate`).
        max_steps: the ODE solve (see `symml.simulate`).
        max_iter: optimiser steps (default 200 for lm, 500 for bfgs, 5000 for adam).
        tol: convergence tolerance (relative and absolute, on unknowns and loss; adam: relative
            improvement over the last 100 steps). Defaults 1e-10 (1e-7 for adam).
        solution: ``"auto"`` (default) predicts through the closed form when
            `symml.solve_analytic` finds one for a linear model within a short budget
            (once per model), else integrates; ``"analytic"`` requires the closed form (raises
            `symml.NoClosedForm`); ``"numeric"`` always integrates. A solver other than
            ``"tsit5"``/``"auto"`` means numeric. ``result.solution`` records which was used.
        verbose: print the loss after each step.

    Returns:
        A `FitResult`. If the optimiser stops without converging, a `FitWarning`
        says so (with the last loss and what to try) and ``result.converged`` is False.

    Derivatives are exact (forward mode through the solve for up to 40 unknowns, reverse
    mode above). The whole optimisation is one compiled call, cached per model and problem
    structure: fitting new data of the same shape does not recompile.

    Raises:
        TypeError: ``model`` is not a `symml.Model` or ``data`` not a `symml.Dataset`.
        FitError: an unknown ``method`` or ``solution``, ``max_iter < 1``, nothing to
            estimate, inconsistent ``params`` / ``ics`` / ``bounds`` / ``weights``, or a model
            that cannot be solved at the starting values.
        MissingValueError: a parameter or initial value with neither a starting value nor
            a default.
        DataError: ``weights`` for a key the data does not observe.
        UnknownNameError: a name that is not a symbol of ``model``.
        NoClosedForm: ``solution="analytic"`` and no closed form was found.
        SolveError: the ODE solve failed at the optimum.

    Examples:
        >>> import numpy as np, symml as sm
        >>> ho = sm.zoo.harmonic_oscillator()  # true k = 4
        >>> data = sm.Dataset.from_model(ho, ts=np.linspace(0, 5, 26))
        >>> res = sm.fit(ho, data, params={"k": 3.0})
        >>> res.converged, round(res["k"], 4)
        (True, 4.0)
    """
    if not isinstance(model, Model):
        raise TypeError(f"fit needs a symml Model first; got {type(model).__name__}.")
    if not isinstance(data, Dataset):
        raise TypeError(
            f"fit needs a symml Dataset; got {type(data).__name__}. Build one with "
            "sm.Dataset(t=..., y={state: values}) or sm.Dataset.from_pandas(df)."
        )
    name = method if isinstance(method, str) else None
    if name is not None and name not in METHODS:
        raise FitError(f"Unknown method {method!r}; use one of {', '.join(METHODS)} or an optimiser object.")
    kind = name or ("lm" if isinstance(method, optx.AbstractLeastSquaresSolver) else "adam")
    kind = "bfgs" if isinstance(method, optx.AbstractMinimiser) else kind
    max_iter = int(max_iter if max_iter is not None else _DEFAULT_ITER[kind])
    if max_iter < 1:
        raise FitError(f"max_iter must be at least 1, got {max_iter}.")
    size = max(256, 1 << (max_iter - 1).bit_length())  # history buffer: one compile per size class
    tol = float(tol if tol is not None else _DEFAULT_TOL[kind])
    problem = build_problem(model, data, params, ics, bounds, weights)
    if not problem.labels:
        raise FitError("Nothing to estimate: params is empty and no initial value is fitted.")
    if solution not in SOLUTIONS:
        raise FitError(f"solution must be one of {', '.join(SOLUTIONS)}; got {solution!r}.")
    if solution == "auto" and not (isinstance(solver, str) and solver in ("tsit5", "auto")):
        solution = "numeric"
    flow = _closed_form(model, problem, solution)
    if solver == "auto" and flow is None:
        a = problem.args[0]
        solver = choose_solver(model, a["y0"][0], a["p"][0], float(a["ts"][0, 0]), float(a["ts"][0, -1]))
    slv = get_solver(solver)
    solver_name = solver if isinstance(solver, str) else type(solver).__name__
    # What the compiled optimisation depends on besides the problem's structure; it is both the
    # runner's arguments and part of its cache key.
    options = (method, slv, float(rtol), float(atol), int(max_steps), size, tol, bool(verbose))
    key = (
        "fit",
        None if flow is None else ("closed_form", flow[2]),
        tuple(problem.groups),
        tuple(b.kind for b in problem.bounds),
        problem.n_obs,
        *options,
    )
    lims = np.array(
        [[np.nan if b.lo is None else b.lo, np.nan if b.hi is None else b.hi] for b in problem.bounds]
    )
    call_args = (
        jnp.asarray(problem.start),
        problem.args,
        jnp.asarray(lims.T),
        jnp.asarray(max_iter, jnp.int32),
    )
    # The whole optimisation, compiled once per model and problem structure (an artefact).
    runner = peek(model, "fit_runner", key)
    compile_seconds = 0.0
    if runner is None:
        t_start = _time.perf_counter()

        def build():
            program = _runner(model, problem, *options, flow)
            return program.lower(*call_args).compile()

        runner = artefact(model, "fit_runner", key, build)
        compile_seconds = _time.perf_counter() - t_start
    t_start = _time.perf_counter()
    out = runner(*call_args)
    theta, n, conv, code, hist, r, J, preds, codes = jax.device_get(out)
    elapsed = _time.perf_counter() - t_start
    if not np.isfinite(hist[0]):  # the first step evaluates the start values
        raise FitError(
            "The model cannot be solved at the starting values ("
            + ", ".join(f"{lab}={v:g}" for lab, v in zip(problem.labels, _start_values(problem)))
            + f"): the residuals are not finite (solver {solver_name}). Start closer to plausible values "
            "with params={...}, add bounds, or raise max_steps."
        )
    label = name or ("optax" if isinstance(method, optax.GradientTransformation) else type(method).__name__)
    info = dict(
        method=label,
        solver=solver_name,
        max_iter=max_iter,
        tol=tol,
        seconds=elapsed,
        compile_seconds=compile_seconds,
        solution="numeric" if flow is None else "analytic",
    )
    return make_result(
        model, data, problem, theta, int(n), bool(conv), int(code), hist, r, J, preds, codes, info
    )


def _start_values(problem):
    return [float(b.forward(jnp.asarray(z))) for b, z in zip(problem.bounds, problem.start)]
