"""The distillation interface: arrays in, SymPy expressions out, with scores.

Every backend (``"sindy"``, ``"operon"``, ``"pysr"``) implements one method::

    backend.fit(X, y, inputs) -> Expression

with ``X`` of shape ``(n, d)`` (column ``j`` holds the values of ``inputs[j]``, a SymPy
symbol, state or derivative state), ``y`` of shape ``(n,)``. The `Expression` holds the
chosen SymPy expression of the inputs with the actual fitted ``Float`` constants, its
scores (MSE, R², AIC, BIC), its complexity, the coefficient of each additive term, and the
candidates the backend chose from (the sparsity path of SINDy, the Pareto front of Operon
and PySR) with the rule that chose.

>>> import numpy as np, sympy as sp
>>> from symml.distill import SINDy
>>> x, y = sp.symbols("x y")
>>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2))
>>> found = SINDy(library="polynomial").fit(X, 2.5 * X[:, 0] * X[:, 1] - X[:, 1], [x, y])
>>> found.rounded(6)
2.5*x*y - 1.0*y
>>> found.complexity, round(found.r2, 12)
(2, 1.0)
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
import sympy as sp

from .._serialize import decode_expr, decode_value, encode_expr, register
from ..errors import DataError, SymmlError, suggest
from .library import evaluate


class UnknownBackendError(SymmlError, ValueError):
    """A distillation backend was named that symml does not know."""


# ----------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One expression a backend considered: a point of the sparsity path or Pareto front.

    ``criterion`` is the value of the selection rule for this candidate (lower is better;
    NaN when the rule does not score single candidates).
    """

    expr: sp.Expr
    complexity: int
    mse: float
    n_params: int
    criterion: float = math.nan
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class Expression:
    """A fitted SymPy expression of ``inputs`` and how it was chosen.

    Attributes:
        expr: the chosen expression; its constants are ``sp.Float`` holding the fitted values.
        inputs: the SymPy inputs (column order of ``X``).
        backend: name of the backend that produced it.
        mse: mean squared error on the fitted data.
        r2: coefficient of determination on the fitted data.
        complexity: number of terms (SINDy) or expression size (symbolic regression).
        n_samples: number of rows fitted (for AIC/BIC).
        n_params: number of fitted constants (for AIC/BIC).
        coefficients: ``{term: Float}``, the coefficient of each additive term of ``expr``.
        front: the candidates the backend chose from, by increasing complexity.
        selection: the rule that chose ``expr`` among ``front`` (e.g. ``"bic"``).
        info: backend details (chosen threshold, timings, ...), JSON-compatible.

    ``aic`` and ``bic`` count every row as independent; the criterion a backend selected
    with is ``Candidate.criterion`` on `front` (SINDy's uses an effective sample size,
    ``info["n_effective"]``).
    """

    expr: sp.Expr
    inputs: tuple
    backend: str
    mse: float
    r2: float
    complexity: int
    n_samples: int
    n_params: int
    coefficients: Mapping[sp.Expr, sp.Expr]
    front: tuple = ()
    selection: str = ""
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def score(self) -> float:
        """R² on the fitted data (1 is a perfect fit)."""
        return self.r2

    @property
    def aic(self) -> float:
        """Akaike information criterion (small-sample corrected) of the fit."""
        return aicc(self.mse * self.n_samples, self.n_samples, self.n_params)

    @property
    def bic(self) -> float:
        """Bayesian information criterion of the fit."""
        return bic(self.mse * self.n_samples, self.n_samples, self.n_params)

    @property
    def terms(self) -> tuple:
        """The additive terms of ``expr`` without their coefficients."""
        return tuple(self.coefficients)

    def predict(self, X: Any) -> np.ndarray:
        """Evaluate ``expr`` on the rows of ``X`` (columns in ``inputs`` order)."""

        return evaluate([self.expr], self.inputs, X, check=False)[:, 0]

    def rounded(self, digits: int = 4) -> sp.Expr:
        """``expr`` with constants rounded to ``digits`` significant digits (for display only)."""
        return round_floats(self.expr, digits)

    def __repr__(self) -> str:
        return (
            f"Expression({self.backend}: {self.rounded(5)}; R2={self.r2:.6g}, MSE={self.mse:.3g}, "
            f"complexity={self.complexity}, selection={self.selection!r})"
        )

    __str__ = __repr__


# ----------------------------------------------------------------------------- the interface


