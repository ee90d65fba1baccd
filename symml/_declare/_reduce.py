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
        spread = sp.expand(
            num, deep=False, mul=True, multinomial=False, power_exp=False, power_base=False, log=False
        )
        if den == 1:  # nothing to divide: skip rebuilding every term (it is the cost of big models)
            return spread
        return sp.Add(*[term / den for term in sp.Add.make_args(spread)])
    return num / den


def _explicit(eq: sp.Eq, h: sp.Expr) -> tuple[Any, Any] | None:
    """``(c, rest)`` when ``eq`` reads ``c * h = rest`` (or ``rest = c * h``), ``h`` nowhere else."""
    for side, other in ((eq.lhs, eq.rhs), (eq.rhs, eq.lhs)):
        if side == h:
            coef = sp.S.One
        elif side.is_Mul and h in side.args:
            rest_factors: list[Any] = [f for f in side.args if f != h]
            if len(rest_factors) != len(side.args) - 1 or any(f.has(h) for f in rest_factors):
                continue
            coef = sp.Mul(*rest_factors)
        else:
            continue
        if not other.has(h):
            return coef, other
    return None


def _solve_highest(
    equations: tuple[sp.Eq, ...], eq_highest: list[set[Any]], highest: list[sp.Expr]
) -> list[Any]:
    # The usual case: equation i defines the i-th highest derivative explicitly (c * h = rest), which
    # needs neither a matrix (quadratic in the states) nor differentiation (slow in SymPy).
    if all(len(hs) == 1 and next(iter(hs)) == h for hs, h in zip(eq_highest, highest)):
        split = [_explicit(eq, h) for eq, h in zip(equations, highest)]
        if all(s is not None for s in split):
            pairs = cast("list[tuple[Any, Any]]", split)
            if any(not (c.is_Number and c != 0) and sp.simplify(cast(sp.Basic, c)) == 0 for c, _ in pairs):
                raise NotSolvableError(
                    f"Cannot solve for {highest}: a coefficient of a highest derivative is zero."
                )
            return [_divide(rest, c) for c, rest in pairs]
    # SymPy's stubs type Eq sides as Basic; every side here is an expression (Model checked it).
    exprs: list[Any] = [cast(Any, eq.lhs) - eq.rhs for eq in equations]
    dummies = [sp.Dummy(f"h{i}") for i in range(len(highest))]
    rep = dict(zip(highest, dummies))
    sub = [e.xreplace(rep) for e in exprs]
    # Only the highest derivatives an equation contains can make it nonlinear; differentiating by
    # every dummy would make construction quadratic in the number of states.
    for eq, e, hs in zip(equations, sub, eq_highest):
        own = [rep[h] for h in hs]
        for dmy in own:
            if sp.diff(e, dmy).has(*own):
                raise NotSolvableError(
                    f"Equation {eq} is nonlinear in its highest derivatives; symml solves "
                    "only equations linear in them. Rewrite it in explicit form "
                    "(highest derivative = ...)."
                )
    return _solve_coupled(sub, dummies, highest)


def _solve_coupled(sub: list[Any], dummies: list[sp.Dummy], highest: list[sp.Expr]) -> list[sp.Expr]:
    A, b = sp.linear_eq_to_matrix(sub, dummies)
    if A.is_diagonal():
        diag = [A[i, i] for i in range(A.rows)]
        if any(sp.simplify(a) == 0 for a in diag):
            raise NotSolvableError(
                f"Cannot solve for {highest}: a coefficient of a highest derivative is zero."
            )
        return [_divide(cast(Any, b[i]), cast(Any, diag[i])) for i in range(A.rows)]
    det = sp.simplify(A.det())
    if det == 0:
        raise NotSolvableError(
            "The equations cannot be solved for the highest derivatives "
            f"{', '.join(map(str, highest))}: their coefficient matrix is singular. "
            "Check for equations that are multiples of each other."
        )
    return [sp.cancel(s) for s in A.LUsolve(b)]


