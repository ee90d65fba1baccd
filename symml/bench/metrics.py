"""Scores of a recovered model against the truth.

* **Trajectory scores** (`score`): the recovered model is integrated from the true
  initial values over the training window and on into the extrapolation window (one solve),
  and from the second initial condition over the training window. Each window gets the RMSE
  over all observed values and R² = 1 - mean over observed states of SS_res / SS_tot, both
  against the noise-free truth. A solve that fails (`symml.SolveError`, any other
  error, or non-finite values) scores R² = -inf and RMSE = inf, with ``failed_<window>`` set.
* **Structure scores** (`structure`): the right-hand sides of truth and recovered model
  (parameters replaced by their values, expanded) are split into additive terms; the sets of
  terms, ignoring coefficients, give precision and recall, the matched terms' coefficients
  the mean relative coefficient error. Kinematic equations (``x' = v``) are not counted.

>>> import symml as sm
>>> lv = sm.zoo.lotka_volterra()
>>> s = structure(lv, lv)
>>> s["precision"], s["recall"], s["coef_error"]
(1.0, 1.0, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypedDict

import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._declare._model import Model
from .._declare._symbols import state_name
from .._solve._simulate import simulate
from ..distill.base import additive_coefficients

__all__ = ["WINDOWS", "score", "structure", "window_scores", "term_sets", "complexity", "predict"]

#: The three windows every recovered model is scored on.
WINDOWS = ("train", "extrap", "new_ic")
#: Points per window of the scoring grid.
GRID = 200


class SolveSettings(TypedDict):
    """Keyword arguments of `simulate` for the scoring solves."""

    rtol: float
    atol: float
    max_steps: int
    method: str


#: Solver settings of the scoring solves (a model that needs more steps counts as failed).
SOLVE: SolveSettings = {"rtol": 1e-8, "atol": 1e-10, "max_steps": 20000, "method": "numeric"}
#: Terms with coefficients below this (absolute) are treated as absent.
TERM_TOL = 1e-8


def _ics_for(model: Model, ics: Mapping[str, float]) -> dict[str, float]:
    names = {state_name(s) for s in model.states}
    return {k: v for k, v in ics.items() if k in names}


def predict(model: Model, ics: Mapping[str, float], ts: np.ndarray, observe) -> np.ndarray:
    """Values of the ``observe`` states (by name) on ``ts`` (rows: times); raises on failure."""
    span = (float(ts[0]), float(ts[-1]))
    traj = simulate(model, ics=_ics_for(model, ics), t_span=span, saveat=jnp.asarray(ts), **SOLVE)
    Y = np.stack([np.asarray(traj[k], dtype=float) for k in observe], axis=1)
    if Y.shape[0] != len(ts) or not np.all(np.isfinite(Y)):
        raise FloatingPointError("the solution is not finite on the whole window")
    return Y


def window_scores(pred: np.ndarray | None, truth: np.ndarray) -> tuple[float, float]:
    """``(rmse, r2)`` of ``pred`` against ``truth`` (rows: times, columns: states).

    R² averages SS_res / SS_tot over the columns, so that every state counts the same
    whatever its scale. ``pred=None`` (a failed solve) gives ``(inf, -inf)``.
    """
    if pred is None:
        return math.inf, -math.inf
    res = pred - truth
    rmse = float(np.sqrt(np.mean(res**2)))
    ss_res = np.sum(res**2, axis=0)
    ss_tot = np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    ratio = np.where(
        ss_tot > 0, ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.where(ss_res > 0, np.inf, 0.0)
    )
    return rmse, float(1.0 - np.mean(ratio))


def grids(problem) -> dict[str, np.ndarray]:
    """Scoring times: ``"main"`` spans train + extrapolation, ``"new_ic"`` the training window."""
    t0, t1 = problem.train
    t2 = problem.extrapolate[1]
    n_train = GRID
    n_extra = max(2, int(round(GRID * (t2 - t1) / (t1 - t0))))
    main = np.concatenate([np.linspace(t0, t1, n_train), np.linspace(t1, t2, n_extra + 1)[1:]])
    return {"main": main, "new_ic": np.linspace(t0, t1, GRID)}


def truth_predictions(problem) -> dict[str, np.ndarray]:
    """The noise-free truth on the scoring grids (see `grids`)."""
    g = grids(problem)
    return {
        "main": predict(problem.model, problem.ics, g["main"], problem.observe),
        "new_ic": predict(problem.model, problem.new_ics, g["new_ic"], problem.observe),
    }


def score(problem, model: Model, truth: Mapping[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """Trajectory scores of ``model`` on ``problem``; returns ``(row, predictions)``.

    ``row`` has ``rmse_<w>``, ``r2_<w>``, ``failed_<w>`` for ``w`` in `WINDOWS` and an
    ``error`` message of the first failure (or ""). ``predictions`` holds the arrays for the
    figures (``t``, ``truth``, ``pred`` per grid; ``pred`` is None where the solve failed).
    """
    truth = truth_predictions(problem) if truth is None else truth
    g = grids(problem)
    preds: dict[str, Any] = {}
    errors = []
    for key, ics in (("main", problem.ics), ("new_ic", problem.new_ics)):
        try:
            preds[key] = predict(model, ics, g[key], problem.observe)
        except Exception as err:  # a failed solve is a score, not a crash
            preds[key] = None
            errors.append(f"{key}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    n_train = int(np.sum(g["main"] <= problem.train[1]))
    split = {
        "train": (slice(0, n_train), "main"),
        "extrap": (slice(n_train, None), "main"),
        "new_ic": (slice(None), "new_ic"),
    }
    row: dict[str, Any] = {}
    for w, (sl, key) in split.items():
        p = preds[key]
        rmse, r2 = window_scores(None if p is None else p[sl], truth[key][sl])
        row[f"rmse_{w}"], row[f"r2_{w}"], row[f"failed_{w}"] = rmse, r2, p is None
    row["error"] = "; ".join(errors)
    out = {"t_main": g["main"], "t_new_ic": g["new_ic"], "n_train": n_train}
    out.update({f"truth_{k}": v for k, v in truth.items()})
    out.update({f"pred_{k}": v for k, v in preds.items()})
    return row, out


# ----------------------------------------------------------------------------- structure


def _kinematic(state, rhs) -> bool:
    # x' = v, the definition of a velocity state, says nothing about the physics
    return isinstance(rhs, sp.Derivative) and rhs.args[0] == (
        state.args[0] if isinstance(state, sp.Derivative) else state
    )


def term_sets(model: Model) -> dict[str, dict[sp.Expr, float]]:
    """``{state name: {term: coefficient}}`` of the expanded, evaluated right-hand sides."""
    out: dict[str, dict[sp.Expr, float]] = {}
    for s, rhs in model.numeric_rhs().items():
        if _kinematic(s, rhs):
            continue
        expr = sp.expand(rhs)
        terms = {}
        for term, c in additive_coefficients(expr).items():
            try:
                cval = float(c)
            except TypeError:  # a coefficient left symbolic: keep it as part of the term
                term, cval = c * term, 1.0
            if abs(cval) > TERM_TOL:
                terms[term] = terms.get(term, 0.0) + cval
        out[state_name(s)] = terms
    return out


def complexity(model: Model) -> int:
    """Operation count (SymPy ``count_ops``) of the non-kinematic right-hand sides."""
    return int(sum(sp.count_ops(rhs) for s, rhs in model.rhs.items() if not _kinematic(s, rhs)))


def structure(truth: Model, found: Model) -> dict[str, float]:
    """Precision and recall of the recovered terms, relative coefficient error, complexity.

    Terms are pooled over the equations (a term counts once per equation it appears in).
    ``precision`` is NaN when nothing was found; ``coef_error`` (mean of |c - c_true| / |c_true|
    over matched terms) is NaN without a match; ``exact`` is 1.0 when both are 1.
    """
    T, F = term_sets(truth), term_sets(found)
    n_true = n_found = n_match = 0
    errs = []
    for name, true_terms in T.items():
        found_terms = F.get(name, {})
        n_true += len(true_terms)
        n_found += len(found_terms)
        for term, c in found_terms.items():
            if term in true_terms:
                n_match += 1
                errs.append(abs(c - true_terms[term]) / abs(true_terms[term]))
    for name, found_terms in F.items():
        if name not in T:
            n_found += len(found_terms)
    precision = n_match / n_found if n_found else math.nan
    recall = n_match / n_true if n_true else math.nan
    return {
        "precision": precision,
        "recall": recall,
        "exact": float(precision == 1.0 and recall == 1.0),
        "coef_error": float(np.mean(errs)) if errs else math.nan,
        "complexity": complexity(found),
    }
