"""Equation discovery from data: derivative estimates and the weak form, exact structure of
Van der Pol, Lorenz and the nonlinear pendulum from noise-free and 1 %-noise data, the
discovered Model (parameters, defaults, simulation, save/load), the command line, errors."""

import sys

import numpy as np
import pandas as pd
import pytest
import sympy as sp

import symml as sm
from symml._data._derivatives import (
    DifferentiationError,
    FiniteDifference,
    SavitzkyGolay,
    SmoothingSpline,
    Weak,
    derivatives,
    time_scale,
)
from symml._discover._discover import DiscoveryError, discover_system
from symml.cli import main
from symml.distill import Operon, Polynomial, Trig, UnknownBackendError, UnknownLibraryError

t = sm.t


def _coefs(result):
    return {term: float(c) for term, c in result.coefficients.items()}


def _assert_structure(result, truth, rel):
    """Exactly the true terms, each coefficient within ``rel`` (relative)."""
    got = _coefs(result)
    assert set(got) == set(truth), f"terms {sorted(map(str, got))} != {sorted(map(str, truth))}"
    for term, value in truth.items():
        assert got[term] == pytest.approx(value, rel=rel), (term, got[term], value)


# ----------------------------------------------------------------------------- derivatives


def test_finite_differences_converge_at_second_order():
    errs = {1: [], 2: []}
    for n in (201, 401):
        tt = np.linspace(0, 2 * np.pi, n)
        d = FiniteDifference().derivatives(tt, np.sin(tt), 2)
        errs[1].append(np.max(np.abs(d[1] - np.cos(tt))[5:-5]))
        errs[2].append(np.max(np.abs(d[2] + np.sin(tt))[5:-5]))
    for order in (1, 2):
        assert errs[order][0] / errs[order][1] == pytest.approx(4.0, rel=0.05)


def test_savgol_and_spline_accuracy():
    tt = np.linspace(0, 2 * np.pi, 401)
    d = SavitzkyGolay().derivatives(tt, np.sin(tt), 2)
    assert np.max(np.abs(d[1] - np.cos(tt))) < 1e-6 and np.max(np.abs(d[2] + np.sin(tt))) < 1e-4
    # with noise, the GCV window smooths and beats plain differences by far
    noisy = np.sin(tt) + 0.01 * np.random.default_rng(0).standard_normal(tt.size)
    w = SavitzkyGolay().choose_window(noisy)
    assert 15 <= w <= 201
    err_sg = np.sqrt(np.mean((derivatives(tt, noisy, 1, "savgol")[1] - np.cos(tt)) ** 2))
    err_fd = np.sqrt(np.mean((derivatives(tt, noisy, 1, "finite_difference")[1] - np.cos(tt)) ** 2))
    assert err_sg < 0.1 * err_fd
    # the spline takes non-uniform times
    tu = np.sort(np.random.default_rng(1).uniform(0, 2 * np.pi, 300))
    s = SmoothingSpline().derivatives(tu, np.sin(tu), 2)
    assert np.max(np.abs(s[1] - np.cos(tu))[5:-5]) < 1e-3


def test_weak_form_identities():
    tt = np.linspace(0, 10, 1001)
    x = np.sin(1.3 * tt) + 0.05 * tt**2
    dx = 1.3 * np.cos(1.3 * tt) + 0.1 * tt
    ddx = -1.69 * np.sin(1.3 * tt) + 0.1
    V0, V1, V2 = Weak().test_functions(tt, 2, 61)
    np.testing.assert_allclose(V0 @ np.ones_like(tt), 1.0, rtol=1e-12)  # unit integral
    np.testing.assert_allclose(-(V1 @ x), V0 @ dx, atol=1e-9)  # ∫φ x' = -∫φ' x
    np.testing.assert_allclose(V2 @ x, V0 @ ddx, atol=1e-7)  # ∫φ x'' = ∫φ'' x
    assert time_scale(tt, np.sin(2 * np.pi * 0.5 * tt)) == pytest.approx(2.0, rel=0.02)


def test_differentiation_errors():
    tt = np.linspace(0, 1, 50)
    with pytest.raises(DifferentiationError, match=r"Unknown differentiation 'splin'.*Did you mean 'spline'"):
        derivatives(tt, tt, 1, "splin")
    with pytest.raises(sm.DataError, match="needs uniformly spaced times"):
        derivatives(tt**2, tt, 1, "savgol")
    with pytest.raises(sm.DataError, match="needs at least 9 samples"):
        derivatives(tt[:4], tt[:4], 2, "savgol")
    with pytest.raises(DifferentiationError, match="gives no pointwise derivatives"):
        derivatives(tt, tt, 1, "weak")
    with pytest.raises(DifferentiationError, match="derivatives up to order 2"):
        derivatives(tt, tt, 3, "spline")
    with pytest.raises(DifferentiationError, match="power must be >= 2"):
        Weak(power=1)
    with pytest.raises(DifferentiationError, match="window must be odd"):
        SavitzkyGolay(window=10)
    with pytest.raises(sm.DataError, match="at least 41 samples per trajectory"):
        Weak().test_functions(tt[:30], 1)


