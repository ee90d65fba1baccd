"""The mechanics examples in fast mode: each reproduces its claims and writes its figure
(examples/kepler.py, double_pendulum.py, mass_chain.py, hnn_pendulum.py)."""

import numpy as np
import pytest
from conftest import run_example


@pytest.mark.slow  # runs the whole example script: a pipeline
def test_kepler_example(tmp_path):
    ns = run_example("kepler.py", tmp_path)
    lf, rk = ns["runs"]["leapfrog"], ns["runs"]["tsit5"]
    assert lf["last"] < 1.2 * lf["first"]  # bounded
    assert rk["last"] > 3 * rk["first"]  # drifts
    assert lf["angular_error"].max() < 1e-12
    assert ns["runs"]["yoshida4"]["angular_error"].max() < 1e-12
    assert (tmp_path / "kepler.png").stat().st_size > 10_000


@pytest.mark.slow
def test_double_pendulum_example(tmp_path):
    ns = run_example("double_pendulum.py", tmp_path)
    assert ns["energy_drift"] < 1e-7
    assert ns["lyapunov"] > 0.1  # nearby releases separate exponentially
    assert (tmp_path / "double_pendulum.png").stat().st_size > 10_000


@pytest.mark.slow
def test_mass_chain_example(tmp_path):
    ns = run_example("mass_chain.py", tmp_path)
    for r in ns["results"].values():
        assert r["converged"] and r["diff"] < 1e-5
    assert ns["dsag"] == pytest.approx(ns["fd"], rel=1e-4)
    assert (tmp_path / "mass_chain.png").stat().st_size > 10_000


@pytest.mark.slow
def test_hnn_pendulum_example(tmp_path):
    ns = run_example("hnn_pendulum.py", tmp_path)
    assert set(ns["energy_error"]) == {"hnn", "node"}
    assert all(np.all(np.isfinite(e)) for e in ns["energy_error"].values())
    assert ns["H_found"].has(ns["q"]) and ns["H_found"].has(ns["p"])
    assert (tmp_path / "hnn_pendulum.png").stat().st_size > 10_000
