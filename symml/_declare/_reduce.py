"""Order reduction: ODEs validated and solved for their highest derivatives, as explicit first order.

The Model calls `reduce_equations` once, at construction; nothing here keeps state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import sympy as sp

from ..errors import (
    AlgebraicEquationError,
    DuplicateEquationError,
    MissingEquationError,
    ModelError,
    NotSolvableError,
    UndeclaredSymbolError,
)
from ._symbols import (
    NeuralSpec,
    Parameter,
    base_state,
    derivative_order,
    is_derivative_state,
    is_neural_call,
    is_state,
    neural_spec,
    t,
)


@dataclasses.dataclass(frozen=True)
class Reduced:
    """The explicit first-order form: states in order, parameters, right-hand sides, orders, neural terms."""

    states: tuple[sp.Expr, ...]
    params: tuple[sp.Symbol, ...]
    rhs: dict[sp.Expr, sp.Expr]
    order: dict[sp.Expr, int]
    neural: tuple[NeuralSpec, ...]


def _d(s: sp.Expr, n: int) -> sp.Expr:
    return s if n == 0 else sp.Derivative(s, (t, n))


def _divide(num: sp.Expr, den: sp.Expr) -> sp.Expr:
    # Distribute a monomial denominator over the terms: (-g*m - k*v)/m prints as -g - k*v/m.
    if (
        den.is_Number
        or den.is_Symbol
        or (den.is_Mul and all(f.is_Symbol or f.is_Number or f.is_Pow for f in den.args))
    ):
        return sp.Add(
            *[
                term / den
                for term in sp.Add.make_args(
                    sp.expand(
                        num,
                        deep=False,
                        mul=True,
                        multinomial=False,
                        power_exp=False,
                        power_base=False,
                        log=False,
                    )
                )
            ]
        )
    return num / den


def reduce_equations(equations: tuple[sp.Eq, ...], extra_params, defaults) -> Reduced:
    """Validate ``equations`` and reduce them to explicit first order.

    Raises the model errors (`ModelError`, `AlgebraicEquationError`, `MissingEquationError`,
    `DuplicateEquationError`, `NotSolvableError`, `UndeclaredSymbolError`) with the equation at fault.
    """
    # SymPy's stubs type Eq sides as Basic; every side here is an expression (Model checked it).
    exprs: list[Any] = [cast(Any, eq.lhs) - eq.rhs for eq in equations]

    derivs: set[sp.Derivative] = set()
    funcs: set[sp.Expr] = set()
    for e in exprs:
        for d in e.atoms(sp.Derivative):
            if not is_derivative_state(d):
                raise ModelError(
                    f"Unsupported derivative {d}: only derivatives of states with respect to t "
                    "are allowed (declare states with sm.states)."
                )
            derivs.add(d)
        for f in e.atoms(sp.core.function.AppliedUndef):
            if is_neural_call(f):
                continue
            if not is_state(f):
                raise ModelError(
                    f"{f} is an undefined function applied to {f.args}; states must be functions "
                    "of t alone, declared with sm.states('x ...')."
                )
            funcs.add(f)

    order: dict[sp.Expr, int] = {f: 0 for f in funcs}
    for d in derivs:
        b = base_state(d)
        order[b] = max(order[b], derivative_order(d))

    # The highest derivative each equation contains.
    eq_highest: list[set[Any]] = []
    for eq, e in zip(equations, exprs):
        hs = {d for d in e.atoms(sp.Derivative) if derivative_order(d) == order[base_state(d)]}
        if not e.atoms(sp.Derivative):
            raise AlgebraicEquationError(
                f"Equation {eq} contains no derivative. Algebraic equations (DAEs) are not "
                "supported yet: substitute the relation into the other equations, or "
                "differentiate it into an ODE."
            )
        if not hs:
            raise NotSolvableError(
                f"Equation {eq} contains only lower derivatives "
                f"{sorted(map(str, e.atoms(sp.Derivative)))}, but higher ones of the same "
                "states appear elsewhere; each equation must define a highest derivative."
            )
        eq_highest.append(hs)

    states_in_order: list[sp.Expr] = []
    for hs in eq_highest:
        for h in sorted(hs, key=str):
            b = base_state(h)
            if b not in states_in_order:
                states_in_order.append(b)
    missing = [f for f in funcs if order[f] == 0 or f not in states_in_order]
    if missing:
        names = ", ".join(sorted(str(m) for m in missing))
        raise MissingEquationError(
            f"State(s) {names} appear in the equations but no equation defines a derivative "
            "of them. Add an equation for each, or replace them by parameters if they are "
            "constants."
        )

    highest = [_d(s, order[s]) for s in states_in_order]
    if len(exprs) != len(highest):
        single: dict[sp.Expr, list[sp.Eq]] = {}
        for eq, hs in zip(equations, eq_highest):
            if len(hs) == 1:
                single.setdefault(next(iter(hs)), []).append(eq)
        dup = {h: es for h, es in single.items() if len(es) > 1}
        if dup:
            h, es = next(iter(dup.items()))
            raise DuplicateEquationError(
                f"{len(es)} equations define the same highest derivative {h}: "
                + "; ".join(str(e) for e in es)
                + ". Keep one equation per state, or combine them."
            )
        raise NotSolvableError(
            f"{len(exprs)} equations for {len(highest)} highest derivatives "
            f"({', '.join(map(str, highest))}): the system is over-determined. Remove the "
            "extra equations."
        )

    dummies = [sp.Dummy(f"h{i}") for i in range(len(highest))]
    rep = dict(zip(highest, dummies))
    sub = [e.xreplace(rep) for e in exprs]
    for eq, e in zip(equations, sub):
        for dmy in dummies:
            if sp.diff(e, dmy).has(*dummies):
                raise NotSolvableError(
                    f"Equation {eq} is nonlinear in its highest derivatives; symml solves "
                    "only equations linear in them. Rewrite it in explicit form "
                    "(highest derivative = ...)."
                )
    A, b = sp.linear_eq_to_matrix(sub, dummies)
    if A.is_diagonal():
        diag = [A[i, i] for i in range(A.rows)]
        if any(sp.simplify(a) == 0 for a in diag):
            raise NotSolvableError(
                f"Cannot solve for {highest}: a coefficient of a highest derivative is zero."
            )
        sol = [_divide(cast(Any, b[i]), cast(Any, diag[i])) for i in range(A.rows)]
    else:
        det = sp.simplify(A.det())
        if det == 0:
            raise NotSolvableError(
                "The equations cannot be solved for the highest derivatives "
                f"{', '.join(map(str, highest))}: their coefficient matrix is singular. "
                "Check for equations that are multiples of each other."
            )
        sol = [sp.cancel(s) for s in A.LUsolve(b)]
    solved = dict(zip(highest, sol))

    maxo = max(order[s] for s in states_in_order)
    state_list = [_d(s, k) for k in range(maxo) for s in states_in_order if k < order[s]]
    rhs = {}
    for st in state_list:
        b_ = base_state(st)
        k = derivative_order(st)
        rhs[st] = solved[_d(b_, k + 1)] if k + 1 == order[b_] else _d(b_, k + 1)

    # Parameters: declared Parameter symbols, symbols with a default, or listed in params.
    free = set()
    for e in exprs:
        free |= e.free_symbols
    free.discard(t)
    extra = set(extra_params or [])
    for p in extra:
        if not isinstance(p, sp.Symbol):
            raise ModelError(f"params must be SymPy symbols, got {p!r}")
    default_syms = {k for k in (defaults or {}) if isinstance(k, sp.Symbol)}
    undeclared = sorted(
        (s for s in free if not isinstance(s, Parameter) and s not in extra | default_syms),
        key=str,
    )
    if undeclared:
        names = ", ".join(str(s) for s in undeclared)
        raise UndeclaredSymbolError(
            f"Symbol(s) {names} are neither states, parameters nor t. Declare parameters with "
            f"sm.parameters({' '.join(str(s) for s in undeclared)!r}) (or pass params=[...] or a "
            "default value), and states with sm.states(...)."
        )
    params = tuple(sorted(free | (extra & free), key=lambda s: s.name))

    neural: dict[str, NeuralSpec] = {}
    for e in rhs.values():
        for f in e.atoms(sp.core.function.AppliedUndef):
            if is_neural_call(f):
                spec, _ = neural_spec(f)
                if spec.name in neural and neural[spec.name] != spec:
                    raise ModelError(f"Two different neural terms are both named {spec.name!r}.")
                neural[spec.name] = spec

    return Reduced(
        states=tuple(state_list),
        params=params,
        rhs=rhs,
        order=order,
        neural=tuple(neural[k] for k in sorted(neural)),
    )
