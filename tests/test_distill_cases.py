"""Universal ODEs other than Lotka–Volterra distill to their true terms (issue 11): the Hopf
normal form with its cubic terms left to the network (a published failure case of the Julia
stack) and a damped oscillator with the damping left to it."""

import warnings

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml.distill.base import additive_coefficients

t = sm.t


def _coefs(expr):
    return {k: float(c) for k, c in additive_coefficients(sp.expand(expr)).items()}


@pytest.mark.slow
def test_hopf_normal_form_cubic_terms():
    """x' = mu x - w y - x (x² + y²), y' = w x + mu y - y (x² + y²): near the limit cycle
    (x² + y² = mu) the cubic terms equal -mu x and -mu y, so the data must come from both
    sides of it; two trajectories, one spiralling in and one out, at 1 % noise."""
    x, y = sm.states("x y")
    mu, w = sm.parameters("mu omega")
    r2 = x**2 + y**2
    truth = sm.Model(
        [sp.Eq(x.diff(t), mu * x - w * y - x * r2), sp.Eq(y.diff(t), w * x + mu * y - y * r2)],
        defaults={mu: 0.5, w: 1.0},
    )
    data = sm.Dataset.from_model(
        truth, ics=[{x: 1.5, y: 0.0}, {x: 0.1, y: 0.1}], ts=np.linspace(0, 10, 41), noise=0.01, seed=0
    )
    U = sm.neural("U", inputs=[x, y], outputs=2, width=32, depth=2)
    ude = sm.Model(
        [sp.Eq(x.diff(t), mu * x - w * y + U[0]), sp.Eq(y.diff(t), w * x + mu * y + U[1])],
        defaults={mu: 0.5, w: 1.0},
    )
    trained = sm.train(ude, data, seed=0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = sm.distill(trained, degree=3)
    c0, c1 = _coefs(found.terms[U[0]]), _coefs(found.terms[U[1]])
    assert set(c0) == {x**3, x * y**2}, found.terms[U[0]]
    assert set(c1) == {x**2 * y, y**3}, found.terms[U[1]]
    for value in (*c0.values(), *c1.values()):
        assert value == pytest.approx(-1.0, abs=0.05)


@pytest.mark.slow
def test_damped_oscillator_damping():
    """x'' = -w² x - gamma x' with the damping left to the network: U(x, v) = -0.3 v."""
    x, v = sm.states("x v")
    w2, g = sm.parameters("omega2 gamma")
    truth = sm.Model([sp.Eq(x.diff(t), v), sp.Eq(v.diff(t), -w2 * x - g * v)], defaults={w2: 4.0, g: 0.3})
    data = sm.Dataset.from_model(truth, ics={x: 1.0, v: 0.0}, ts=np.linspace(0, 10, 41), noise=0.01, seed=0)
    U = sm.neural("U", inputs=[x, v], outputs=1, width=16, depth=2)
    ude = sm.Model([sp.Eq(x.diff(t), v), sp.Eq(v.diff(t), -w2 * x + U[0])], defaults={w2: 4.0})
    trained = sm.train(ude, data, seed=0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = sm.distill(trained, degree=3)
    coefs = _coefs(found.terms[U[0]])
    assert set(coefs) == {v}, found.terms[U[0]]
    assert coefs[v] == pytest.approx(-0.3, rel=0.03)
    # the distilled model is a plain symbolic model that keeps ringing down like the truth
    ts = np.linspace(0, 30, 301)
    np.testing.assert_allclose(
        np.asarray(sm.simulate(found.plain, ics={x: 1.0, v: 0.0}, saveat=ts).y),
        np.asarray(sm.simulate(truth, ics={x: 1.0, v: 0.0}, saveat=ts).y),
        atol=0.02,
    )
