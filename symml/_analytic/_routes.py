"""Closed-form routes: the SymPy-only algorithms behind `symml.solve_analytic`.

Tasks ``general_solution`` (the general solution of a system, block by block) and
``apply_ics`` (its integration constants fixed by initial values) run inside the symbolic
worker's child process (`symml._analytic._worker`), which loads this file standalone from
its script `symml._analytic._tasks`: it imports nothing but the standard library, SymPy and
`symml._analytic._child` (the budgets and verification). Every route runs under those
budgets, so that a slow route (``dsolve`` on a coupled system, ``simplify``) gives way to
the next one within the same budget.

Tasks take and return plain SymPy objects: symbols, applied undefined functions of ``t`` and
numbers. Failures are reported as ``("no_method" | "unverified" | "timeout" | "error",
message)``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as the worker's script: the directory of this file (symml/) is sys.path[0]; remove
    # it so that symml's modules (symml/io.py, ...) can never shadow top-level modules.
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _here]

import sys
from typing import TYPE_CHECKING, Any, cast

import sympy as sp
from sympy.solvers.solveset import NonlinearError

if __package__:
    from . import _child as support
    from . import _structure
else:  # loaded standalone by the worker's script, which has registered `_child` first
    support = sys.modules["_symml_child"]
    _structure = support.sibling("_structure")

if TYPE_CHECKING:  # for annotations only: at run time `Constants` comes from `_structure` above
    from ._structure import Constants as _ConstantsType

# the structural helpers, also read from here by `symml.solve_analytic` and the tests
D, first_order, components = _structure.D, _structure.first_order, _structure.components
classify, Constants = _structure.classify, _structure.Constants

NoMethod, Unverified = support.NoMethod, support.Unverified
attempt, remaining, is_zero, tidy = support.attempt, support.remaining, support.is_zero, support.tidy

# ----------------------------------------------------------------------------- routes

# Hints that give no explicit closed form (series, implicit solutions, unevaluated integrals).
_USELESS_HINTS = {
    "1st_power_series",
    "2nd_power_series_ordinary",
    "2nd_power_series_regular",
    "2nd_nonlinear_autonomous_conserved",
    "default",
    "all",
    "all_Integral",
    "order",
}


def _explicit(sol, f) -> list[sp.Expr]:
    sols = sol if isinstance(sol, (list, tuple)) else [sol]
    out: list[sp.Expr] = []
    for s in sols:
        if isinstance(s, sp.Equality) and s.lhs == f and not s.rhs.has(f):
            rhs = s.rhs
            if rhs.has(sp.Integral):
                rhs = rhs.doit()
            if not rhs.has(sp.Integral) and not rhs.has(sp.Derivative) and rhs.is_finite is not False:
                out.append(cast(sp.Expr, rhs))  # Equality.rhs and doit() are typed Basic
    return out


# SymPy's solver classes tried directly before ``classify_ode`` (which tries every matcher
# and is 10-50x slower): linear ODEs and explicit first-order families.
_FAST_SOLVERS = (
    "NthLinearConstantCoeffHomogeneous",
    "NthLinearConstantCoeffUndeterminedCoefficients",
    "NthLinearConstantCoeffVariationOfParameters",
    "FirstLinear",
    "Bernoulli",
)


def _fast_single(b, n, rhs, t) -> tuple[list[sp.Expr], str] | None:
    from sympy.solvers.ode import single

    problem = single.SingleODEProblem(D(b, n, t) - rhs, b, t)
    for name in _FAST_SOLVERS:
        cls = getattr(single, name)
        solver = cls(problem)
        ok, matches = attempt(0.3 * remaining(), solver.matches)
        if not (ok and matches):
            continue
        ok, sol = attempt(0.6 * remaining(), solver.get_general_solution)
        if ok:
            rhs_list = _explicit(sol, b)
            if rhs_list:
                return rhs_list, cls.hint
    return None


def solve_single(b, n, rhs, t) -> tuple[list[sp.Expr], str]:
    """Explicit solutions of ``b^(n) = rhs`` (a list: nonlinear ODEs can have branches)."""
    ok, fast = attempt(0.5 * remaining(), _fast_single, b, n, rhs, t)
    if ok and fast is not None:
        return fast
    eq = sp.Eq(D(b, n, t), rhs)
    # classify_ode gates everything else and may itself take seconds (the nonlinear pendulum):
    # it gets the whole remaining budget, and its timeout is the task's timeout.
    try:
        hints = sp.classify_ode(eq, b)
    except Exception as err:
        raise NoMethod(f"SymPy could not classify {eq} ({type(err).__name__}: {err})") from None
    usable = [h for h in hints if h not in _USELESS_HINTS and not h.endswith("_Integral")]
    if not usable:
        raise NoMethod(
            f"no SymPy method gives an explicit solution of {eq} (applicable: "
            f"{', '.join(h for h in hints if not h.endswith('_Integral')) or 'none'})"
        )
    reasons = []
    for i, h in enumerate(usable):
        share = remaining() * (0.6 if i < len(usable) - 1 else 1.0)
        ok, sol = attempt(share, sp.dsolve, eq, b, hint=h)
        if ok:
            rhs_list = _explicit(sol, b)
            if rhs_list:
                return rhs_list, h
            reasons.append(f"{h}: implicit or unevaluated solution")
        else:
            reasons.append(f"{h}: {sol}")
    raise NoMethod(f"no explicit solution of {eq} ({'; '.join(reasons)})")


def route_dsolve(odes, t):
    funcs = [b for b, _, _ in odes]
    eqs = [sp.Eq(D(b, n, t), rhs) for b, n, rhs in odes]
    # dsolve of a system returns a list of equations (a list of such lists for several
    # branches); SymPy's inferred return type is a single Equality.
    sol = cast("list[Any]", sp.dsolve(eqs, funcs))
    if sol and isinstance(sol[0], (list, tuple)):
        sol = sol[0]
    out = {}
    for s in sol:
        if isinstance(s, sp.Equality) and s.lhs in funcs and not s.rhs.has(*funcs):
            if s.rhs.has(sp.Integral) or s.rhs.has(sp.Derivative):
                raise NoMethod("dsolve left an unevaluated integral")
            out[s.lhs] = s.rhs
    if set(out) != set(funcs):
        raise NoMethod("dsolve returned an implicit solution")
    return out


def route_elimination(odes, t):
    """Eliminate to one scalar ODE ``p(d/dt) z = F(t)`` (Cayley–Hamilton) for an observable
    state ``z``, solve it, and recover the other states from z and its derivatives."""
    Y, A, f, _, _ = first_order(odes, t)
    assert f is not None, "route_elimination is only tried on linear blocks"
    N = len(Y)
    lam = sp.Symbol("_lambda")
    a = list(reversed(A.charpoly(lam).all_coeffs()))  # a[j]: coefficient of lambda^j
    fd = [f]
    for _ in range(N - 1):
        fd.append(fd[-1].diff(t))
    for b, _, _ in odes:
        i = Y.index(b)
        rows = [sp.Matrix.zeros(1, N)]
        rows[0][i] = 1
        for _ in range(N):
            rows.append(rows[-1] * A)
        O = sp.Matrix.vstack(*rows[:N])
        if sp.simplify(O.det()) == 0:
            continue
        # z^(j) = c A^j Y + G_j(t),  G_j = sum_{l<j} c A^(j-1-l) f^(l)
        G = [sum(((rows[j - 1 - l] * fd[l])[0] for l in range(j)), sp.Integer(0)) for j in range(N + 1)]
        F = sp.expand(sum(a[j] * G[j] for j in range(N + 1)))
        ode_rhs = -sum(a[j] * D(b, j, t) for j in range(N)) + F
        sols, _ = solve_single(b, N, ode_rhs, t)
        z = sols[0]
        Z = sp.Matrix([z.diff(t, j) - G[j] for j in range(N)])
        Yv = O.LUsolve(Z)
        return {c: Yv[Y.index(c)] for c, _, _ in odes}
    raise NoMethod("no state of the block determines the others (unobservable)")


def route_expm(odes, t, consts: _ConstantsType):
    """``Y(t) = exp(A t) C + integral_0^t exp(A (t - s)) f(s) ds``."""
    Y, A, f, _, _ = first_order(odes, t)
    assert f is not None, "route_expm is only tried on linear blocks"
    N = len(Y)
    E = (A * t).exp()
    C = sp.Matrix([consts.new() for _ in range(N)])
    Yt = E * C
    if any(fi != 0 for fi in f):
        s = sp.Symbol("_s", real=True)
        integrand = E.xreplace({t: t - s}) * f.xreplace({t: s})
        part = []
        for e in integrand:
            r = sp.integrate(sp.expand(e), (s, 0, t))
            if r.has(sp.Integral):
                raise NoMethod("the forcing integral has no closed form")
            part.append(r)
        Yt = Yt + sp.Matrix(part)
    return {b: Yt[Y.index(b)] for b, _, _ in odes}


# ----------------------------------------------------------------------------- tasks

#: At most this many seconds for ``dsolve`` on a coupled block before the other routes.
DSOLVE_SYSTEM_MAX = 4.0


def general_solution(odes, t):
    """Task: the general solution of ``odes``.

    Returns ``{"branches": [{x: expr}], "constants": [C...], "route": str, "verified": str}``.
    """
    info = classify(odes, t)
    taken = set()
    for _b, _, rhs in odes:
        taken |= rhs.free_symbols
    consts = Constants(taken)
    solved: dict = {}
    branches = [solved]
    routes = []
    verified = "symbolic"
    for comp in components(odes, t):
        block = [(b, n, rhs) for b, n, rhs in odes if b in comp]
        if len(block) == 1:
            (b, n, rhs) = block[0]
            new_branches = []
            for br in branches:
                forced = rhs.xreplace(_known_subs(br, odes, t))
                before = forced.free_symbols
                sols, hint = solve_single(b, n, forced, t)
                for s in sols[:4]:
                    (expr,) = consts.rename([s], before)
                    pairs = residual_pairs([(b, n, forced)], {b: expr}, t)
                    ok, how = attempt(0.5 * remaining(), is_zero, pairs, t, 0.3 * remaining())
                    if ok:
                        verified = "numeric" if how == "numeric" else verified
                        new_branches.append({**br, b: expr})
                routes.append(hint)
            if not new_branches:
                raise Unverified(f"no solution of the equation for {b} could be verified")
            branches = new_branches[:8]
        else:
            if len(branches) > 1:
                raise NoMethod("a coupled block depends on a state with several solution branches")
            br = branches[0]
            blk = [(b, n, rhs.xreplace(_known_subs(br, odes, t))) for b, n, rhs in block]
            _, _, _, lin, const = first_order(blk, t)
            if not lin:
                names = ", ".join(str(b) for b in comp)
                raise NoMethod(
                    f"the states {names} form a coupled nonlinear system; symml finds closed forms "
                    "for single ODEs and linear systems"
                )
            route_list = [("dsolve", route_dsolve, (blk, t))]
            if const:
                route_list += [
                    ("elimination", route_elimination, (blk, t)),
                    ("matrix exponential", route_expm, (blk, t, consts)),
                ]
            reasons = []
            for i, (name, fn, fn_args) in enumerate(route_list):
                # dsolve on a system can run for minutes where elimination takes a second: it
                # gets a quarter of the budget (at most DSOLVE_SYSTEM_MAX), the other routes
                # half of what is left, the last one the rest.
                if i == len(route_list) - 1:
                    share = remaining()
                elif name == "dsolve":
                    share = min(0.25 * remaining(), DSOLVE_SYSTEM_MAX)
                else:
                    share = 0.5 * remaining()
                before = set().union(*(r.free_symbols for _, _, r in blk))
                ok, res = attempt(share, fn, *fn_args)
                if ok:
                    keys = list(res)
                    vals = consts.rename([res[k] for k in keys], before)
                    cand = dict(br)
                    cand.update(dict(zip(keys, vals)))
                    ok2, how = attempt(
                        0.5 * remaining(), is_zero, residual_pairs(blk, cand, t), t, 0.3 * remaining()
                    )
                    if ok2:
                        if how == "numeric":
                            verified = "numeric"
                        branches = [cand]
                        routes.append(name + (f" (after {'; '.join(reasons)})" if reasons else ""))
                        break
                    res = f"not verified ({how})"
                reasons.append(f"{name}: {res}")
            else:
                raise NoMethod("no route solved the coupled linear block: " + "; ".join(reasons))
    # Each block was verified with the solutions it depends on substituted: together that is
    # the residual of the whole system.
    good = branches
    route = _route_name(routes, info)
    used = sorted(
        {c for br in good for e in br.values() for c in e.free_symbols if c in consts.made}, key=str
    )
    return {"branches": good, "constants": used, "route": route, "verified": verified}


def _route_name(routes, info) -> str:
    """E.g. ``"dsolve (nth_linear_constant_coeff_homogeneous); 2 decoupled blocks"``."""
    hints = list(dict.fromkeys(r for r in routes if r.split(" (")[0] not in _SYSTEM_ROUTES))
    systems = list(dict.fromkeys(r for r in routes if r.split(" (")[0] in _SYSTEM_ROUTES))
    parts = ([f"dsolve ({', '.join(hints)})"] if hints else []) + systems
    text = " + ".join(parts)
    if len(info["components"]) > 1:
        text += f"; {len(info['components'])} decoupled blocks"
    return text


_SYSTEM_ROUTES = ("dsolve", "elimination", "matrix exponential")


def residual_pairs(odes, exprs, t):
    """``(x^(n) of the solution, rhs evaluated on the solution)`` for each equation."""
    sub = {}
    for b, n, _ in odes:
        for j in range(n):
            sub[D(b, j, t)] = exprs[b].diff(t, j)
    return [(exprs[b].diff(t, n), rhs.xreplace(sub)) for b, n, rhs in odes]


def _known_subs(known, odes, t):
    sub = {}
    orders = {b: n for b, n, _ in odes}
    for b, e in known.items():
        for j in range(orders[b]):
            sub[D(b, j, t)] = e.diff(t, j)
    return sub


def apply_ics(odes, branches, constants, ics, t0, t, simplify=True):
    """Task: fix the integration constants from ``ics`` ({state: value at t0}).

    Returns ``{"exprs": {x: expr}, "verified": str}``."""
    orders = {b: n for b, n, _ in odes}
    last = None
    for br in branches:
        eqs, rhs_vals = [], []
        for s, v in ics.items():
            b, j = (s.expr, s.derivative_count) if isinstance(s, sp.Derivative) else (s, 0)
            if b not in br or j >= orders[b]:
                raise NoMethod(f"{s} is not a state of the system")
            eqs.append(br[b].diff(t, j).xreplace({t: t0}) - v)
            rhs_vals.append(v)
        cs = [c for c in constants if any(e.has(c) for e in eqs)]
        sols = []
        try:
            M, rhs = sp.linear_eq_to_matrix(eqs, cs)
        except (NonlinearError, ValueError):
            M = None
        if M is not None and M.rows == M.cols and 0 < M.rows <= 6:
            # Cramer's rule with a simplified determinant (the Wronskian): LU pivoting can put
            # a removable singularity such as 1/sin(w t0) into the constants, and SymPy's own
            # det/LU test pivots for zero, which takes minutes on Cardano-size entries.
            det = tidy(_det(M), 0.3 * remaining())
            if det != 0 and _nonzero_somewhere(det):
                cols = [_det(M[:, :i].row_join(rhs).row_join(M[:, i + 1 :])) for i in range(M.cols)]
                sols = [dict(zip(cs, (c / det for c in cols)))]
        if not sols:
            ok, res = attempt(0.5 * remaining(), sp.solve, eqs, cs, dict=True)
            sols = res if ok and isinstance(res, list) else []
        for sol in sols:
            exprs = {b: e.xreplace(sol) for b, e in br.items()}
            if any(e.has(*constants) for e in exprs.values()) or any(
                e.has(sp.nan, sp.zoo, sp.oo) for e in exprs.values()
            ):
                continue
            if simplify:
                exprs = {b: tidy(e, 0.4 * remaining() / max(len(exprs), 1)) for b, e in exprs.items()}
            pairs = []
            for s, v in ics.items():
                b, j = (s.expr, s.derivative_count) if isinstance(s, sp.Derivative) else (s, 0)
                pairs.append((exprs[b].diff(t, j).xreplace({t: t0}), v))
            ok, how = attempt(0.5 * remaining(), is_zero, pairs, t, 0.2 * remaining())
            if ok:
                return {"exprs": exprs, "verified": how}
            last = how
    raise NoMethod(
        "the initial conditions cannot be met by the general solution" + (f" ({last})" if last else "")
    )


def _det(M):
    """Determinant by cofactor expansion: no pivoting and no zero tests on the entries."""
    n = M.rows
    if n == 1:
        return M[0, 0]
    if n == 2:
        return M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
    return sp.Add(*[(-1) ** j * M[0, j] * _det(M.minor_submatrix(0, j)) for j in range(n) if M[0, j] != 0])


def _nonzero_somewhere(e) -> bool:
    """``e`` is not identically zero (checked at random points; True if it cannot be evaluated)."""
    try:
        return not support.numeric_zero([(e, sp.Integer(0))], sp.Symbol("_unused"), points=2)
    except Unverified:
        return True