# ----------------------------------------------------------------------------- discovery


@pytest.fixture(scope="module")
def vdp():
    model = sm.zoo.van_der_pol(mu=1.0)
    ts = np.linspace(0, 20, 2001)
    return model, {noise: sm.Dataset.from_model(model, ts=ts, noise=noise, seed=0) for noise in (0.0, 0.01)}


@pytest.mark.parametrize("noise", [0.0, 0.01])
@pytest.mark.parametrize("observed", ["x and x_t", "x only"])
@pytest.mark.slow
def test_van_der_pol(vdp, noise, observed):
    """x'' = mu (1 - x^2) x' - x from positions and velocities (20 s), or from positions only
    (30 s: x' and x'' are then both unknown, so a longer record is used)."""
    model, datasets = vdp
    x, v = model.states
    data = datasets[noise]
    if observed == "x only":
        data = sm.Dataset.from_model(model, ts=np.linspace(0, 30, 3001), noise=noise, seed=0, observe=[x])
    found = discover_system(data, order=2)
    (result,) = found.results.values()
    truth = {v: 1.0, x**2 * v: -1.0, x: -1.0}  # x'' = mu (1 - x^2) x' - x, mu = 1
    _assert_structure(result, truth, rel=1e-4 if noise == 0 else 0.02)
    assert found.differentiation == "weak"


@pytest.mark.parametrize("method, step", [("savgol", 1), ("finite_difference", 1), ("spline", 4)])
@pytest.mark.slow  # 24 s: three discoveries chosen through the solver
def test_pointwise_methods_on_clean_data(vdp, method, step):
    model, datasets = vdp
    x, v = model.states
    data = datasets[0.0]
    data = sm.Dataset(t=data.t[::step], y={x: data[x][::step], v: data[v][::step]})
    found = discover_system(data, differentiation=method)
    (result,) = found.results.values()
    assert found.differentiation == method
    _assert_structure(result, {v: 1.0, x**2 * v: -1.0, x: -1.0}, rel=1e-3)


@pytest.mark.parametrize("noise", [0.0, 0.01])
@pytest.mark.slow
def test_lorenz(noise):
    model = sm.zoo.lorenz()
    x, y, z = model.states
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 10, 2001), noise=noise, seed=0)
    # At 1 % noise the solver's choice keeps two spurious terms here: refitted through the
    # solver over the whole record, the true terms stall at R^2 0.90 (a local minimum of the
    # long integration), so the regression's own sparse choice is the one tested.
    found = discover_system(data, degree=2, select="solver" if noise == 0 else "backend")
    rel = 1e-4 if noise == 0 else 0.05
    truths = {
        x.diff(t): {x: -10.0, y: 10.0},
        y.diff(t): {x: 28.0, x * z: -1.0, y: -1.0},
        z.diff(t): {x * y: 1.0, z: -8.0 / 3.0},
    }
    for lhs, truth in truths.items():
        _assert_structure(found.results[lhs], truth, rel)


@pytest.fixture(scope="module")
def pendulum_data():
    model = sm.zoo.pendulum()
    theta, omega = model.states
    ics = [{theta: a, omega: 0.0} for a in (1.5, 2.2, 2.8)]
    ts = np.linspace(0, 10, 501)
    return model, {
        noise: sm.Dataset.from_model(model, ics=ics, ts=ts, noise=noise, seed=0, observe=[theta])
        for noise in (0.0, 0.01)
    }


@pytest.mark.parametrize("noise", [0.0, 0.01])
@pytest.mark.slow
def test_nonlinear_pendulum_from_angles_only(pendulum_data, noise):
    model, datasets = pendulum_data
    theta = model.states[0]
    library = Polynomial(4) + Trig(kinds=("sin",), of=[theta])
    # At 1 % noise the solver's choice keeps the sine exact (-9.811) but adds two small terms
    # (0.031 theta, -0.006 theta theta'^2) on these 3 x 501 samples: the regression's own sparse
    # choice is the one tested there.
    select = "solver" if noise == 0 else "backend"
    found = discover_system(datasets[noise], library=library, order=2, select=select)
    (result,) = found.results.values()
    _assert_structure(result, {sp.sin(theta): -9.81}, rel=1e-4 if noise == 0 else 5e-3)
    assert len(found.terms) == 16
    # the small-angle hypothesis on the same regression rows: rejected by error and BIC
    (small,) = discover_system(datasets[noise], library=[theta], order=2, selection="none").results.values()
    assert small.mse > 10 * result.mse and small.bic > result.bic + 100


