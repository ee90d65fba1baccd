"""The symbolic worker's script and its task table (standard library and SymPy only).

`symml._analytic._worker` runs this file as a standalone script in a child process (so that
the child starts in well under a second and never imports JAX), sends it tasks over a pipe
and kills it when a budget runs out. The script loads its sibling files itself, never the
package: `symml._analytic._child` (budgets, verification, the task loop) is registered in
``sys.modules`` first, then every other file is loaded with `_child.load_file`, and finds
`_child` there.

`TASKS` names what the child can run: the closed-form routes of `symml._analytic._routes`
and the post-processing tasks below (roots, simplification, elimination of ``t``, the
shortest form of a distilled expression, antiderivatives). A parent may also name a function
in another file of the package as ``(path, function)`` (distill's Operon search).
"""

from __future__ import annotations

if __name__ == "__main__":
    # Run as the worker's script: the directory of this file is sys.path[0]; remove it so that
    # symml's private modules can never shadow top-level modules.
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _here]

import time

import sympy as sp

if __package__:
    from . import _child as support
    from . import _routes as routes
else:  # the worker's script: load the sibling files themselves (the package imports JAX)
    import importlib.util
    import os
    import sys

    # one `_child` per process: its `Timeout` is the one the timer raises
    support = sys.modules.get("_symml_child")
    if support is None:
        _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
        _spec = importlib.util.spec_from_file_location("_symml_child", _path)
        if _spec is None or _spec.loader is None:
            raise ImportError(f"the symbolic worker cannot load {_path}")
        support = importlib.util.module_from_spec(_spec)
        sys.modules[_spec.name] = support
        _spec.loader.exec_module(support)
    routes = support.sibling("_routes")

attempt, remaining, tidy = support.attempt, support.remaining, support.tidy


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


#: Fraction of a task's budget its own steps may use: the rest lets it answer with what it has
#: before the child's timer (and, later, the parent) stops it.
_USABLE = 0.9


def _rewritten(f, e):
    r = f(e)
    return r, sp.count_ops(r)


def _expanded_terms(e):
    return sp.factor_terms(sp.expand(e))


def shortest(exprs, seconds: float):
    """Task: each expression in its shortest form (fewest operations) among itself, its
    expansion, its expansion with common factors pulled out, and ``simplify`` of the best of
    those; each expression gets ``seconds`` (the cheap rewrites a quarter each) and keeps the
    best found when its time runs out."""
    out = []
    for i, e in enumerate(exprs):
        end = time.monotonic() + min(float(seconds), _USABLE * remaining() / (len(exprs) - i))
        best, best_ops = e, sp.count_ops(e)
        for f in (sp.expand, _expanded_terms, sp.simplify):
            share = end - time.monotonic()
            if f is not sp.simplify:
                share *= 0.25
            if share <= 1e-3:
                break
            ok, res = attempt(share, _rewritten, f, best if f is sp.simplify else e)
            if ok and res[1] < best_ops:
                best, best_ops = res
        out.append(best)
    return out


def antiderivative(expr, var, seconds: float):
    """Task: ``integrate(expr, var)``, or ``None`` when SymPy cannot finish within ``seconds``."""
    ok, res = attempt(min(float(seconds), _USABLE * remaining()), sp.integrate, expr, var)
    return res if ok else None


def ping():
    """Task: SymPy's version (a worker that answers is alive)."""
    return sp.__version__


TASKS = {
    "general_solution": routes.general_solution,
    "apply_ics": routes.apply_ics,
    "solve_for": solve_for,
    "simplify": simplify_task,
    "eliminate": eliminate,
    "shortest": shortest,
    "antiderivative": antiderivative,
    "ping": ping,
}


if __name__ == "__main__":
    support.serve(TASKS)
