"""symml bench durability: SIGKILL and SIGINT mid-run, torn rows, unwritable or full output folders.

Nothing finished is lost, nothing is written twice, and resuming always completes the grid.
The kill tests run the benchmark in a child process (a script written to tmp_path) whose method
sleeps, so that a signal lands between or inside runs.
"""

from __future__ import annotations

import collections
import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sympy as sp

import symml as sm
from symml.bench import results

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import sympy as sp
    import symml as sm

    (x,) = sm.states("x")
    (k,) = sm.parameters("k", positive=True)
    model = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay")
    sm.bench.register_problem(
        "dur_decay", model, train=(0, 4), extrapolate=(4, 8), new_ics={x: 1.0}, samples=21, degree=1
    )


    def slow_truth(problem, data, seed):
        time.sleep(float(sys.argv[2]))
        return problem.model


    sm.bench.register_method("dur_truth", slow_truth)

    if __name__ == "__main__":
        try:
            sm.bench.run(["dur_decay"], ["dur_truth"], noise=[0.0], seeds=int(sys.argv[3]), out=sys.argv[1],
                         jobs=int(sys.argv[4]), verbose=False, report=False)
        except KeyboardInterrupt:
            print("interrupted; dask imported:", "distributed" in sys.modules, flush=True)
            sys.exit(130)
        print("finished", flush=True)
    """
)


@pytest.fixture(scope="module")
def decay():
    """The script's problem and a fast method of the same name, registered in this process."""
    (x,) = sm.states("x")
    (k,) = sm.parameters("k", positive=True)
    model = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay")
    sm.bench.register_problem(
        "dur_decay", model, train=(0, 4), extrapolate=(4, 8), new_ics={x: 1.0}, samples=21, degree=1
    )
    calls: list[int] = []

    def truth(problem, data, seed):
        calls.append(int(seed))
        return problem.model

    sm.bench.register_method("dur_truth", truth)
    return calls


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _data_rows(out: Path) -> int:
    path = out / "results.csv"
    if not path.exists():
        return 0
    return max(0, path.read_bytes().count(b"\n") - 1)


