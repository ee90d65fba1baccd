"""SymPy-only algorithms behind `symml.analytic`, and the loop of the worker process.

This file imports nothing but the standard library and SymPy: `symml._worker` runs it as
a standalone script in a child process (so that the child starts in well under a second and
never imports JAX), sends it tasks over a pipe and kills it when a budget runs out. Every
task runs under the budgets of `symml._analytic._child`, so that a slow route (``dsolve``
on a coupled system, ``simplify``) gives way to the next one within the same budget.

Tasks (see `TASKS`) take and return plain SymPy objects: symbols, applied undefined
functions of ``t`` and numbers. Failures are reported as ``("no_method" | "unverified" |
"timeout" | "error", message)``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as the worker's script: the directory of this file (symml/) is sys.path[0]; remove
    # it so that symml's modules (symml/io.py, ...) can never shadow top-level modules.
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _here]

import re

import sympy as sp
from sympy.solvers.solveset import NonlinearError

if __package__:
    from . import _child as support
else:  # the worker's script: load the sibling file itself (never the package, which imports JAX)
    import importlib.util
    import os
    import sys

    _spec = importlib.util.spec_from_file_location(
        "_symml_sympy_support", os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
    )
    support = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = support
    _spec.loader.exec_module(support)

NoMethod, Unverified = support.NoMethod, support.Unverified
attempt, remaining, is_zero = support.attempt, support.remaining, support.is_zero

# ----------------------------------------------------------------------------- structure


def D(f, n: int, t):
    """``f`` differentiated ``n`` times (``f`` itself for ``n = 0``)."""
    return f if n == 0 else sp.Derivative(f, (t, n))


def first_order(odes, t):
    """``(Y, A, forcing, linear, constant)`` of ``Y' = A Y + forcing(t)`` for the states of
    ``odes`` (a list of ``(x, n, rhs)`` meaning ``x^(n) = rhs``)."""
    Y = [D(b, j, t) for b, n, _ in odes for j in range(n)]
    F = []
    for b, n, rhs in odes:
        F += [D(b, j + 1, t) for j in range(n - 1)] + [rhs]
    z = [sp.Symbol(f"_z{i}") for i in range(len(Y))]
    fwd = dict(zip(Y, z))
    Fz = sp.Matrix([f.xreplace(fwd) for f in F])
    A = Fz.jacobian(z)
    linear = not any(a.has(*z) for a in A)
    constant = linear and not any(a.has(t) for a in A)
    forcing = Fz.xreplace({s: 0 for s in z}) if linear else None
    return Y, A, forcing, linear, constant


def components(odes, t):
    """Strongly connected components of the base states' dependencies, dependencies first."""
    bases = [b for b, _, _ in odes]
    deps = {}
    for b, _, rhs in odes:
        funcs = {f for f in rhs.atoms(sp.core.function.AppliedUndef) if f.args == (t,)}
        deps[b] = [c for c in bases if c in funcs and c != b]
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in deps[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append([b for b in bases if b in comp])

    for b in bases:
        if b not in index:
            visit(b)
    return out


def classify(odes, t) -> dict:
    """Cheap structural facts used to skip hopeless attempts."""
    _, _, _, linear, constant = first_order(odes, t)
    comps = components(odes, t)
    return {
        "linear": linear,
        "constant": constant,
        "components": [len(c) for c in comps],
        "order": max(n for _, n, _ in odes),
        "autonomous": _autonomous(odes, t),
    }


def _autonomous(odes, t) -> bool:
    """No explicit ``t`` (states ``x(t)`` replaced by symbols first)."""
    funcs = {f for _, _, rhs in odes for f in rhs.atoms(sp.core.function.AppliedUndef)}
    derivs = {d for _, _, rhs in odes for d in rhs.atoms(sp.Derivative)}
    rep = {f: sp.Symbol(f"_a{i}") for i, f in enumerate(sorted(derivs | funcs, key=str))}
    return not any(rhs.xreplace(rep).has(t) for _, _, rhs in odes)


# ----------------------------------------------------------------------------- constants

_CONST = re.compile(r"^C\d+$")


class Constants:
    """Fresh integration constants ``C1, C2, ...`` avoiding names already in use."""

    def __init__(self, taken):
        self.taken = {str(s) for s in taken}
        self.n = 0
        self.made: list[sp.Symbol] = []

    def new(self) -> sp.Symbol:
        while True:
            self.n += 1
            name = f"C{self.n}"
            if name not in self.taken:
                c = sp.Symbol(name)
                self.made.append(c)
                return c

    def rename(self, exprs, before):
        """Replace the constants a SymPy routine introduced (``C<k>`` not in ``before``)."""
        found = sorted(
            {s for e in exprs for s in e.free_symbols if _CONST.match(s.name) and s not in before},
            key=lambda s: int(s.name[1:]),
        )
        rep = {c: self.new() for c in found}
        return [e.xreplace(rep) for e in exprs]


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


def _explicit(sol, f):
    sols = sol if isinstance(sol, (list, tuple)) else [sol]
    out = []
    for s in sols:
        if isinstance(s, sp.Equality) and s.lhs == f and not s.rhs.has(f):
            rhs = s.rhs
            if rhs.has(sp.Integral):
                rhs = rhs.doit()
            if not rhs.has(sp.Integral) and not rhs.has(sp.Derivative) and rhs.is_finite is not False:
                out.append(rhs)
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


def _fast_single(b, n, rhs, t):
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


def solve_single(b, n, rhs, t):
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
    sol = sp.dsolve(eqs, funcs)
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


def route_expm(odes, t, consts: Constants):
    """``Y(t) = exp(A t) C + integral_0^t exp(A (t - s)) f(s) ds``."""
    Y, A, f, _, _ = first_order(odes, t)
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
            b, j = (s.expr, sum(c for _, c in s.variable_count)) if isinstance(s, sp.Derivative) else (s, 0)
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
                b, j = (
                    (s.expr, sum(c for _, c in s.variable_count)) if isinstance(s, sp.Derivative) else (s, 0)
                )
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


#: Expressions larger than this (operation count) are not simplified (it would not finish).
TIDY_LIMIT = 400
#: At most this many seconds of ``simplify`` per expression (cosmetic; often it never ends).
TIDY_MAX = 1.0


def tidy(e, seconds: float):
    """``simplify`` within ``seconds`` (at most TIDY_MAX) when that makes the expression no larger."""
    if sp.count_ops(e) > TIDY_LIMIT:
        return e
    ok, s = attempt(min(seconds, TIDY_MAX), sp.simplify, e)
    if ok and sp.count_ops(s) <= sp.count_ops(e):
        return s
    return e


def solve_for(expr, unknown, seconds_simplify: float = 1.0):
    """Task: closed-form roots of ``expr = 0`` in ``unknown`` (a symbol); lower branches of
    Lambert W are added next to the principal ones SymPy returns."""
    roots = sp.solve(expr, unknown)
    out = []
    for r in roots:
        if isinstance(r, dict):
            r = r.get(unknown)
        if r is None or r.has(sp.Integral) or isinstance(r, sp.ConditionSet):
            continue
        out.append(r)
        ws = [w for w in r.atoms(sp.LambertW) if len(w.args) == 1]
        if ws:
            out.append(r.xreplace({w: sp.LambertW(w.args[0], -1) for w in ws}))
    return out


def simplify_task(exprs, seconds: float):
    """Task: simplified expressions (each within its share of ``seconds``)."""
    return [tidy(e, seconds / max(len(exprs), 1)) for e in exprs]


def flip_logs(e, var):
    """``log(n/d) -> -log(d/n)`` (expanded) where only the denominator depends on ``var``:
    ``log(m v/(m v - k X))`` becomes ``-log(1 - k X/(m v))``, equal wherever the log is real,
    and a form ``solve`` can invert (through Lambert W)."""
    rep = {}
    for L in e.atoms(sp.log):
        n, d = sp.fraction(sp.together(L.args[0]))
        if d.has(var) and not n.has(var):
            rep[L] = -sp.log(sp.expand(d / n))
    return e.xreplace(rep) if rep else e


def eliminate(x_expr, y_expr, X, t):
    """Task: candidates for y as a function of X = x(t): solve x(t) = X for t, substitute."""
    ts = sp.solve(sp.Eq(x_expr, X), t)
    out = []
    for tx in ts:
        y = tidy(y_expr.xreplace({t: tx}), 0.3 * remaining())
        out.append((tx, flip_logs(y, X)))
    return out


def ping():
    return sp.__version__


TASKS = {
    "general_solution": general_solution,
    "apply_ics": apply_ics,
    "solve_for": solve_for,
    "simplify": simplify_task,
    "eliminate": eliminate,
    "ping": ping,
}


if __name__ == "__main__":
    support.serve(TASKS)
