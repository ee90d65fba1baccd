"""symml.bench: the grid, the metrics on known answers, registration, resume, errors, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml.bench import metrics
from symml.bench.runner import COLUMNS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _truth(problem, data, seed):
    return problem.model


def _truth_again(problem, data, seed):  # a second method without a fit: the grid's cost is scoring
    return sm.bench.Outcome(problem.model, {"fit": 0.0}, n_params=1)


def _decay():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k", positive=True)
    model = sm.Model([sp.Eq(x.diff(sm.t), -k * x)], defaults={k: 0.5, x: 2.0}, name="decay")
    return model, x, k


@pytest.fixture(scope="module")
def decay_problem():
    model, x, _ = _decay()
    return sm.bench.register_problem(
        "bench_decay", model, train=(0, 4), extrapolate=(4, 8), new_ics={x: 1.0}, samples=81, degree=1
    )


# ----------------------------------------------------------------------------- metrics


@pytest.mark.slow
def test_true_model_scores_perfectly(decay_problem):
    row, preds = metrics.score(decay_problem, decay_problem.model)
    for w in metrics.WINDOWS:
        assert row[f"r2_{w}"] == pytest.approx(1.0, abs=1e-6)
        assert row[f"rmse_{w}"] < 1e-6
        assert not row[f"failed_{w}"]
    p = sm.bench.get_problem("lotka_volterra")
    s = metrics.structure(p.model, p.model)
    assert s["precision"] == 1.0 and s["recall"] == 1.0 and s["exact"] == 1.0
    assert s["coef_error"] == pytest.approx(0.0, abs=1e-12)


def test_wrong_models_have_wrong_structure():
    p = sm.bench.get_problem("lotka_volterra")
    lv = p.model
    u, v = lv.states
    beta = lv.lookup("beta")
    # missing the interaction term of u' (beta = 0): exponential growth of the prey
    missing = lv.subs({beta: 0})
    s = metrics.structure(lv, missing)
    assert s["recall"] == pytest.approx(3 / 4) and s["precision"] == 1.0 and s["exact"] == 0.0
    # right terms, one coefficient off by 20 %: structure exact, coefficient error 0.2 / 4 terms
    off = lv.with_defaults({beta: 0.9 * 1.2})
    s = metrics.structure(lv, off)
    assert s["precision"] == s["recall"] == 1.0
    assert s["coef_error"] == pytest.approx(0.2 / 4, rel=1e-9)
    # an extra term lowers precision
    extra = sm.Model(
        [sp.Eq(u.diff(sm.t), lv.rhs[u] + sp.Float(0.1) * u**2), sp.Eq(v.diff(sm.t), lv.rhs[v])],
        defaults=lv.defaults,
    )
    s = metrics.structure(lv, extra)
    assert s["precision"] == pytest.approx(4 / 5) and s["recall"] == 1.0


@pytest.mark.slow
def test_wrong_models_score_low():
    p = sm.bench.get_problem("lotka_volterra")
    lv = p.model
    beta = lv.lookup("beta")
    row, _ = metrics.score(p, lv.subs({beta: 0}))
    assert row["r2_train"] < 0.0
    row, _ = metrics.score(p, lv.with_defaults({beta: 0.9 * 1.2}))
    assert row["r2_extrap"] < 0.9


@pytest.mark.slow
def test_blow_up_is_a_failure_not_a_crash(decay_problem):
    model, x, k = _decay()
    blow = sm.Model([sp.Eq(x.diff(sm.t), x**2)], defaults={x: 2.0})  # x = 2 / (1 - 2 t): t* = 0.5
    row, preds = metrics.score(decay_problem, blow)
    for w in metrics.WINDOWS:
        assert row[f"failed_{w}"] and row[f"r2_{w}"] == -math.inf and row[f"rmse_{w}"] == math.inf
    assert "main" in row["error"] and preds["pred_main"] is None


def test_window_scores_closed_form():
    truth = np.column_stack([np.linspace(0, 1, 11), np.linspace(0, 2, 11)])
    pred = truth + np.array([0.1, 0.0])
    rmse, r2 = metrics.window_scores(pred, truth)
    assert rmse == pytest.approx(math.sqrt(0.01 / 2))
    ss_tot = np.sum((truth[:, 0] - truth[:, 0].mean()) ** 2)
    assert r2 == pytest.approx(1 - 0.5 * (11 * 0.01 / ss_tot))


def test_pendulum_terms_include_sine():
    p = sm.bench.get_problem("pendulum")
    terms = metrics.term_sets(p.model)
    (th,) = [s for s in p.model.states if not isinstance(s, sp.Derivative)]
    assert terms == {"theta_t": {sp.sin(th): pytest.approx(-9.81)}}


# ----------------------------------------------------------------------------- the grid


@pytest.mark.slow
def test_tiny_grid_writes_all_outputs(tmp_path, decay_problem):
    out = tmp_path / "b"
    df = sm.bench.run(
        ["bench_decay"], [_truth_again, _truth], noise=[0.0], seeds=1, out=out, jobs=1, verbose=False
    )
    for f in (
        "results.csv",
        "results.json",
        "report.md",
        "extrapolation_vs_noise.png",
        "fig_bench_decay.png",
    ):
        assert (out / f).exists(), f
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 2 and set(df["method"]) == {"_truth_again", "_truth"}
    for _, r in df.iterrows():  # the truth itself: perfect scores
        assert r["status"] == "ok", r["error"]
        assert r["r2_extrap"] > 1 - 1e-6 and r["precision"] == 1.0 and r["recall"] == 1.0
        assert r["coef_error"] < 1e-4
    payload = json.loads((out / "results.json").read_text())
    assert set(payload["versions"]) >= {"python", "symml", "jax", "diffrax", "sympy", "pysindy", "pyoperon"}
    assert len(payload["rows"]) == 2 and payload["columns"] == list(COLUMNS)
    text = (out / "report.md").read_text()
    assert "| bench_decay | 1.00 / 1.00 / 1.00 | 1.00 / 1.00 / 1.00 |" in text
    assert "## Recovery of the true terms" in text and (out / "recovery_vs_noise.png").exists()
    assert "| bench_decay | _truth | 0 | 1/1 | 1.00 |" in text


@pytest.mark.slow  # a grid run twice
def test_custom_method_and_resume(tmp_path, decay_problem):
    calls = []

    def counted_truth(problem, data, seed):
        calls.append((problem.name, seed))
        return problem.model

    sm.bench.register_method("bench_counted", counted_truth)
    out = tmp_path / "r"
    kw = dict(noise=[0.0], out=out, jobs=1, verbose=False, report=False)
    df = sm.bench.run(["bench_decay"], ["bench_counted"], seeds=2, **kw)
    assert len(calls) == 2 and len(df) == 2
    assert (df["r2_extrap"] > 1 - 1e-6).all() and (df["coef_error"] < 1e-12).all()
    # a second call with one more seed runs only the new row
    df = sm.bench.run(["bench_decay"], ["bench_counted"], seeds=3, **kw)
    assert len(calls) == 3 and len(df) == 3 and calls[2] == ("bench_decay", 2)
    # a grid naming a run twice runs it once
    df = sm.bench.run(["bench_decay", "bench_decay"], ["bench_counted"], seeds=[3, 3], **kw)
    assert len(calls) == 4 and len(df) == 4


def test_method_errors_become_rows(tmp_path, decay_problem):
    def broken(problem, data, seed):
        raise RuntimeError("nothing converged")

    df = sm.bench.run(["bench_decay"], [broken], out=tmp_path, jobs=1, verbose=False, report=False)
    r = df.iloc[0]
    assert r["status"] == "error" and r["failed"] and "nothing converged" in r["error"]
    assert r["r2_train"] == -math.inf


def test_neural_model_shape():
    p = sm.bench.get_problem("pendulum")
    m = p.neural_model(width=8, depth=1)
    th, w = p.model.states
    assert m.states == p.model.states and m.rhs[th] == w and len(m.neural) == 1


# ----------------------------------------------------------------------------- errors


def test_bad_arguments(tmp_path, decay_problem):
    with pytest.raises(sm.UnknownNameError, match="No benchmark problem named 'lotka'.*lotka_volterra"):
        sm.bench.run(["lotka"], ["true_form"], out=tmp_path)
    with pytest.raises(sm.UnknownNameError, match="No benchmark method named 'sindi'.*'sindy'"):
        sm.bench.run(["bench_decay"], ["sindi"], out=tmp_path)
    with pytest.raises(sm.bench.BenchError, match="noise levels must be finite numbers >= 0"):
        sm.bench.run(["bench_decay"], ["true_form"], noise=[-0.1], out=tmp_path)
    with pytest.raises(sm.bench.BenchError, match="noise levels must be numbers"):
        sm.bench.run(["bench_decay"], ["true_form"], noise=["a"], out=tmp_path)
    with pytest.raises(sm.bench.BenchError, match="seeds as a count must be at least 1"):
        sm.bench.run(["bench_decay"], ["true_form"], seeds=0, out=tmp_path)
    with pytest.raises(sm.bench.BenchError, match="seeds must be integers >= 0"):
        sm.bench.run(["bench_decay"], ["true_form"], seeds=[0.5], out=tmp_path)
    with pytest.raises(sm.bench.BenchError, match="jobs must be at least 1"):
        sm.bench.run(["bench_decay"], ["true_form"], jobs=0, out=tmp_path)
    model, x, _ = _decay()
    with pytest.raises(sm.bench.BenchError, match="extrapolate .* must start at or after"):
        sm.bench.register_problem("bad", model, train=(0, 4), extrapolate=(2, 8))
    with pytest.raises(sm.bench.BenchError, match="train must be finite with t_end > t_start"):
        sm.bench.register_problem("bad", model, train=(4, 0))
    with pytest.raises(sm.bench.BenchError, match="needs a callable"):
        sm.bench.register_method("bad", 3)
    with pytest.raises(sm.bench.BenchError, match="must return a symml Model"):
        from symml.bench.runner import _model_of

        _model_of(42)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_runs_and_writes(tmp_path, capsys, decay_problem):
    from symml.cli import main

    out = tmp_path / "cli"
    args = ["bench", "--problems", "bench_decay", "--methods", "true_form", "--noise", "0,0.02"]
    rc = main([*args, "--seeds", "1", "--out", str(out), "--jobs", "1"])
    assert rc == 0
    assert (out / "results.csv").exists() and (out / "report.md").exists()
    df = sm.bench.load_results(out)
    assert sorted(df["noise"]) == [0.0, 0.02]
    assert "bench_decay" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    from symml.cli import main

    assert main(["bench", "--problems", "nope", "--out", str(tmp_path), "--jobs", "1"]) == 2
    assert "No benchmark problem named 'nope'" in capsys.readouterr().err
    assert main(["bench", "--noise", "0,x", "--out", str(tmp_path)]) == 2
    assert "--noise takes comma-separated numbers" in capsys.readouterr().err
    assert main(["bench", "--seeds", "a", "--out", str(tmp_path)]) == 2
    assert "--seeds takes a count" in capsys.readouterr().err


# ----------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_process_pool_matches_in_process(tmp_path):
    kw = dict(
        problems=["lotka_volterra"], methods=["true_form", "sindy"], noise=[0.05], seeds=1, verbose=False
    )
    a = sm.bench.run(out=tmp_path / "a", jobs=1, report=False, **kw)
    b = sm.bench.run(out=tmp_path / "b", jobs=2, report=False, **kw)
    a, b = a.sort_values("method"), b.sort_values("method")
    np.testing.assert_allclose(a["r2_extrap"], b["r2_extrap"], rtol=1e-9)
    assert list(a["equations"]) == list(b["equations"])


@pytest.mark.slow
def test_quick_preset_with_ude_sindy(tmp_path):
    q = sm.bench.preset("quick")
    df = sm.bench.run(
        q["problems"][:1], q["methods"], noise=[0.05], seeds=1, out=tmp_path, jobs=1, verbose=False
    )
    assert list(df["method"]) == ["true_form", "sindy", "ude_sindy", "ude", "neural_ode"]
    ude = df[df["method"] == "ude_sindy"].iloc[0]
    assert ude["status"] == "ok", ude["error"]
    assert ude["time_train"] > 0 and ude["time_distill"] >= 0
    tf = df[df["method"] == "true_form"].iloc[0]
    assert tf["r2_extrap"] > 0.9 and tf["recall"] == 1.0
    # network kept: scored, no structure metrics. The UDE's network after this short training
    # reproduces the training span only roughly (r2_train 0.43-0.63 across solver revisions, while
    # ude_sindy distills the exact terms from it), so it is held to beating the mean.
    for name, least in (("ude", 0.0), ("neural_ode", 0.5)):
        row = df[df["method"] == name].iloc[0]
        assert row["status"] == "ok", row["error"]
        assert row["r2_train"] > least and math.isnan(row["precision"]) and row["n_params"] > 100


@pytest.mark.slow
def test_ude_robustness_preset_reports_recovery_rates(tmp_path, capsys):
    from symml.cli import main

    out = tmp_path / "robust"
    rc = main(["bench", "--preset", "ude-robustness", "--seeds", "2", "--noise", "0.05", "--jobs", "1",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| lotka_volterra_sparse | ude_sindy | 0.05 |" in printed
    df = sm.bench.load_results(out)
    assert len(df) == 2 and (df["status"] == "ok").all(), df["error"].tolist()
    assert df["exact"].notna().all()
    assert (out / "recovery_vs_noise.png").exists()
    assert "## Recovery of the true terms" in (out / "report.md").read_text()


@pytest.mark.slow
def test_operon_and_neural_ode_methods_run_and_score(tmp_path):
    from symml.bench import NeuralODE, Operon

    methods = [Operon(max_time=10.0, generations=20), NeuralODE(steps=300, polish=100)]
    df = sm.bench.run(["lotka_volterra"], methods, noise=[0.01], seeds=1, out=tmp_path, jobs=1, verbose=False)
    assert set(df["method"]) == {"operon", "neural_ode"}
    for _, row in df.iterrows():
        assert row["status"] == "ok", row["error"]
        assert row["r2_train"] > 0.9  # both fit the training window
    nn = df[df["method"] == "neural_ode"].iloc[0]
    assert nn["time_train"] > 0 and nn["n_params"] > 100  # the network's weights count
    op = df[df["method"] == "operon"].iloc[0]
    assert op["complexity"] > 0 and isinstance(op["equations"], str) and "u(t)" in op["equations"]


# ----------------------------------------------------------------------------- presets, random ICs


def test_presets_hold_the_neural_baselines_and_the_robustness_study():
    quick = [m.name for m in sm.bench.preset("quick")["methods"]]
    assert quick == ["true_form", "sindy", "ude_sindy", "ude", "neural_ode"]
    robust = sm.bench.preset("ude-robustness")
    assert robust["problems"] == ("lotka_volterra_sparse",) and len(robust["seeds"]) >= 10
    (method,) = robust["methods"]
    assert (method.name, method.steps, method.polish, method.refit_known) == ("ude_sindy", 100, 700, False)
    assert "ude" in sm.bench.methods() and isinstance(sm.bench.get_method("ude"), sm.bench.UniversalODE)
    with pytest.raises(sm.UnknownNameError, match="No bench preset 'ude_robustness'.*'ude-robustness'"):
        sm.bench.preset("ude_robustness")


def test_random_initial_values_per_seed():
    p = sm.bench.get_problem("lotka_volterra_sparse")
    assert p.random_ics == (0.5, 5.0) and p.samples == 21 and p.train == (0.0, 5.0)
    a, b = p.for_seed(0), p.for_seed(1)
    assert a.ics == p.for_seed(0).ics and a.ics != b.ics  # reproducible, different per seed
    for q in (a, b):
        assert set(q.ics) == {"u", "v"} and all(0.5 <= v <= 5.0 for v in q.ics.values())
        assert q.random_ics is None and q.for_seed(3) is q
    assert "lotka_volterra_sparse" not in sm.bench.runner._default_problems()
    model, _, _ = _decay()
    with pytest.raises(sm.bench.BenchError, match="random_ics must be a box .* got \\(5, 1\\)"):
        sm.bench.make_problem("bad", model, random_ics=(5, 1))


def test_recovery_table_counts_exact_structures():
    import pandas as pd

    from symml.bench.report import recovery_table

    df = pd.DataFrame(
        {
            "problem": ["p"] * 4,
            "method": ["m"] * 4,
            "noise": [0.0, 0.0, 0.1, 0.1],
            "exact": [1.0, 1.0, 1.0, 0.0],
            "coef_error": [0.01, 0.03, 0.2, 0.5],
        }
    )
    table = recovery_table(df)
    assert "| p | m | 0 | 2/2 | 1.00 | 0.02 | 0.03 |" in table
    assert "| p | m | 0.1 | 1/2 | 0.50 | 0.2 | 0.2 |" in table


def test_cli_preset_errors(tmp_path, capsys):
    from symml.cli import main

    assert main(["bench", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "No bench preset 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "symml.bench",
        "symml.bench.problems",
        "symml.bench.methods",
        "symml.bench.metrics",
        "symml.bench.presets",
    ],
)
def test_bench_doctests(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