def reduce_equations(equations: tuple[sp.Eq, ...], extra_params, defaults) -> Reduced:
    """Validate ``equations`` and reduce them to explicit first order.

    Raises the model errors (`ModelError`, `AlgebraicEquationError`, `MissingEquationError`,
    `DuplicateEquationError`, `NotSolvableError`, `UndeclaredSymbolError`) with the equation at fault.
    """
    # One traversal per equation collects everything the checks need: construction must stay
    # linear in the number of equations (models of thousands of states are declared in a loop).
    eq_atoms: list[set[Any]] = []
    derivs: set[sp.Derivative] = set()
    funcs: set[sp.Expr] = set()
    calls: set[sp.Expr] = set()
    for eq in equations:
        found = eq.atoms(sp.Derivative, sp.core.function.AppliedUndef)
        ds = set()
        for d in found:
            if isinstance(d, sp.Derivative):
                if not is_derivative_state(d):
                    raise ModelError(
                        f"Unsupported derivative {d}: only derivatives of states with respect to t "
                        "are allowed (declare states with sm.states)."
                    )
                ds.add(d)
            elif is_neural_call(d):
                calls.add(d)
            elif not is_state(d):
                raise ModelError(
                    f"{d} is an undefined function applied to {d.args}; states must be functions "
                    "of t alone, declared with sm.states('x ...')."
                )
            else:
                funcs.add(d)
        derivs |= ds
        eq_atoms.append(ds)

    order: dict[sp.Expr, int] = {f: 0 for f in funcs}
    known: dict[tuple[sp.Expr, int], sp.Expr] = {}  # (state, n) -> its n-th derivative, made once
    for d in derivs:
        b = base_state(d)
        n = derivative_order(d)
        order[b] = max(order[b], n)
        known[(b, n)] = d

    def deriv(s: sp.Expr, n: int) -> sp.Expr:
        # Building a Derivative costs SymPy a millisecond; reuse the ones the equations hold.
        d = known.get((s, n))
        if d is None:
            d = known[(s, n)] = _d(s, n)
        return d

    # The highest derivative each equation contains.
    eq_highest: list[set[Any]] = []
    for eq, ds in zip(equations, eq_atoms):
        hs = {d for d in ds if derivative_order(d) == order[base_state(d)]}
        if not ds:
            raise AlgebraicEquationError(
                f"Equation {eq} contains no derivative. Algebraic equations (DAEs) are not "
                "supported yet: substitute the relation into the other equations, or "
                "differentiate it into an ODE."
            )
        if not hs:
            raise NotSolvableError(
                f"Equation {eq} contains only lower derivatives "
                f"{sorted(map(str, ds))}, but higher ones of the same "
                "states appear elsewhere; each equation must define a highest derivative."
            )
        eq_highest.append(hs)

    # Lists with a set beside them: membership tests must stay O(1) for models of thousands of states.
    states_in_order: list[sp.Expr] = []
    seen: set[sp.Expr] = set()
    for hs in eq_highest:
        for h in sorted(hs, key=str) if len(hs) > 1 else hs:
            b = base_state(h)
            if b not in seen:
                seen.add(b)
                states_in_order.append(b)
    missing = [f for f in funcs if order[f] == 0 or f not in seen]
    if missing:
        names = ", ".join(sorted(str(m) for m in missing))
        raise MissingEquationError(
            f"State(s) {names} appear in the equations but no equation defines a derivative "
            "of them. Add an equation for each, or replace them by parameters if they are "
            "constants."
        )

    highest = [deriv(s, order[s]) for s in states_in_order]
    if len(equations) != len(highest):
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
            f"{len(equations)} equations for {len(highest)} highest derivatives "
            f"({', '.join(map(str, highest))}): the system is over-determined. Remove the "
            "extra equations."
        )

    sol = _solve_highest(equations, eq_highest, highest)
    solved = dict(zip(highest, sol))

    maxo = max(order[s] for s in states_in_order)
    rhs = {}
    for k in range(maxo):
        for b_ in states_in_order:
            if k < order[b_]:
                up = deriv(b_, k + 1)
                rhs[deriv(b_, k)] = solved[up] if k + 1 == order[b_] else up
    state_list = list(rhs)

    # Parameters: declared Parameter symbols, symbols with a default, or listed in params.
    free = set()
    for eq in equations:
        free |= eq.free_symbols
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
    for f in sorted(calls, key=str):
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
