"""Symbolic regression with Operon (``pyoperon``): offline, reproducible, time-bounded.

Operon evolves expression trees with NSGA-II on two objectives, accuracy (R²) and size, and
returns the Pareto front. Each tree on the front is converted to SymPy node by node (no
strings are parsed): constants become ``Float``, a variable leaf ``w·x`` becomes
``Float(w) * input``, and every Operon function has one SymPy counterpart
(`OPERON_TO_SYMPY`). The expression is then chosen from the front by a documented rule
(`SELECTIONS`), simplified with SymPy under the worker's budget, and its constants are
refitted in double precision (Operon works in single precision).

Runs are reproducible: ``random_state`` fixes the search, ``n_threads=1`` its order, and
``generations``/``max_evaluations`` bound it. Two time limits: ``max_time`` is Operon's own
soft cap, checked between generations (a run stopped by it depends on the machine's speed);
``timeout`` is the hard one: the search runs in the symbolic worker's child process
(`symml._analytic._worker`, the same killable process as every symbolic budget in symml),
which is killed when it runs past it, and `OperonTimeout` says so.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import sympy as sp

from .._analytic._worker import WORKER
from ..errors import BackendUnavailableError, DataError, SymmlError, suggest
from . import _operon_search as _search
from ._operon_search import OPERON_TO_SYMPY
from .base import (
    Backend,
    Candidate,
    Expression,
    additive_coefficients,
    aicc,
    bic,
    check_xy,
    mse_of,
    r2_score,
    register_backend,
)
from .library import evaluate
from .postprocess import Placeholders, refine_constants, simplify, simplify_all

__all__ = [
    "Operon",
    "OperonError",
    "OperonTimeout",
    "OPERON_TO_SYMPY",
    "FUNCTIONS",
    "SELECTIONS",
    "tree_to_sympy",
]

#: The file the worker's child loads to run the search (``(path, function)`` tasks).
_SEARCH_FILE = os.path.abspath(_search.__file__)
#: Seconds allowed for importing pyoperon in the worker's child (not part of a search's budget).
IMPORT_TIMEOUT = 120.0
# the arity of each fixed-arity Operon node, under its former name
_ARITY = _search.ARITY

#: Selection rules over the Pareto front (lower criterion wins):
#: ``"bic"``: n ln(MSE) + k ln n, ``"aic"``: corrected AIC, ``"mse"``: the most accurate.
#: ``k`` counts the constants of the simplified expression; errors below ``exact_tol``
#: times the target's RMS count as exact.
SELECTIONS = ("bic", "aic", "mse")

#: Function names Operon may use (``functions=``), besides constants and variables.
FUNCTIONS = (
    "add",
    "sub",
    "mul",
    "div",
    "aq",
    "pow",
    "powabs",
    "fmin",
    "fmax",
    "abs",
    "acos",
    "asin",
    "atan",
    "cbrt",
    "ceil",
    "cos",
    "cosh",
    "exp",
    "floor",
    "log",
    "logabs",
    "log1p",
    "sin",
    "sinh",
    "sqrt",
    "sqrtabs",
    "tan",
    "tanh",
    "square",
)


class OperonError(SymmlError, ValueError):
    """Bad Operon options, an Operon tree symml cannot translate, or a failed search."""


class OperonTimeout(OperonError, TimeoutError):
    """Operon's search ran past its hard time limit (``timeout``) and was stopped."""


def tree_to_sympy(tree: Any, variables: Mapping[int, sp.Expr]) -> sp.Expr:
    """Convert an Operon tree to SymPy, node by node (see `OPERON_TO_SYMPY`).

    Operon stores a tree in postfix order; the first child of a node is the node just before
    it.

    Args:
        tree: a ``pyoperon.Tree``.
        variables: a variable node's hash -> the SymPy input it stands for.

    Returns:
        The SymPy expression; constants are ``Float``, a variable leaf ``w·x`` is ``w * x``.

    Raises:
        OperonError: the tree has an unknown node or variable, or is malformed.
    """
    try:
        return _search.tree_to_sympy(tree, variables)
    except _search.TreeError as err:
        raise OperonError(str(err)) from None


