"""``symml bench``: the command-line front of `symml.bench.run`.

Options (see ``symml bench --help``): ``--quick`` (default), ``--full`` or ``--preset NAME``
choose a grid; ``--problems``, ``--methods``, ``--noise`` and ``--seeds`` override its fields;
``--out`` is the output folder; ``--jobs`` the number of local worker processes;
``--scheduler`` runs on Dask (``local`` or the address of a running scheduler).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_bench_parser", "bench_cli", "parse_list", "parse_noise", "parse_seeds"]


def _error(message: str) -> Exception:
    from ..bench import BenchError

    return BenchError(message)


def parse_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]`` (None stays None)."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise _error(f"Expected a comma-separated list; got {text!r}.")
    return items


def parse_noise(text: str | None) -> list[float] | None:
    """``"0,0.05"`` -> ``[0.0, 0.05]``."""
    items = parse_list(text)
    if items is None:
        return None
    try:
        return [float(s) for s in items]
    except ValueError:
        raise _error(f"--noise takes comma-separated numbers, e.g. 0,0.01,0.05; got {text!r}.") from None


def parse_seeds(text: str | None) -> int | list[int] | None:
    """``"3"`` -> 3 (a count: seeds 0, 1, 2); ``"0,4"`` -> ``[0, 4]``."""
    items = parse_list(text)
    if items is None or text is None:
        return None
    try:
        values = [int(s) for s in items]
    except ValueError:
        raise _error(f"--seeds takes a count (e.g. 3) or comma-separated integers; got {text!r}.") from None
    return values[0] if len(items) == 1 and "," not in text else values


def add_bench_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the subparsers ``sub``; returns its parser."""
    b = sub.add_parser("bench", help="symbolic vs neural fits on reference problems, with a report")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small preset (a few minutes; the default)")
    g.add_argument("--full", action="store_true", help="every problem, method, noise level and seed")
    g.add_argument("--preset", help="a named preset: quick, full, ude-robustness")
    b.add_argument("--problems", help="comma-separated problem names")
    b.add_argument("--methods", help="comma-separated method names")
    b.add_argument("--noise", help="comma-separated noise levels, e.g. 0,0.01,0.05")
    b.add_argument("--seeds", help="comma-separated seeds or a count, e.g. 0,1,2 or 3")
    b.add_argument("--out", default="symml-bench", help="output folder")
    b.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    b.add_argument(
        "--scheduler",
        help="run on Dask: 'local' (an embedded cluster of --jobs workers) or a scheduler address, "
        "e.g. tcp://10.0.0.5:8786 (needs symml[dask]; trusted clusters only)",
    )
    b.add_argument(
        "--retries", type=int, default=2, help="with Dask: re-runs of a task that raised (default 2)"
    )
    return b


def bench_cli(args: Any) -> int:
    """Run ``symml bench`` with parsed ``args``; prints the table and where the files are."""
    from ..bench import preset, run
    from ..bench.report import r2_table, recovery_table

    name = args.preset or ("full" if getattr(args, "full", False) else "quick")
    grid = preset(name)
    methods = parse_list(args.methods)
    if methods is not None:
        by_name = {m.name: m for m in grid["methods"]}
        methods = [by_name.get(m, m) for m in methods]  # keep the preset's options for its methods
    problems = parse_list(args.problems)
    noise = parse_noise(args.noise)
    seeds = parse_seeds(args.seeds)
    df = run(
        problems=problems if problems is not None else grid["problems"],
        methods=methods if methods is not None else grid["methods"],
        noise=noise if noise is not None else grid["noise"],
        seeds=seeds if seeds is not None else grid["seeds"],
        out=args.out,
        jobs=args.jobs,
        scheduler=args.scheduler,
        retries=args.retries,
    )
    print(r2_table(df))
    if name == "ude-robustness":
        print("\n" + recovery_table(df))
    print(f"\nwrote {args.out}/results.csv, results.json and report.md")
    return 0
