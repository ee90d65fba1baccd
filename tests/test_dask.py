"""symml bench on Dask: a real scheduler and two workers on loopback, one worker killed mid-run.

The cluster is started as separate processes (``dask scheduler`` / ``dask worker``, as the README
says), the grid runs through ``sm.bench.run(scheduler="tcp://...")`` with a problem registered
only in this process (so it must travel as its JSON encoding), one worker is SIGKILLed as soon as
the first row is written, and the rows are compared with a local run of the same grid: the same
runs, once each, with the same numbers. The argument checks need no cluster.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml.bench import results

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GRID = dict(problems=["dask_decay"], methods=["true_form"], noise=[0.0, 0.02], seeds=3)
N_RUNS = 6


@pytest.fixture(scope="module")
def decay_problem():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k", positive=True)
    model = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay")
    return sm.bench.register_problem(
        "dask_decay", model, train=(0, 4), extrapolate=(4, 8), new_ics={x: 1.0}, samples=21, degree=1
    )


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; stopped at the end."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    log = open(folder / "cluster.log", "w")
    scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]  # = `dask scheduler`
    worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]  # = `dask worker`
    procs = [
        subprocess.Popen(
            [
                *scheduler_cmd,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    ]
    try:
        end = time.monotonic() + 120
        while not info.exists() or not info.read_text().strip():
            assert procs[0].poll() is None, (folder / "cluster.log").read_text()
            assert time.monotonic() < end, "the scheduler did not start in 120 s"
            time.sleep(0.2)
        import json

        address = json.loads(info.read_text())["address"]
        for name in ("w0", "w1"):
            procs.append(
                subprocess.Popen(
                    [
                        *worker_cmd,
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        name,
                        "--host",
                        "127.0.0.1",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=str(Path(__file__).parents[1]),
                )  # fmt: skip
            )
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=180)
            pids = client.run(os.getpid)  # {worker address: pid}
        yield {"address": address, "procs": procs, "pids": pids}
    finally:
        _stop(procs[1:])
        _stop(procs[:1])
        log.close()


def _comparable(df):
    cols = [c for c in results.COLUMNS if not c.startswith("time_")]
    return df.sort_values(["noise", "seed"]).reset_index(drop=True)[cols]


@pytest.mark.slow
def test_cluster_run_with_a_killed_worker_matches_local(tmp_path, cluster, decay_problem):
    out = tmp_path / "dask"
    procs = {p.pid: p for p in cluster["procs"][1:]}
    victim_pid = next(iter(cluster["pids"].values()))
    seen: dict[str, int] = {}

    def kill_after_first_row():
        path = out / "results.csv"
        while not (path.exists() and path.read_bytes().count(b"\n") >= 2):
            time.sleep(0.05)
        seen["rows_at_kill"] = path.read_bytes().count(b"\n") - 1
        os.kill(victim_pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_row, daemon=True)
    killer.start()
    df = sm.bench.run(**GRID, out=out, scheduler=cluster["address"], verbose=False, report=False)
    killer.join(timeout=5)
    assert seen["rows_at_kill"] < N_RUNS  # the kill came mid-run
    assert procs[victim_pid].wait(timeout=30) == -signal.SIGKILL
    counts = collections.Counter(zip(df["noise"], df["seed"]))
    assert len(df) == N_RUNS and set(counts.values()) == {1}  # nothing lost, nothing twice
    assert (df["status"] == "ok").all(), df["error"].tolist()

    local = sm.bench.run(**GRID, out=tmp_path / "local", jobs=1, verbose=False, report=False)
    a, b = _comparable(df), _comparable(local)
    assert list(a["equations"]) == list(b["equations"])
    numeric = [c for c in a.columns if a[c].dtype.kind == "f"]
    np.testing.assert_array_equal(a[numeric].to_numpy(), b[numeric].to_numpy())  # identical numbers

    # resume against the cluster: everything is done, nothing runs again
    again = sm.bench.run(**GRID, out=out, scheduler=cluster["address"], verbose=False, report=False)
    assert len(again) == N_RUNS


def test_scheduler_and_retries_are_checked(tmp_path, decay_problem, monkeypatch):
    with pytest.raises(sm.bench.BenchError, match="scheduler must be None .* got 'dask://x'"):
        sm.bench.run(**GRID, out=tmp_path, scheduler="dask://x", verbose=False)
    with pytest.raises(sm.bench.BenchError, match="scheduler must be None.* got a int"):
        sm.bench.run(**GRID, out=tmp_path, scheduler=3, verbose=False)
    with pytest.raises(sm.bench.BenchError, match="retries must be an integer >= 0; got -1"):
        sm.bench.run(**GRID, out=tmp_path, scheduler="local", retries=-1, verbose=False)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    with pytest.raises(sm.bench.BenchError, match=r"needs Dask's distributed scheduler.*symml\[dask\]"):
        sm.bench.run(**GRID, out=tmp_path, scheduler="local", verbose=False)
    assert not (tmp_path / "results.csv").exists()  # refused before any run


def test_unreachable_scheduler_is_a_clear_error(tmp_path, decay_problem, monkeypatch):
    import distributed

    def refuse(*args, **kwargs):
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:9")

    monkeypatch.setattr(distributed, "Client", refuse)
    with pytest.raises(sm.bench.BenchError, match="cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'"):
        sm.bench.run(**GRID, out=tmp_path, scheduler="tcp://127.0.0.1:9", verbose=False)


def test_cli_scheduler_error_is_one_line(tmp_path, decay_problem, capsys):
    from symml.cli import main

    rc = main(["bench", "--problems", "dask_decay", "--methods", "true_form", "--scheduler", "nowhere",
               "--out", str(tmp_path)])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("symml: error: scheduler must be") and err.count("\n") == 1