class Backend(abc.ABC):
    """A distillation backend: ``fit(X, y, inputs) -> Expression``.

    ``linear`` backends (SINDy) also provide ``terms(inputs)`` (their candidate terms) and
    ``fit_features(Theta, y, terms, inputs, n_effective=None)``, a fit on a given linear
    system of candidate features, which the weak form of equation discovery needs.
    """

    name: ClassVar[str] = "backend"
    linear: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, X: Any, y: Any, inputs: Sequence[sp.Expr]) -> Expression:
        """Find an expression ``y ≈ f(inputs)`` from samples ``X`` (n, d) and ``y`` (n,)."""


_REGISTRY: dict[str, type] = {}


def register_backend(name: str, cls: type) -> None:
    """Make ``cls`` (a `Backend` subclass) available as ``backend=name``."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"register_backend needs a Backend subclass, got {cls!r}")
    _REGISTRY[name] = cls


def backend_names() -> tuple[str, ...]:
    """Names accepted as ``backend=...``.

    >>> backend_names()
    ('sindy', 'operon', 'pysr')
    """
    first = ("sindy", "operon", "pysr")
    return tuple(sorted(_REGISTRY, key=lambda n: (first.index(n) if n in first else len(first), n)))


def get_backend(spec: Any = "sindy", **options: Any) -> Backend:
    """A backend instance from a name (``"sindy"``, ``"operon"``, ``"pysr"``) and options,
    or the given `Backend` instance itself.

    >>> get_backend("sindy", selection="aic").selection
    'aic'
    """
    if isinstance(spec, Backend):
        if options:
            raise TypeError(
                f"Options {sorted(options)} were given together with a ready backend {spec!r}; "
                "set them on the backend instead."
            )
        return spec
    if isinstance(spec, str) and spec in _REGISTRY:
        return _REGISTRY[spec](**options)
    names = backend_names()
    raise UnknownBackendError(
        f"Unknown distillation backend {spec!r}; choose one of {', '.join(names)} or pass a "
        "Backend instance." + (suggest(spec, names) if isinstance(spec, str) else "")
    )


# ----------------------------------------------------------------------------- helpers


def check_xy(X: Any, y: Any, inputs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Validate ``X`` (n, d), ``y`` (n,) and the ``d`` SymPy inputs; return float arrays."""
    inputs = tuple(sp.sympify(z) for z in inputs)
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim == 1 and len(inputs) == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (samples, inputs); got shape {X.shape}.")
    if X.shape[1] != len(inputs):
        raise DataError(
            f"X has {X.shape[1]} columns but {len(inputs)} inputs were named "
            f"({', '.join(map(str, inputs))}); give one SymPy input per column."
        )
    if len(set(inputs)) != len(inputs):
        raise DataError(f"The inputs must be distinct; got {', '.join(map(str, inputs))}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}.")
    for name, arr in (("X", X), ("y", y)):
        bad = np.flatnonzero(~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1))
        if bad.size:
            raise DataError(
                f"{name} contains NaN or inf in {bad.size} row(s) (first: row {int(bad[0])}); "
                "drop or interpolate those samples first."
            )
    if X.shape[0] < 2:
        raise DataError(f"Need at least 2 samples to fit an expression; got {X.shape[0]}.")
    return X, y, inputs