@pytest.mark.slow
def test_discovered_model(vdp, tmp_path):
    model, datasets = vdp
    x, v = model.states
    data = datasets[0.0]
    found = discover_system(data, order=2, name="vdp_found")
    disc = found.model
    assert disc.name == "vdp_found" and [p.name for p in disc.params] == ["c0", "c1", "c2"]
    assert disc.states == (x, v)
    (result,) = found.results.values()
    fitted = sorted(float(c) for c in result.coefficients.values())
    assert sorted(disc.defaults[p] for p in disc.params) == fitted  # exactly the fitted values
    assert disc.defaults[x] == data[x][0] and disc.defaults[v] == data[v][0]
    # the plain model has numbers instead of parameters and the same right-hand side
    plain = found.plain
    assert plain.params == () and found.equations[0].lhs == x.diff(t, 2)
    assert "R2 = " in found.summary() and "c0 = " in found.summary()
    # it simulates and matches the truth far beyond the 20 s of data
    ts = np.linspace(0, 60, 601)
    truth = sm.simulate(model, saveat=ts)
    again = sm.simulate(disc, ics={x: 2.0, v: 0.0}, saveat=ts)
    assert np.max(np.abs(np.asarray(again[x]) - np.asarray(truth[x]))) < 2e-3
    # constants survive save/load exactly
    sm.save(disc, tmp_path / "vdp.json")
    back = sm.load(tmp_path / "vdp.json")
    assert back == disc
    for p in disc.params:
        assert back.defaults[back.lookup(p.name)].hex() == disc.defaults[p].hex()
    # sm.discover returns the same model directly
    assert sm.discover(data, order=2, name="vdp_found") == disc


def test_discover_from_a_dataframe_with_velocity_column():
    model = sm.zoo.harmonic_oscillator()
    x, v = model.states
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 10, 501))
    df = data.to_pandas()
    assert list(df.columns) == ["t", "x", "x_t"]
    found = discover_system(df, library="linear")
    xs, vs = found.model.states
    (result,) = found.results.values()
    assert result.coefficients.keys() == {xs, vs}  # x'' = -(k/m) x - (c/m) x'
    assert float(result.coefficients[xs]) == pytest.approx(-4.0, rel=1e-4)
    assert float(result.coefficients[vs]) == pytest.approx(-0.4, rel=1e-3)


@pytest.mark.slow
def test_discovered_constants_refit_through_the_solver():
    model = sm.zoo.van_der_pol(mu=1.0)
    x, v = model.states
    data = sm.Dataset.from_model(model, ts=np.linspace(0, 20, 401), noise=0.02, seed=0)
    found = discover_system(data)
    refit = sm.fit(found.model, data)
    rhs = found.model.equations[0].rhs
    terms = {p: rhs.coeff(p) for p in found.model.params}  # c_i -> its term
    truth = {v: 1.0, x: -1.0, x**2 * v: -1.0}
    before = max(abs(found.model.defaults[p] - truth[terms[p]]) for p in terms)
    after = max(abs(refit.params[p] - truth[terms[p]]) for p in terms)
    assert after < before and after < 5e-3


@pytest.mark.slow
def test_discover_with_operon():
    (x,) = sm.states("x")
    r, K = sm.parameters("r K")
    logistic = sm.Model([sp.Eq(x.diff(t), r * x * (1 - x / K))], defaults={r: 0.8, K: 2.0})
    ics = [{x: 0.1}, {x: 3.0}]
    data = sm.Dataset.from_model(logistic, ics=ics, ts=np.linspace(0, 10, 201))
    found = discover_system(data, backend=Operon(generations=40, random_state=0))
    (result,) = found.results.values()
    assert result.backend == "operon" and found.differentiation == "savgol"
    grid = np.linspace(0.1, 3.0, 50)[:, None]
    np.testing.assert_allclose(result.predict(grid), 0.8 * grid[:, 0] * (1 - grid[:, 0] / 2), atol=1e-3)


# ----------------------------------------------------------------------------- errors


