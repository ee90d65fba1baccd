"""symml demo: the whole chain on the Lotka–Volterra universal ODE (docs/problems.md §3)."""

import json

import numpy as np
import pytest

from symml.cli import main
from symml.cli._demo import demo_chain


@pytest.mark.slow  # the whole chain (train, distill, refit, extrapolate): a pipeline
def test_quick_demo_writes_figures_and_numbers(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Recovered exactly the two interaction terms" in text
    assert "Wall time per stage: data" in text and "Extrapolation to t = 50" in text
    for name in ("data_and_fit.png", "learned_terms.png", "extrapolation.png", "recovered_model.json"):
        assert (out / name).stat().st_size > 1000
    summary = json.loads((out / "results.json").read_text())
    assert summary["exact_structure"] is True
    assert summary["max_coefficient_error"] < 0.05
    assert summary["extrapolation_rmse"]["recovered"] < summary["extrapolation_rmse"]["ude"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_demo_recovers_both_terms_within_two_percent(seed):
    r = demo_chain(seed=seed, verbose=False)
    assert r.exact, (r.extra, r.missing)
    assert r.max_error <= 0.02, r.coefficients
    assert r.extrapolation_rmse["recovered"] < 0.2


@pytest.mark.slow
def test_demo_with_operon_distills_a_model_that_follows_the_data():
    # Operon searches expression trees on the network's samples; the quick demo's network is
    # rough, and the term chosen (measured: 1.60 v sin(1.13 u), R^2 0.83 on the samples) need
    # not explain all of it, but the model must follow the data.
    r = demo_chain(backend="operon", seed=0, quick=True, verbose=False)
    for call in r.calls:
        assert r.distilled.expressions[call].r2 > 0.8
        assert r.distilled.expressions[call].backend == "operon"
    recovered, _ = r.far
    window = np.asarray(recovered.t) <= 5
    err = np.asarray(recovered.y)[window] - np.asarray(r.truth.y)[window]
    assert np.sqrt(np.mean(err**2)) < 0.1