@dataclasses.dataclass(frozen=True)
class Operon(Backend):
    """Symbolic regression with pyoperon (genetic programming, NSGA-II on R² and size).

    Args:
        functions: allowed functions (see `FUNCTIONS`).
        population_size: number of trees in the population (size of the search).
        generations: number of generations (length of the search).
        max_evaluations: cap on the number of tree evaluations (length of the search).
        max_length: bound on the tree size (number of nodes).
        max_depth: bound on the tree depth.
        optimizer_iterations: Levenberg–Marquardt steps on the constants of each tree.
        max_time: Operon's own cap on the search in seconds (soft: checked between generations).
        timeout: hard cap in seconds; the worker process running the search is killed after it
            and `OperonTimeout` is raised (default ``None``: see `hard_limit`).
        random_state: seed (same seed, same result with ``n_threads=1``).
        n_threads: Operon's worker threads.
        selection: rule choosing from the Pareto front (`SELECTIONS`).
        exact_tol: relative RMS error regarded as exact (Operon evaluates in float32).
        simplify_timeout: seconds allowed for SymPy simplification of the chosen expression
            (at most one second of it for each member of the front); 0 skips it.
        refine: refit the constants of the chosen expression in double precision.
    """

    functions: tuple = ("add", "sub", "mul", "div", "square", "sin", "cos", "exp")
    population_size: int = 500
    generations: int = 100
    max_evaluations: int = 1_000_000
    max_length: int = 30
    max_depth: int = 10
    optimizer_iterations: int = 10
    max_time: float = 60.0
    timeout: float | None = None
    random_state: int = 0
    n_threads: int = 1
    selection: str = "bic"
    exact_tol: float = 1e-6
    simplify_timeout: float = 5.0
    refine: bool = True

    name = "operon"
    linear = False

    def __post_init__(self):
        funcs = (self.functions,) if isinstance(self.functions, str) else tuple(self.functions)
        funcs = tuple(f.strip() for part in funcs for f in part.split(","))
        for f in funcs:
            if f not in FUNCTIONS:
                raise OperonError(
                    f"Unknown Operon function {f!r}; choose from {', '.join(FUNCTIONS)}."
                    + suggest(f, FUNCTIONS)
                )
        object.__setattr__(self, "functions", funcs)
        if self.selection not in SELECTIONS:
            raise OperonError(
                f"Unknown selection rule {self.selection!r}; choose one of {', '.join(SELECTIONS)}."
                + suggest(str(self.selection), SELECTIONS)
            )
        for name in ("population_size", "generations", "max_evaluations", "max_length", "max_depth"):
            if int(getattr(self, name)) < 1:
                raise OperonError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not self.max_time > 0:
            raise OperonError(f"max_time must be > 0 seconds, got {self.max_time}.")
        if self.timeout is not None and not self.timeout > 0:
            raise OperonError(f"timeout must be > 0 seconds (or None for the default), got {self.timeout}.")

    def fit(self, X: Any, y: Any, inputs: Sequence[sp.Expr]) -> Expression:
        """Search for ``y ≈ f(inputs)``; returns the chosen expression and the Pareto front.

        Args:
            X: samples, shape ``(n, d)``, column ``j`` holding ``inputs[j]``.
            y: targets, shape ``(n,)``.
            inputs: ``d`` SymPy inputs (symbols, states or derivative states).

        Returns:
            The `Expression` chosen from the front by `selection`, its front and scores.

        Raises:
            DataError: fewer than 5 samples, or ``X``/``y`` malformed.
            BackendUnavailableError: ``pyoperon`` is not installed.
            OperonTimeout: the search ran past ``timeout`` seconds and was stopped.
            OperonError: the search failed, or its front has nothing finite on the data.
            WorkerError: the symbolic worker process could not be started.
        """
        X, y, inputs = check_xy(X, y, inputs)
        n = X.shape[0]
        if n < 5:
            raise DataError(f"Operon needs at least 5 samples; got {n}.")
        if importlib.util.find_spec("pyoperon") is None:
            raise BackendUnavailableError(
                "The Operon backend needs the 'pyoperon' package (pip install pyoperon); "
                'backend="sindy" needs nothing more.'
            )
        front_raw, stats = self._search(X, y, inputs)
        search_s = stats["search_seconds"]
        floor = (self.exact_tol**2) * float(np.mean(y**2))
        scored = []
        seen = set()
        # every member in one worker task, each within its own second
        exprs = simplify_all([e for e, _ in front_raw], timeout=min(1.0, self.simplify_timeout))
        for expr, (_, length) in zip(exprs, front_raw):
            if expr in seen:
                continue
            seen.add(expr)
            mse = mse_of(expr, inputs, X, y)
            if not math.isfinite(mse):
                continue
            k = len(expr.atoms(sp.Float))
            scored.append((expr, length, mse, k))
        if not scored:
            raise OperonError("Operon's Pareto front has no expression that is finite on the data.")
        front = []
        for expr, size, mse, k in scored:
            front.append(Candidate(expr, size, mse, k, self._criterion(mse, floor, n, k), {}))
        front.sort(key=lambda c: (c.complexity, c.mse))
        chosen = min(front, key=lambda c: (c.criterion, c.complexity))
        expr = (
            simplify(chosen.expr, timeout=self.simplify_timeout) if self.simplify_timeout > 0 else chosen.expr
        )
        if self.refine:
            expr = refine_constants(expr, inputs, X, y)
        expr = _tidy(expr, inputs, X, y, floor, refine=self.refine)
        mse = mse_of(expr, inputs, X, y)
        return Expression(
            expr=expr,
            inputs=inputs,
            backend=self.name,
            mse=mse,
            r2=r2_score(y, mse * n),
            complexity=chosen.complexity,
            n_samples=n,
            n_params=len(expr.atoms(sp.Float)),
            coefficients=additive_coefficients(expr),
            front=tuple(front),
            selection=self.selection,
            info={
                "search_seconds": search_s,
                "generations": stats["generations"],
                "random_state": int(self.random_state),
                "front_size": len(front),
            },
        )

    def _search(self, X: np.ndarray, y: np.ndarray, inputs: tuple) -> tuple[list, dict]:
        """The raw Pareto front ``[(expr, length)]`` and stats, from the worker's child."""
        options = dict(
            allowed_symbols=",".join((*self.functions, "constant", "variable")),
            objectives=["r2", "length"],
            population_size=int(self.population_size),
            pool_size=int(self.population_size),
            generations=int(self.generations),
            max_evaluations=int(self.max_evaluations),
            max_length=int(self.max_length),
            max_depth=int(self.max_depth),
            optimizer_iterations=int(self.optimizer_iterations),
            max_time=max(1, int(math.ceil(self.max_time))),
            random_state=int(self.random_state),
            n_threads=int(self.n_threads),
        )
        status, payload = WORKER.call((_SEARCH_FILE, "prepare"), (), IMPORT_TIMEOUT)
        if status != "ok":
            raise BackendUnavailableError(
                f"The Operon backend could not import pyoperon in the symbolic worker ({status}: "
                f'{payload}); check that pyoperon imports in this Python, or use backend="sindy".'
            )
        hard = self.hard_limit
        ph = Placeholders()
        plain = [ph.to(z) for z in inputs]
        status, payload = WORKER.call((_SEARCH_FILE, "search"), (X, y, plain, options), hard)
        if status == "timeout":
            raise OperonTimeout(
                f"Operon's search ran past its hard limit of {hard:g} s (timeout={self.timeout!r}, "
                f"max_time={self.max_time:g}) and was stopped. Raise timeout, or shorten the search "
                "(generations, population_size, max_evaluations) so that it ends on its own."
            )
        if status != "ok":
            raise OperonError(f"Operon's search failed in the symbolic worker ({status}): {payload}")
        front = [(ph.restore(e), length) for e, length in payload["front"]]
        return front, payload

    @property
    def hard_limit(self) -> float:
        """Seconds after which the search is stopped: ``timeout``, or by default twice
        ``max_time`` plus 10 s (Operon checks ``max_time`` only between generations). Importing
        pyoperon in a fresh worker (a few seconds) comes before and is not counted."""
        if self.timeout is not None:
            return float(self.timeout)
        return 2.0 * max(1.0, math.ceil(self.max_time)) + 10.0

    def _criterion(self, mse: float, floor: float, n: int, k: int) -> float:
        eff = max(mse, floor) * n
        if self.selection == "bic":
            return bic(eff, n, k)
        if self.selection == "aic":
            return aicc(eff, n, k)
        return mse


