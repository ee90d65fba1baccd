"""SINDy backend and SymPy libraries: exact recovery, selection along the threshold path,
scale invariance, coefficients as SymPy Floats, save/load, and every user error."""

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml.distill import (
    Custom,
    Polynomial,
    SINDy,
    Trig,
    UnknownBackendError,
    UnknownLibraryError,
    backend_names,
    get_backend,
    make_library,
)
from symml.distill.library import evaluate
from symml.distill.sindy import SINDyOptionError, effective_samples

x, y, z = sp.symbols("x y z", real=True)


@pytest.fixture(scope="module")
def X3():
    return np.random.default_rng(0).uniform(-2, 2, (300, 3))


# ----------------------------------------------------------------------------- libraries


def test_polynomial_trig_custom_terms():
    assert Polynomial(2).terms([x, y]) == [1, x, y, x**2, x * y, y**2]
    assert len(Polynomial(3).terms([x, y, z])) == 20  # C(3 + 3, 3)
    assert Polynomial(3, bias=False).terms([x]) == [x, x**2, x**3]
    assert Trig(frequencies=(1, 2), kinds=("sin",), of=["y"]).terms([x, y]) == [sp.sin(y), sp.sin(2 * y)]
    lib = Polynomial(1) + Trig() + Custom([sp.exp, x * sp.cos(y), 3])
    assert lib.terms([x, y]) == [
        1,
        x,
        y,
        sp.sin(x),
        sp.cos(x),
        sp.sin(y),
        sp.cos(y),
        sp.exp(x),
        sp.exp(y),
        x * sp.cos(y),
    ]
    # names and lists; duplicates are dropped, numbers become the bias term
    assert make_library(["linear", "sin", x, 2.0]).terms([x]) == [1, x, sp.sin(x)]
    assert make_library("exp").terms([x]) == [sp.exp(x)]
    assert make_library(None, degree=1).terms([y]) == [1, y]
    assert make_library(lambda u: 1 / (1 + u**2)).terms([x]) == [1 / (1 + x**2)]


def test_evaluate_matches_numpy(X3):
    terms = [sp.S.One, x * y**2, sp.sin(2 * z), sp.exp(x) / (1 + y**2), sp.Abs(z) ** sp.Rational(3, 2)]
    got = evaluate(terms, [x, y, z], X3)
    a, b, c = X3.T
    want = np.column_stack(
        [np.ones(len(a)), a * b**2, np.sin(2 * c), np.exp(a) / (1 + b**2), np.abs(c) ** 1.5]
    )
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_library_errors():
    with pytest.raises(UnknownLibraryError, match=r"Unknown library 'polynomal'.*Did you mean 'polynomial'"):
        make_library("polynomal")
    with pytest.raises(UnknownLibraryError, match="degree must be an integer >= 0"):
        Polynomial(-1)
    with pytest.raises(UnknownLibraryError, match="kinds must be 'sin' or 'cos'"):
        Trig(kinds=("tan",))
    with pytest.raises(UnknownLibraryError, match="failed on the SymPy input x.*use sp.exp, not np.exp"):
        Custom([lambda u: np.exp(np.asarray(u, dtype=float))]).terms([x])
    with pytest.raises(UnknownLibraryError, match="uses z, which is not an input"):
        evaluate([x * z], [x, y], np.ones((3, 2)))
    with pytest.raises(UnknownLibraryError, match="'w' is not one of the inputs"):
        Trig(of=["w"]).terms([x, y])
    with pytest.raises(UnknownLibraryError, match="library is empty"):
        make_library([])
    with pytest.raises(UnknownLibraryError, match="Cannot make a library from"):
        make_library({"degree": 2})
    with pytest.raises(sm.DataError, match=r"Library term log\(x\) is not finite at row 0"):
        evaluate([sp.log(x)], [x], np.array([[-1.0], [1.0]]))


# ----------------------------------------------------------------------------- recovery


