"""Distill's symbolic and slow work runs under the symbolic worker's one time budget: a SymPy
simplification that runs out of time gives back its input, one that ignores its budget is
killed, an Operon search past its hard limit is stopped, and the worker is reusable after each."""

import time

import numpy as np
import pytest
import sympy as sp
from conftest import process_alive

from symml._analytic._worker import GRACE, WORKER
from symml.distill import Operon, operon
from symml.distill.operon import OperonError, OperonTimeout
from symml.distill.postprocess import WORKER_SLACK, Placeholders, integrate, simplify, simplify_all

a, b, c, d, e = sp.symbols("a b c d e", real=True)
#: Expanding this takes minutes (635 376 terms); its unexpanded form is the shortest.
HUGE = (a + b + c + d + e) ** 60 * sp.sin(a)
#: Room for a loaded 2-core machine on top of the budgets themselves.
SLACK = 3.0


@pytest.fixture
def warm():
    """The shared worker, started: only the task itself is timed."""
    assert WORKER.call("ping", (), 60)[0] == "ok"
    return WORKER


def _reusable() -> bool:
    return WORKER.call("ping", (), 60)[0] == "ok" and simplify(sp.sin(a) ** 2 + sp.cos(a) ** 2, 5.0) == 1


def test_a_simplification_past_its_budget_returns_its_input(warm):
    pid, restarts = warm.pid, warm.restarts
    start = time.monotonic()
    got = simplify(HUGE, timeout=0.5)
    elapsed = time.monotonic() - start
    assert got == HUGE
    assert elapsed < 0.5 + WORKER_SLACK + GRACE + SLACK
    # the task gave way on its own timer: the child needed no kill and stays warm
    assert warm.pid == pid and warm.restarts == restarts
    assert _reusable()


def test_simplify_all_keeps_each_expression_within_its_own_share(warm):
    start = time.monotonic()
    got = simplify_all([HUGE, a * b + a * b, sp.exp(a) * sp.exp(-a)], timeout=1.0)
    assert got == [HUGE, 2 * a * b, 1]
    assert time.monotonic() - start < 3 * 1.0 + WORKER_SLACK + GRACE + SLACK


class _Stubborn:
    """Sends every task with 10-minute budgets, as if SymPy were stuck in code that never
    returns to the interpreter: only the parent's kill can stop it."""

    def __init__(self, conn):
        self.conn = conn

    def send(self, msg):
        task, args, _ = msg
        assert task == "shortest"
        self.conn.send((task, (args[0], 600.0), 600.0))

    def close(self):
        self.conn.close()


@pytest.mark.slow
def test_a_simplification_that_ignores_its_budget_is_killed(warm):
    old, restarts = warm.pid, warm.restarts
    warm._send = _Stubborn(warm._send)
    start = time.monotonic()
    got = simplify(HUGE, timeout=0.5)
    elapsed = time.monotonic() - start
    assert got == HUGE  # the documented fallback: the input itself
    assert 0.5 + WORKER_SLACK + GRACE <= elapsed < 0.5 + WORKER_SLACK + GRACE + SLACK
    assert not process_alive(old) and warm.restarts == restarts + 1
    assert _reusable() and warm.pid != old


def test_states_and_symml_symbols_cross_to_the_worker_as_placeholders(warm):
    import symml as sm

    (x,) = sm.states("x", real=True)
    (k,) = sm.parameters("k", positive=True)
    expr = k * x * (x.diff(sm.t) + 1) - k * x
    assert simplify(expr, 5.0) == k * x * x.diff(sm.t)
    ph = Placeholders()
    plain = ph.to(expr)
    assert all(type(s) is sp.Symbol for s in plain.free_symbols)
    assert not plain.atoms(sp.Derivative, sp.core.function.AppliedUndef)
    assert ph.restore(plain) == expr
    assert integrate(k * x, x) == k * x**2 / 2


def _data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 2))
    return X, 1.5 * X[:, 0] * X[:, 1] - 0.7 * np.sin(X[:, 0])


@pytest.mark.slow
def test_an_operon_search_past_its_hard_limit_is_stopped(warm):
    X, y = _data()
    # pyoperon imported in the child first (as every fit does, outside the search's budget),
    # so that only the search is timed
    assert warm.call((operon._SEARCH_FILE, "prepare"), (), 120)[0] == "ok"
    old = warm.pid
    # Operon's own limit (max_time) would let this run for ten minutes
    search = Operon(
        generations=100_000, population_size=2000, max_evaluations=10**9, max_time=600, timeout=1.0
    )
    start = time.monotonic()
    with pytest.raises(OperonTimeout, match=r"ran past its hard limit of 1 s \(timeout=1.0, max_time=600\)"):
        search.fit(X, y, [a, b])
    assert time.monotonic() - start < 1.0 + GRACE + SLACK
    assert isinstance(OperonTimeout("x"), (OperonError, TimeoutError))
    assert not process_alive(old)
    assert _reusable()


def test_operon_hard_limit_defaults_to_twice_max_time_plus_ten():
    assert Operon(max_time=5).hard_limit == 20.0
    assert Operon(max_time=0.3, timeout=2.5).hard_limit == 2.5
