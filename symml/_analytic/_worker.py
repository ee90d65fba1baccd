"""The symbolic worker: a child process that runs SymPy under a hard time budget.

SymPy cannot be interrupted from another thread, and ``dsolve`` on a nonlinear ODE can run for
hours, so every closed-form attempt runs in a separate process that can be killed. Design:

* The child runs ``symml/_analytic/_tasks.py`` as a *script* (``python _tasks.py``), not through
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
* One budget for everything that can hang: closed forms and derived quantities
  (`symml._analytic`), and distill's SymPy post-processing and Operon search
  (`symml.distill`). Operon's search runs C++ code that never returns to the interpreter, so
  the child's own timer cannot stop it: there the parent's kill is the limit. A task is a
  name in ``_tasks.TASKS`` or ``(path, function)``, a function in another file of symml that
  the child loads standalone (it must import only the standard library and SymPy at its top;
  heavier imports such as ``pyoperon`` go inside the function).
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
from typing import IO, Any

from ..errors import SymmlError

#: Extra seconds the parent waits beyond a task's budget before it kills the child.
GRACE = 0.75
#: Seconds allowed for the child to start (import SymPy); not part of any task's budget.
STARTUP_TIMEOUT = 60.0

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_tasks.py")


class WorkerError(SymmlError, RuntimeError):
    """The symbolic worker process could not be started or died."""


class Worker:
    """One persistent child process running `symml._analytic._tasks` tasks under budgets."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._errfile: IO[bytes] | None = None
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
            proc = subprocess.Popen(
                [sys.executable, "-u", _SCRIPT, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errfile,
                close_fds=True,
            )
            self._proc = proc
            if proc.stdin is None or proc.stdout is None:  # cannot happen with PIPE
                self.kill()
                raise WorkerError("The symbolic worker was started without stdin/stdout pipes.")
            self._send = Connection(os.dup(proc.stdin.fileno()), readable=False)
            self._recv = Connection(os.dup(proc.stdout.fileno()), writable=False)
            proc.stdin.close()
            proc.stdout.close()
            self._ready = False

    def _handles(self) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
        """The running child and its pipes (`start` must have been called)."""
        proc, send, recv = self._proc, self._send, self._recv
        if proc is None or send is None or recv is None:
            raise WorkerError("The symbolic worker is not running (start() was not called).")
        return proc, send, recv

    def _wait_ready(self) -> None:
        if self._ready:
            return
        proc, _, recv = self._handles()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if recv.poll(0.05):
                try:
                    msg = recv.recv()
                except (EOFError, OSError):
                    break
                if msg and msg[0] == "ready":
                    self._ready = True
                    return
            if proc.poll() is not None:
                break
        err = self._stderr()
        self.kill()
        raise WorkerError(
            f"The symbolic worker ({sys.executable} {_SCRIPT}) did not start"
            + (f": {err.strip()[-800:]}" if err.strip() else f" within {STARTUP_TIMEOUT:g} s")
            + ". Closed forms need SymPy importable by this Python."
        )

    def _stderr(self) -> str:
        errfile = self._errfile
        if errfile is None:
            return ""
        try:
            errfile.seek(0)
            return errfile.read().decode(errors="replace")
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
    def call(self, task: str | tuple[str, str], args: tuple, budget: float) -> tuple[str, Any]:
        """Run ``task(*args)`` in the child within ``budget`` seconds.

        Args:
            task: a name in ``TASKS`` of `symml._analytic._tasks`, or ``(path, function)``
                naming a function in a ``.py`` file of the symml package.
            args: the task's arguments (pickled: SymPy objects, numbers, NumPy arrays).
            budget: seconds the task may run; the child is killed ``GRACE`` s later.

        Returns:
            ``(status, payload)`` with status ``"ok"``, ``"timeout"``, ``"no_method"``,
            ``"unverified"``, ``"error"`` (the task raised) or ``"crashed"`` (the child died;
            a fresh one is started). Start-up of a fresh child is not counted in the budget.

        Raises:
            WorkerError: the child could not be started (the message has its stderr).
        """
        budget = max(float(budget), 0.01)
        with self._lock:
            self.start()
            self._wait_ready()  # a child that cannot start is killed and reported (WorkerError)
            _, send, recv = self._handles()
            try:
                send.send((task, args, budget))
                if recv.poll(budget + GRACE):
                    status, payload = recv.recv()
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
