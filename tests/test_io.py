"""save/load: exact round trips, and nothing in a file is ever executed."""

import json

import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml import t
from symml._serialize import FileFormatError, decode_expr, encode_expr


@pytest.mark.parametrize(
    "factory",
    [
        sm.zoo.lotka_volterra,
        lambda: sm.zoo.projectile("newton"),
        sm.zoo.kepler,
        lambda: sm.zoo.duffing("amplitude"),
        lambda: sm.zoo.harmonic_oscillator(drive=True),
        sm.zoo.lorenz,
    ],
)
def test_models_round_trip(factory, tmp_path):
    model = factory()
    sm.save(model, tmp_path / "m.json")
    back = sm.load(tmp_path / "m.json")
    assert back == model
    assert back.states == model.states and back.params == model.params
    assert dict(back.defaults) == dict(model.defaults)


def test_expressions_round_trip_exactly():
    (x,) = sm.states("x")
    a, b = sm.parameters("a b", positive=True)
    exprs = [
        sp.Float("0.1000000000000000055511151231257827", 40) * x,
        sp.Float(1 / 3) * a + sp.Rational(2, 7) * b ** sp.Rational(3, 2),
        sp.Piecewise((sp.sin(x), x > a), (sp.exp(-b * t), True)),
        sp.Max(x, a, 0) + sp.Heaviside(x - 1) + sp.erf(x) + sp.atan2(x, a) + sp.pi * sp.E,
        x.diff(t, 2) + sp.Abs(x.diff(t)),
    ]
    for e in exprs:
        back = decode_expr(json.loads(json.dumps(encode_expr(e))))
        assert back == e, (back, e)
        for f1, f2 in zip(sorted(e.atoms(sp.Float), key=str), sorted(back.atoms(sp.Float), key=str)):
            assert f1._mpf_ == f2._mpf_ and f1._prec == f2._prec


def test_defaults_survive_bit_exactly(tmp_path):
    lv = sm.zoo.lotka_volterra().with_defaults({"alpha": 0.1 + 0.2, "beta": np.nextafter(0.9, 1.0)})
    sm.save(lv, tmp_path / "lv.json")
    back = sm.load(tmp_path / "lv.json")
    for k, v in lv.defaults.items():
        assert back.defaults[k] == v


def test_dataset_round_trip(tmp_path):
    lv = sm.zoo.lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 5, 21), noise=0.05, seed=3)
    sm.save(data, tmp_path / "d.json")
    back = sm.load(tmp_path / "d.json")
    u, v = lv.states
    np.testing.assert_array_equal(back.series[0][u], data.series[0][u])
    np.testing.assert_array_equal(back.t, data.t)


def test_malicious_files_are_rejected_without_execution(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        (["Fn", "__import__", [["Symbol", "os", {}]]], "unknown function '__import__'"),
        (["Fn", "eval", [["Symbol", f"open('{marker}', 'w')", {}]]], "unknown function 'eval'"),
        (["Lambda", "x"], "unknown expression node 'Lambda'"),
        (["Symbol", "x", {"__class__": True}], "bad assumptions"),
    ]
    for node, message in payloads:
        doc = {
            "symml": "model",
            "version": 1,
            "content": {"name": "m", "equations": [[node, ["Integer", "0"]]]},
        }
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(FileFormatError, match=message):
            sm.load(tmp_path / "bad.json")
    assert not marker.exists()
    (tmp_path / "notjson.json").write_text("import os; os.system('touch pwned')")
    with pytest.raises(FileFormatError, match="not a JSON file"):
        sm.load(tmp_path / "notjson.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(FileFormatError, match="not a symml file"):
        sm.load(tmp_path / "other.json")


def test_unsaveable_object_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="sm.save cannot save a dict"):
        sm.save({"a": 1}, tmp_path / "x.json")


@pytest.mark.slow
def test_neural_model_round_trips_bit_exactly(tmp_path):
    import equinox as eqx
    import jax

    from symml._compile._networks import init_networks

    u, v = sm.states("u v")
    (a,) = sm.parameters("a")
    U = sm.neural("U", [u, v], outputs=2, width=6, depth=2)
    model = sm.Model([sp.Eq(u.diff(t), a * u + U[0]), sp.Eq(v.diff(t), U[1])], defaults={a: 1.0})
    model = model.with_networks(init_networks(model.neural, jax.random.PRNGKey(7)))
    sm.save(model, tmp_path / "ude.json")
    back = sm.load(tmp_path / "ude.json")
    leaves_a = jax.tree_util.tree_leaves(eqx.filter(model.networks["U"], eqx.is_array))
    leaves_b = jax.tree_util.tree_leaves(eqx.filter(back.networks["U"], eqx.is_array))
    assert len(leaves_a) == len(leaves_b) > 0
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))
    ta = sm.simulate(model, ics={u: 1.0, v: 0.5}, t_span=(0, 1), saveat=5)
    tb = sm.simulate(back, ics={u: 1.0, v: 0.5}, t_span=(0, 1), saveat=5)
    np.testing.assert_array_equal(ta.y, tb.y)


@pytest.mark.parametrize(
    "node",
    [["State", "1x", {}], ["Parameter", "a b", {}], ["Symbol", "x;y", {}], ["State", "x(t)", {}]],
)
def test_symbol_names_in_a_file_are_identifiers(node):
    with pytest.raises(FileFormatError, match=r"bad symbol name .* states, parameters and networks"):
        decode_expr(node)
    (x1,) = sm.states("x1")
    assert decode_expr(encode_expr(x1)) == x1
