"""``sm.distill``: turn the networks of a trained universal ODE back into SymPy.

Each network output ``U[k]`` is sampled along the trained model's own trajectories over the
data's time windows (so the regression only sees inputs the network was trained on, never an
extrapolation) and handed to a distillation backend (`symml.distill.base`). The result,
`Distilled`, holds the expressions, a pure symbolic `Model` in which the
networks are replaced by them and every discovered constant is a new named parameter, and
``refit`` to re-estimate all constants through the solver.

>>> import numpy as np, sympy as sp, symml as sm
>>> from symml.distill.base import round_floats
>>> lv = sm.zoo.lotka_volterra()
>>> u, v = lv.states
>>> alpha, beta, delta, gamma = lv.params
>>> data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 21))
>>> U = sm.neural("U", inputs=[u, v], outputs=2, width=16, depth=1)
>>> ude = sm.Model([sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
...                defaults={alpha: 1.3, gamma: 0.8})
>>> trained = sm.train(ude, data, optimizer=sm.Adam(steps=200), polish=sm.LBFGS(steps=300), verbose=False)
>>> found = sm.distill(trained, library="polynomial", degree=2)
>>> {k: round_floats(e, 2) for k, e in found.terms.items()}
{U_0(u(t), v(t)): -0.9*u(t)*v(t), U_1(u(t), v(t)): 1.8*u(t)*v(t)}
>>> found.model.params
(alpha, c0, c1, gamma)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .. import _serialize as _io
from .._declare._model import Model
from .._declare._symbols import Parameter, is_neural_call, neural_spec
from .._fit._fit import fit
from .._train import Trained
from ..errors import SymmlError
from .base import Expression, decode_expression, encode_expression, get_backend, parametrize, round_floats
from .library import make_library
from .validate import front_terms, select_through_solver


class DistillError(SymmlError, ValueError):
    """What was given to sm.distill cannot be distilled (no networks, unknown outputs...)."""


def _neural_calls(model) -> list[sp.Expr]:
    """The network outputs ``U_k(...)`` appearing in the model, ordered by (name, k)."""
    calls = set()
    for rhs in model.rhs.values():
        calls |= {a for a in sp.preorder_traversal(rhs) if is_neural_call(a)}
    return sorted(calls, key=lambda c: (neural_spec(c)[0].name, neural_spec(c)[1]))


def _select(calls: list[sp.Expr], outputs: Any) -> list[sp.Expr]:
    if outputs is None:
        return calls
    wanted = list(outputs) if isinstance(outputs, (list, tuple, set)) else [outputs]
    chosen = []
    for w in wanted:
        hit = [c for c in calls if c == w or neural_spec(c)[0].name == getattr(w, "name", w)]
        if not hit:
            names = ", ".join(map(str, calls))
            raise DistillError(f"No network output {w!r} in this model; it has {names}.")
        chosen += [c for c in hit if c not in chosen]
    return chosen


def _free_prefix(model, prefix: str) -> str:
    taken = {str(p) for p in model.params} | {str(s) for s in model.states}
    while any(n.startswith(prefix) and n[len(prefix) :].isdigit() for n in taken):
        prefix += "_"
    return prefix


def distill(
    trained: Any,
    backend: Any = "sindy",
    *,
    library: Any = None,
    degree: int = 4,
    outputs: Any = None,
    points: int = 200,
    prefix: str = "c",
    validate: bool | None = None,
    max_terms: int = 3,
    verbose: bool = False,
    progress: bool = False,
    **options: Any,
) -> Distilled:
    """Fit a SymPy expression to every network output of a trained universal ODE.

    Args:
        trained: the result of `symml.train`.
        backend: ``"sindy"`` (default), ``"operon"``, ``"pysr"`` or a
            `Backend` instance.
        library: candidate terms for SINDy (default: polynomials up to ``degree`` in the
            network's inputs; see `symml.distill.make_library`); ignored by the
            symbolic-regression backends.
        degree: polynomial degree of the default SINDy library (docs/problems.md §3 uses ≤ 4).
        outputs: which outputs to distill (``U[0]``, a placeholder or its name, or a list);
            default: all of them.
        points: samples per data trajectory, equally spaced over its time window.
        prefix: name stem of the new parameters (``c0, c1, ...``; made unique).
        validate: choose each output's structure through the solver on the training data
            (`symml.distill.validate`: forward selection on the network's samples proposes
            supports of up to ``max_terms`` terms, BIC on the data decides; default on). For
            SINDy the terms are its library; for the symbolic-regression backends they are the
            additive terms of their Pareto front (`symml.distill.validate.front_terms`), refitted
            through the solver the same way. ``False`` uses the backend's own choice as found.
        max_terms: largest support tried per output when validating.
        verbose: print each distilled term as it is found (and, when validating, every
            structure tried with its score).
        progress: show a progress bar while structures are refitted through the solver.
        options: further backend options (e.g. ``selection="aic"``, ``max_time=30``).

    Returns:
        a `Distilled`.

    Raises:
        DistillError: ``trained`` is not the result of `symml.train`, its model has no neural
            terms, or ``outputs`` names an output the model does not have.
        UnknownBackendError: ``backend`` names no known backend (a `ValueError`).
        UnknownLibraryError: ``library`` or ``degree`` is not a valid SINDy library (a `ValueError`).
        TypeError: backend ``options`` given together with a ready `Backend` instance.
        BackendUnavailableError: the chosen backend (e.g. PySR) is not installed.

    Examples:
        >>> import numpy as np, sympy as sp, symml as sm
        >>> lv = sm.zoo.lotka_volterra()
        >>> u, v = lv.states
        >>> alpha, beta, delta, gamma = lv.params
        >>> data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 11))
        >>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
        >>> ude = sm.Model([sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
        ...                defaults={alpha: 1.3, gamma: 0.8})
        >>> trained = sm.train(ude, data, optimizer=sm.Adam(steps=20), polish=None, seed=0, verbose=False)
        >>> found = sm.distill(trained, degree=2, validate=False)
        >>> len(found.terms), sorted(map(str, found.terms))
        (2, ['U_0(u(t), v(t))', 'U_1(u(t), v(t))'])
        >>> sm.distill(data)
        Traceback (most recent call last):
            ...
        symml.distill.distilled.DistillError: sm.distill needs the result of sm.train (a Trained), got...
    """

    if not isinstance(trained, Trained):
        raise DistillError(
            f"sm.distill needs the result of sm.train (a Trained), got {type(trained).__name__}. "
            "To fit expressions to arrays use symml.distill.get_backend(name).fit(X, y, inputs); "
            "to find equations straight from data use sm.discover."
        )
    calls = _select(_neural_calls(trained.model), outputs)
    if not calls:
        raise DistillError(f"Model {trained.model.name!r} has no neural terms to distill.")
    if isinstance(backend, str) and backend == "sindy":
        options.setdefault("library", make_library(library, degree))
    be = get_backend(backend, **options)
    linear = bool(getattr(be, "linear", False))
    if validate is None:
        validate = True
    expressions: dict[sp.Expr, Expression] = {}
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    timing: dict[str, float] = {}
    for call in calls:
        spec, k = neural_spec(call)
        if spec.name not in samples:
            start = time.perf_counter()
            samples[spec.name] = trained.network_data(spec.name, points=points)
            timing["sample"] = timing.get("sample", 0.0) + time.perf_counter() - start
        X, Y = samples[spec.name]
        if validate and linear:
            continue
        start = time.perf_counter()
        expressions[call] = be.fit(X, Y[:, k], spec.inputs)
        timing[str(call.func)] = time.perf_counter() - start
        if verbose:
            print(f"  {call} = {round_floats(expressions[call].expr, 4)}  (R2 {expressions[call].r2:.6f})")
    if validate:
        start = time.perf_counter()
        terms, xy = {}, {}
        for c in calls:
            spec, k = neural_spec(c)
            X, Y = samples[spec.name]
            if linear:
                lib = make_library(getattr(be, "library", library), degree)
                terms[c] = list(lib.terms(list(spec.inputs)))
            else:  # the search's Pareto front, simplest first, proposes the terms
                found = expressions[c]
                front = [cand.expr for cand in sorted(found.front, key=lambda cand: cand.complexity)]
                terms[c] = front_terms(front or [found.expr])
            xy[c] = (X, Y[:, k])
        expressions = select_through_solver(trained, calls, terms, xy, max_terms, be.name, verbose, progress)
        timing["validate"] = time.perf_counter() - start
    return Distilled(trained.model, expressions, prefix=prefix, timing=timing, data=trained.data)


class Distilled:
    """The networks of a trained universal ODE as SymPy expressions (see `distill`).

    Attributes:
        terms: ``{U[k]: expression}`` with the fitted ``Float`` constants.
        expressions: ``{U[k]: Expression}``, the backend's result with scores and the
            candidates it chose from.
        model: a symbolic `Model`: the trained model with every network output
            replaced by its expression, each constant a new parameter (``c0, c1, ...``) whose
            default is the fitted value; trained parameters and initial values kept as defaults.
        constants: ``{new parameter: value}``.
        parametrized: ``{U[k]: expression}`` with the new parameters in place of the constants.
        source: the trained model the terms came from.
        data: the training data of ``source``.
        timing: seconds spent sampling the networks and fitting each output.

    Examples:
        >>> import numpy as np, sympy as sp, symml as sm
        >>> lv = sm.zoo.lotka_volterra()
        >>> u, v = lv.states
        >>> alpha, beta, delta, gamma = lv.params
        >>> data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 11))
        >>> U = sm.neural("U", inputs=[u, v], outputs=2, width=8, depth=1)
        >>> ude = sm.Model([sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
        ...                defaults={alpha: 1.3, gamma: 0.8})
        >>> trained = sm.train(ude, data, optimizer=sm.Adam(steps=20), polish=None, seed=0, verbose=False)
        >>> found = sm.distill(trained, degree=2, validate=False)
        >>> type(found).__name__, type(found.model).__name__, found.model.name
        ('Distilled', 'Model', 'model_distilled')
        >>> found.model.neural
        ()
        >>> set(found.constants) == set(found.model.params) - {alpha, gamma}
        True
        >>> sorted(map(str, found.parametrized)) == sorted(map(str, found.terms))
        True
    """

    def __init__(
        self,
        source,
        expressions: Mapping[sp.Expr, Expression],
        prefix: str = "c",
        timing: Mapping[str, float] | None = None,
        data=None,
    ):
        self.source = source
        self.expressions = dict(expressions)
        self.data = data
        self.timing = dict(timing or {})
        self.prefix = prefix
        self.terms = {k: e.expr for k, e in self.expressions.items()}
        self.model, self.constants, self.parametrized = self._build(_free_prefix(source, prefix))

    def _build(self, prefix: str):

        counter = [0]
        constants: dict[sp.Symbol, float] = {}

        def make(_):
            p = Parameter(f"{prefix}{counter[0]}", real=True)
            counter[0] += 1
            return p

        rep = {}
        for call, expr in self.terms.items():
            pexpr, found = parametrize(expr, make)
            rep[call] = pexpr
            constants.update(found)
        eqs = [sp.Eq(eq.lhs, eq.rhs.xreplace(rep)) for eq in self.source.equations]
        defaults = {**self.source.defaults, **constants}
        keep = {p for p in self.source.params if not isinstance(p, Parameter)}
        model = Model(eqs, defaults=defaults, name=f"{self.source.name}_distilled", params=keep or None)
        return model, constants, rep

    @property
    def plain(self):
        """`model` with the constants as plain numbers instead of parameters."""
        return self.model.subs(self.constants)

    def refit(self, data=None, params: Sequence[Any] | None = None, **fit_options: Any):
        """Re-estimate constants through the solver with `symml.fit` (by default every
        parameter of `model`, the known physics included, on the training data).

        Returns the `FitResult`; its ``.model`` is the refitted model.
        """

        data = self.data if data is None else data
        if data is None:
            raise DistillError("refit needs data: this Distilled carries none; pass refit(data).")
        return fit(self.model, data, params=params, **fit_options)

    def report(self, digits: int = 4) -> str:
        """Per term: the expression, R² on the network samples, complexity and backend."""
        lines = [f"Distilled {self.source.name!r} ({len(self.terms)} term(s)):"]
        for call, e in self.expressions.items():
            lines.append(f"  {call} = {round_floats(e.expr, digits)}")
            lines.append(
                f"      R2 = {e.r2:.6f}, MSE = {e.mse:.3g}, complexity {e.complexity}, "
                f"{e.n_samples} samples, backend {e.backend} (selection {e.selection!r})"
            )
        if self.constants:
            shown = ", ".join(f"{k} = {v:.6g}" for k, v in self.constants.items())
            lines.append(f"  new parameters: {shown}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}: {round_floats(e, 4)}" for k, e in self.terms.items())
        return f"Distilled({{{body}}})"

    def save(self, path) -> None:
        """Write to a JSON file (same as ``sm.save(distilled, path)``)."""
        _io.save(self, path)


def _encode(d: Distilled) -> dict:

    return {
        "source": _io.encode_model(d.source),
        "expressions": [[_io.encode_expr(k), encode_expression(e)] for k, e in d.expressions.items()],
        "prefix": d.prefix,
        "timing": {k: float(v) for k, v in d.timing.items()},
    }


def _decode(obj: dict) -> Distilled:

    source = _io.decode_model(obj["source"])
    calls = {str(c.func): c for c in _neural_calls(source)}
    expressions = {}
    for k, e in obj["expressions"]:
        key = _io.decode_expr(k)
        # the decoded call is rebuilt from its spec; use the model's own object so keys match
        expressions[calls.get(str(getattr(key, "func", key)), key)] = decode_expression(e)
    return Distilled(source, expressions, prefix=str(obj["prefix"]), timing=obj.get("timing"))


_io.register("distilled", Distilled, _encode, _decode)
