"""``symml bench``: the command-line front of `symml.bench.run`.

Options (see ``symml bench --help``): ``--quick`` (default) or ``--full`` choose a preset;
``--problems``, ``--methods``, ``--noise`` and ``--seeds`` override its fields; ``--out`` is
the output folder; ``--jobs`` the number of worker processes.
"""

from __future__ import annotations

from typing import Any

from .presets import preset
from .problems import BenchError

__all__ = ["bench_cli", "parse_list", "parse_noise", "parse_seeds"]


def parse_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]`` (None stays None)."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise BenchError(f"Expected a comma-separated list; got {text!r}.")
    return items


def parse_noise(text: str | None) -> list[float] | None:
    """``"0,0.05"`` -> ``[0.0, 0.05]``."""
    items = parse_list(text)
    if items is None:
        return None
    try:
        return [float(s) for s in items]
    except ValueError:
        raise BenchError(f"--noise takes comma-separated numbers, e.g. 0,0.01,0.05; got {text!r}.") from None


def parse_seeds(text: str | None) -> int | list[int] | None:
    """``"3"`` -> 3 (a count: seeds 0, 1, 2); ``"0,4"`` -> ``[0, 4]``."""
    items = parse_list(text)
    if items is None or text is None:
        return None
    try:
        values = [int(s) for s in items]
    except ValueError:
        raise BenchError(
            f"--seeds takes a count (e.g. 3) or comma-separated integers; got {text!r}."
        ) from None
    return values[0] if len(items) == 1 and "," not in text else values


def bench_cli(args: Any) -> int:
    """Run ``symml bench`` with parsed ``args``; prints the table and where the files are."""
    from .report import r2_table
    from .runner import run

    grid = preset("full" if getattr(args, "full", False) else "quick")
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
    )
    print(r2_table(df))
    print(f"\nwrote {args.out}/results.csv, results.json and report.md")
    return 0
