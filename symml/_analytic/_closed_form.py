"""Closed forms: analytic solutions found within a time budget, verified, evaluated through JAX.

``solve_analytic`` asks SymPy for the solution of a model: single ODEs of any order that SymPy
can solve, and coupled *linear* systems with constant coefficients (decoupled into blocks
first; each coupled block by ``dsolve``, by elimination to one scalar ODE, or by the matrix
exponential). All SymPy work runs in a separate worker process under a hard budget
(`symml._worker`), so a hopeless ``dsolve`` never hangs the caller. Every solution is
checked by substitution into the equations (symbolically, or at random points in 30-digit
arithmetic where simplification is inconclusive) before it is returned.

>>> import sympy as sp, symml as sm
>>> osc = sm.zoo.pendulum(small_angle=True)
>>> theta, omega = osc.states
>>> g, l = osc.params
>>> th0, = sm.parameters("theta_0")
>>> sol = sm.solve_analytic(osc, ics={theta: th0, omega: 0})
>>> sol[theta]
theta_0*cos(sqrt(g)*t/sqrt(l))
>>> sol.trajectory([0.0, 1.0], params={th0: 0.1}).y.shape
(2, 2)

Derived quantities (eliminating ``t``, solving a solution for a time or a quantity in closed
form, compiling any closed form to JAX) are in `symml._analytic._derived` and re-exported here.
"""

from __future__ import annotations

import time
import types
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._compile._cache import artefact, peek
from .._declare._bind import stack
from .._declare._model import Model
from .._declare._symbols import base_state, derivative_order, state_name, t
from .._trajectory import Trajectory
from ..errors import MissingValueError, UnknownNameError, suggest
from . import _derived
from . import _routes as _symbolic
from ._bridge import NoClosedForm, _call, _odes, _Plain
from ._derived import ExprFunction, eliminate_t, roots, to_jax
from ._evaluate import ClosedForm

__all__ = [
    "NoClosedForm",
    "AnalyticSolution",
    "solve_analytic",
    "AUTO_TIMEOUT",
    "ANALYTIC_TIMEOUT",
    "eliminate_t",
    "roots",
    "to_jax",
    "ExprFunction",
    "ClosedForm",
    "structure",
    "FlowRecord",
    "flow_record",
]

#: Seconds of SymPy work ``simulate(method="auto")`` may spend on a model (once: the outcome
#: is cached). Models that fail the structural pre-checks (nonlinear, neural) spend nothing.
AUTO_TIMEOUT = 2.0
#: Seconds ``simulate(method="analytic")`` may spend finding the closed form.
ANALYTIC_TIMEOUT = 10.0

# ----------------------------------------------------------------------------- general solution

# Outcomes by ODE system (shared by every model with the same equations; a model's defaults
# and name do not matter): (status, payload or message, budget it was given).
_GENERAL: dict[tuple, tuple[str, Any, float]] = {}
# Solutions with initial values, by (ODE system, initial values, t0).
_WITH_ICS: dict[tuple, dict] = {}
_CACHE_SIZE = 256


def _remember(cache: dict, key, value) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _general_solution(model: Model, budget: float):
    """``(payload, plain, odes)`` of the general solution, or raise `NoClosedForm`."""
    if model.neural:
        raise NoClosedForm(
            f"model {model.name!r} has neural terms ({', '.join(s.name for s in model.neural)}); "
            "closed forms need a purely symbolic model (distill the networks first).",
            "no_method",
        )
    plain = _Plain()
    odes = _odes(model, plain)
    key = tuple(odes)
    rec = _GENERAL.get(key)
    if rec is not None:
        status, payload, used = rec
        if status == "ok":
            return payload, plain, odes
        if status != "timeout" or used >= budget:
            raise NoClosedForm(f"model {model.name!r}: {payload}", status)
    try:
        payload = _call("general_solution", (odes, t), budget, f"model {model.name!r}")
    except NoClosedForm as err:
        if err.reason != "crashed":  # a dead worker says nothing about the equations
            _remember(_GENERAL, key, (err.reason, str(err).split(": ", 1)[-1], budget))
        raise
    _remember(_GENERAL, key, ("ok", payload, budget))
    record = peek(model, "structure", "flow_record")
    if record is not None:  # an earlier failure (e.g. a shorter budget) no longer holds
        record.failure = None
    return payload, plain, odes


