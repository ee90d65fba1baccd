"""sm.estimator: amortized estimation on a small oscillator (fast), calibration, refine=, and errors;
the Duffing sweep targets are checked by the example (tests/test_estimator_example.py, slow)."""

import numpy as np
import pytest
import sympy as sp

import symml as sm

HO = sm.zoo.harmonic_oscillator(damping=False)  # x'' = -k x / m, x(0) = 1
X = HO.states[0]
K = HO.lookup("k")
TS = np.linspace(0, 2, 21)


@pytest.fixture(scope="module")
def est():
    return sm.estimator(
        HO, priors={K: (2.0, 6.0)}, observe=[X], saveat=TS, n=400, width=32, depth=2,
        optimizer=sm.Adam(lr=3e-3, steps=1500), verbose=False,
    )  # fmt: skip


@pytest.mark.slow
def test_predicts_new_measurements_with_uncertainty(est):
    for k_true in (2.5, 4.0, 5.5):
        data = sm.Dataset.from_model(HO.with_defaults({K: k_true}), ts=TS, noise=0.01, seed=1)
        got = est.predict(data)
        assert abs(got[K] / k_true - 1) < 0.03
        assert 0 < got.stderr[K] < 0.3
    # a measurement on other times is interpolated onto the training grid
    fine = sm.Dataset.from_model(HO.with_defaults({K: 4.0}), ts=np.linspace(0, 2, 81))
    assert abs(est.predict(fine)[K] - 4.0) < 0.12


@pytest.mark.slow
def test_calibration_on_held_back_simulations(est):
    cal = est.calibration()["k"]
    assert cal["rmse"] < 0.1 and cal["within_2pct"] > 0.8
    assert 0.5 < cal["within_1sd"] <= cal["within_2sd"] and cal["within_2sd"] > 0.85


@pytest.mark.slow  # a fit through the solver after the estimate
def test_refine_starts_fit_from_the_prediction(est):
    data = sm.Dataset.from_model(HO.with_defaults({K: 3.3}), ts=TS, noise=0.01, seed=2)
    got = est.predict(data, refine=True)
    assert got.fit is not None and got.fit.converged and abs(got[K] / 3.3 - 1) < 0.01


def test_input_errors():
    with pytest.raises(sm.DataError, match=r"priors must be a non-empty dict"):
        sm.estimator(HO, priors={}, observe=[X], saveat=TS)
    with pytest.raises(sm.DataError, match=r"priors\[k\] must be \(lo, hi\) with lo < hi, got \(3, 1\)"):
        sm.estimator(HO, priors={K: (3, 1)}, observe=[X], saveat=TS)
    with pytest.raises(sm.DataError, match="pass saveat"):
        sm.estimator(HO, priors={K: (1, 3)}, observe=[X])
    with pytest.raises(sm.UnknownNameError, match="'kk' is not a state or parameter"):
        sm.estimator(HO, priors={"kk": (1, 3)}, observe=[X], saveat=TS)
    with pytest.raises(sm.DataError, match=r"observe is empty; pass the states or expressions a measurement"):
        sm.estimator(HO, priors={K: (1, 3)}, observe=[], saveat=TS)
    with pytest.raises(sm.DataError, match=r"saveat must be increasing times, got shape \(3,\)"):
        sm.estimator(HO, priors={K: (1, 3)}, observe=[X], saveat=[0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match=r"n must be an int >= 20 \(simulations\), got 5"):
        sm.estimator(HO, priors={K: (1, 3)}, observe=[X], saveat=TS, n=5)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\] \(the beta-NLL weight\), got 2"):
        sm.estimator(HO, priors={K: (1, 3)}, observe=[X], saveat=TS, beta=2)


def test_data_errors():
    # the errors need an estimator, not an accurate one: 20 sweeps and 5 steps
    est = sm.estimator(
        HO, priors={K: (2.0, 6.0)}, observe=[X], saveat=TS, n=20, width=4, depth=1,
        optimizer=sm.Adam(steps=5), verbose=False,
    )  # fmt: skip
    v = HO.states[1]
    other = sm.Dataset(t=TS, y={v: np.zeros_like(TS)})
    with pytest.raises(
        sm.DataError, match=r"data does not observe x\(t\); the estimator was trained on \[x\(t\)\]"
    ):
        est.predict(other)
    with pytest.raises(sm.DataError, match=r"data has 5 values; the estimator expects 1 x 21"):
        est.predict(np.zeros(5))
    with pytest.raises(
        sm.DataError, match="refine=True runs sm.fit on the measurement: pass it as an sm.Dataset"
    ):
        est.predict(np.zeros(21), refine=True)
    two = sm.Dataset(t=TS, y=[{X: np.zeros_like(TS)}, {X: np.ones_like(TS)}])
    with pytest.raises(sm.DataError, match=r"data has 2 trajectories; pass one measurement"):
        est.predict(two)
    got = est.predict(np.zeros(21))
    with pytest.raises(KeyError, match=r"'m' is not an estimated parameter \(k\)"):
        got["m"]
    assert isinstance(sp.sympify(est.observe[0]), sp.Basic)
