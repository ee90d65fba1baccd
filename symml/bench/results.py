"""The results file of a benchmark: its columns, how rows are read and appended, software versions.

Shared by the runner (which appends rows as runs finish) and the report (which reads them back).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
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


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def repair(path: Path) -> int:
    """Cut a torn last row (an interrupted write: no final newline) off ``path``; returns the bytes cut.

    Rows are written whole and fsync'ed (`append_row`), so only the last line can be partial,
    and only when the process died inside that one write. The cut row is then missing from the
    done set and runs again on resume.
    """
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # look back for the end of the last whole line (rows are short: a few kB)
        block = min(size, 1 << 20)
        fh.seek(size - block)
        tail = fh.read(block)
        cut = tail.rfind(b"\n")
        keep = 0 if cut < 0 else size - block + cut + 1
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep


def read_rows(path: Path) -> list[dict]:
    """The whole rows already in a results file (empty if there is none yet).

    A row with missing fields (a torn write from an older version) is left out, so that it
    runs again; call `repair` first to cut a torn last line off the file itself.
    """
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(("problem", "method", "noise", "seed")) <= set(
            reader.fieldnames
        ):
            raise BenchError(f"{path} is not a symml bench results file; choose another --out folder.")
        width = len(reader.fieldnames)
        return [r for r in reader if None not in r and len(r) == width and None not in r.values()]


def append_row(path: Path, row: dict) -> None:
    """Append one row durably: one ``write`` of the whole line (the header first if the file is new),
    then ``fsync``, so a crash leaves either the whole row or a torn last line that `repair` cuts.

    Raises:
        BenchError: the row cannot be written (disk full, folder made read-only); the rows
            written before it are kept.
    """
    new = not path.exists() or path.stat().st_size == 0
    text = _csv_line(list(COLUMNS)) if new else ""
    # one physical line per row, so that a torn row is exactly a last line without its newline
    values = [row.get(c, math.nan) for c in COLUMNS]
    values = [" ".join(v.splitlines()) if isinstance(v, str) else v for v in values]
    text += _csv_line(values)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop for the rare short write
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise BenchError(
            f"Cannot write a row to {path}: {err.strerror or err}. The rows written before are kept; "
            "free space (or fix the folder's permissions) and run the same command again to resume."
        ) from None


#: Free space below which `check_writable` refuses to start (a few hundred rows and figures).
MIN_FREE_BYTES = 16 * 2**20


def check_writable(out: Path) -> None:
    """Make sure the benchmark can write into ``out`` before any work starts.

    Raises:
        BenchError: ``out`` cannot be created, is not a folder, is not writable or its disk is
            (almost) full; the message names the folder and what to do.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BenchError(
            f"out: cannot create the output folder {str(out)!r}: {err.strerror or err}; pass --out "
            "(out=) a folder you can write to."
        ) from None
    if not out.is_dir():
        raise BenchError(f"out: {str(out)!r} is not a folder; pass --out (out=) a folder.")
    probe = out / f".symml-bench-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"symml bench write test\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise BenchError(
            f"out: cannot write into {str(out)!r}: {err.strerror or err}; pass --out (out=) a "
            "writable folder."
        ) from None
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise BenchError(
            f"out: the disk holding {str(out)!r} is full ({free / 2**20:.1f} MiB free, need at least "
            f"{MIN_FREE_BYTES // 2**20} MiB); free some space or pass --out (out=) another folder."
        )