class FlowRecord:
    """What ``simulate(method="auto")`` learnt about a model's closed form, kept in the artefact
    cache: the last failure as ``(message, reason, budget it was given)`` (no exception object:
    its traceback would hold the model alive), how many flow maps were built, and whether the
    model is autonomous (one flow for every initial time; ``None`` until known)."""

    __slots__ = ("failure", "built", "autonomous")

    def __init__(self) -> None:
        self.failure: tuple[str, str, float] | None = None
        self.built = 0
        self.autonomous: bool | None = None

    def error(self) -> NoClosedForm:
        """The recorded failure as a fresh `NoClosedForm`."""
        message, reason, _ = self.failure or ("no closed form recorded", "no_method", 0.0)
        return NoClosedForm(message, reason)


def flow_record(model: Model) -> FlowRecord:
    """The `FlowRecord` of ``model`` (a new, empty one the first time)."""
    return artefact(model, "structure", "flow_record", FlowRecord)


def structure(model: Model) -> dict:
    """Cheap structural facts (no SymPy solving): ``linear``, ``constant`` coefficients,
    block sizes after decoupling, ``order``, ``autonomous``.

    >>> import symml as sm
    >>> structure(sm.zoo.projectile())["components"]
    [1, 1]
    >>> structure(sm.zoo.pendulum())["linear"]
    False
    """
    return artefact(model, "structure", "classify", lambda: _symbolic.classify(_odes(model, _Plain()), t))


# ----------------------------------------------------------------------------- the solution


