"""examples/pendulum_pinn.py in fast mode: the forward PINN within 1 % of sm.simulate and g within
0.5 % from 25 points at 1 % noise, with no hand-set loss weights."""

import pytest
from conftest import run_example


@pytest.mark.slow  # two PINN trainings: a pipeline
def test_pendulum_pinn_example(tmp_path):
    ns = run_example("pendulum_pinn.py", tmp_path)
    assert ns["errors"]["theta"] <= 0.01
    assert abs(ns["g_pinn"] / 9.81 - 1) < 5e-3 and abs(ns["g_fit"] / 9.81 - 1) < 5e-3
    assert (tmp_path / "pendulum_pinn.png").stat().st_size > 10_000
