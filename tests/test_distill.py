"""sm.distill: networks of a trained universal ODE back into SymPy, and the model they make."""

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml.distill import Distilled, DistillError, UnknownBackendError
from symml.distill.base import additive_coefficients
from symml.distill.validate import greedy_supports

BETA, DELTA = 0.9, 1.8


@pytest.fixture(scope="module")
def lv_trained():
    lv = sm.zoo.lotka_volterra()
    u, v = lv.states
    alpha, beta, delta, gamma = lv.params
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 21), noise=0.01, seed=3)
    U = sm.neural("U", inputs=[u, v], outputs=2, width=16, depth=2)
    ude = sm.Model(
        [sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
        defaults={alpha: 1.3, gamma: 0.8},
        name="lv_ude",
    )
    trained = sm.train(ude, data, optimizer=sm.Adam(steps=200), polish=sm.LBFGS(steps=500), verbose=False)
    return lv, U, trained


@pytest.fixture(scope="module")
def lv_found(lv_trained):
    return sm.distill(lv_trained[2])


def _coefs(expr):
    return {k: float(c) for k, c in additive_coefficients(sp.expand(expr)).items()}


@pytest.mark.slow
def test_recovers_exactly_the_interaction_terms(lv_trained, lv_found):
    lv, U, _ = lv_trained
    u, v = lv.states
    assert set(lv_found.terms) == {U[0], U[1]}
    c0, c1 = _coefs(lv_found.terms[U[0]]), _coefs(lv_found.terms[U[1]])
    assert set(c0) == {u * v} and set(c1) == {u * v}
    assert c0[u * v] == pytest.approx(-BETA, rel=0.03)
    assert c1[u * v] == pytest.approx(DELTA, rel=0.03)
    assert lv_found.expressions[U[0]].selection == "data-bic"
    assert lv_found.expressions[U[0]].info["combinations"] > 1


@pytest.mark.slow
def test_model_is_symbolic_with_named_constants_and_extrapolates(lv_trained, lv_found):
    lv, _, trained = lv_trained
    model = lv_found.model
    assert model.neural == () and not model.networks
    assert [str(p) for p in model.params] == ["alpha", "c0", "c1", "gamma"]
    c0, c1 = lv_found.constants
    assert model.defaults[c0] == float(lv_found.constants[c0])
    # ten times the training window: the distilled model follows the truth, the network does not
    ts = np.linspace(0, 50, 501)
    truth = sm.simulate(lv, saveat=ts)
    found = sm.simulate(model, saveat=ts)
    late = ts > 5
    err = np.abs(np.asarray(found.y)[late] - np.asarray(truth.y)[late]).max()
    assert err < 0.15 * np.abs(np.asarray(truth.y)).max()
    assert lv_found.plain.params == tuple(p for p in model.params if p not in lv_found.constants)


@pytest.mark.slow
def test_refit_estimates_the_new_constants_through_the_solver(lv_found):
    result = lv_found.refit(params=list(lv_found.constants), weights="relative")
    c0, c1 = lv_found.constants
    assert result.params[c0] == pytest.approx(-BETA, rel=0.02)
    assert result.params[c1] == pytest.approx(DELTA, rel=0.02)
    assert set(result.stderr) == {c0, c1}
    everything = lv_found.refit()
    assert set(everything.params) == set(lv_found.model.params)


@pytest.mark.slow
def test_report_and_repr(lv_found):
    text = lv_found.report()
    assert "U_0(u(t), v(t)) = " in text and "R2 = " in text and "complexity 1" in text
    assert "new parameters: c0 = " in text
    assert repr(lv_found).startswith("Distilled({U_0(u(t), v(t)): ")


@pytest.mark.slow
def test_constants_survive_save_and_load_exactly(lv_found, tmp_path):
    path = tmp_path / "found.json"
    sm.save(lv_found, path)
    back = sm.load(path)
    assert isinstance(back, Distilled)
    assert back.constants == lv_found.constants
    assert {str(k): v for k, v in back.terms.items()} == {str(k): v for k, v in lv_found.terms.items()}
    assert back.model.equations == lv_found.model.equations
    with pytest.raises(DistillError, match="refit needs data"):
        back.refit()


@pytest.mark.slow
def test_without_validation_sindy_fits_the_samples_alone(lv_trained):
    _, U, trained = lv_trained
    found = sm.distill(trained, validate=False, outputs=U[0], library="polynomial", degree=2)
    assert set(found.terms) == {U[0]}
    assert found.expressions[U[0]].selection != "data-bic"
    assert found.expressions[U[0]].r2 > 0.99


@pytest.mark.slow
def test_operon_distills_the_interaction_terms_with_few_constants(lv_trained):
    # issue 11: Operon's raw choice on these samples had complexity 32 with 28-32 constants; its
    # Pareto front's additive terms, refitted and chosen through the solver, give the u v terms
    lv, U, trained = lv_trained
    u, v = lv.states
    found = sm.distill(trained, backend="operon", max_time=20, generations=60)
    for call, want in ((U[0], -BETA), (U[1], DELTA)):
        expr = found.terms[call]
        assert len(expr.atoms(sp.Float)) <= 4, expr
        coefs = _coefs(expr)
        assert set(coefs) == {u * v}, expr
        assert coefs[u * v] == pytest.approx(want, rel=0.03)
    assert found.expressions[U[0]].selection == "data-bic"


def test_greedy_supports_are_nested_and_find_the_true_column():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(300, 6))
    y = 2.0 * F[:, 3] - 0.5 * F[:, 1] + 1e-3 * rng.normal(size=300)
    supports = greedy_supports(F, y, max_terms=3, singles=2)
    assert (3,) in supports and (1, 3) in supports
    assert any(len(s) == 3 and {1, 3} <= set(s) for s in supports)


def test_errors_a_user_can_trigger_without_training():
    lv = sm.zoo.lotka_volterra()
    with pytest.raises(DistillError, match="needs the result of sm.train"):
        sm.distill(lv)


@pytest.mark.slow
def test_errors_a_user_can_trigger_on_a_trained_result(lv_trained):
    _, U, trained = lv_trained
    with pytest.raises(DistillError, match="needs the result of sm.train"):
        sm.distill(trained.model)
    with pytest.raises(DistillError, match="No network output 'W'"):
        sm.distill(trained, outputs="W")
    with pytest.raises(UnknownBackendError, match="Unknown distillation backend 'sindyy'"):
        sm.distill(trained, backend="sindyy")