class AnalyticSolution:
    """A verified closed-form solution of a `Model`.

    Attributes:
        model: the model solved.
        exprs: ``{state: SymPy expression in t}`` for every state in ``model.states``
            (derivative states included).
        constants: integration constants (``C1, C2, ...``) of a general solution (empty when
            initial values were given).
        ics: the initial values used (``{state: value}`` at ``t0``), or ``None``.
        t0: the initial time.
        method: the route that found it (e.g. ``"dsolve (nth_linear_constant_coeff_homogeneous)"``).
        verified: ``"symbolic"`` (the residual simplifies to 0) or ``"numeric"`` (zero at random
            points in 30-digit arithmetic).
        symbols: every symbol the expressions depend on besides ``t`` (parameters, symbolic
            initial values, constants), sorted by name.

    Build with `solve_analytic`.

    Examples:
        >>> import symml as sm
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> sol = sm.solve_analytic(ho, ics={x: 1, v: 0})
        >>> sol[x]
        cos(sqrt(k)*t/sqrt(m))
        >>> sol.verified, sol.parameters
        ('symbolic', (k, m))
        >>> traj = sol.trajectory([0.0, 1.0])  # k = 4, m = 1 from the defaults
        >>> [round(float(y), 4) for y in traj.y[:, 0]], traj.method
        ([1.0, -0.4161], 'analytic')
    """

    __slots__ = ("model", "exprs", "constants", "ics", "t0", "method", "verified", "symbols", "_evaluator")

    def __init__(self, model, exprs, *, constants=(), ics=None, t0: Any = 0, method="", verified="symbolic"):
        set_ = object.__setattr__
        set_(self, "model", model)
        set_(self, "exprs", types.MappingProxyType(dict(exprs)))
        set_(self, "constants", tuple(constants))
        set_(self, "ics", None if ics is None else types.MappingProxyType(dict(ics)))
        set_(self, "t0", sp.sympify(t0))
        set_(self, "method", method)
        set_(self, "verified", verified)
        free = set()
        for e in self.exprs.values():
            free |= e.free_symbols
        free.discard(t)
        set_(self, "symbols", tuple(sorted(free, key=lambda s: s.name)))
        set_(self, "_evaluator", None)

    def __setattr__(self, key, value):
        raise AttributeError(f"AnalyticSolution is immutable (tried to set {key})")

    # ------------------------------------------------------------------ access
    def __getitem__(self, key) -> sp.Expr:
        """The closed form of a state, by symbol (``x``, ``x.diff(t)``) or name (``"x_t"``)."""
        return self.exprs[self.model.lookup(key) if isinstance(key, str) else sp.sympify(key)]

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Symbols other than the integration constants (model parameters, symbolic ics)."""
        return tuple(s for s in self.symbols if s not in self.constants)

    def _resolve(self, key) -> sp.Symbol:
        if isinstance(key, str):
            for s in self.symbols:
                if s.name == key:
                    return s
            try:
                found = self.model.lookup(key)
            except UnknownNameError:
                found = None
            if found is not None and found in self.model.params:
                return found
            names = [s.name for s in self.symbols]
            raise UnknownNameError(
                f"{key!r} is not a symbol of this solution (symbols: {', '.join(names) or 'none'})."
                + suggest(key, names)
            )
        key = sp.sympify(key)
        if key in self.symbols or key in self.model.params:
            return key
        raise UnknownNameError(
            f"{key} is not a symbol of this solution (symbols: "
            f"{', '.join(s.name for s in self.symbols) or 'none'})."
        )

    def values(self, params: Mapping[Any, Any] | None = None) -> dict[sp.Symbol, Any]:
        """Values for `symbols` and the model's parameters: defaults overridden by
        ``params`` (by symbol or name). Raises `MissingValueError` for any left free."""
        vals: dict[sp.Symbol, Any] = {p: v for p, v in self.model.defaults.items() if p in self.model.params}
        for k, v in (params or {}).items():
            vals[self._resolve(k)] = v
        missing = [s for s in list(self.symbols) + list(self.model.params) if s not in vals]
        if missing:
            names = list(dict.fromkeys(s.name for s in missing))
            hint = ", ".join(f"{n}: ..." for n in names)
            raise MissingValueError(
                f"No value for {', '.join(names)}: pass params={{{hint}}}"
                " (model parameters without defaults, symbolic initial values and integration "
                "constants all need values to evaluate a closed form)."
            )
        return vals

    # ------------------------------------------------------------------ evaluation
    def _compiled(self) -> tuple[ClosedForm, tuple[sp.Symbol, ...], Any]:
        # Compiled on first evaluation, then kept on this (otherwise immutable) solution.
        got = self._evaluator
        if got is None:
            syms = tuple(dict.fromkeys(list(self.model.params) + list(self.symbols)))
            cf = ClosedForm.build([self.exprs[s] for s in self.model.states], syms, title=self.model.name)
            got = (cf, syms, jax.jit(_evaluate, static_argnums=(0,)))
            object.__setattr__(self, "_evaluator", got)
        return got

    def trajectory(self, ts, params: Mapping[Any, Any] | None = None):
        """Evaluate the closed form at times ``ts``: a `Trajectory` (as from
        ``simulate``, with ``method="analytic"``). Differentiable, jit- and vmap-able.

        ``params`` binds parameters, symbolic initial values and constants by symbol or name
        (model defaults fill the rest); arrays of length N give an ensemble of N.
        """
        cf, syms, runner = self._compiled()
        vals = self.values(params)
        P, batch = stack([vals[s] for s in syms])
        ts = jnp.asarray(ts, dtype=jnp.result_type(float))
        if ts.ndim != 1:
            raise ValueError(f"ts must be a 1-D array of times, got shape {ts.shape}")
        y = runner(cf, ts, P)
        idx = [syms.index(p) for p in self.model.params]
        p = P[..., jnp.asarray(idx, dtype=int)] if idx else jnp.zeros(batch + (0,))
        return Trajectory(t=ts, y=y, p=p, model=self.model, method="analytic")

    # ------------------------------------------------------------------ new solutions
    def with_ics(self, ics, timeout: float = 10.0, t0=0) -> AnalyticSolution:
        """This (general) solution with its constants fixed by ``ics`` (see `solve_analytic`)."""
        return solve_analytic(self.model, ics=ics, timeout=timeout, t0=t0)

    def subs(self, values: Mapping[Any, Any]) -> AnalyticSolution:
        """A new solution with symbols replaced (values or expressions), by symbol or name."""
        rep = {self._resolve(k): sp.sympify(v) for k, v in values.items()}
        exprs = {s: e.xreplace(rep) for s, e in self.exprs.items()}
        ics = None if self.ics is None else {s: sp.sympify(v).xreplace(rep) for s, v in self.ics.items()}
        return AnalyticSolution(
            self.model,
            exprs,
            constants=[c for c in self.constants if c not in rep],
            ics=ics,
            t0=self.t0.xreplace(rep),
            method=self.method,
            verified=self.verified,
        )

    # ------------------------------------------------------------------ derived quantities
    def eliminate_t(self, x, y, timeout: float = 10.0) -> sp.Expr:
        """``y`` as a function of ``x`` (the state ``x`` stands for its value); see
        `symml._analytic.eliminate_t`."""
        return _derived.eliminate_t(self, x, y, timeout=timeout)

    def when(
        self, expr, value=0, *, timeout: float = 10.0, at=None, exclude_t0: bool = True
    ) -> list[sp.Expr]:
        """Closed-form times at which ``expr`` (of states, parameters, t) equals ``value``;
        see `symml._analytic.when`."""
        return _derived.when(self, expr, value, timeout=timeout, at=at, exclude_t0=exclude_t0)

    def at(self, time_, timeout: float = 5.0) -> dict[sp.Expr, sp.Expr]:
        """``{state: closed form at t = time_}`` (simplified within ``timeout``)."""
        return _derived.at(self, time_, timeout=timeout)

    # ------------------------------------------------------------------ printing
    def latex(self) -> str:
        lines = [f"{sp.latex(s)} &= {sp.latex(self.exprs[s])}" for s in self.model.states]
        return "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$" + self.latex() + "$"

    def __repr__(self) -> str:
        head = f"AnalyticSolution of {self.model.name!r} ({self.method}; verified {self.verified})"
        lines = [head]
        for s in self.model.states:
            lines.append(f"  {state_name(s)}(t) = {self.exprs[s]}")
        if self.constants:
            lines.append("  constants: " + ", ".join(map(str, self.constants)))
        return "\n".join(lines)


def _evaluate(cf: ClosedForm, ts, P):
    one = jax.vmap(lambda tt, p: cf(tt, p), in_axes=(0, None))
    f = lambda p: one(ts, p)  # noqa: E731
    for _ in range(P.ndim - 1):
        f = jax.vmap(f)
    return f(P)


def _with_derivatives(model: Model, base_exprs: Mapping) -> dict:
    out = {}
    for s in model.states:
        b = base_state(s)
        out[s] = sp.diff(base_exprs[b], t, derivative_order(s)) if derivative_order(s) else base_exprs[b]
    return out


# ----------------------------------------------------------------------------- solve_analytic


def _resolve_ics(model: Model, ics) -> dict:
    if isinstance(ics, str):
        if ics != "symbolic":
            raise ValueError(
                f"ics must be a mapping {{state: value}}, 'symbolic' or None, got the string {ics!r}"
            )
        return {s: sp.Symbol(f"{state_name(s)}_0", real=True) for s in model.states}
    if not isinstance(ics, Mapping):
        raise TypeError(
            f"ics must be a mapping {{state: value}}, 'symbolic' or None; got {type(ics).__name__}"
        )
    values = {s: sp.sympify(v) for s, v in model.defaults.items() if s in model.rhs}
    for k, v in ics.items():
        s = model.lookup(k)
        if s not in model.rhs:
            raise MissingValueError(f"ics has a value for parameter {s}; initial values are for states only.")
        if isinstance(v, (jax.Array, np.ndarray)) and np.ndim(v) != 0:
            raise ValueError(
                f"ics[{state_name(s)}] is an array of shape {np.shape(v)}; closed forms take one value "
                "or SymPy expression per state. For ensembles, solve with symbolic initial values "
                "(ics='symbolic' or symbols) and pass arrays to sol.trajectory(ts, params=...)."
            )
        values[s] = sp.sympify(float(v) if isinstance(v, (jax.Array, np.ndarray, np.floating)) else v)
    missing = [s for s in model.states if s not in values]
    if missing:
        names = ", ".join(state_name(s) for s in missing)
        raise MissingValueError(
            f"No initial value for state(s) {names} of model {model.name!r}. Give every state a value "
            "or a SymPy expression, pass ics='symbolic' (symbols x_0, x_t_0, ...), or ics=None for "
            "the general solution with integration constants."
        )
    return {s: values[s] for s in model.states}


def solve_analytic(
    model: Model, ics=None, timeout: float = 10.0, *, t0=0, simplify: bool = True
) -> AnalyticSolution:
    """The closed-form solution of ``model``, or raise `NoClosedForm` with the reason.

    Args:
        model: a `Model` (no neural terms).
        ics: ``None`` for the general solution (integration constants ``C1, C2, ...``); a
            mapping ``{state: value}`` whose values are numbers or SymPy expressions (model
            defaults fill states left out); or ``"symbolic"`` for symbols ``x_0, x_t_0, ...``.
        timeout: seconds of SymPy work allowed, enforced in a separate process (a timed-out
            attempt returns within about a second of the budget and leaves nothing running).
            Starting the worker process (once per session, ~1 s) is not counted.
        t0: the time at which ``ics`` hold.
        simplify: tidy the expressions once the initial values are substituted (SymPy's
            ``simplify``, at most a second per expression; cosmetic, so ``False`` is faster).

    Results are cached by ODE system: a second call (or ``simulate(method="auto")`` on the
    same equations) costs nothing.

    Raises:
        TypeError: ``model`` is not a `Model`, ``ics`` is neither a mapping, ``"symbolic"``
            nor None, or ``timeout`` is not a number.
        ValueError: ``timeout`` is not positive, ``ics`` is another string or holds an array.
        MissingValueError: a state without an initial value, or ``ics`` with a value for a
            parameter.
        UnknownNameError: an ``ics`` name that is not a state of ``model``.
        NoClosedForm: no closed form within ``timeout`` (nonlinear, neural terms, timed out);
            ``err.reason`` says why.

    Examples:
        >>> import symml as sm
        >>> x, = sm.states("x"); k, = sm.parameters("k", positive=True)
        >>> decay = sm.Model([x.diff(sm.t) + k * x], name="decay")
        >>> solve_analytic(decay)[x]
        C1*exp(-k*t)
        >>> ho = sm.zoo.harmonic_oscillator(damping=False)
        >>> x, v = ho.states
        >>> sm.solve_analytic(ho, ics={x: 1, v: 0})[x]
        cos(sqrt(k)*t/sqrt(m))
    """
    if not isinstance(model, Model):
        raise TypeError(f"solve_analytic needs a symml Model, got {type(model).__name__}")
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise TypeError(f"timeout must be a number of seconds, got {timeout!r}") from None
    if not timeout > 0:
        raise ValueError(f"timeout must be positive (seconds), got {timeout}")
    start = time.monotonic()
    ic_map = None if ics is None else _resolve_ics(model, ics)
    payload, plain, odes = _general_solution(model, timeout)
    branches = payload["branches"]
    if ic_map is None:
        base = plain.restore(branches[0])
        return AnalyticSolution(
            model,
            _with_derivatives(model, base),
            constants=payload["constants"],
            t0=t0,
            method=payload["route"],
            verified=payload["verified"],
        )
    t0 = sp.sympify(t0)
    key = (tuple(odes), tuple(plain.to(v) for v in ic_map.values()), plain.to(t0), bool(simplify))
    cache = _WITH_ICS
    got = cache.get(key)
    if got is None:
        args = (
            odes,
            branches,
            payload["constants"],
            {s: plain.to(v) for s, v in ic_map.items()},
            plain.to(t0),
            t,
            bool(simplify),
        )
        left = timeout - (time.monotonic() - start)
        got = _call("apply_ics", args, left, f"model {model.name!r}: initial values")
        _remember(cache, key, got)
    base = plain.restore(got["exprs"])
    verified = "numeric" if "numeric" in (got["verified"], payload["verified"]) else "symbolic"
    return AnalyticSolution(
        model,
        _with_derivatives(model, base),
        ics=ic_map,
        t0=t0,
        method=payload["route"],
        verified=verified,
    )