def _tidy(expr: sp.Expr, inputs, X, y, floor: float, refine: bool) -> sp.Expr:
    """Drop additive terms whose contribution is below the exactness floor and make factors
    within 1e-10 of ±1 exact, keeping each change only if the fit stays as good (or within
    the floor)."""

    base = mse_of(expr, inputs, X, y)
    limit = max(base, floor) * (1 + 1e-9)
    terms = sp.Add.make_args(expr)
    if len(terms) > 1:
        vals = evaluate(list(terms), inputs, X, check=False)
        rms = np.sqrt(np.mean(vals**2, axis=0))
        keep = [a for a, r in zip(terms, rms) if not (np.isfinite(r) and r**2 < floor)]
        if len(keep) < len(terms):
            trial = sp.Add(*keep)
            if refine:
                trial = refine_constants(trial, inputs, X, y)
            if mse_of(trial, inputs, X, y) <= limit:
                expr = trial
    units = {
        f: sp.Integer(int(round(float(f)))) for f in expr.atoms(sp.Float) if abs(abs(float(f)) - 1) < 1e-10
    }
    if units:
        trial = cast(sp.Expr, expr.xreplace(units))  # xreplace is typed Basic; this stays an Expr
        if mse_of(trial, inputs, X, y) <= limit:
            expr = trial
    return expr


register_backend("operon", Operon)