def test_recovers_sparse_polynomial_exactly(X3):
    a, b, c = X3.T
    target = 1.5 * a * b - 2.0 * c**2 + 0.3
    found = SINDy(library=Polynomial(3)).fit(X3, target, [x, y, z])
    assert set(found.coefficients) == {x * y, z**2, sp.S.One}
    for term, value in {x * y: 1.5, z**2: -2.0, sp.S.One: 0.3}.items():
        coef = found.coefficients[term]
        assert isinstance(coef, sp.Float)
        assert abs(float(coef) - value) < 1e-12
    assert found.complexity == 3 and found.n_params == 3 and found.r2 == pytest.approx(1.0, abs=1e-14)
    assert found.expr == sum(v * t for t, v in found.coefficients.items())
    np.testing.assert_allclose(found.predict(X3), target, atol=1e-12)
    # the constants are the actual fitted values, not rounded: the expression keeps full precision
    noisy = target + 0.01 * np.random.default_rng(5).standard_normal(a.size)
    found = SINDy(library=Polynomial(3)).fit(X3, noisy, [x, y, z])
    lsq = np.linalg.lstsq(np.column_stack([a * b, c**2, np.ones_like(a)]), noisy, rcond=None)[0]
    assert float(found.coefficients[x * y]) == pytest.approx(lsq[0], rel=1e-13)
    assert found.coefficients[x * y]._prec == 53  # a full double, not a rounded display value


@pytest.mark.parametrize("selection", ["bic", "aic", "cv"])
@pytest.mark.parametrize("optimizer", ["stlsq", "sr3"])
def test_selection_rules_find_the_support_under_noise(X3, selection, optimizer):
    a, b, c = X3.T
    clean = 1.5 * a * b - 2.0 * c**2 + 0.8 * np.sin(a)
    sigma = 0.01 * np.sqrt(np.mean(clean**2))
    noisy = clean + sigma * np.random.default_rng(1).standard_normal(clean.size)
    lib = Polynomial(2) + Trig()
    found = SINDy(library=lib, selection=selection, optimizer=optimizer).fit(X3, noisy, [x, y, z])
    truth = {x * y: 1.5, z**2: -2.0, sp.sin(x): 0.8}
    assert found.mse == pytest.approx(sigma**2, rel=0.25)
    if selection == "aic":
        # AIC is not consistent: it may keep a few small terms that fit the noise.
        assert set(truth) <= set(found.coefficients) and found.complexity <= 8
        assert all(abs(float(v)) < 0.1 for t, v in found.coefficients.items() if t not in truth)
        return
    assert set(found.coefficients) == set(truth)
    for term, value in truth.items():
        assert float(found.coefficients[term]) == pytest.approx(value, abs=0.02)


def test_threshold_is_scale_free(X3):
    # In millimetres a term's coefficient is 1000x smaller; standardised columns keep it.
    a, b, c = X3.T
    target = 1.5 * a * b - 2.0 * c
    X_mm = X3 * np.array([1000.0, 1.0, 1.0])
    found = SINDy(library=Polynomial(2)).fit(X_mm, target, [x, y, z])
    assert set(found.coefficients) == {x * y, z}
    assert float(found.coefficients[x * y]) == pytest.approx(1.5e-3, rel=1e-10)


def test_path_is_reported_and_criterion_chooses(X3):
    a, b, c = X3.T
    target = 1.5 * a * b - 2.0 * c**2 + 0.05 * np.random.default_rng(2).standard_normal(a.size)
    found = SINDy(library=Polynomial(3)).fit(X3, target, [x, y, z])
    front = found.front
    assert [c.complexity for c in front] == sorted(c.complexity for c in front)
    assert front[0].complexity == 0 and front[-1].complexity > 5
    chosen = [c for c in front if c.expr == found.expr]
    assert len(chosen) == 1 and chosen[0].criterion == min(c.criterion for c in front)
    # every candidate on the path is an unbiased least-squares refit on its support
    cand = next(c for c in front if c.complexity == 4)
    terms = [sp.sympify(s, locals={"x": x, "y": y, "z": z}) for s in cand.info["terms"]]
    Theta = evaluate(terms, [x, y, z], X3)
    coef, *_ = np.linalg.lstsq(Theta, target, rcond=None)
    assert cand.mse == pytest.approx(np.mean((target - Theta @ coef) ** 2), rel=1e-10)
    assert found.info["n_effective"] == pytest.approx(300, rel=0.3)  # independent noise


