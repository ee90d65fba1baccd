"""Budgets, verification and the task loop of the symbolic worker (stdlib and SymPy only).

Deadlines are enforced inside the worker process by an interval timer whose handler raises
`Timeout`, a ``BaseException`` so that SymPy's ``except Exception`` clauses cannot
swallow it (the timer re-fires every 50 ms in case a bare ``except`` does). Limits nest:
`attempt` gives a route its own share of the time and moves on when it runs out, while
the task's overall deadline aborts everything.

Verification substitutes a candidate into its equations: zero after ``expand``/``simplify``
(``"symbolic"``), or, when simplification is inconclusive, zero to 1e-10 at random points in
30-digit arithmetic (``"numeric"``).

Tasks are named either by a key of the script's ``TASKS`` table or by ``(path, function)``: a
function in another file of the symml package, loaded standalone by `load_file` (no package
import, so nothing but what that file imports itself; distill's Operon search is one).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import sys
import time
from typing import Any

import sympy as sp

# ----------------------------------------------------------------------------- budgets


class Timeout(BaseException):
    """A deadline passed (BaseException, so that SymPy's ``except Exception`` cannot swallow it)."""


class NoMethod(Exception):
    """No method applies (the message says why)."""


class Unverified(Exception):
    """A candidate solution could not be verified."""


_DEADLINES: list[float] = []
_TIMERS = False  # armed only in the worker process (signal handlers need the main thread)


def _on_alarm(signum, frame):
    if _DEADLINES and time.monotonic() >= min(_DEADLINES) - 1e-4:
        raise Timeout()


def _arm() -> None:
    if not _TIMERS:
        return
    if _DEADLINES:
        # Fires at the nearest deadline, then every 50 ms in case SymPy swallows the first one.
        signal.setitimer(signal.ITIMER_REAL, max(min(_DEADLINES) - time.monotonic(), 1e-3), 0.05)
    else:
        signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)


@contextlib.contextmanager
def limit(seconds: float):
    """Raise `Timeout` inside the block after ``seconds`` (nested limits allowed)."""
    with _until(time.monotonic() + max(float(seconds), 1e-3)) as deadline:
        yield deadline


@contextlib.contextmanager
def _until(deadline: float):
    _DEADLINES.append(deadline)
    _arm()
    try:
        yield deadline
    finally:
        _discard(deadline)


def _discard(deadline: float) -> None:
    with contextlib.suppress(ValueError):
        _DEADLINES.remove(deadline)
    _arm()


def remaining() -> float:
    """Seconds to the nearest deadline (inf outside any limit)."""
    return min(_DEADLINES) - time.monotonic() if _DEADLINES else float("inf")


def attempt(seconds: float, fn, *args, **kwargs) -> tuple[bool, Any]:
    """``(True, fn(*args))``, or ``(False, reason)`` if ``fn`` raised or its own share of time ran
    out; re-raises `Timeout` when an enclosing deadline has passed."""
    now = time.monotonic()
    outer = min(_DEADLINES) if _DEADLINES else float("inf")
    inner = min(now + max(float(seconds), 1e-3), max(outer, now + 1e-3))
    try:
        with _until(inner):
            return True, fn(*args, **kwargs)
    except Timeout:
        _discard(inner)  # in case the alarm interrupted the context manager's own cleanup
        if time.monotonic() >= outer - 1e-4:
            raise
        return False, "timed out"
    except Exception as err:  # SymPy raises many kinds of errors on hard inputs
        return False, f"{type(err).__name__}: {err}"


# ----------------------------------------------------------------------------- verification


def _sample(sym, rng: random.Random):
    if sym.is_integer:
        return rng.randint(1, 3)
    if sym.is_positive or sym.is_nonnegative:
        return rng.uniform(0.5, 2.0)
    if sym.is_negative or sym.is_nonpositive:
        return -rng.uniform(0.5, 2.0)
    return rng.choice([-1, 1]) * rng.uniform(0.3, 1.5)


def numeric_zero(pairs, t, points: int = 4, tol: float = 1e-10, fixed=None) -> bool:
    """True if ``lhs == rhs`` for every pair at ``points`` random points (30-digit arithmetic).

    Raises `Unverified` when too few points can be evaluated (singular everywhere)."""
    rng = random.Random(20240611)
    pairs = [(sp.sympify(a), sp.sympify(b)) for a, b in pairs]
    syms = sorted({s for p in pairs for e in p for s in e.free_symbols}, key=str)
    good = 0
    for _ in range(12 * points):
        vals = {s: _sample(s, rng) for s in syms}
        if t in vals:
            vals[t] = rng.uniform(0.05, 1.5)
        vals.update(fixed or {})
        # Substituting 30-digit Floats evaluates as it builds (evalf(subs=...) is ~300x slower).
        exact = {s: sp.Integer(v) if isinstance(v, int) else sp.Float(v, 30) for s, v in vals.items()}
        ok_point = True
        for lhs, rhs in pairs:
            try:
                a = complex(lhs.xreplace(exact).evalf(30))
                b = complex(rhs.xreplace(exact).evalf(30))
            except (TypeError, ValueError, ZeroDivisionError, OverflowError):
                ok_point = False
                break
            if not (_finite(a) and _finite(b)):
                ok_point = False
                break
            if abs(a - b) > tol * (1.0 + abs(a) + abs(b)):
                return False
        if ok_point:
            good += 1
            if good >= points:
                return True
    raise Unverified(f"the solution could be evaluated at only {good} random points")


