"""Benchmark problems: a ground-truth Model with its windows, initial values and hints.

A `Problem` says everything a benchmark run needs about one system: the true model
(parameter defaults are the truth), the initial values of the training trajectory, the
training window (where the data are sampled) and a later extrapolation window, a second
initial condition for generalisation, which states are observed, the SINDy library that
suits the system, and the universal ODE used by the ``ude_sindy`` method (known physics
plus a network). Built-in problems are created on first use; `register_problem`
adds your own.

>>> import symml as sm
>>> from symml.bench import problems, get_problem
>>> "lotka_volterra" in problems()
True
>>> p = get_problem("pendulum")
>>> p.train, p.extrapolate
((0.0, 10.0), (10.0, 20.0))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from .. import zoo
from .._declare._model import Model
from .._declare._symbols import neural, state_name, t
from ..distill.library import Polynomial, Trig
from ..errors import SymmlError, UnknownNameError, suggest

__all__ = ["BenchError", "Problem", "register_problem", "problems", "get_problem", "make_problem"]


class BenchError(SymmlError, ValueError):
    """A benchmark cannot be set up: bad noise levels, seeds, windows or options."""


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """One benchmark system (build it with `make_problem` or `register_problem`).

    Attributes:
        name: the problem's name in results and reports.
        model: the ground truth (its defaults hold the true parameters and initial values).
        ics: initial values of the training trajectory ``{state name: value}``.
        train: ``(t0, t1)``, the window the data are sampled in.
        extrapolate: ``(t1, t2)``, the later window the recovered model is scored on.
        new_ics: a second initial condition ``{state name: value}`` (scored over ``train``).
        observe: names of the observed states (all states by default).
        samples: number of samples in the training window.
        library: the SINDy library for ``sindy``/``ude_sindy`` (None: polynomials of ``degree``).
        degree: polynomial degree of the default library.
        ude: the universal ODE for ``ude_sindy`` (known physics + ``sm.neural`` terms), or None.
        description: one line for the report.
        random_ics: ``(low, high)``: each seed draws the training initial values uniformly from
            this box (`for_seed`) instead of using ``ics``; None keeps ``ics`` for every seed.
    """

    name: str
    model: Model
    ics: Mapping[str, float]
    train: tuple[float, float]
    extrapolate: tuple[float, float]
    new_ics: Mapping[str, float]
    observe: tuple[str, ...]
    samples: int = 101
    library: Any = None
    degree: int = 3
    ude: Model | None = None
    description: str = ""
    random_ics: tuple[float, float] | None = None

    def for_seed(self, seed: int) -> Problem:
        """The problem as run with ``seed``: itself, or with initial values drawn for that seed.

        The draw uses its own stream of the seed (not the noise's), so it is the same on any
        worker and independent of the noise level.
        """
        if self.random_ics is None:
            return self
        low, high = self.random_ics
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1C5]))
        drawn = {k: float(v) for k, v in zip(self.ics, rng.uniform(low, high, size=len(self.ics)))}
        return dataclasses.replace(self, ics=drawn, random_ics=None)

    @property
    def times(self) -> np.ndarray:
        """Sample times of the training data."""
        return np.linspace(self.train[0], self.train[1], self.samples)

    def neural_model(self, width: int = 32, depth: int = 2) -> Model:
        """A network-only model: each highest derivative is the output of one MLP of all states.

        Lower derivatives stay kinematic (``x' = v`` is a definition, not physics).
        """
        bases = [s for s in self.model.states if not isinstance(s, sp.Derivative)]
        lhs = []
        for b in bases:
            n = 1 + sum(1 for s in self.model.states if isinstance(s, sp.Derivative) and s.args[0] == b)
            lhs.append(b.diff(t, n))
        U = neural("N", inputs=list(self.model.states), outputs=len(lhs), width=width, depth=depth)
        eqs = [sp.Eq(d, U[i]) for i, d in enumerate(lhs)]
        defaults = {s: v for s, v in self.model.defaults.items() if s in self.model.states}
        return Model(eqs, defaults=defaults, name=f"{self.name}_neural")


def _names(model: Model, values: Mapping[Any, float] | None, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in (values or {}).items():
        key = model.lookup(k)
        if key not in model.states:
            raise BenchError(f"{what} must name states of {model.name!r}; {k!r} is a parameter.")
        out[state_name(key)] = float(v)
    return out


def _window(w: Any, what: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in w)
    except (TypeError, ValueError):
        raise BenchError(f"{what} must be a pair (t_start, t_end); got {w!r}.") from None
    if not (np.isfinite(a) and np.isfinite(b) and b > a):
        raise BenchError(f"{what} must be finite with t_end > t_start; got {w!r}.")
    return a, b


def make_problem(
    name: str,
    model: Model,
    ics: Mapping[Any, float] | None = None,
    train: tuple[float, float] = (0.0, 10.0),
    extrapolate: tuple[float, float] | None = None,
    new_ics: Mapping[Any, float] | None = None,
    *,
    observe: Sequence[Any] | None = None,
    samples: int = 101,
    library: Any = None,
    degree: int = 3,
    ude: Model | None = None,
    description: str = "",
    random_ics: tuple[float, float] | None = None,
) -> Problem:
    """Build a `Problem` (see its attributes); values are checked and keyed by name.

    ``ics`` defaults to the model's initial values; ``extrapolate`` to a window as long as
    ``train`` right after it; ``new_ics`` to the training values scaled by 0.8.
    """
    if not isinstance(model, Model):
        raise BenchError(f"A problem needs a symml Model; got {type(model).__name__}.")
    if model.neural:
        raise BenchError(f"The ground truth of problem {name!r} must be symbolic; it has neural terms.")
    train = _window(train, "train")
    if extrapolate is None:
        extrapolate = (train[1], 2 * train[1] - train[0])
    extrapolate = _window(extrapolate, "extrapolate")
    if extrapolate[0] < train[1]:
        raise BenchError(
            f"extrapolate {extrapolate} must start at or after the training window's end {train[1]}."
        )
    base = {state_name(s): float(model.defaults[s]) for s in model.states if s in model.defaults}
    base.update(_names(model, ics, "ics"))
    missing = [state_name(s) for s in model.states if state_name(s) not in base]
    if missing:
        raise BenchError(f"Problem {name!r} has no initial value for {', '.join(missing)}; pass ics={{...}}.")
    if new_ics is None:
        new = {k: 0.8 * v for k, v in base.items()}
    else:
        new = dict(base)
        new.update(_names(model, new_ics, "new_ics"))
    obs = tuple(state_name(model.lookup(k)) for k in observe) if observe else tuple(base)
    if int(samples) < 5:
        raise BenchError(f"samples must be at least 5, got {samples!r}.")
    if ude is not None and not (isinstance(ude, Model) and ude.neural):
        raise BenchError(f"ude of problem {name!r} must be a Model with sm.neural terms.")
    box = None
    if random_ics is not None:
        try:
            box = (float(random_ics[0]), float(random_ics[1]))
        except (TypeError, ValueError, IndexError):
            box = None
        if box is None or len(random_ics) != 2 or not (np.isfinite(box).all() and box[1] > box[0]):
            raise BenchError(
                f"random_ics must be a box (low, high) with finite low < high; got {random_ics!r}."
            )
    return Problem(
        name=name,
        model=model,
        ics=base,
        train=train,
        extrapolate=extrapolate,
        new_ics=new,
        observe=obs,
        samples=int(samples),
        library=library,
        degree=int(degree),
        ude=ude,
        description=description,
        random_ics=box,
    )


# ----------------------------------------------------------------------------- built-in problems


def _param(model: Model, name: str) -> sp.Symbol:
    """The parameter called ``name`` of a zoo model (`Model.lookup` also finds states)."""
    p = model.lookup(name)
    if not isinstance(p, sp.Symbol):
        raise BenchError(f"{name!r} names the state {p} of {model.name!r}, not a parameter.")
    return p


def _lotka_volterra() -> Problem:
    model = zoo.lotka_volterra()
    u, v = model.states
    a, c = _param(model, "alpha"), _param(model, "gamma")
    U = neural("U", inputs=[u, v], outputs=2, width=32, depth=2)
    ude = Model(
        [sp.Eq(u.diff(t), a * u + U[0]), sp.Eq(v.diff(t), -c * v + U[1])],
        defaults={a: 1.3, c: 0.8, u: model.defaults[u], v: model.defaults[v]},
        name="lotka_volterra_ude",
    )
    return make_problem(
        "lotka_volterra",
        model,
        train=(0, 10),
        extrapolate=(10, 20),
        new_ics={u: 1.0, v: 2.0},
        degree=2,
        ude=ude,
        description="predator-prey; the network learns the interaction terms",
    )


def _pendulum() -> Problem:

    model = zoo.pendulum(theta0=2.0)
    th, w = model.states
    U = neural("U", inputs=[th], outputs=1, width=32, depth=2)
    ude = Model([sp.Eq(th.diff(t, 2), U[0])], defaults={th: 2.0, w: 0.0}, name="pendulum_ude")
    return make_problem(
        "pendulum",
        model,
        train=(0, 10),
        extrapolate=(10, 20),
        new_ics={th: 2.5, w: 0.0},
        library=Polynomial(2) + Trig(),
        ude=ude,
        description="large-amplitude pendulum (theta0 = 2 rad); the network learns the restoring force",
    )


def _projectile(drag: str) -> Problem:
    model = zoo.projectile(drag=drag)
    x, y, vx, vy = model.states
    g = _param(model, "g")
    U = neural("U", inputs=[vx, vy], outputs=2, width=32, depth=2)
    ude = Model(
        [sp.Eq(x.diff(t, 2), U[0]), sp.Eq(y.diff(t, 2), -g + U[1])],
        defaults={g: 9.81, **{s: model.defaults[s] for s in model.states}},
        name=f"projectile_{drag}_ude",
    )
    speed = 12.0 / np.sqrt(2.0)
    return make_problem(
        f"projectile_{drag}",
        model,
        train=(0, 1.5),
        extrapolate=(1.5, 2.5),
        new_ics={vx: speed, vy: speed},
        samples=61,
        degree=2,
        ude=ude,
        description=f"shot put with {drag} drag; gravity known, the network learns the drag",
    )


def _duffing() -> Problem:
    model = zoo.duffing(form="real")
    (q, qt) = model.states
    w0, gam, f, w = (_param(model, n) for n in ("omega0", "gamma", "f", "omega"))
    U = neural("U", inputs=[q], outputs=1, width=32, depth=2)
    ude = Model(
        [sp.Eq(q.diff(t, 2), f * sp.cos(w * t) - gam * q.diff(t) - w0**2 * q + U[0])],
        defaults={w0: 1.0, gam: 0.1, f: 0.3, w: 1.2, q: 1.0, qt: 0.0},
        name="duffing_ude",
    )
    return make_problem(
        "duffing",
        model,
        ics={q: 1.0, qt: 0.0},
        train=(0, 20),
        extrapolate=(20, 40),
        new_ics={q: -0.5, qt: 0.5},
        samples=201,
        degree=3,
        ude=ude,
        description="driven Duffing oscillator (real form); the network learns the cubic stiffness; "
        "the drive cos(omega t) is outside a polynomial library",
    )


def _van_der_pol() -> Problem:
    model = zoo.van_der_pol(mu=1.0)
    x, xt = model.states
    U = neural("U", inputs=[x, xt], outputs=1, width=32, depth=2)
    ude = Model([sp.Eq(x.diff(t, 2), -x + U[0])], defaults={x: 2.0, xt: 0.0}, name="van_der_pol_ude")
    return make_problem(
        "van_der_pol",
        model,
        train=(0, 15),
        extrapolate=(15, 30),
        new_ics={x: 0.5, xt: 0.0},
        samples=151,
        degree=3,
        ude=ude,
        description="Van der Pol (mu = 1); the network learns the damping",
    )


def _lorenz() -> Problem:
    model = zoo.lorenz()
    x, y, z = model.states
    s, b = _param(model, "sigma"), _param(model, "beta")
    U = neural("U", inputs=[x, y, z], outputs=2, width=32, depth=2)
    ude = Model(
        [sp.Eq(x.diff(t), s * (y - x)), sp.Eq(y.diff(t), -y + U[0]), sp.Eq(z.diff(t), -b * z + U[1])],
        defaults={s: 10.0, b: 8.0 / 3.0, x: 1.0, y: 1.0, z: 1.0},
        name="lorenz_ude",
    )
    return make_problem(
        "lorenz",
        model,
        train=(0, 5),
        extrapolate=(5, 6),
        new_ics={x: -8.0, y: 7.0, z: 27.0},
        samples=501,
        degree=2,
        ude=ude,
        description="Lorenz (chaotic: extrapolation is only meaningful over about one Lyapunov time)",
    )


def _lotka_volterra_sparse() -> Problem:
    # the universal ODE of the README and `symml demo` (docs/problems.md §3): 21 points on [0, 5]
    lv = _lotka_volterra()
    u, v = lv.model.states
    return make_problem(
        "lotka_volterra_sparse",
        lv.model,
        train=(0, 5),
        extrapolate=(5, 20),
        new_ics={u: 1.0, v: 2.0},
        samples=21,
        degree=4,
        ude=lv.ude,
        random_ics=(0.5, 5.0),
        description="the README universal ODE: 21 points on [0, 5], initial values from [0.5, 5]^2 per seed",
    )


_BUILTIN: dict[str, Callable[[], Problem]] = {
    "lotka_volterra": _lotka_volterra,
    "pendulum": _pendulum,
    "projectile_stokes": lambda: _projectile("stokes"),
    "projectile_newton": lambda: _projectile("newton"),
    "duffing": _duffing,
    "van_der_pol": _van_der_pol,
    "lorenz": _lorenz,
    "lotka_volterra_sparse": _lotka_volterra_sparse,
}
_CUSTOM: dict[str, Problem] = {}
_CACHE: dict[str, Problem] = {}


def is_builtin(name: str) -> bool:
    """True for a built-in problem name that no registration has replaced."""
    return name in _BUILTIN and name not in _CUSTOM


def register_problem(
    name: str, model: Model, ics: Mapping[Any, float] | None = None, **kwargs: Any
) -> Problem:
    """Register a problem under ``name`` (arguments as `make_problem`); returns it.

    >>> import sympy as sp, symml as sm
    >>> from symml.bench import register_problem
    >>> x, = sm.states("x"); k, = sm.parameters("k", positive=True)
    >>> decay = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0})
    >>> register_problem("decay", decay, train=(0, 4), extrapolate=(4, 8), new_ics={x: 1.0}).observe
    ('x',)
    """
    if not isinstance(name, str) or not name.strip() or "," in name:
        raise BenchError(f"A problem name must be a non-empty string without commas; got {name!r}.")
    problem = make_problem(name, model, ics, **kwargs)
    _CUSTOM[name] = problem
    return problem


def problems() -> tuple[str, ...]:
    """Names of every available problem (built-in first, then registered)."""
    return tuple(dict.fromkeys([*_BUILTIN, *_CUSTOM]))


def get_problem(name: Any) -> Problem:
    """The problem called ``name`` (a `Problem` passes through)."""
    if isinstance(name, Problem):
        return name
    if name in _CUSTOM:
        return _CUSTOM[name]
    if name in _BUILTIN:
        if name not in _CACHE:
            _CACHE[name] = _BUILTIN[name]()
        return _CACHE[name]
    raise UnknownNameError(
        f"No benchmark problem named {name!r}; available: {', '.join(problems())}. Register your own "
        "with symml.bench.register_problem(name, model, ...)." + suggest(str(name), problems())
    )


def parameter_count(model: Model) -> int:
    """Parameters plus network weights of ``model``."""
    import equinox as eqx
    import jax

    n = len(model.params)
    for net in model.networks.values():
        n += sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_inexact_array)))
    return n
