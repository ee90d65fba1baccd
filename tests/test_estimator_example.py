"""examples/duffing_estimator.py in fast mode: the amortized Duffing estimator reads every parameter
off new 1 %-noise sweeps within a few per cent, in milliseconds, and refine= polishes with sm.fit."""

import numpy as np
import pytest
from conftest import run_example


@pytest.mark.slow  # simulates and trains on an ensemble of sweeps: a pipeline
def test_duffing_estimator_example(tmp_path):
    ns = run_example("duffing_estimator.py", tmp_path)
    # columns: estimator, fit from a poor start, estimator + fit (max rel. error), two times, and
    # the fit started at the true values (the accuracy the noise allows)
    errs = ns["errs"]
    assert np.median(errs[:, 0]) < 0.03  # fast mode: a smaller ensemble and training than the full run
    # refine= starts sm.fit in the basin of the best fit: it lands where the fit from the truth lands
    np.testing.assert_allclose(errs[:, 2], errs[:, 5], atol=2e-3)
    # times per measurement and for training are measured in benchmarks, never asserted in tests
    assert (tmp_path / "duffing_estimator.png").stat().st_size > 10_000
