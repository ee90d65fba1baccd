"""PySR adapter: symbolic regression in Julia, for machines where PySR runs.

PySR is optional (``pip install 'symml[pysr]'``) and needs a Julia runtime, which its
``juliacall`` dependency downloads and installs the first time ``pysr`` is imported; that
fails without network access. symml imports PySR only inside `PySR.fit` and turns
either failure (not installed, or installed but unable to start Julia) into a
`BackendUnavailableError` that names the reason and the offline backends
(``"sindy"`` and ``"operon"``).

PySR returns SymPy itself (``PySRRegressor.sympy(i)``); its variables are mapped back to
the SymPy inputs by name, and every equation of its Pareto front (the hall of fame) becomes
a `Candidate`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp

from ..errors import BackendUnavailableError, SymmlError, suggest
from .base import (
    Backend,
    Candidate,
    Expression,
    additive_coefficients,
    check_xy,
    mse_of,
    r2_score,
    register_backend,
)

#: PySR's own rules for choosing from its front (``model_selection``).
SELECTIONS = ("best", "accuracy", "score")

_ALTERNATIVES = (
    'Offline alternatives in symml: backend="sindy" (sparse regression on a SymPy library) '
    'or backend="operon" (symbolic regression with pyoperon, no Julia needed).'
)


def load_pysr():
    """Import PySR, or raise `BackendUnavailableError` saying why it cannot run."""
    loaded = sys.modules.get("pysr")
    if loaded is not None:
        return loaded
    try:
        spec = importlib.util.find_spec("pysr")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise BackendUnavailableError(
            "The PySR backend is unavailable: the 'pysr' package is not installed. Install it with "
            "pip install 'symml[pysr]' on a machine with network access (PySR also downloads a "
            "Julia runtime at its first import). " + _ALTERNATIVES
        )
    try:
        return importlib.import_module("pysr")
    except Exception as err:  # juliacall raises its own types when Julia cannot be fetched or started
        raise BackendUnavailableError(
            "The PySR backend is unavailable: 'pysr' is installed but importing it failed, so its "
            f"Julia runtime is unavailable ({type(err).__name__}: {err}). PySR runs its search in "
            "Julia, which juliacall downloads and installs at the first import; that needs "
            "network access (or an existing Julia install, see the PYTHON_JULIAPKG_* settings). "
            + _ALTERNATIVES
        ) from err


class PySROptionError(SymmlError, ValueError):
    """An option of the PySR backend is unknown or out of range."""


@dataclasses.dataclass(frozen=True)
class PySR(Backend):
    """Symbolic regression with PySR (``pysr.PySRRegressor``).

    Args:
        binary_operators: PySR's binary operator names (e.g. ``"+"``, ``"*"``).
        unary_operators: PySR's unary operator names (e.g. ``"sin"``, ``"exp"``).
        niterations: PySR's number of iterations (size of the search).
        populations: PySR's number of populations (size of the search).
        maxsize: PySR's maximum expression size (size of the search).
        timeout_in_seconds: cap on the search.
        random_state: seed; the search runs ``deterministic`` and serial for reproducibility.
        selection: PySR's ``model_selection`` (`SELECTIONS`).
        verbose: show PySR's progress.
        options: further ``PySRRegressor`` keyword arguments.
    """

    binary_operators: tuple = ("+", "-", "*", "/")
    unary_operators: tuple = ("sin", "cos", "exp")
    niterations: int = 40
    populations: int = 15
    maxsize: int = 25
    timeout_in_seconds: float = 300.0
    random_state: int = 0
    selection: str = "best"
    verbose: bool = False
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    name = "pysr"
    linear = False

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise PySROptionError(
                f"Unknown PySR selection {self.selection!r}; choose one of {', '.join(SELECTIONS)}."
                + suggest(str(self.selection), SELECTIONS)
            )
        object.__setattr__(self, "binary_operators", tuple(self.binary_operators))
        object.__setattr__(self, "unary_operators", tuple(self.unary_operators))

    def fit(self, X: Any, y: Any, inputs: Sequence[sp.Expr]) -> Expression:
        """Run PySR on ``X``, ``y``; returns its chosen equation and its hall of fame."""
        X, y, inputs = check_xy(X, y, inputs)
        pysr = load_pysr()
        names = [f"x{j}" for j in range(len(inputs))]
        reg = pysr.PySRRegressor(
            binary_operators=list(self.binary_operators),
            unary_operators=list(self.unary_operators),
            niterations=int(self.niterations),
            populations=int(self.populations),
            maxsize=int(self.maxsize),
            timeout_in_seconds=float(self.timeout_in_seconds),
            model_selection=self.selection,
            random_state=int(self.random_state),
            deterministic=True,
            parallelism="serial",
            progress=bool(self.verbose),
            verbosity=int(bool(self.verbose)),
            temp_equation_file=True,
            **dict(self.options),
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(X, y, variable_names=names)
        search_s = time.perf_counter() - t0
        back = dict(zip(names, inputs))

        def to_inputs(e) -> sp.Expr:
            e = sp.sympify(e)
            return e.xreplace({s: back[s.name] for s in e.free_symbols if s.name in back})

        n = X.shape[0]
        table = reg.equations_
        front = []
        for i in range(len(table)):
            expr = to_inputs(reg.sympy(i))
            mse = mse_of(expr, inputs, X, y)
            complexity = int(table["complexity"].iloc[i]) if "complexity" in table else i
            score = float(table["score"].iloc[i]) if "score" in table else math.nan
            front.append(Candidate(expr, complexity, mse, len(expr.atoms(sp.Float)), -score, {"index": i}))
        expr = to_inputs(reg.sympy())
        mse = mse_of(expr, inputs, X, y)
        chosen = next((c for c in front if c.expr == expr), None)
        return Expression(
            expr=expr,
            inputs=inputs,
            backend=self.name,
            mse=mse,
            r2=r2_score(y, mse * n),
            complexity=chosen.complexity if chosen else int(sp.count_ops(expr)) + 1,
            n_samples=n,
            n_params=len(expr.atoms(sp.Float)),
            coefficients=additive_coefficients(expr),
            front=tuple(sorted(front, key=lambda c: (c.complexity, c.mse))),
            selection=self.selection,
            info={"search_seconds": search_s},
        )


register_backend("pysr", PySR)
