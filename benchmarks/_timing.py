"""Timing helpers shared by the benchmark scripts (solve_speed.py, stiff.py, large_model.py, ensemble.py).

The development machine has two cores shared with other work, so every comparison is taken side
by side in one run: the sides take turns call by call (`interleaved`), and the best of many
repeats is reported, since load only ever adds time. First calls (tracing and compilation) are
timed in fresh processes (`child_json`), so that neither side profits from the other's caches.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["interleaved", "median_time", "child_json", "best_rounds"]


def interleaved(
    fns: Sequence[Callable[[], object]],
    repeats: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
    warmup: int = 2,
    min_time: float = 2e-3,
) -> list[float]:
    """Best wall time per call of each function, the functions taking turns call by call.

    Wall time, not CPU time: with inputs already on the device JAX dispatches asynchronously and
    ``time.process_time`` then missed most of a solve (a 0.28 ms Brusselator solve read 0.05 ms).
    Calls shorter than ``min_time`` are timed in batches, the batch size chosen from the fastest
    function so that every side runs the same count.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    one = min(_once(fn, clock) for fn in fns)
    k = max(1, int(min_time / max(one, 1e-7)))
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = clock()
            for _ in range(k):
                fn()
            best[i] = min(best[i], (clock() - t0) / k)
    return best


def _once(fn: Callable[[], object], clock: Callable[[], float]) -> float:
    t0 = clock()
    fn()
    return clock() - t0


def median_time(
    fn: Callable[[], object], repeats: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def child_json(argv: Sequence[str], timeout: float = 3600) -> dict:
    """Run ``python *argv`` in a fresh process and parse the JSON on its last line of output."""
    cmd = [sys.executable, *argv]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_rounds(children: dict[str, Sequence[str]], rounds: int) -> dict[str, dict]:
    """Each child run ``rounds`` times, the children taking turns; per child, every numeric
    field of its JSON minimised over the rounds (other fields from the first round)."""
    out: dict[str, dict] = {}
    for _ in range(rounds):
        for name, argv in children.items():
            got = child_json(argv)
            if name not in out:
                out[name] = got
                continue
            for key, value in got.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[name][key] = min(out[name][key], value)
    return out
