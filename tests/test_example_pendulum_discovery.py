"""examples/pendulum_discovery.py in fast mode: the nonlinear pendulum is discovered from noisy
large-amplitude angles, the small-angle model is rejected, figures and the model are written."""

import pytest
from conftest import run_example

pytestmark = pytest.mark.slow  # runs the whole example script: a pipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pendulum_discovery")
    return run_example("pendulum_discovery.py", out), out


def test_discovers_sin_theta(run):
    ns, _ = run
    fit = ns["fit"]
    assert len(fit.terms) == 1 and str(fit.terms[0]) == "sin(theta(t))"
    assert ns["coef_sin"] == pytest.approx(-9.81, rel=5e-3)


def test_small_angle_model_is_rejected(run):
    ns, _ = run
    assert ns["bic_margin"] > 100 and ns["mse_ratio"] > 10
    for _, exact, discovered, small_angle in ns["periods"]:
        assert discovered == pytest.approx(exact, rel=5e-3)
        assert abs(small_angle - exact) / exact > 0.05
    assert ns["err_found"] < 0.2 < 1.0 < ns["err_small"]


def test_outputs_written(run):
    ns, out = run
    for name in ("pendulum_discovery_trajectories.png", "pendulum_discovery_path.png"):
        assert (out / name).stat().st_size > 10_000
    assert ns["reloaded"] == ns["found"].model
