"""Equation discovery: data -> a symml Model, through the distillation backends.

``sm.discover(data)`` estimates the derivatives of the observed states, builds candidate
terms from a SymPy library, lets a backend (SINDy by default) choose the equations, and
returns a `Model` whose constants are new parameters ``c0, c1, ...`` with the
fitted values as defaults (so ``sm.fit`` can refit them through the solver) and whose
initial values are those of the first trajectory (so ``sm.simulate`` runs at once).

* First-order systems: every observed state ``x`` gets ``x' = f(states)``.
* Second-order systems: when a velocity column ``x_t`` is observed along with ``x``, the
  equation is ``x'' = f(x, x')`` with ``x''`` estimated from ``x_t`` (one derivative);
  with ``x`` alone, pass ``order=2`` and both ``x'`` and ``x''`` are estimated.
* Derivatives: ``"weak"`` (integration against test functions instead of differentiation;
  SINDy only; the default with SINDy, ``"auto"``, because it is by far the most robust to
  noise), ``"savgol"`` (the default with the other backends), ``"spline"`` or
  ``"finite_difference"``; see `symml._data._derivatives`.

Use `discover_system` for everything behind the model: the fitted expression of each
equation with its scores and sparsity path, and the same equations with plain numbers.

>>> import numpy as np, symml as sm
>>> from symml.distill.base import round_floats
>>> data = sm.Dataset.from_model(sm.zoo.lotka_volterra(), ts=np.linspace(0, 10, 501))
>>> from symml._discover._discover import discover_system
>>> for eq in discover_system(data, library="polynomial", degree=2).equations:
...     print(eq.lhs, "=", round_floats(eq.rhs, 3))
Derivative(u(t), t) = -0.9*u(t)*v(t) + 1.3*u(t)
Derivative(v(t), t) = 1.8*u(t)*v(t) - 0.8*v(t)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import sympy as sp

from .._data._derivatives import SavitzkyGolay, Weak, get_method
from .._declare._model import Model
from .._declare._symbols import (
    Parameter,
    state_name,
    t,
)
from ..distill.base import Backend, Expression, get_backend, parametrize, round_floats
from ..distill.library import Polynomial, RationalTerms, Trig, evaluate, make_library
from ..errors import DataError
from ._errors import DiscoveryError, DiscoveryWarning
from ._front import choose_from_fronts
from ._regression import as_dataset, columns, regression
from ._validated import NOISE_R2, choose_through_solver


@runtime_checkable
class _LinearBackend(Protocol):
    """What a backend with ``linear = True`` provides besides ``fit`` (see `Backend`)."""

    name: str

    def terms(self, inputs: Sequence[sp.Expr]) -> list[sp.Expr]: ...

    def fit_features(
        self,
        Theta: Any,
        y: Any,
        terms: Sequence[sp.Expr],
        inputs: Sequence[sp.Expr] = (),
        n_effective: float | None = None,
    ) -> Expression: ...


def _as_linear(engine: Backend) -> _LinearBackend | None:
    """The backend as a linear one when it says it is, else ``None``."""
    if not engine.linear:
        return None
    if not isinstance(engine, _LinearBackend):
        raise DiscoveryError(
            f"Backend {engine.name!r} sets linear = True but lacks terms(inputs) or "
            "fit_features(Theta, y, terms, inputs, n_effective); implement both or set linear = False."
        )
    return engine


@dataclasses.dataclass(frozen=True, eq=False)
class Discovery:
    """Everything `discover_system` found.

    Attributes:
        model: the discovered Model (constants as parameters ``c0, c1, ...`` with defaults).
        results: ``{highest derivative: Expression}``: each equation's fit, scores and path.
        inputs: the SymPy inputs of the library (states, then estimated/observed velocities).
        terms: the library's candidate terms.
        differentiation: the derivative method used.
        n_samples: rows of the regression (samples, or test functions for the weak form).
        notes: what the selection noticed (dropped collinear terms, empty equations, poor fits).
        validation: the chosen model integrated against the data (``r2`` per trajectory,
            ``combinations`` tried); empty with ``select="backend"``.
    """

    model: Model
    results: Mapping[sp.Expr, Expression]
    inputs: tuple
    terms: tuple
    differentiation: str
    n_samples: int
    notes: tuple = ()
    validation: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def equations(self) -> tuple[sp.Eq, ...]:
        """The discovered equations with the fitted numbers in place of the parameters."""
        # SymPy infers `Eq(...)` as a union (it may evaluate to a boolean); unevaluated it is an `Eq`.
        return tuple(cast(sp.Eq, sp.Eq(lhs, res.expr, evaluate=False)) for lhs, res in self.results.items())

    @property
    def plain(self) -> Model:
        """The discovered model with numbers instead of parameters (nothing left to fit)."""
        values = {p: self.model.defaults[p] for p in self.model.params}
        return self.model.subs(values)

    def summary(self, digits: int = 6) -> str:
        """A readable report: each equation, its R², number of terms and selection rule."""
        lines = [
            f"Discovered {len(self.results)} equation(s) from {self.n_samples} regression rows "
            f"(differentiation: {self.differentiation}, backend: "
            f"{next(iter(self.results.values())).backend}):"
        ]
        for lhs, res in self.results.items():
            lines.append(f"  {lhs} = {round_floats(res.expr, digits)}")
            lines.append(
                f"      R2 = {res.r2:.8f}, MSE = {res.mse:.4g}, complexity {res.complexity}, "
                f"selection {res.selection!r}"
            )
        values = ", ".join(f"{p} = {self.model.defaults[p]!r}" for p in self.model.params)
        lines.append(f"  parameters: {values or 'none'}")
        if self.validation:
            r2 = ", ".join(f"{v:.4f}" for v in self.validation.get("r2", ()))
            lines.append(
                f"  integrated from each trajectory's initial values: R2 = {r2} "
                f"({self.validation.get('combinations', 0)} combinations tried through the solver)"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def report(self, digits: int = 6) -> str:
        """The `summary`: equations, scores, the solver's validation and the notes."""
        return self.summary(digits)

    def __repr__(self) -> str:
        return self.summary(4)


