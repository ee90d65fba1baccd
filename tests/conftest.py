import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import runpy  # noqa: E402
from pathlib import Path  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, out) -> dict:
    """Run ``examples/<name>`` in fast mode, figures into ``out``; returns its namespace."""
    old = {k: os.environ.get(k) for k in ("SYMML_EXAMPLE_FAST", "SYMML_EXAMPLE_OUT")}
    os.environ.update(SYMML_EXAMPLE_FAST="1", SYMML_EXAMPLE_OUT=str(out))
    try:
        return runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 probes without touching it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
