"""Model: a system of ODEs declared in SymPy, validated and reduced to explicit first order.

>>> import sympy as sp, symml as sm
>>> x, = sm.states("x"); k, m = sm.parameters("k m")
>>> osc = sm.Model([sp.Eq(m * x.diff(sm.t, 2), -k * x)], defaults={k: 1.0, m: 1.0})
>>> osc.states
(x(t), Derivative(x(t), t))
>>> osc.rhs[x.diff(sm.t)]
-k*x(t)/m
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any

import sympy as sp

from ..errors import (
    ModelError,
    UnknownNameError,
    suggest,
)
from ._reduce import _d, reduce_equations
from ._symbols import (
    NeuralSpec,
    Parameter,
    base_state,
    derivative_order,
    state_aliases,
    state_name,
    t,
)
from ._values import check_equation as _check_equation
from ._values import real_value as _real_value

Key = "sp.Basic | str"


def _as_sympy(value: Any, what: str) -> sp.Basic:
    # Never sp.sympify a string: SymPy parses it with eval, so text could run code.
    if isinstance(value, str):
        raise ModelError(
            f"{what} is the string {value!r}; symml does not parse strings (parsing runs code). Write it in "
            "SymPy instead, e.g. x, = sm.states('x'); k, = sm.parameters('k'); sp.Eq(x.diff(sm.t), -k * x)."
        )
    try:
        return sp.sympify(value, strict=True)
    except sp.SympifyError:
        raise ModelError(
            f"{what} must be a SymPy expression or a number, got {type(value).__name__}: {value!r}."
        ) from None


class Model:
    """An ODE system written in SymPy.

    Args:
        equations: ``sp.Eq`` objects (or expressions meaning ``expr = 0``) of any order. Each
            must contain a derivative of a state; together they must be solvable for the
            highest derivative of every state (they may be implicit but linear in them).
        defaults: values by symbol or name for parameters and, optionally, initial values.
        name: used in printing, generated code and files.
        params: extra symbols to treat as parameters (symbols made by ``sm.parameters`` and
            symbols given in ``defaults`` are parameters already).
        networks: trained weights of neural terms, by placeholder name (set by ``sm.train``).
        invariants: conserved quantities by name, e.g. ``{"energy": expr}`` (`model.energy`);
            `symml.lagrangian` and `symml.hamiltonian` fill them in.

    A Model is immutable: ``subs`` and ``with_defaults`` return new models.

    Raises:
        ModelError: an equation is a string, not SymPy, has no derivative of a state, or the
            system cannot be solved for the highest derivatives (subclasses such as
            `UndeclaredSymbolError` or `NotSolvableError` say which); an equation with the
            imaginary unit or a `Piecewise` without a default branch; a default that is not a
            finite real number; equations nested too deeply; an empty name.

    Examples:
        >>> import sympy as sp, symml as sm
        >>> x, = sm.states("x")
        >>> k, = sm.parameters("k", positive=True)
        >>> decay = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 1.0}, name="decay")
        >>> decay.states, decay.params, decay.rhs[x]
        ((x(t),), (k,), -k*x(t))
        >>> traj = sm.simulate(decay, t_span=(0, 2), saveat=3)
        >>> round(float(traj[x][-1]), 4)
        0.3679
        >>> sm.zoo.pendulum().states
        (theta(t), Derivative(theta(t), t))
    """

    __slots__ = (
        "_equations",
        "_states",
        "_params",
        "_rhs",
        "_defaults",
        "_name",
        "_orders",
        "_neural",
        "_networks",
        "_invariants",  # conserved quantities by name (sm.lagrangian / sm.hamiltonian set them)
        "_memo",  # the Model's own memo of cheap derived facts (name table, hash)
        "_frozen",
        "__weakref__",
    )

    def __init__(
        self,
        equations: Iterable[sp.Basic] | sp.Basic,
        defaults: Mapping[Any, float] | None = None,
        name: str = "model",
        params: Iterable[sp.Symbol] | None = None,
        networks: Mapping[str, Any] | None = None,
        invariants: Mapping[str, Any] | None = None,
    ):
        try:
            self._build(equations, defaults, name, params, networks)
        except RecursionError:
            raise ModelError(
                "The equations are nested too deeply for SymPy (Python's recursion limit was hit); "
                "simplify them or introduce intermediate states."
            ) from None
        inv = {str(k): _as_sympy(v, f"The invariant {k!r}") for k, v in (invariants or {}).items()}
        object.__setattr__(self, "_invariants", types.MappingProxyType(inv))

    def _build(self, equations, defaults, name, params, networks) -> None:
        if isinstance(equations, (sp.Basic, str)) or not isinstance(equations, Iterable):
            equations = [equations]
        if defaults is not None and not isinstance(defaults, Mapping):
            raise ModelError(
                f"defaults must be a dict {{symbol or name: value}}, got {type(defaults).__name__}: "
                f"{defaults!r}."
            )
        if params is not None and (isinstance(params, (str, sp.Basic)) or not isinstance(params, Iterable)):
            raise ModelError(
                f"params must be a list of symbols (from sm.parameters), got {type(params).__name__}: "
                f"{params!r}."
            )
        eqs = []
        for e in equations:
            e = _as_sympy(e, "An equation")
            if isinstance(e, sp.Expr) and e.is_number:
                raise ModelError(
                    f"An equation is the number {e}, which contains no derivative of a state. Write "
                    "sp.Eq(x.diff(sm.t), rhs) with x from sm.states(...)."
                )
            if isinstance(e, sp.Equality):
                _check_equation(e)
                eqs.append(e)
            elif isinstance(e, sp.Expr):
                eq = sp.Eq(e, 0)
                if not isinstance(eq, sp.Equality):
                    raise ModelError(f"The expression {e} cannot be read as the equation {e} = 0.")
                _check_equation(eq)
                eqs.append(eq)
            elif e is sp.true or e is sp.false:
                raise ModelError(
                    f"An equation evaluated to {e} before symml saw it; this happens when both "
                    "sides are identical or both are numbers. Check the equation."
                )
            else:
                raise ModelError(f"Expected sp.Eq or a SymPy expression, got {type(e).__name__}: {e}")
        if not eqs:
            raise ModelError("A model needs at least one equation.")
        if not isinstance(name, str) or not name:
            raise ModelError(f"name must be a non-empty string, got {name!r}")
        set_ = object.__setattr__
        set_(self, "_frozen", False)
        set_(self, "_equations", tuple(eqs))
        set_(self, "_name", name)
        set_(self, "_memo", {})
        self._reduce(params, defaults)
        set_(self, "_networks", types.MappingProxyType(dict(networks or {})))
        unknown_nets = set(self._networks) - {s.name for s in self._neural}
        if unknown_nets:
            raise ModelError(
                f"networks given for {sorted(unknown_nets)}, but the model's neural terms are "
                f"{[s.name for s in self._neural]}."
            )
        set_(self, "_frozen", True)

    # ------------------------------------------------------------------ construction
    def _reduce(self, extra_params, defaults) -> None:
        red = reduce_equations(self._equations, extra_params, defaults)
        set_ = object.__setattr__
        set_(self, "_states", red.states)
        set_(self, "_params", red.params)
        set_(self, "_rhs", types.MappingProxyType(red.rhs))
        set_(self, "_orders", types.MappingProxyType(red.order))
        set_(self, "_neural", red.neural)
        resolved = {}
        for k, v in (defaults or {}).items():
            sym = self.lookup(k)
            resolved[sym] = _real_value(v, f"The default for {k}")
        set_(self, "_defaults", types.MappingProxyType(resolved))

    def __setattr__(self, key, value):
        raise AttributeError(
            f"Model is immutable; use model.subs(...) or model.with_defaults(...) (tried to set {key})"
        )

    # ------------------------------------------------------------------ inspection
    @property
    def equations(self) -> tuple[sp.Eq, ...]:
        """The equations exactly as written."""
        return self._equations

    @property
    def states(self) -> tuple[sp.Expr, ...]:
        """States after order reduction: base states, then first derivatives, and so on."""
        return self._states

    @property
    def params(self) -> tuple[sp.Symbol, ...]:
        """Parameters, sorted by name."""
        return self._params

    @property
    def rhs(self) -> Mapping[sp.Expr, sp.Expr]:
        """First-order explicit right-hand sides, ``{state: d state / dt}``."""
        return self._rhs

    @property
    def defaults(self) -> Mapping[sp.Basic, float]:
        """Default values by symbol (parameters and, optionally, initial values of states)."""
        return self._defaults

    @property
    def name(self) -> str:
        return self._name

    @property
    def neural(self) -> tuple[NeuralSpec, ...]:
        """Specifications of the neural terms in the equations (sorted by name)."""
        return self._neural

    @property
    def networks(self) -> Mapping[str, Any]:
        """Weights of neural terms by placeholder name (empty until trained)."""
        return self._networks

    @property
    def invariants(self) -> Mapping[str, sp.Expr]:
        """Conserved quantities by name (``"energy"``, ...) as expressions; ``traj[expr]`` evaluates one."""
        return self._invariants

    @property
    def energy(self) -> sp.Expr:
        """The energy of a model made by `symml.lagrangian` or `symml.hamiltonian`: ``traj[model.energy]``."""
        if "energy" not in self._invariants:
            raise ModelError(
                f"Model {self._name!r} has no energy: build it with sm.lagrangian(L, coords) or "
                "sm.hamiltonian(H, coords, momenta), or pass invariants={'energy': expr} to sm.Model."
            )
        return self._invariants["energy"]

    @property
    def order(self) -> Mapping[sp.Expr, int]:
        """Differential order of each base state as written."""
        return self._orders

    @property
    def is_autonomous(self) -> bool:
        return not any(e.has(t) and e.subs(t, 0) != e for e in self._rhs.values()) and not any(
            t in s.inputs for s in self._neural
        )

    def state_names(self) -> tuple[str, ...]:
        return tuple(state_name(s) for s in self._states)

    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self._params)

    def lookup(self, key: Any) -> sp.Basic:
        """The state or parameter meant by ``key`` (a symbol, a state or a name such as 'x_t')."""
        if isinstance(key, str):
            table = self._name_table()
            if key in table:
                return table[key]
            raise UnknownNameError(
                f"{key!r} is not a state or parameter of model {self._name!r} "
                f"(states: {', '.join(self.state_names())}; "
                f"parameters: {', '.join(self.param_names()) or 'none'})." + suggest(key, table)
            )
        key = _as_sympy(key, "A key")
        if key in self._rhs or key in self._params:
            return key
        if isinstance(key, sp.Symbol) and key.name in self._name_table() and key not in self._params:
            found = self._name_table()[key.name]
            if isinstance(found, sp.Symbol):
                return found
        raise UnknownNameError(
            f"{key} is not a state or parameter of model {self._name!r} "
            f"(states: {', '.join(map(str, self._states))}; "
            f"parameters: {', '.join(self.param_names()) or 'none'})." + suggest(str(key), self._name_table())
        )

    def _name_table(self) -> dict[str, sp.Basic]:
        tbl = self._memo.get("names")
        if tbl is None:
            tbl = {}
            for s in self._states:
                tbl[state_name(s)] = s
                for a in state_aliases(s):
                    tbl.setdefault(a, s)
            for p in self._params:
                tbl[p.name] = p
            self._memo["names"] = tbl
        return tbl

    def numeric_rhs(self) -> dict[sp.Basic, sp.Expr]:
        """``rhs`` with every parameter that has a default replaced by its value (as a Float).

        >>> import symml as sm
        >>> x, = sm.states("x"); k, = sm.parameters("k")
        >>> sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5}).numeric_rhs()
        {x(t): -0.5*x(t)}
        """
        values = {p: sp.Float(self._defaults[p]) for p in self._params if p in self._defaults}
        return {s: rhs.xreplace(values) for s, rhs in self._rhs.items()}

    def jacobian(self) -> sp.Matrix:
        """The Jacobian ``d rhs / d states`` (rows and columns in ``states`` order)."""
        dummies = [sp.Dummy(state_name(s)) for s in self._states]
        fwd = dict(zip(self._states, dummies))
        back = dict(zip(dummies, self._states))
        f = sp.Matrix([self._rhs[s].xreplace(fwd) for s in self._states])
        return f.jacobian(dummies).xreplace(back)

    def free_values(self, values: Mapping[Any, Any] | None = None) -> dict[sp.Basic, Any]:
        """Defaults overridden by ``values`` (keys resolved by symbol or name)."""
        out = dict(self._defaults)
        for k, v in (values or {}).items():
            out[self.lookup(k)] = v
        return out

    # ------------------------------------------------------------------ new models
    def subs(self, mapping: Mapping[Any, Any], name: str | None = None) -> Model:
        """A new Model with symbols replaced in the equations (values or expressions).

        Substituted parameters disappear from ``params`` and from ``defaults``.

        Raises:
            ModelError: ``mapping`` is not a dict, or a replacement is a string (never parsed),
                not SymPy, or not finite.
            UnknownNameError: a name is not a state or parameter of the model.
        """
        if not isinstance(mapping, Mapping):
            raise ModelError(
                "subs needs a dict {symbol or name: value or SymPy expression}, got "
                f"{type(mapping).__name__}."
            )
        rep = {}
        for k, v in mapping.items():
            key = self.lookup(k) if isinstance(k, str) else _as_sympy(k, "A key of subs")
            rep[key] = _as_sympy(v, f"The replacement for {key}")
            if rep[key].has(sp.nan, sp.zoo, sp.oo, -sp.oo):
                raise ModelError(
                    f"The replacement for {key} is {rep[key]}; pass a finite value or expression."
                )
        eqs = [eq.xreplace(rep) for eq in self._equations]
        eqs = [e if isinstance(e, sp.Equality) else e for e in eqs]
        defaults = {k: v for k, v in self._defaults.items() if k not in rep}
        extra = {p for p in self._params if not isinstance(p, Parameter)}
        for v in rep.values():
            extra |= {s for s in v.free_symbols if s != t and not isinstance(s, Parameter)}
        return Model(
            eqs,
            defaults=defaults,
            name=name or self._name,
            params=extra,
            networks={k: v for k, v in self._networks.items()},
            invariants={k: v.xreplace(rep) for k, v in self._invariants.items()},
        )

    def with_defaults(self, values: Mapping[Any, float]) -> Model:
        """A new Model whose defaults are updated with ``values``."""
        d = dict(self._defaults)
        if not isinstance(values, Mapping):
            raise ModelError(
                f"with_defaults needs a dict {{symbol or name: value}}, got {type(values).__name__}."
            )
        for k, v in values.items():
            d[self.lookup(k)] = _real_value(v, f"The default for {k}")
        return self._replace(defaults=d)

    def with_networks(self, networks: Mapping[str, Any]) -> Model:
        """A new Model carrying trained weights for its neural terms."""
        nets = dict(self._networks)
        nets.update(networks)
        return self._replace(networks=nets)

    def _replace(self, **kw) -> Model:
        args = dict(
            equations=self._equations,
            defaults=dict(self._defaults),
            name=self._name,
            params=[p for p in self._params if not isinstance(p, Parameter)],
            networks=dict(self._networks),
            invariants=dict(self._invariants),
        )
        args.update(kw)
        return Model(**args)

    # ------------------------------------------------------------------ printing
    def latex(self) -> str:
        """LaTeX of the first-order explicit system (an ``aligned`` block)."""
        lines = []
        for s, f in self._rhs.items():
            lhs = sp.latex(
                sp.Derivative(s, t)
                if not isinstance(s, sp.Derivative)
                else _d(s.expr, derivative_order(s) + 1)
            )
            lines.append(f"{lhs} &= {sp.latex(f)}")
        return "\\begin{aligned}" + " \\\\ ".join(lines) + "\\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$" + self.latex() + "$"

    def __repr__(self) -> str:
        lines = [f"Model {self._name!r}: {len(self._states)} states, {len(self._params)} parameters"]
        for s, f in self._rhs.items():
            lhs = (
                sp.Derivative(s, t)
                if derivative_order(s) == 0
                else _d(base_state(s), derivative_order(s) + 1)
            )
            lines.append(f"  {lhs} = {f}")
        if self._defaults:
            dv = ", ".join(
                f"{state_name(k) if k in self._rhs else k}={v:g}" for k, v in self._defaults.items()
            )
            lines.append(f"  defaults: {dv}")
        if self._neural:
            lines.append("  neural terms: " + ", ".join(s.name for s in self._neural))
        return "\n".join(lines)

    __str__ = __repr__

    # ------------------------------------------------------------------ identity
    def _key(self):
        # Memoised: the artefact cache compares equal models on every lookup, and printing the
        # default keys for the sort cost 8 µs per default (a third of a small solve's overhead).
        key = self._memo.get("key")
        if key is None:
            defaults = tuple(sorted(self._defaults.items(), key=lambda kv: str(kv[0])))
            key = self._memo["key"] = (self._equations, defaults, self._name)
        return key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        if self is other:
            return True
        if self._key() != other._key() or set(self._networks) != set(other._networks):
            return False
        return all(self._networks[k] is other._networks[k] for k in self._networks)

    def __hash__(self) -> int:
        h = self._memo.get("hash")
        if h is None:
            h = hash(self._key())
            self._memo["hash"] = h
        return h
