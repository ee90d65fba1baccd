"""Shared test configuration: a strict JAX setup, a key fixture and comparison helpers.

The JAX configuration is set before symml is imported: float64 everywhere (symml's default, checked here
so a test never silently runs in float32), CPU only (results do not depend on which accelerator happens
to be present), and implicit rank promotion refused (``x + y`` between arrays of different ranks is
allowed in numpy but is how shape bugs hide; code that means to broadcast says so with explicit shapes).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import runpy  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True, scope="session")
def _float64_is_on():
    import symml  # noqa: F401  (importing symml must leave float64 on)

    assert jax.config.jax_enable_x64, "symml must run its tests in float64 (SYMML_X64 is set to 0?)"


@pytest.fixture
def key():
    """A fixed JAX PRNG key: tests that draw random numbers are reproducible."""
    return jax.random.PRNGKey(0)


def tree_allclose(x, y, *, rtol: float, atol: float) -> bool:
    """Whether two pytrees have the same structure and leaves equal within ``rtol``/``atol``.

    The tolerances have no defaults on purpose: every comparison states the accuracy it claims.
    """
    xs, xt = jax.tree_util.tree_flatten(x)
    ys, yt = jax.tree_util.tree_flatten(y)
    if xt != yt:
        return False
    return all(
        np.shape(a) == np.shape(b) and np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
        for a, b in zip(xs, ys)
    )


def assert_allclose(actual, desired, *, rtol: float, atol: float, what: str = "") -> None:
    """``np.testing.assert_allclose`` with tolerances that must be given (and a label for the message)."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=rtol, atol=atol, err_msg=what)


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
