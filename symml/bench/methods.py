"""Benchmark methods: data in, a fitted `symml.Model` out.

A method is any callable ``method(problem, data, seed)`` returning a Model (or an object
with a ``.model``: a FitResult, a Trained, a Distilled), or an `Outcome` that also
reports the time of each stage. The runner scores whatever comes back by integrating it.

Built-in methods (small frozen dataclasses; change their options by building your own
instance, e.g. ``UdeSindy(steps=300)``, and passing it to `symml.bench.run`):

* ``true_form``: the right equations; every parameter fitted with `symml.fit` from
  values perturbed by up to ±``perturb`` (relative, drawn from the seed).
* ``sindy`` / ``operon``: `symml.discover` with the problem's library, then the
  discovered constants refitted through the solver (when there are at most ``refit_max``).
* ``ude_sindy``: the problem's universal ODE (known physics + network) trained with
  `symml.train`, its network distilled with `symml.distill` (SINDy), and all
  constants refitted (``Distilled.refit``).
* ``ude``: the problem's universal ODE trained as for ``ude_sindy`` and scored as it is,
  network kept (not distilled): what the known physics plus a network gives without symbols.
* ``neural_ode``: a network for the whole right-hand side (`Problem.neural_model`),
  trained with `symml.train`; no symbols.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._declare._model import Model
from .._discover._discover import discover
from .._fit._fit import fit
from .._train import LBFGS, Adam, train
from ..distill import distill
from ..errors import SymmlError, UnknownNameError, suggest
from .problems import BenchError

__all__ = [
    "Outcome",
    "Method",
    "TrueForm",
    "Sindy",
    "Operon",
    "UdeSindy",
    "UniversalODE",
    "NeuralODE",
    "register_method",
    "methods",
    "get_method",
    "method_name",
]


@dataclasses.dataclass
class Outcome:
    """What a method returns when it wants to report more than the model.

    Attributes:
        model: the recovered model (symbolic, or with trained networks).
        stages: seconds per stage, e.g. ``{"fit": 1.2}`` (names: fit, train, distill, refit).
        n_params: number of fitted parameters (default: the model's parameters plus weights).
        symbolic: whether structure metrics apply (default: the model has no networks).
        note: a short remark for the results (e.g. why a refit was skipped).
    """

    model: Model
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    n_params: int | None = None
    symbolic: bool | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Method:
    """A user method registered by `register_method`: ``fn(problem, data, seed)``."""

    name: str
    fn: Callable[..., Any]

    def __call__(self, problem, data, seed: int):
        return self.fn(problem, data, seed)


class _Clock:
    def __init__(self):
        self.stages: dict[str, float] = {}

    def __call__(self, name: str):
        clock = self

        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                clock.stages[name] = clock.stages.get(name, 0.0) + time.perf_counter() - self.t0
                return False

        return _Stage()


def _refit(model: Model, data, refit_max: int, clock: _Clock) -> tuple[Model, str]:

    if not model.params:
        return model, ""
    if len(model.params) > refit_max:
        return model, f"refit skipped ({len(model.params)} constants > refit_max={refit_max})"
    try:
        with clock("refit"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, data)
    except SymmlError as err:
        return model, f"refit failed: {str(err).splitlines()[0]}"
    if not np.isfinite(res.loss):
        return model, "refit failed: non-finite loss"
    return res.model, ""


@dataclasses.dataclass(frozen=True)
class TrueForm:
    """``true_form``: the right equations, parameters fitted from perturbed starting values."""

    name: str = "true_form"
    perturb: float = 0.3

    def __call__(self, problem, data, seed: int) -> Outcome:

        rng = np.random.default_rng(seed)
        model = problem.model
        start = {}
        for p in model.params:
            v = float(model.defaults.get(p, 1.0))
            start[p] = v * (1.0 + self.perturb * rng.uniform(-1.0, 1.0)) if v != 0 else 0.1
        clock = _Clock()
        with clock("fit"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, data, params=start)
        return Outcome(res.model, clock.stages, n_params=len(start), symbolic=True)


@dataclasses.dataclass(frozen=True)
class Sindy:
    """``sindy``: sparse regression on the problem's library (`symml.discover`), then a refit."""

    name: str = "sindy"
    refit: bool = True
    refit_max: int = 12

    def discover(self, problem, data, seed: int) -> Model:

        if problem.library is not None:
            return discover(data, backend="sindy", library=problem.library)
        return discover(data, backend="sindy", degree=problem.degree)

    def __call__(self, problem, data, seed: int) -> Outcome:
        clock = _Clock()
        with clock("fit"):
            model = self.discover(problem, data, seed)
        note = ""
        if self.refit:
            model, note = _refit(model, data, self.refit_max, clock)
        return Outcome(model, clock.stages, symbolic=True, note=note)


@dataclasses.dataclass(frozen=True)
class Operon(Sindy):
    """``operon``: symbolic regression with pyoperon (`symml.discover`), the members of each
    Pareto front chosen through the solver (``select="solver"``), then a refit."""

    name: str = "operon"
    max_time: float = 20.0
    generations: int = 50

    def discover(self, problem, data, seed: int) -> Model:

        return discover(
            data,
            backend="operon",
            select="solver",
            max_time=self.max_time,
            generations=self.generations,
            random_state=seed,
        )


def _train_ude(problem, data, seed: int, steps: int, polish: int, clock: _Clock):

    if problem.ude is None:
        raise BenchError(f"Problem {problem.name!r} defines no universal ODE (ude=...) for this method.")
    with clock("train"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phases = dict(optimizer=Adam(steps=steps), polish=LBFGS(steps=polish))
        return train(problem.ude, data, **phases, seed=seed, verbose=False)


@dataclasses.dataclass(frozen=True)
class UdeSindy:
    """``ude_sindy``: train the problem's universal ODE, distill its network, refit.

    ``refit_known=False`` refits only the constants distillation found and keeps the known
    physics as declared (as ``symml demo`` does: on few noisy points, refitting both inflates
    every standard error).
    """

    name: str = "ude_sindy"
    steps: int = 1500
    polish: int = 300
    distill_options: tuple = ()
    refit_known: bool = True

    def __call__(self, problem, data, seed: int) -> Outcome:

        clock = _Clock()
        trained = _train_ude(problem, data, seed, self.steps, self.polish, clock)
        options = dict(self.distill_options)
        if problem.library is not None and "library" not in options:
            options["library"] = problem.library
        elif "library" not in options:
            options["degree"] = problem.degree
        with clock("distill"):
            found = distill(trained, backend="sindy", **options)
        note = ""
        try:
            with clock("refit"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.refit_known:
                    model = found.refit(data).model
                else:
                    model = found.refit(data, params=list(found.constants), weights="relative").model
        except SymmlError as err:
            model, note = found.model, f"refit failed: {str(err).splitlines()[0]}"
        return Outcome(model, clock.stages, symbolic=True, note=note)


@dataclasses.dataclass(frozen=True)
class UniversalODE:
    """``ude``: the problem's universal ODE, trained, scored with its network (no distillation)."""

    name: str = "ude"
    steps: int = 1500
    polish: int = 300

    def __call__(self, problem, data, seed: int) -> Outcome:

        clock = _Clock()
        trained = _train_ude(problem, data, seed, self.steps, self.polish, clock)
        return Outcome(trained.model, clock.stages, symbolic=False)


@dataclasses.dataclass(frozen=True)
class NeuralODE:
    """``neural_ode``: a network for the whole right-hand side, trained through the solver."""

    name: str = "neural_ode"
    steps: int = 1500
    polish: int = 300
    width: int = 32
    depth: int = 2

    def __call__(self, problem, data, seed: int) -> Outcome:

        clock = _Clock()
        with clock("train"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trained = train(
                problem.neural_model(self.width, self.depth),
                data,
                optimizer=Adam(steps=self.steps),
                polish=LBFGS(steps=self.polish),
                seed=seed,
                verbose=False,
            )
        return Outcome(trained.model, clock.stages, symbolic=False)


_BUILTIN: dict[str, Any] = {
    "true_form": TrueForm(),
    "sindy": Sindy(),
    "operon": Operon(),
    "ude_sindy": UdeSindy(),
    "ude": UniversalODE(),
    "neural_ode": NeuralODE(),
}
_CUSTOM: dict[str, Any] = {}


def register_method(name: str, fn: Callable[..., Any]) -> Method:
    """Register ``fn(problem, data, seed) -> Model | Outcome`` under ``name``; returns the Method.

    >>> from symml.bench import register_method, methods
    >>> _ = register_method("truth", lambda problem, data, seed: problem.model)
    >>> "truth" in methods()
    True
    """
    if not isinstance(name, str) or not name.strip() or "," in name:
        raise BenchError(f"A method name must be a non-empty string without commas; got {name!r}.")
    if not callable(fn):
        raise BenchError(f"register_method needs a callable (problem, data, seed) -> Model; got {fn!r}.")
    method = Method(name, fn)
    _CUSTOM[name] = method
    return method


def methods() -> tuple[str, ...]:
    """Names of every available method (built-in first, then registered)."""
    return tuple(dict.fromkeys([*_BUILTIN, *_CUSTOM]))


def method_name(method: Any) -> str:
    """The name a method is recorded under."""
    return getattr(method, "name", None) or getattr(method, "__name__", None) or type(method).__name__


def get_method(spec: Any) -> Any:
    """The method called ``spec`` (a callable passes through)."""
    if isinstance(spec, str):
        if spec in _CUSTOM:
            return _CUSTOM[spec]
        if spec in _BUILTIN:
            return _BUILTIN[spec]
        raise UnknownNameError(
            f"No benchmark method named {spec!r}; available: {', '.join(methods())}. Register your own "
            "with symml.bench.register_method(name, fn)." + suggest(spec, methods())
        )
    if callable(spec):
        return spec
    raise BenchError(f"A method is a name or a callable (problem, data, seed) -> Model; got {spec!r}.")
