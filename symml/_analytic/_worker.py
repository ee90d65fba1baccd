"""The symbolic worker: a child process that runs SymPy under a hard time budget.

SymPy cannot be interrupted from another thread, and ``dsolve`` on a nonlinear ODE can run for
hours, so every closed-form attempt runs in a separate process that can be killed. Design:

* The child runs ``symml/_analytic/_routes.py`` as a *script* (``python _routes.py``), not through
  ``multiprocessing``: it imports only SymPy (about 0.5-1 s to start, against ~3 s for the
  whole package with JAX), it is never forked from a process that has started JAX's threads,
  and it never re-imports the user's ``__main__`` (which the "spawn" and "forkserver" start
  methods do, running an unguarded script a second time).
* It is persistent and warm: started on first use, then reused. Messages are pickled over its
  stdin/stdout pipes (``multiprocessing.connection`` framing); only SymPy objects built in
  this process or the child cross them. Nothing is ever read from a file.
* Budgets: the child arms an interval timer for each task and answers ``"timeout"`` when it
  fires; the parent waits at most ``budget + GRACE`` and otherwise kills it. After any timeout
  the child is killed (a task that ran out of time may have filled SymPy's caches) and a
  fresh one is started in the background, so no work is ever left running.
* The child dies with its parent: on Linux the kernel kills it (``PR_SET_PDEATHSIG``, tied to
  the thread that started it; a worker lost that way is restarted on the next task), elsewhere
  a watchdog thread notices within a second. The parent also kills it at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ..errors import SymmlError

#: Extra seconds the parent waits beyond a task's budget before it kills the child.
GRACE = 0.75
#: Seconds allowed for the child to start (import SymPy); not part of any task's budget.
STARTUP_TIMEOUT = 60.0

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_routes.py")


class WorkerError(SymmlError, RuntimeError):
    """The symbolic worker process could not be started or died."""


class Worker:
    """One persistent child process running `symml._analytic._routes` tasks under budgets."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._errfile = None
        self._ready = False
        self._owner = os.getpid()
        self.restarts = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        """Process id of the running child (``None`` when none is running)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start the child if none is running (returns at once; it imports SymPy meanwhile)."""
        with self._lock:
            if os.getpid() != self._owner:  # a fork of the parent: leave the old child alone
                self._forget()
                self._owner = os.getpid()
            if self._proc is not None and self._proc.poll() is None:
                return
            self._close()
            self._errfile = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(
                [sys.executable, "-u", _SCRIPT, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errfile,
                close_fds=True,
            )
            self._send = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
            self._recv = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
            self._proc.stdin.close()
            self._proc.stdout.close()
            self._ready = False

    def _wait_ready(self) -> None:
        if self._ready:
            return
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._recv.poll(0.05):
                try:
                    msg = self._recv.recv()
                except (EOFError, OSError):
                    break
                if msg and msg[0] == "ready":
                    self._ready = True
                    return
            if self._proc.poll() is not None:
                break
        err = self._stderr()
        self.kill()
        raise WorkerError(
            f"The symbolic worker ({sys.executable} {_SCRIPT}) did not start"
            + (f": {err.strip()[-800:]}" if err.strip() else f" within {STARTUP_TIMEOUT:g} s")
            + ". Closed forms need SymPy importable by this Python."
        )

    def _stderr(self) -> str:
        try:
            self._errfile.seek(0)
            return self._errfile.read().decode(errors="replace")
        except (OSError, ValueError, AttributeError):
            return ""

    def kill(self) -> None:
        """Kill the child (if any) and reap it; the next task starts a fresh one."""
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            self._close()

    def restart(self) -> None:
        """Kill the child and start a fresh one in the background."""
        with self._lock:
            self.kill()
            self.restarts += 1
            self.start()

    def _close(self) -> None:
        for c in (self._send, self._recv):
            if c is not None:
                try:
                    c.close()
                except OSError:
                    pass
        if self._errfile is not None:
            self._errfile.close()
        self._send = self._recv = self._errfile = None
        self._proc = None
        self._ready = False

    def _forget(self) -> None:
        # In a forked child: drop the handles without touching the parent's worker.
        self._send = self._recv = self._errfile = None
        self._proc = None
        self._ready = False

    # ------------------------------------------------------------------ tasks
    def call(self, task: str, args: tuple, budget: float) -> tuple[str, Any]:
        """Run ``task(*args)`` in the child within ``budget`` seconds.

        Returns ``(status, payload)`` with status ``"ok"``, ``"timeout"``, ``"no_method"``,
        ``"unverified"``, ``"error"`` (SymPy raised) or ``"crashed"`` (the child died; a fresh
        one is started). Start-up of a fresh child is not counted in the budget.
        """
        budget = max(float(budget), 0.01)
        with self._lock:
            self.start()
            self._wait_ready()  # a child that cannot start is killed and reported (WorkerError)
            try:
                self._send.send((task, args, budget))
                if self._recv.poll(budget + GRACE):
                    status, payload = self._recv.recv()
                else:
                    status, payload = "timeout", f"ran out of its {budget:g} s budget (worker killed)"
            except (EOFError, OSError) as err:
                detail = self._stderr()[-400:]
                self.restart()
                return "crashed", f"the symbolic worker died ({type(err).__name__}): {detail}"
            except BaseException:
                # Interrupted (KeyboardInterrupt) mid-task: the child is busy; replace it.
                self.restart()
                raise
            if status == "timeout":
                self.restart()
            return status, payload


WORKER = Worker()


@atexit.register
def _shutdown() -> None:
    WORKER.kill()