def _start(tmp_path: Path, out: Path, sleep: float, seeds: int, jobs: int = 1) -> subprocess.Popen:
    script = tmp_path / "bench_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(sleep), str(seeds), str(jobs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_rows(proc: subprocess.Popen, out: Path, n: int, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while _data_rows(out) < n:
        if proc.poll() is not None:
            raise AssertionError(f"the benchmark ended early: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"no {n} rows after {timeout} s")
        time.sleep(0.05)


def _resume_and_check(out: Path, calls: list, seeds: int) -> None:
    kept = {int(r["seed"]) for r in _rows(out)}
    calls.clear()
    df = sm.bench.run(
        ["dur_decay"], ["dur_truth"], noise=[0.0], seeds=seeds, out=out, jobs=1, verbose=False, report=False
    )
    assert sorted(calls) == sorted(set(range(seeds)) - kept)  # only the missing runs
    counts = collections.Counter(int(s) for s in df["seed"])
    assert sorted(counts) == list(range(seeds)) and set(counts.values()) == {1}  # none lost, none twice
    assert (df["status"] == "ok").all() and (df["r2_train"] > 1 - 1e-9).all()


@pytest.mark.slow
def test_sigkill_mid_run_loses_nothing_and_resumes(tmp_path, decay):
    out = tmp_path / "kill"
    proc = _start(tmp_path, out, sleep=0.4, seeds=8)
    _wait_rows(proc, out, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= len(_rows(out)) < 8
    _resume_and_check(out, decay, 8)


@pytest.mark.slow
def test_sigint_acts_within_seconds_and_keeps_rows(tmp_path, decay):
    out = tmp_path / "int"
    proc = _start(tmp_path, out, sleep=3.0, seeds=6)
    _wait_rows(proc, out, 1)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)  # lands inside a 3 s run
    stdout, stderr = proc.communicate(timeout=60)
    waited = time.monotonic() - t0
    assert proc.returncode == 130, stderr
    assert waited < 10.0, waited
    assert "dask imported: False" in stdout  # the default executor never imports Dask
    assert "interrupted" in stderr and "run the same command again to resume" in stderr
    assert (out / "results.csv").read_bytes().endswith(b"\n")  # no torn row
    _resume_and_check(out, decay, 6)


@pytest.mark.slow
def test_sigint_stops_a_process_pool_at_once(tmp_path, decay):
    out = tmp_path / "pool"
    proc = _start(tmp_path, out, sleep=20.0, seeds=4, jobs=2)
    _wait_rows(proc, out, 2, timeout=400)  # two runs of 20 s finished, two more in flight
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10.0  # not the 20 s the runs in flight would take
    _resume_and_check(out, decay, 4)


def test_torn_last_row_is_cut_and_redone(tmp_path, decay):
    out = tmp_path / "torn"
    sm.bench.run(
        ["dur_decay"], ["dur_truth"], noise=[0.0], seeds=3, out=out, jobs=1, verbose=False, report=False
    )
    path = out / "results.csv"
    whole = path.read_bytes()
    path.write_bytes(whole[:-25])  # the last row, torn inside a write: no final newline
    decay.clear()
    with pytest.warns(sm.bench.BenchWarning, match="torn row .* cut off and that run is done again"):
        df = sm.bench.run(
            ["dur_decay"], ["dur_truth"], noise=[0.0], seeds=3, out=out, jobs=1, verbose=False, report=True
        )
    assert decay == [2]  # only the torn run again
    assert sorted(df["seed"]) == [0, 1, 2] and df["r2_train"].notna().all()
    assert path.read_bytes().endswith(b"\n") and len(_rows(out)) == 3
    # a file cut inside its header keeps nothing and starts over
    path.write_bytes(whole[:10])
    assert results.repair(path) == 10 and path.read_bytes() == b""


def test_rows_with_missing_fields_are_not_taken_as_done(tmp_path):
    path = tmp_path / "results.csv"
    row = {c: 1.0 for c in results.COLUMNS}
    row.update(problem="p", method="m", noise=0.0, seed=0, equations="dx/dt = -x\nsecond line")
    results.append_row(path, row)
    with open(path, "a") as fh:
        fh.write("p,m,0.0,1\n")  # a short row (written by an older version that died)
    rows = results.read_rows(path)
    assert [r["seed"] for r in rows] == ["0"] and rows[0]["equations"] == "dx/dt = -x second line"


def _unwritable(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        return ro
    # root writes through file modes; sysfs refuses new files even to root
    probe = Path("/sys/kernel")
    if not probe.is_dir():
        pytest.skip("running as root without /sys/kernel: no unwritable folder to test with")
    return probe


def test_unwritable_output_folder_fails_before_any_run(tmp_path, decay, capsys):
    ro = _unwritable(tmp_path)
    decay.clear()
    with pytest.raises(sm.bench.BenchError, match="out: cannot write into .* pass --out"):
        sm.bench.run(["dur_decay"], ["dur_truth"], out=ro, jobs=1, verbose=False)
    assert decay == []  # refused before the work
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(sm.bench.BenchError, match="out: cannot create the output folder"):
        sm.bench.run(["dur_decay"], ["dur_truth"], out=blocker / "sub", jobs=1, verbose=False)
    from symml.cli import main

    assert main(["bench", "--problems", "dur_decay", "--methods", "dur_truth", "--out", str(ro)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symml: error: out: cannot write into") and err.count("\n") == 1
    assert decay == []


def test_full_disk_fails_before_any_run_and_mid_run(tmp_path, decay, monkeypatch):
    usage = results.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(results.shutil, "disk_usage", lambda p: usage._replace(free=1024))
    decay.clear()
    with pytest.raises(sm.bench.BenchError, match="is full .* need at least 16 MiB"):
        sm.bench.run(["dur_decay"], ["dur_truth"], out=tmp_path / "full", jobs=1, verbose=False)
    assert decay == []
    monkeypatch.undo()
    if Path("/dev/full").exists():  # every write to /dev/full fails with ENOSPC, as on a full disk
        with pytest.raises(sm.bench.BenchError, match="Cannot write a row .* No space left .* are kept"):
            results.append_row(Path("/dev/full"), {c: 0 for c in results.COLUMNS})