def mse_of(expr: sp.Expr, inputs: Sequence[sp.Expr], X: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of ``expr`` on ``X``, ``y`` (``inf`` where it is not finite)."""

    r = evaluate([expr], inputs, X, check=False)[:, 0] - y
    return float(np.mean(r**2)) if np.all(np.isfinite(r)) else math.inf


def r2_score(y: np.ndarray, rss: float) -> float:
    """1 - RSS/TSS (TSS about the mean); 1.0 for a constant target fitted exactly."""
    tss = float(np.sum((y - np.mean(y)) ** 2))
    if tss == 0.0:
        return 1.0 if rss <= 1e-30 * max(1.0, float(np.sum(y**2))) else -math.inf
    return 1.0 - rss / tss


def aicc(rss: float, n: int, k: int) -> float:
    """Small-sample corrected AIC of a least-squares fit with ``k`` constants."""
    rss = max(rss, 1e-300)
    extra = 2.0 * k * (k + 1) / max(n - k - 1, 1.0)
    return n * math.log(rss / n) + 2.0 * k + extra


def bic(rss: float, n: int, k: int) -> float:
    """Bayesian information criterion of a least-squares fit with ``k`` constants."""
    rss = max(rss, 1e-300)
    return n * math.log(rss / n) + k * math.log(n)


def additive_coefficients(expr: sp.Expr) -> dict[sp.Expr, sp.Expr]:
    """``{term: coefficient}`` for the additive terms of ``expr``.

    >>> x = sp.Symbol("x")
    >>> additive_coefficients(sp.Float(1.5) * x**2 - sp.Float(0.25))
    {1: -0.250000000000000, x**2: 1.50000000000000}
    """
    out: dict[sp.Expr, sp.Expr] = {}
    for a in sp.Add.make_args(sp.sympify(expr)):
        if a == 0:
            continue
        c, rest = a.as_coeff_Mul()
        out[rest] = out.get(rest, sp.S.Zero) + c
    return dict(sorted(out.items(), key=lambda kv: sp.default_sort_key(kv[0])))


def round_floats(expr: sp.Expr, digits: int = 4) -> sp.Expr:
    """``expr`` with every Float rounded to ``digits`` significant digits (display only)."""
    rep = {}
    for f in sp.sympify(expr).atoms(sp.Float):
        v = float(f)
        rep[f] = sp.Float(float(f"{v:.{digits}g}"), digits) if v != 0 else sp.S.Zero
    # xreplace is typed Basic; replacing Floats by numbers keeps an Expr
    return cast(sp.Expr, sp.sympify(expr).xreplace(rep))


def parametrize(expr: sp.Expr, make_symbol) -> tuple[sp.Expr, list[tuple[sp.Symbol, float]]]:
    """Replace every ``Float`` occurrence in ``expr`` by a new symbol ``make_symbol(i)``.

    Returns the new expression and ``[(symbol, value), ...]`` in order of appearance (each
    occurrence gets its own symbol, even when two values are equal).

    >>> x = sp.Symbol("x")
    >>> parametrize(sp.Float(2.0) * sp.sin(sp.Float(3.0) * x), lambda i: sp.Symbol(f"c{i}"))
    (c0*sin(c1*x), [(c0, 2.0), (c1, 3.0)])
    """
    found: list[tuple[sp.Symbol, float]] = []

    def walk(e):
        if isinstance(e, sp.Float):
            s = make_symbol(len(found))
            found.append((s, float(e)))
            return s
        if not e.args or isinstance(e, (sp.Number, sp.Symbol)):
            return e
        if isinstance(e, sp.core.function.AppliedUndef) or isinstance(e, sp.Derivative):
            return e
        return e.func(*[walk(a) for a in e.args])

    return walk(sp.sympify(expr)), found


# ----------------------------------------------------------------------------- save / load


def _json_safe(v: Any) -> Any:
    if isinstance(v, (bool, str)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, Mapping):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_safe(x) for x in v]
    return str(v)


def _hex(v: float) -> str:
    return float(v).hex()


def encode_expression(e: Expression) -> dict:

    return {
        "expr": encode_expr(e.expr),
        "inputs": [encode_expr(z) for z in e.inputs],
        "backend": e.backend,
        "mse": _hex(e.mse),
        "r2": _hex(e.r2),
        "complexity": int(e.complexity),
        "n_samples": int(e.n_samples),
        "n_params": int(e.n_params),
        "coefficients": [[encode_expr(k), encode_expr(v)] for k, v in e.coefficients.items()],
        "front": [
            {
                "expr": encode_expr(c.expr),
                "complexity": int(c.complexity),
                "mse": _hex(c.mse),
                "n_params": int(c.n_params),
                "criterion": _hex(c.criterion),
                "info": _json_safe(c.info),
            }
            for c in e.front
        ],
        "selection": e.selection,
        "info": _json_safe(e.info),
    }


def decode_expression(d: dict) -> Expression:

    return Expression(
        expr=decode_value(d["expr"]),
        inputs=tuple(decode_expr(z) for z in d["inputs"]),
        backend=str(d["backend"]),
        mse=float.fromhex(d["mse"]),
        r2=float.fromhex(d["r2"]),
        complexity=int(d["complexity"]),
        n_samples=int(d["n_samples"]),
        n_params=int(d["n_params"]),
        coefficients={decode_value(k): decode_value(v) for k, v in d["coefficients"]},
        front=tuple(
            Candidate(
                decode_value(c["expr"]),
                int(c["complexity"]),
                float.fromhex(c["mse"]),
                int(c["n_params"]),
                float.fromhex(c["criterion"]),
                dict(c["info"]),
            )
            for c in d["front"]
        ),
        selection=str(d["selection"]),
        info=dict(d["info"]),
    )


def _register_io() -> None:

    register("expression", Expression, encode_expression, decode_expression)


_register_io()
