"""Where the runs of a benchmark grid execute: this process, a local process pool, or Dask.

The runner hands an executor a list of tasks and writes each ``(row, predictions)`` pair to
disk as it comes back, in this process (the client), so resuming works the same whichever
executor ran the rows. Every executor yields ``(index, result)`` pairs in completion order.

* `InProcess` (``jobs=1``): runs the tasks one after the other here.
* `ProcessPool` (``jobs > 1``, the default): ``concurrent.futures`` with spawned workers (JAX
  is not fork-safe). Workers ignore SIGINT; on Ctrl-C the parent cancels what has not started
  and kills the workers at once instead of waiting for the runs in flight (which can take
  minutes), so the interrupt acts within seconds and the rows already written stay.
* `DaskPool` (``scheduler=...``): Dask's distributed scheduler, either an embedded
  ``LocalCluster`` (``"local"``), a running cluster by address (``"tcp://host:port"``) or a
  ``dask.distributed.Client`` you made. Dask is imported only here, only when asked for.
  A worker that dies mid-task has its task re-run elsewhere by the scheduler (up to its
  ``distributed.scheduler.allowed-failures``); ``retries`` re-runs a task that raised. Each
  task seeds everything from its own grid seed, so the numbers do not depend on which worker
  ran it.

Tasks carry models as their JSON encoding (the `symml.save` format, rebuilt from a whitelist
on the worker); the rest of a task (method objects, noise, seed) and the results travel with
Dask's own serialisation, which is pickle-based: run Dask only on a cluster you trust.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .problems import BenchError

__all__ = ["InProcess", "ProcessPool", "DaskPool", "check_scheduler", "make_executor", "DASK_INSTALL"]

DASK_INSTALL = 'pip install "symml[dask]"  (or: pip install "dask[distributed]")'


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides what happens.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class InProcess:
    """Run each task in this process, in order."""

    description = "this process"

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(task))`` in order."""
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        """Nothing to release."""


class ProcessPool:
    """A pool of ``jobs`` spawned worker processes on this machine."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.description = f"{jobs} local processes"
        self._pool: cf.ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(task))`` as the workers finish them."""
        ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        pool = self._pool = cf.ProcessPoolExecutor(
            max_workers=min(self.jobs, len(tasks)), mp_context=ctx, initializer=_ignore_sigint
        )
        index = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
        try:
            for fut in cf.as_completed(index):
                yield index[fut], fut.result()
            self._pool = None
            pool.shutdown(wait=True)  # all done: let the idle workers exit on their own
        except cf.process.BrokenProcessPool:
            raise BenchError(
                "A benchmark worker process died (killed, or out of memory); the rows finished so far "
                "are kept. Run the same command again to resume, with fewer --jobs if memory is short."
            ) from None

    def close(self) -> None:
        """Stop the pool now: cancel queued tasks and kill the workers still running one."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # concurrent.futures has no public "kill the workers" before Python 3.14
        # (terminate_workers); waiting for runs in flight would make Ctrl-C take minutes.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=5)


class DaskPool:
    """Tasks on a Dask distributed cluster (embedded, by address, or an existing Client)."""

    def __init__(self, scheduler: Any, jobs: int | None, retries: int):
        try:
            import distributed
        except ImportError:
            raise BenchError(
                f"scheduler={scheduler!r} needs Dask's distributed scheduler, which is not installed; "
                f"{DASK_INSTALL}. Without it, leave scheduler unset (a local process pool)."
            ) from None
        self._distributed = distributed
        self.retries = retries
        self._owned: list[Any] = []  # what this pool started and must close
        if not isinstance(scheduler, str):  # a Client (check_scheduler let nothing else through)
            self.client = scheduler
            self.description = "a Dask client"
        elif scheduler == "local":
            cluster = distributed.LocalCluster(
                n_workers=jobs or 1,
                threads_per_worker=1,  # one run per process: JAX already uses the cores it gets
                processes=True,
                dashboard_address=":0",  # any free port: never clash with a dashboard already running
            )
            self.client = distributed.Client(cluster)
            self._owned = [self.client, cluster]
            self.description = f"a local Dask cluster of {jobs or 1} workers"
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as err:
                raise BenchError(
                    f"scheduler: cannot reach a Dask scheduler at {scheduler!r} ({err}); start one with "
                    "'dask scheduler' and workers with 'dask worker tcp://HOST:8786', then pass its "
                    "address."
                ) from None
            self._owned = [self.client]
            self.description = f"the Dask cluster at {scheduler}"
        self._futures: list[Any] = []

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(task))`` as the cluster finishes them."""
        d = self._distributed
        batch = uuid.uuid4().hex[:8]
        index = {}
        for i, t in enumerate(tasks):
            # a key per run (not a hash of the task): equal tasks are still separate runs
            fut = self.client.submit(fn, t, key=f"symml-bench-{batch}-{i}", retries=self.retries)
            index[fut.key] = i
            self._futures.append(fut)
        lost: list[int] = []
        last: Exception | None = None
        for fut in d.as_completed(self._futures):
            try:
                result = fut.result()
            except d.KilledWorker as err:
                lost.append(index[fut.key])
                last = err
                continue
            yield index[fut.key], result
        if lost:
            raise BenchError(
                f"{len(lost)} benchmark runs were lost with workers that kept dying ({last}); the other "
                "rows are written. Run the same command again to resume."
            )

    def close(self) -> None:
        """Cancel what is left and close the client and cluster this pool started."""
        if self._futures:
            try:
                self.client.cancel(self._futures)
            except Exception:  # the client may already be closed after Ctrl-C
                pass
            self._futures = []
        for obj in self._owned:
            obj.close()
        self._owned = []


def check_scheduler(scheduler: Any) -> None:
    if scheduler is None or scheduler == "local":
        return
    if isinstance(scheduler, str):
        if scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
            return
        raise BenchError(
            f"scheduler must be None (a local process pool), 'local' (an embedded Dask cluster), an "
            f"address like 'tcp://127.0.0.1:8786' or a dask.distributed.Client; got {scheduler!r}."
        )
    if type(scheduler).__name__ != "Client":
        raise BenchError(
            f"scheduler must be None, 'local', an address like 'tcp://127.0.0.1:8786' or a "
            f"dask.distributed.Client; got a {type(scheduler).__name__}."
        )


def make_executor(scheduler: Any, jobs: int, retries: int, n_tasks: int) -> Any:
    """The executor for ``scheduler`` (None: in this process or a local pool of ``jobs``)."""
    check_scheduler(scheduler)
    if scheduler is not None:
        return DaskPool(scheduler, jobs, retries)
    if jobs == 1 or n_tasks <= 1:
        return InProcess()
    return ProcessPool(jobs)