def test_selection_none_is_plain_least_squares(X3):
    a, b, _ = X3.T
    target = np.sin(a) + 0.1 * b
    found = SINDy(library=[x, y], selection="none").fit(X3[:, :2], target, [x, y])
    coef, *_ = np.linalg.lstsq(X3[:, :2], target, rcond=None)
    assert [float(found.coefficients[t]) for t in (x, y)] == pytest.approx(coef, rel=1e-12)
    assert len(found.front) == 1


def test_effective_samples():
    rng = np.random.default_rng(0)
    n = 20000
    assert effective_samples(rng.standard_normal(n)) == pytest.approx(n, rel=0.1)
    e = rng.standard_normal(n)
    ar = np.empty(n)
    ar[0] = e[0]
    for i in range(1, n):
        ar[i] = 0.9 * ar[i - 1] + e[i]
    assert effective_samples(ar) == pytest.approx(n * 0.1 / 1.9, rel=0.3)


def test_expression_save_load_is_exact(tmp_path, X3):
    a, b, c = X3.T
    target = np.pi * a * b - np.e * c**2 + 0.01 * np.random.default_rng(3).standard_normal(a.size)
    found = SINDy(library=Polynomial(2)).fit(X3, target, [x, y, z])
    sm.save(found, tmp_path / "expr.json")
    back = sm.load(tmp_path / "expr.json")
    assert back.expr == found.expr and back.inputs == found.inputs
    for term, value in found.coefficients.items():
        assert back.coefficients[term] == value
        assert float(back.coefficients[term]).hex() == float(value).hex()
    assert back.mse == found.mse and back.r2 == found.r2 and back.selection == "bic"
    assert [cand.expr for cand in back.front] == [cand.expr for cand in found.front]
    assert back.front[1].criterion == found.front[1].criterion


def test_backend_registry():
    assert backend_names() == ("sindy", "operon", "pysr")
    assert get_backend("sindy", optimizer="sr3").optimizer == "sr3"
    ready = SINDy(selection="aic")
    assert get_backend(ready) is ready
    with pytest.raises(
        UnknownBackendError, match=r"Unknown distillation backend 'sindi'.*Did you mean 'sindy'"
    ):
        get_backend("sindi")
    with pytest.raises(TypeError, match="set them on the backend instead"):
        get_backend(ready, selection="bic")


def test_sindy_option_and_data_errors(X3):
    with pytest.raises(SINDyOptionError, match=r"Unknown SINDy optimizer 'stlq'.*Did you mean 'stlsq'"):
        SINDy(optimizer="stlq")
    with pytest.raises(SINDyOptionError, match=r"Unknown SINDy selection rule 'bci'.*'bic'"):
        SINDy(selection="bci")
    with pytest.raises(SINDyOptionError, match="thresholds must be >= 2"):
        SINDy(thresholds=1)
    with pytest.raises(SINDyOptionError, match="thresholds must be a count or a list"):
        SINDy(thresholds=[0.1, -1])
    with pytest.raises(SINDyOptionError, match="min_threshold in"):
        SINDy(min_threshold=2.0)
    with pytest.raises(UnknownLibraryError, match="Unknown library"):
        SINDy(library="cubic")
    s = SINDy()
    with pytest.raises(sm.DataError, match="X has 3 columns but 2 inputs"):
        s.fit(X3, X3[:, 0], [x, y])
    with pytest.raises(sm.DataError, match=r"y must have shape \(300,\)"):
        s.fit(X3, X3[:10, 0], [x, y, z])
    bad = X3[:, 0].copy()
    bad[7] = np.nan
    with pytest.raises(sm.DataError, match="y contains NaN or inf in 1 row.*row 7"):
        s.fit(X3, bad, [x, y, z])
    with pytest.raises(sm.DataError, match="inputs must be distinct"):
        s.fit(X3, X3[:, 0], [x, x, z])
    with pytest.raises(sm.DataError, match="selection='cv' needs at least 10 rows"):
        SINDy(selection="cv", library=[x]).fit(X3[:6, :1], X3[:6, 0], [x])
