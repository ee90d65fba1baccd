"""Every module imports in a fresh interpreter, in any order: no hidden import-order dependency.

Also checks the layering promises that are visible from outside: ``import symml`` loads neither the
command line nor the benchmark harness nor any optional backend, and no module of the package imports
another in a cycle (a cycle shows up here as an ImportError for some orders).
"""

import json
import pkgutil
import random
import subprocess
import sys

import pytest

import symml

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(symml.__path__, "symml.") if not m.name.endswith("__main__")
)

_SCRIPT = """
import importlib, json, sys
order = json.loads(sys.argv[1])
for name in order:
    importlib.import_module(name)
print("ok", len(order))
"""


@pytest.mark.parametrize(
    "seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
def test_every_module_imports_in_a_random_order(seed):
    order = list(MODULES)
    random.Random(seed).shuffle(order)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(order)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, f"order (seed {seed}) failed:\n{out.stderr[-3000:]}"
    assert out.stdout.strip() == f"ok {len(order)}"


@pytest.mark.slow
def test_import_symml_loads_no_cli_bench_or_optional_backend():
    probe = (
        "import sys, symml\n"
        "bad = [m for m in sys.modules if m.startswith(('symml.cli', 'symml.bench', 'pysr', 'juliacall',"
        " 'dask', 'distributed'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"


def test_the_module_list_covers_the_stages():
    for stage in ("_declare", "_compile", "_analytic", "_solve", "_data", "_fit", "_train", "distill"):
        assert any(m.startswith(f"symml.{stage}.") for m in MODULES), stage
