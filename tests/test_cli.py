"""The command line: show and simulate, and one-line errors with exit code 2."""

import subprocess
import sys

import pandas as pd
import pytest

from symml.cli import main


def test_show_prints_equations(capsys):
    assert main(["show", "pendulum"]) == 0
    out = capsys.readouterr().out
    assert "Derivative(theta(t), (t, 2)) = -g*sin(theta(t))/l" in out
    assert "theta_t" in out and "g=9.81" in out


def test_show_list(capsys):
    assert main(["show", "--list"]) == 0
    assert "lotka_volterra" in capsys.readouterr().out


@pytest.mark.slow
def test_simulate_writes_csv_and_plot(tmp_path, capsys):
    csv, png = tmp_path / "out.csv", tmp_path / "out.png"
    rc = main(
        [
            "simulate",
            "pendulum",
            "--t1",
            "2",
            "--n",
            "21",
            "--ics",
            "theta=0.5",
            "--params",
            "g=9.7",
            "--csv",
            str(csv),
            "--plot",
            str(png),
        ]
    )
    assert rc == 0
    df = pd.read_csv(csv)
    assert list(df.columns) == ["t", "theta", "theta_t"] and len(df) == 21
    assert df["theta"].iloc[0] == 0.5
    assert png.stat().st_size > 1000


@pytest.mark.slow
def test_simulate_with_event_and_option(capsys):
    assert (
        main(
            [
                "simulate",
                "projectile",
                "--option",
                "drag=newton",
                "--event",
                "y:down",
                "--t1",
                "5",
                "--n",
                "4",
            ]
        )
        == 0
    )
    assert "event at t = " in capsys.readouterr().out


def test_simulate_user_file(tmp_path, capsys):
    src = tmp_path / "mymodel.py"
    src.write_text(
        "import sympy as sp, symml as sm\n"
        "def decay(rate=2.0):\n"
        "    x, = sm.states('x'); k, = sm.parameters('k')\n"
        "    return sm.Model([sp.Eq(x.diff(sm.t), -k*x)], defaults={k: rate, x: 1.0}, name='decay')\n"
    )
    assert main(["simulate", f"{src}:decay", "--t1", "1", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert "0.135335" in out  # exp(-2)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["simulate", "pendulm"], "unknown model 'pendulm'.*Did you mean 'pendulum'"),
        (["simulate", "pendulum", "--ics", "thta=1"], "'thta' is not a state or parameter"),
        (["simulate", "pendulum", "--ics", "theta"], "--ics expects name=value pairs"),
        (["simulate", "pendulum", "--params", "g=fast"], "'g' needs a number, got 'fast'"),
        (["simulate", "pendulum", "--t1", "abc"], "argument --t1: expected a number, got 'abc'"),
        (["simulate", "pendulum", "--t1", "nan"], "argument --t1: expected a finite number, got 'nan'"),
        (["simulate", "nofile.py:f"], "no such file: nofile.py"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    import re

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("symml: error:")
    assert re.search(message, err), err


@pytest.mark.slow
def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "symml.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "simulate" in out.stdout and "demo" in out.stdout
