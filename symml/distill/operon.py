"""Symbolic regression with Operon (``pyoperon``): offline, reproducible, time-bounded.

Operon evolves expression trees with NSGA-II on two objectives, accuracy (R²) and size, and
returns the Pareto front. Each tree on the front is converted to SymPy node by node (no
strings are parsed): constants become ``Float``, a variable leaf ``w·x`` becomes
``Float(w) * input``, and every Operon function has one SymPy counterpart
(`OPERON_TO_SYMPY`). The expression is then chosen from the front by a documented rule
(`SELECTIONS`), simplified with SymPy under a time budget, and its constants are
refitted in double precision (Operon works in single precision).

Runs are reproducible: ``random_state`` fixes the search, ``n_threads=1`` its order, and
``generations``/``max_evaluations`` bound it; ``max_time`` is a safety cap in seconds (a run
stopped by it depends on the machine's speed).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from ..errors import DataError, SymmlError, suggest
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
    refine_constants,
    register_backend,
    simplify,
)

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
    """Bad Operon options, or an Operon tree symml cannot translate."""


def _fold(op):
    def f(args):
        out = args[0]
        for a in args[1:]:
            out = op(out, a)
        return out

    return f


def _sub(args):
    return -args[0] if len(args) == 1 else args[0] - sp.Add(*args[1:])


def _div(args):
    return 1 / args[0] if len(args) == 1 else args[0] / sp.Mul(*args[1:])


def _unary(f):
    return lambda args: f(args[0])


#: Operon node name -> SymPy construction from the children (first child first). Verified
#: against Operon's own evaluator in tests/test_distill_operon.py.
OPERON_TO_SYMPY: dict[str, Any] = {
    "+": lambda a: sp.Add(*a),
    "*": lambda a: sp.Mul(*a),
    "-": _sub,
    "/": _div,
    "aq": lambda a: a[0] / sp.sqrt(1 + a[1] ** 2),
    "pow": _fold(lambda u, v: u**v),
    "powabs": _fold(lambda u, v: sp.Abs(u) ** v),
    "fmin": lambda a: sp.Min(*a),
    "fmax": lambda a: sp.Max(*a),
    "abs": _unary(sp.Abs),
    "acos": _unary(sp.acos),
    "asin": _unary(sp.asin),
    "atan": _unary(sp.atan),
    "cbrt": _unary(lambda u: sp.sign(u) * sp.Abs(u) ** sp.Rational(1, 3)),
    "ceil": _unary(sp.ceiling),
    "cos": _unary(sp.cos),
    "cosh": _unary(sp.cosh),
    "exp": _unary(sp.exp),
    "floor": _unary(sp.floor),
    "log": _unary(sp.log),
    "logabs": _unary(lambda u: sp.log(sp.Abs(u))),
    "log1p": _unary(lambda u: sp.log(1 + u)),
    "sin": _unary(sp.sin),
    "sinh": _unary(sp.sinh),
    "sqrt": _unary(sp.sqrt),
    "sqrtabs": _unary(lambda u: sp.sqrt(sp.Abs(u))),
    "tan": _unary(sp.tan),
    "tanh": _unary(sp.tanh),
    "square": _unary(lambda u: u**2),
}


_ARITY = {name: 2 for name in ("aq", "pow", "powabs", "fmin", "fmax")}
_ARITY.update(
    {name: 1 for name in OPERON_TO_SYMPY if name not in _ARITY and name not in ("+", "*", "-", "/")}
)


def tree_to_sympy(tree: Any, variables: Mapping[int, sp.Expr]) -> sp.Expr:
    """Convert an Operon tree to SymPy, node by node.

    Operon stores a tree in postfix order; the first child of a node is the node just before
    it. ``variables`` maps a variable node's hash to the SymPy input it stands for.
    """
    stack: list[sp.Expr] = []
    for node in tree.Nodes:
        if node.IsConstant:
            stack.append(sp.Float(float(node.Value)))
            continue
        if node.IsVariable:
            if node.HashValue not in variables:
                raise OperonError(f"Operon tree uses an unknown variable (hash {node.HashValue}).")
            stack.append(sp.Float(float(node.Value)) * variables[node.HashValue])
            continue
        name = node.Name
        if name not in OPERON_TO_SYMPY:
            raise OperonError(
                f"Operon node {name!r} has no SymPy translation; known: {', '.join(OPERON_TO_SYMPY)}."
            )
        k = int(node.Arity)
        need = _ARITY.get(name)
        if k < 1 or k > len(stack) or (need is not None and k != need):
            raise OperonError(f"Malformed Operon tree: node {name!r} has arity {k}.")
        args = [stack.pop() for _ in range(k)]  # the last pushed subtree is the first child
        stack.append(OPERON_TO_SYMPY[name](args))
    if len(stack) != 1:
        raise OperonError(f"Malformed Operon tree: {len(stack)} values left after conversion.")
    return stack[0]


@dataclasses.dataclass(frozen=True)
class Operon(Backend):
    """Symbolic regression with pyoperon (genetic programming, NSGA-II on R² and size).

    Args:
        functions: allowed functions (see `FUNCTIONS`).
        population_size, generations, max_evaluations: size and length of the search.
        max_length, max_depth: bounds on the tree size.
        optimizer_iterations: Levenberg–Marquardt steps on the constants of each tree.
        max_time: safety cap on the search in seconds.
        random_state: seed (same seed, same result with ``n_threads=1``).
        n_threads: Operon's worker threads.
        selection: rule choosing from the Pareto front (`SELECTIONS`).
        exact_tol: relative RMS error regarded as exact (Operon evaluates in float32).
        simplify_timeout: seconds allowed for SymPy simplification of the chosen expression.
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

    def fit(self, X: Any, y: Any, inputs: Sequence[sp.Expr]) -> Expression:
        """Search for ``y ≈ f(inputs)``; returns the chosen expression and the Pareto front."""
        X, y, inputs = check_xy(X, y, inputs)
        n = X.shape[0]
        if n < 5:
            raise DataError(f"Operon needs at least 5 samples; got {n}.")
        from pyoperon.sklearn import SymbolicRegressor

        reg = SymbolicRegressor(
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
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(X, y)
        search_s = time.perf_counter() - t0
        variables = {h: inputs[i] for i, h in enumerate(reg.variables_)}

        floor = (self.exact_tol**2) * float(np.mean(y**2))
        scored = []
        seen = set()
        for member in reg.pareto_front_:
            raw = tree_to_sympy(member["tree"], variables)
            expr = (
                simplify(raw, timeout=min(1.0, self.simplify_timeout)) if self.simplify_timeout > 0 else raw
            )
            if expr in seen:
                continue
            seen.add(expr)
            mse = mse_of(expr, inputs, X, y)
            if not math.isfinite(mse):
                continue
            k = len(expr.atoms(sp.Float))
            scored.append((expr, int(member["length"]), mse, k))
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
                "generations": int(reg.stats_.get("generations", 0)),
                "random_state": int(self.random_state),
                "front_size": len(front),
            },
        )

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
    from .library import evaluate

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
        trial = expr.xreplace(units)
        if mse_of(trial, inputs, X, y) <= limit:
            expr = trial
    return expr


register_backend("operon", Operon)
