"""examples/pendulum_images.py in fast mode: frames of a pendulum, the latent-size scan, a SINDy
autoencoder run, its figures and the law saved as a Model."""

import numpy as np
import pytest
from conftest import run_example

# runs the whole example script: a pipeline
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pendulum_images")
    return run_example("pendulum_images.py", out), out


def test_frames_and_scan(run):
    ns, _ = run
    assert ns["video"].x.shape == (20, 31, 12, 12)
    assert ns["scan"].suggested == 1, ns["scan"]


def test_recovers_the_sin_law(run):
    ns, _ = run
    found = ns["found"]
    assert found.structure == (("sin(z(t))",),), found.report()
    assert ns["coef_sin"] == pytest.approx(-9.81, rel=0.05), found.report()


def test_law_is_a_model_that_reloads(run):
    ns, _ = run
    found = ns["found"]
    assert found.losses["recon"] < 0.05, found.report()
    assert ns["reloaded"] == found.model
    assert np.all(np.isfinite(np.asarray(ns["sim"][ns["z"]])))


def test_outputs_written(run):
    _, out = run
    for name in ("pendulum_images_frames.png", "pendulum_images_latent.png"):
        assert (out / name).stat().st_size > 10_000
