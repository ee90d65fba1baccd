"""examples/lotka_volterra_ude.py in fast mode: the universal ODE reaches the noise floor of
docs/problems.md §3, its learned terms follow -beta u v and delta u v, figures and the result are written."""

import numpy as np
import pytest
import sympy as sp
from conftest import run_example

import symml as sm

pytestmark = pytest.mark.slow  # two trainings of a 2->32->32->2 network (about a minute)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lotka_volterra_ude")
    return run_example("lotka_volterra_ude.py", out), out


def test_reaches_the_noise_floor(run):
    ns, _ = run
    assert ns["trained"].loss < 1.2 * ns["floor"]
    assert ns["trained2"].loss < 1.5 * ns["floor"]


def test_learned_interactions_are_close_to_the_truth(run):
    ns, _ = run
    assert abs(ns["c0"] - (-0.9)) < 0.15 and abs(ns["c1"] - 1.8) < 0.3
    assert abs(ns["c0b"] - (-0.9)) < 0.15


def test_figures_and_result_are_written(run):
    _, out = run
    for name in ("lv_ude_history.png", "lv_ude_fit.png", "lv_ude_product.png", "lv_ude_distilled.png"):
        assert (out / name).stat().st_size > 0
    back = sm.load(out / "lv_ude.json")
    assert isinstance(back, sm.Trained) and np.isfinite(back.loss)


def test_sindy_distillation_recovers_the_interactions(run):
    ns, _ = run
    found, refit = ns["distilled"]["sindy"]
    u, v = ns["u"], ns["v"]
    for call in ns["truth_terms"]:
        assert sp.expand(found.terms[call]).as_coefficients_dict().keys() == {u * v}
    c0, c1 = found.constants
    assert refit.params[c0] == pytest.approx(-0.9, rel=0.05)
    assert refit.params[c1] == pytest.approx(1.8, rel=0.05)
    assert set(ns["distilled"]) == {"sindy", "operon"}


def test_early_stopping_is_the_same_run_cut_at_the_noise_floor(run):
    ns, _ = run
    full, early, floor = ns["trained"].history, ns["early"].history, ns["floor"]
    hit = np.flatnonzero(full.loss <= floor)
    if hit.size:  # the target was reached: the run stops there, with the same losses up to it
        np.testing.assert_array_equal(early.loss[: hit[0] + 1], full.loss[: hit[0] + 1])
        assert ns["early"].loss <= floor and len(early) <= hit[0] + 2
    else:
        np.testing.assert_array_equal(early.loss, full.loss)
