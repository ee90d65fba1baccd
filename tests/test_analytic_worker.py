"""The symbolic worker: budgets are enforced by killing the child process, nothing is left
running, a dead worker is replaced, and a worker that cannot start says why."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sympy as sp
from conftest import process_alive

import symml as sm
from symml import t
from symml._analytic import _worker
from symml._analytic._closed_form import _odes, _Plain
from symml._analytic._worker import Worker, WorkerError


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def worker():
    w = Worker()
    w.call("ping", (), 60)  # started and warm: only the task itself is timed
    yield w
    w.kill()


def _pendulum_task():
    return "general_solution", (_odes(sm.zoo.pendulum(), _Plain()), t)


class _Inflate:
    """Sends tasks with a 10-minute budget: the child's own timer will not stop it in time,
    as if SymPy were stuck in code that never returns to the interpreter."""

    def __init__(self, conn):
        self.conn = conn

    def send(self, msg):
        task, args, _ = msg
        self.conn.send((task, args, 600.0))

    def close(self):
        self.conn.close()


@pytest.mark.slow
def test_a_task_that_ignores_its_budget_is_killed(worker):
    old = worker.pid
    worker._send = _Inflate(worker._send)
    task, args = _pendulum_task()
    start = time.monotonic()
    status, message = worker.call(task, args, 1.0)
    elapsed = time.monotonic() - start
    assert status == "timeout" and "ran out of its 1 s budget (worker killed)" in message
    # the child was told 10 minutes: returning after the 1 s budget (plus the kill grace, with
    # ample slack for a loaded machine) proves the parent killed it instead of waiting
    assert 1.0 <= elapsed < 30.0
    assert not process_alive(old)  # killed and reaped: no SymPy work left running
    assert worker.pid not in (None, old) and worker.restarts == 1  # a fresh one is warming up
    assert worker.call("ping", (), 60)[0] == "ok"


def test_a_worker_that_dies_mid_task_is_replaced(worker):
    old = worker.pid
    threading.Timer(0.5, os.kill, (old, signal.SIGKILL)).start()
    task, args = _pendulum_task()
    status, message = worker.call(task, args, 30.0)
    assert status == "crashed" and "the symbolic worker died" in message
    assert not process_alive(old) and worker.call("ping", (), 60)[0] == "ok" and worker.pid != old


def test_a_worker_that_cannot_start_says_why(tmp_path, monkeypatch):
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.stderr.write('ModuleNotFoundError: sympy is missing')\nsys.exit(1)\n")
    monkeypatch.setattr(_worker, "_SCRIPT", str(broken))
    w = Worker()
    with pytest.raises(WorkerError, match="did not start: ModuleNotFoundError: sympy is missing"):
        w.call("ping", (), 5)
    assert w.pid is None


@pytest.mark.slow
def test_the_worker_dies_with_its_parent(tmp_path):
    # A parent that crashes (os._exit: no atexit clean-up) while its worker is busy.
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, threading
            import symml as sm
            from symml import t
            from symml._analytic._worker import WORKER
            from symml._analytic._closed_form import _odes, _Plain
            WORKER.call("ping", (), 60)
            print(WORKER.pid, flush=True)
            odes = _odes(sm.zoo.pendulum(), _Plain())
            threading.Timer(0.5, os._exit, (3,)).start()
            WORKER.call("general_solution", (odes, t), 600)
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    child = int(proc.stdout.split()[0])
    assert _gone(child, within=3.0)


def test_solve_analytic_reports_a_crashed_worker_and_does_not_cache_it():
    from symml._analytic._closed_form import _GENERAL
    from symml._analytic._worker import WORKER

    (th,) = sm.states("th")
    c = sm.parameters("c", positive=True)[0]
    damped = sm.Model([sp.Eq(th.diff(t, 2), -sp.sin(th) - c * th.diff(t))], name="damped_pendulum")
    WORKER.call("ping", (), 60)
    threading.Timer(0.5, os.kill, (WORKER.pid, signal.SIGKILL)).start()
    with pytest.raises(sm.NoClosedForm, match="damped_pendulum.*the symbolic worker died") as info:
        sm.solve_analytic(damped, timeout=20)
    assert info.value.reason == "crashed"
    assert tuple(_odes(damped, _Plain())) not in _GENERAL  # the next call tries again
    assert WORKER.call("ping", (), 60)[0] == "ok"


def test_a_task_can_name_a_function_in_a_file_of_the_package(worker):
    # the child loads the file standalone (SymPy only), as distill's Operon search is loaded
    from symml._analytic import _structure

    odes = _odes(sm.zoo.lotka_volterra(), _Plain())
    status, info = worker.call((_structure.__file__, "classify"), (odes, t), 30)
    assert status == "ok" and info == _structure.classify(odes, t)
    # the script itself, loaded a second time, shares the child's one budget module
    status, version = worker.call((_worker._SCRIPT, "ping"), (), 30)
    assert (status, version) == ("ok", sp.__version__)
    assert worker.call("shortest", ([sp.sin(t) ** 2 + sp.cos(t) ** 2], 5.0), 10) == ("ok", [1])


def test_the_worker_loads_code_only_from_the_package(worker, tmp_path):
    outside = tmp_path / "evil.py"
    outside.write_text("def run():\n    return 'ran'\n")
    status, message = worker.call((str(outside), "run"), (), 10)
    assert status == "error" and "the worker only loads code from" in message and str(outside) in message
    assert worker.call("ping", (), 10)[0] == "ok"


def test_the_child_imports_only_sympy():
    # run the script's own module setup in a fresh interpreter: JAX and symml never load
    code = textwrap.dedent(
        f"""
        import runpy, sys
        runpy.run_path({_worker._SCRIPT!r}, run_name="not_main")
        heavy = sorted(m for m in ("jax", "numpy", "symml", "pyoperon") if m in sys.modules)
        print(heavy)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
