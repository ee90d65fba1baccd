"""The README's quick start runs as written, and CI runs the README's exact test command."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _run_python_block(index: int, tmp_path, timeout: int) -> subprocess.CompletedProcess:
    script = tmp_path / f"readme_{index}.py"
    script.write_text(_blocks("python")[index])
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=timeout
    )


@pytest.mark.slow
def test_quick_start_runs(tmp_path):
    out = _run_python_block(0, tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "range 17.88" in out.stdout


@pytest.mark.slow
def test_data_to_equations_runs(tmp_path):
    out = _run_python_block(1, tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "U_0(u(t), v(t)) = -0.902*u(t)*v(t)" in out.stdout
    assert "U_1(u(t), v(t)) = 1.788*u(t)*v(t)" in out.stdout


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _blocks("bash")
    assert len(commands) >= 2
    demo, tests = commands[0].strip(), commands[1].strip()
    assert demo.endswith("symml demo")
    assert 'pip install -e ".[test]"' in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, "the README's test command must appear verbatim in .ci/run"