def discover_system(
    data: Any,
    backend: Any = "sindy",
    library: Any = None,
    differentiation: Any = "auto",
    order: int | None = None,
    *,
    degree: int = 3,
    name: str = "discovered",
    prefix: str = "c",
    select: str = "solver",
    **backend_options: Any,
) -> Discovery:
    """Discover equations from ``data``; returns a `Discovery` (model, fits, paths).

    Args:
        data: a `Dataset` (or DataFrame) observing states by symbol or name;
            a column ``x_t`` (or ``x.diff(t)``) is the velocity of ``x``.
        backend: ``"sindy"``, ``"operon"``, ``"pysr"`` or a backend instance.
        library: SINDy's candidate terms (see `make_library`); default polynomials up to
            ``degree`` in the states (and velocities), with ``select="solver"`` also the sine,
            cosine and saturating rational terms of the states.
        differentiation: ``"auto"`` (the weak form with SINDy, Savitzky–Golay with the other
            backends), ``"weak"``, ``"savgol"``, ``"spline"``, ``"finite_difference"``, or an
            estimator object from `symml._data._derivatives` (``SavitzkyGolay(window=31)``).
        order: differential order (1 or 2) of states observed without a velocity column.
        degree: polynomial degree for the default/named polynomial library.
        name: the model's name; ``prefix``: the parameters' name prefix (``c0, c1, ...``).
        select: ``"solver"`` (the default): with a linear backend the best support of every size
            (exact subsets, stepwise paths) is integrated against every trajectory and the
            combination is chosen by the trajectory and regression BIC, the best few refitted
            through the solver (`symml._discover._select`); the default library then also holds
            sin and cos and saturating rational terms of the states (`RationalTerms`), each family
            kept only where it clearly beats the polynomials. On a chaotic record, which no
            model follows for long, the candidates are scored on windows of it. With a
            symbolic-regression backend (Operon, PySR) the best members of each equation's
            Pareto front are integrated and chosen the same way (`symml._discover._front`).
            ``"backend"``: the backend's own choice (SINDy's thresholded path), not integrated.
        backend_options: options for the backend (e.g. ``selection="aic"`` for SINDy).

    Returns:
        A `Discovery`: the model, each equation's fit with its scores, the library.

    Raises:
        DataError: ``data`` is not a Dataset or DataFrame, a column is not a state or its
            velocity, or there are fewer regression rows than library terms.
        DiscoveryError: options that do not fit together (``order`` not 1 or 2, the weak form
            or ``library=`` with a backend that is not linear, ``select`` unknown), or no
            candidate model integrates from the data's initial values.

    Warns:
        DiscoveryWarning: the chosen model reproduces its own data poorly (R² below 0.5), an
            equation came back empty, the library is rank deficient on the data (a conserved
            quantity), or the data look like noise; each is also in ``Discovery.notes``.
        UnknownBackendError: ``backend`` is not a known name or a `Backend` instance.
    """
    data = as_dataset(data)
    bases, cols = columns(data)
    if order is not None and order not in (1, 2):
        raise DiscoveryError(f"order must be 1 or 2 (or None), got {order!r}.")
    if select not in ("solver", "backend"):
        raise DiscoveryError(f"select must be 'solver' or 'backend', got {select!r}.")
    orders = {b: 2 if (b.diff(t) in cols or order == 2) else 1 for b in bases}
    if (
        select == "solver"
        and library is None
        and isinstance(backend, str)
        and "library" not in backend_options
        and get_backend(backend, **backend_options).linear
    ):
        # the default library: polynomials, the sine and cosine of every state, and saturating
        # rational terms (1/(1+x) only of states that stay well above -1); the solver-validated
        # choice decides between them (sin x vs x - x³/6 at large amplitude)
        positive = tuple(b for b in bases if _lowest(data, cols[b]) > -0.5)
        library = (
            Polynomial(degree) + Trig(of=tuple(bases)) + RationalTerms(of=tuple(bases), positive=positive)
        )
    engine = _engine(backend, library, degree, backend_options)
    linear = _as_linear(engine)
    auto = isinstance(differentiation, str) and differentiation == "auto"
    if auto:
        method = Weak() if linear is not None else SavitzkyGolay()
    else:
        method = get_method(differentiation)
    weak = isinstance(method, Weak)
    if weak and linear is None:
        raise DiscoveryError(
            f"The weak form is a linear regression on integrated library terms; backend "
            f"{engine.name!r} is not linear. Use backend='sindy' with differentiation='weak', or a "
            "pointwise differentiation ('savgol', 'spline', 'finite_difference') with this backend."
        )
    terms_fn = linear.terms if linear is not None else (lambda inputs: [])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # many small solves: no thread contention
        inputs, terms, M, Y, first, n_eff = regression(data, bases, cols, orders, method, terms_fn)
        if auto and weak and M.shape[0] <= 2 * len(terms):
            # short records: more (overlapping) test functions, so that there are more rows
            # than terms; their correlation is counted in the effective sample size
            method = dataclasses.replace(method, n_test=3 * len(terms) // len(data.series) + 1)
            inputs, terms, M, Y, first, n_eff = regression(data, bases, cols, orders, method, terms_fn)
    rows = M.shape[0]
    if linear is not None and rows <= len(terms):
        raise DataError(
            f"Only {rows} regression rows for {len(terms)} library terms; give more samples "
            "(or a smaller library)."
        )
    results: dict[sp.Expr, Expression] = {}
    Theta = None if linear is None else (M if weak else evaluate(terms, inputs, M))
    for b in bases:
        lhs = b.diff(t, orders[b])
        if linear is not None:
            results[lhs] = linear.fit_features(Theta, Y[b], terms, inputs, n_effective=n_eff)
        else:
            results[lhs] = engine.fit(M, Y[b], inputs)
    notes: list[str] = []
    validation: dict[str, Any] = {}
    if linear is not None and select == "solver":
        results, validation = choose_through_solver(
            data, bases, orders, cols, inputs, terms, Theta, Y, results, notes
        )
    elif select == "solver":
        results, validation = choose_from_fronts(data, bases, orders, cols, inputs, results, notes)
    else:
        r2 = max(float(res.r2) for res in results.values())
        if not r2 > NOISE_R2:
            # without integration, the regression's own fit is the evidence: no equation
            # explains its estimated derivatives better than their mean
            notes.append(f"no equation explains its estimated derivatives (best regression R2 = {r2:.3g})")
            warnings.warn(
                f"sm.discover: the data look like noise: no library term explains the estimated "
                f"derivatives (best regression R2 = {r2:.3g}); select='solver' integrates the candidates.",
                DiscoveryWarning,
                stacklevel=3,
            )
    model = _build_model(results, bases, orders, first, name, prefix)
    return Discovery(
        model=model,
        results=results,
        inputs=tuple(inputs),
        terms=tuple(terms),
        differentiation=getattr(method, "name", str(method)),
        n_samples=rows,
        notes=tuple(notes),
        validation=validation,
    )


def _lowest(data, key) -> float:
    """The smallest finite value of column ``key`` over every trajectory."""
    values = [np.asarray(series[key], dtype=float) for series in data.series]
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    return float(finite.min()) if finite.size else -np.inf


def _engine(backend: Any, library: Any, degree: int, options: dict[str, Any]) -> Backend:
    engine = get_backend(backend, **options)
    if engine.linear:
        explicit = library is not None or (isinstance(backend, str) and "library" not in options)
        if explicit:
            if isinstance(engine, type) or not dataclasses.is_dataclass(engine):
                raise DiscoveryError(
                    f"library= needs a backend that is a dataclass with a 'library' field; backend "
                    f"{engine.name!r} is a {type(engine).__name__}. Set its library yourself instead."
                )
            engine = dataclasses.replace(engine, library=make_library(library, degree))
    elif library is not None:
        raise DiscoveryError(
            f"library= applies to the sparse-regression backend 'sindy'; backend {engine.name!r} "
            "searches its own expressions (set its functions instead)."
        )
    return engine


def discover(
    data: Any,
    backend: Any = "sindy",
    library: Any = None,
    differentiation: Any = "auto",
    order: int | None = None,
    **options: Any,
) -> Model:
    """Discover a Model from data: estimate derivatives, regress them on candidate terms,
    and choose the structure by integrating the candidates against every trajectory.

    A model that cannot reproduce its own data is never returned silently: it comes with a
    `DiscoveryWarning` giving the figure (and `DiscoveryError` when nothing integrates).
    The model's constants are parameters ``c0, c1, ...`` whose defaults are the fitted
    values, and its initial values are those of the first trajectory, so `simulate` and
    `fit` run on it at once; ``discover_system(...).plain`` gives the same model with plain
    numbers, and the fits behind it.

    Args:
        data: a `Dataset` (or a DataFrame with a ``t`` column) observing the states; a
            column ``x_t`` is the velocity of ``x`` (the equation for ``x`` is then of order 2).
        backend: ``"sindy"`` (sparse regression, the default), ``"operon"`` or ``"pysr"``
            (symbolic regression), or a backend instance.
        library: SINDy's candidate terms: ``"polynomial"``, ``"trig"``, ``"rational"``,
            SymPy terms, a library object; default polynomials up to ``degree`` in the states,
            sin, cos and saturating rational terms, each kind kept only where it wins.
        differentiation: ``"auto"`` (the weak form with SINDy, Savitzky–Golay otherwise),
            ``"weak"``, ``"savgol"``, ``"spline"`` or ``"finite_difference"``.
        order: differential order (1 or 2) of the states observed without a velocity.
        **options: ``degree``, ``name``, ``prefix``, ``select`` (``"solver"``, the default, or
            ``"backend"``) and the backend's own options (see `discover_system`).

    Returns:
        The discovered `Model`.

    Raises:
        DataError: ``data`` is not a Dataset or DataFrame, a column is not a state or its
            velocity, or there are too few samples for the library.
        DiscoveryError: options that do not fit together (e.g. the weak form with Operon).
        UnknownBackendError: ``backend`` is not a known name or a backend instance.

    >>> import numpy as np, symml as sm
    >>> data = sm.Dataset.from_model(sm.zoo.lotka_volterra(), ts=np.linspace(0, 10, 501))
    >>> model = sm.discover(data, library="polynomial", degree=2)
    >>> model.params
    (c0, c1, c2, c3)
    """
    return discover_system(data, backend, library, differentiation, order, **options).model


def _build_model(results, bases, orders, first, name, prefix) -> Model:
    taken = {state_name(b) for b in bases}
    while any(n.startswith(prefix) and n[len(prefix) :].isdigit() for n in taken):
        prefix = prefix + "_"
    eqs, defaults, counter = [], {}, [0]

    def make(i):
        p = Parameter(f"{prefix}{counter[0]}", real=True)
        counter[0] += 1
        return p

    for b in bases:
        lhs = b.diff(t, orders[b])
        expr, found = parametrize(results[lhs].expr, make)
        defaults.update(found)
        eqs.append(sp.Eq(lhs, expr))
    for z, v in first.items():
        defaults[z] = v
    return Model(eqs, defaults=defaults, name=name)
