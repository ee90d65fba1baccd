"""The results file of a benchmark: its columns, how rows are read and appended, software versions.

Shared by the runner (which appends rows as runs finish) and the report (which reads them back).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from .problems import BenchError

#: Timed stages (``time_<stage>`` columns; NaN where a method has no such stage).
STAGES = ("data", "fit", "train", "distill", "refit", "method", "score", "total")
#: The columns of results.csv, in order.
COLUMNS = (
    "problem", "method", "noise", "seed", "status", "failed",
    "r2_train", "rmse_train", "r2_extrap", "rmse_extrap", "r2_new_ic", "rmse_new_ic",
    "failed_train", "failed_extrap", "failed_new_ic",
    "precision", "recall", "exact", "coef_error", "n_params", "complexity",
    *(f"time_{s}" for s in STAGES),
    "equations", "note", "error",
)  # fmt: skip


def versions() -> dict[str, str]:
    """Versions of Python and of the packages behind the numbers."""
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("symml", "jax", "diffrax", "equinox", "sympy", "numpy", "pysindy", "pyoperon"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def read_rows(path: Path) -> list[dict]:
    """The rows already in a results file (empty if there is none yet)."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(("problem", "method", "noise", "seed")) <= set(
            reader.fieldnames
        ):
            raise BenchError(f"{path} is not a symml bench results file; choose another --out folder.")
        return [r for r in reader]


def append_row(path: Path, row: dict) -> None:
    """Append one row (the header first if the file is new)."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({c: row.get(c, math.nan) for c in COLUMNS})
