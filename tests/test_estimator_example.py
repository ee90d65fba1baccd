"""examples/duffing_estimator.py in fast mode: the amortized Duffing estimator reads every parameter
off new 1 %-noise sweeps within a few per cent, in milliseconds, and refine= polishes with sm.fit."""

import numpy as np
import pytest
from conftest import run_example


@pytest.mark.slow  # simulates and trains on an ensemble of sweeps: a pipeline
@pytest.mark.xfail(
    reason="issue 15 open: in fast mode the estimator alone is ~20 % off (target 2 %)", strict=False
)
def test_duffing_estimator_example(tmp_path):
    ns = run_example("duffing_estimator.py", tmp_path)
    errs = ns["errs"]  # columns: estimator, fit from a poor start, estimator + fit (max rel. error), times
    assert np.median(errs[:, 0]) < 0.05  # fast mode: a smaller ensemble and training than the full run
    assert np.all(errs[:, 2] < 0.02)  # refine= starts sm.fit where it converges
    # times per measurement and for training are measured in benchmarks, never asserted in tests
    assert (tmp_path / "duffing_estimator.png").stat().st_size > 10_000