def _finite(z: complex) -> bool:
    return z == z and abs(z) != float("inf")


#: Residuals larger than this (operation count) skip expand/simplify and go straight to the
#: numeric check: expanding a Cardano-size expression takes longer than any budget.
SYMBOLIC_LIMIT = 400


def is_zero(pairs, t, share: float) -> str:
    """``"symbolic"`` or ``"numeric"`` if every ``lhs - rhs`` is zero; raises `Unverified`."""
    diffs = [sp.sympify(lhs) - sp.sympify(rhs) for lhs, rhs in pairs]
    if all(sp.count_ops(d) <= SYMBOLIC_LIMIT for d in diffs):
        for cheap in (_all_expand_to_zero, _all_cancel_to_zero):
            ok, res = attempt(0.2 * share, cheap, diffs)
            if ok and res:
                return "symbolic"
        ok, res = attempt(share, _all_simplify_to_zero, diffs)
        if ok and res:
            return "symbolic"
    if numeric_zero(pairs, t):
        return "numeric"
    raise Unverified("substituting the solution into the equations leaves a non-zero residual")


def _all_expand_to_zero(diffs) -> bool:
    return all(sp.expand(d) == 0 for d in diffs)


def _all_cancel_to_zero(diffs) -> bool:
    # rational functions of exp/sin/cos/... (e.g. undetermined coefficients' denominators)
    return all(sp.cancel(sp.expand(d)) == 0 for d in diffs)


def _all_simplify_to_zero(diffs) -> bool:
    return all(sp.simplify(d) == 0 for d in diffs)


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


# ----------------------------------------------------------------------------- loading files

# The worker's script registers this module as ``sys.modules["_symml_child"]``: the files it
# loads standalone (`load_file`) find it there instead of importing the package (which
# imports JAX).

#: The symml package directory: the only place `load_file` loads code from.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def load_file(path: str):
    """The module in ``path`` (a ``.py`` file inside the symml package), loaded standalone once.

    Raises:
        ValueError: ``path`` is not a Python file of the symml package.
    """
    full = os.path.realpath(path)
    if not (full.endswith(".py") and os.path.commonpath([PACKAGE_DIR, full]) == PACKAGE_DIR):
        raise ValueError(f"the worker only loads code from {PACKAGE_DIR}; got {path!r}")
    rel = os.path.relpath(full, PACKAGE_DIR)[:-3]
    name = "_symml_file_" + rel.replace(os.sep, "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, full)
        if spec is None or spec.loader is None:
            raise ValueError(f"the worker cannot load {path!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def sibling(name: str):
    """The module ``name`` of this directory (e.g. ``"_structure"``), loaded by `load_file`."""
    return load_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py"))


def resolve(tasks, name):
    """The function a task names: ``tasks[name]``, or ``function`` of ``(path, function)``."""
    if isinstance(name, tuple):
        path, function = name
        return getattr(load_file(path), function)
    return tasks[name]


def enable_timers() -> None:
    """Install the alarm handler (the worker's main thread only)."""
    global _TIMERS
    signal.signal(signal.SIGALRM, _on_alarm)
    _TIMERS = True


def clear() -> None:
    """Drop every deadline and stop the timer (between tasks)."""
    _DEADLINES.clear()
    _arm()


# ----------------------------------------------------------------------------- the worker


def run_task(tasks, name, args, budget):
    """Run ``tasks[name](*args)`` within ``budget`` seconds; returns ``(status, payload)``."""
    clear()
    try:
        with limit(budget):
            return "ok", resolve(tasks, name)(*args)
    except Timeout:
        return "timeout", f"ran out of its {budget:g} s budget"
    except NoMethod as err:
        return "no_method", str(err)
    except Unverified as err:
        return "unverified", str(err)
    except RecursionError:
        return "error", "SymPy hit the recursion limit"
    except Exception as err:
        return "error", f"{type(err).__name__}: {err}"


def serve(tasks) -> None:
    """The worker loop: read ``(task, args, budget)`` from stdin, write ``(status, payload)``."""
    import threading
    from multiprocessing.connection import Connection

    inp = Connection(os.dup(0), writable=False)
    out = Connection(os.dup(1), readable=False)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints go to stderr, never into the channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    enable_timers()
    # The parent passes its pid: if it died before this point, this process was re-parented.
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    if sys.platform.startswith("linux"):
        # The kernel kills this process when its parent dies (PR_SET_PDEATHSIG = 1); the
        # watchdog below covers other systems and a parent that died before this line.
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)

    def watchdog():  # exit if the parent dies while a long task runs
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    out.send(("ready", sp.__version__))
    while True:
        try:
            msg = inp.recv()
        except (EOFError, OSError):
            break
        name, args, budget = msg
        try:
            reply = run_task(tasks, name, args, budget)
        except Timeout:  # a late alarm between the task's end and the timer's reset
            reply = ("timeout", f"ran out of its {budget:g} s budget")
        clear()
        try:
            out.send(reply)
        except Exception as err:  # an unpicklable result
            out.send(("error", f"could not send the result back: {err}"))
    os._exit(0)