def test_discover_errors(vdp):
    model, datasets = vdp
    x, v = model.states
    data = datasets[0.0]
    df = data.to_pandas()
    df.loc[5, "x"] = np.nan
    with pytest.raises(sm.DataError, match=r"Values of 'x' contain NaN or inf at rows 5"):
        discover_system(df)
    short = sm.Dataset(t=data.t[:60], y={x: data[x][:60], v: data[v][:60]})
    with pytest.raises(sm.DataError, match="Only 4 regression rows for 10 library terms"):
        discover_system(short, differentiation=Weak(width=41), library="polynomial")
    with pytest.raises(sm.DataError, match="Only 4 regression rows for 18 library terms"):
        discover_system(short, differentiation=Weak(width=41))  # polynomials, sin, cos, rational
    with pytest.raises(UnknownLibraryError, match=r"Unknown library 'trigg'.*Did you mean 'trig'"):
        discover_system(data, library="trigg")
    with pytest.raises(DifferentiationError, match=r"Unknown differentiation 'savgoll'"):
        discover_system(data, differentiation="savgoll")
    with pytest.raises(DiscoveryError, match="weak form is a linear regression"):
        discover_system(data, backend="operon", differentiation="weak")
    with pytest.raises(DiscoveryError, match="library= applies to the sparse-regression backend"):
        discover_system(data, backend="operon", library="trig")
    with pytest.raises(DiscoveryError, match="order must be 1 or 2"):
        discover_system(data, order=3)
    with pytest.raises(sm.DataError, match="expression of the states, not a state"):
        discover_system(sm.Dataset(t=data.t, y={x + v: data[x] + data[v]}))
    with pytest.raises(sm.DataError, match=r"derivative of 'x', but 'x' itself is not observed"):
        discover_system(sm.Dataset(t=data.t, y={"x_t": data[v]}))
    with pytest.raises(sm.DataError, match="not a usable state name"):
        discover_system(sm.Dataset(t=data.t, y={"x (m)": data[x]}))
    with pytest.raises(sm.DataError, match="needs a symml Dataset"):
        discover_system({"t": data.t, "x": data[x]})
    with pytest.raises(UnknownBackendError, match="Did you mean 'sindy'"):
        discover_system(data, backend="sindyy")


# ----------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def pendulum_csv(tmp_path_factory):
    model = sm.zoo.pendulum()
    theta, omega = model.states
    ics = [{theta: a, omega: 0.0} for a in (1.5, 2.2, 2.8)]
    data = sm.Dataset.from_model(model, ics=ics, ts=np.linspace(0, 10, 501))
    path = tmp_path_factory.mktemp("cli") / "pendulum.csv"
    data.to_csv(path)
    return path


def test_cli_discover(pendulum_csv, tmp_path, capsys):
    out = tmp_path / "found.json"
    rc = main(
        [
            "discover",
            str(pendulum_csv),
            "--trig",
            "--degree",
            "2",
            "--differentiation",
            "weak",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "Derivative(theta(t), (t, 2)) = -9.81*sin(theta(t))" in text
    assert f"wrote {out}" in text
    found = sm.load(out)
    (c0,) = found.params
    assert found.defaults[c0] == pytest.approx(-9.81, rel=1e-6)
    df = pd.read_csv(pendulum_csv)
    assert set(df.columns) == {"trajectory", "t", "theta", "theta_t"}


@pytest.mark.slow  # 22 s: five CLI discoveries, three of them chosen through the solver
def test_cli_discover_default_is_the_weak_form_and_errors(pendulum_csv, tmp_path, capsys, monkeypatch):
    assert main(["discover", str(pendulum_csv), "--trig", "--degree", "2"]) == 0
    text = capsys.readouterr().out
    assert "differentiation: weak" in text  # "auto" with SINDy
    equation = next(line for line in text.splitlines() if "Derivative(theta(t), (t, 2)) =" in line)
    assert equation.split("=")[1].strip().endswith("*sin(theta(t))")  # one term
    c0 = float(text.split("c0 = ")[1].split()[0].rstrip(","))
    assert c0 == pytest.approx(-9.81, rel=1e-3)
    # the default library (no --degree, no --trig) has sin and the solver's choice keeps it alone
    assert main(["discover", str(pendulum_csv), "--order", "2"]) == 0
    text = capsys.readouterr().out
    assert "Derivative(theta(t), (t, 2)) = " in text and "selection 'solver-bic'" in text
    equation = next(line for line in text.splitlines() if "Derivative(theta(t), (t, 2)) =" in line)
    assert equation.split("=")[1].strip().endswith("*sin(theta(t))")
    assert main(["discover", str(pendulum_csv), "--trig", "--select", "backend"]) == 0
    assert "selection 'solver-bic'" not in capsys.readouterr().out
    assert main(["discover", str(pendulum_csv), "--select", "best"]) == 2
    assert "invalid choice: 'best'" in capsys.readouterr().err
    assert main(["discover", str(tmp_path / "missing.csv")]) == 2
    assert "No such data file" in capsys.readouterr().err
    assert main(["discover", str(pendulum_csv), "--columns", "theta,omega"]) == 2
    assert "Column 'omega' is not in the table" in capsys.readouterr().err
    assert main(["discover", str(pendulum_csv), "--backend", "operon", "--differentiation", "weak"]) == 2
    assert "weak form is a linear regression" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "pysr", None)  # PySR absent, whatever this machine has
    assert main(["discover", str(pendulum_csv), "--backend", "pysr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PySR backend is unavailable" in err and 'backend="operon"' in err
