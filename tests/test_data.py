"""Dataset: construction, validation messages, synthetic noise statistics, tables, models."""

import numpy as np
import pandas as pd
import pytest
import sympy as sp

import symml as sm
from symml import t
from symml._data import key_name


@pytest.fixture(scope="module")
def lv():
    return sm.zoo.lotka_volterra()


TS = np.linspace(0, 5, 21)


# ----------------------------------------------------------------------------- construction


def test_single_and_several_trajectories(lv):
    u, v = lv.states
    d = sm.Dataset(t=[0, 1, 2], y={u: [1.0, 2.0, 3.0], "v": [4, 5, 6]}, ics={v: 4.0})
    assert len(d) == 1 and d.keys == (u, "v")
    np.testing.assert_array_equal(d.t, [0, 1, 2])
    np.testing.assert_array_equal(d["u"], [1, 2, 3])  # by name or by symbol
    np.testing.assert_array_equal(d[v], [4, 5, 6])
    assert d.initial_values(lv) == {v: 4.0, u: 1.0}  # stored first, then first samples
    # several trajectories, each with its own grid and its own observed keys
    d2 = sm.Dataset(t=[[0, 1, 2], [0, 0.5]], y=[{u: [1, 2, 3]}, {v: [7, 8]}])
    assert repr(d2) == "Dataset(2 trajectories, points [3, 2], observed: u, v)"
    assert [len(s) for s in d2.series] == [3, 2]
    assert d2.initial_values(lv, 1) == {v: 7.0}
    with pytest.raises(sm.DataError, match=r"holds 2 trajectories; index one with data.series\[i\]"):
        d2["u"]
    # one time grid shared by several trajectories
    d3 = sm.Dataset(t=[0, 1], y=[{u: [1, 2]}, {u: [3, 4]}])
    assert len(d3) == 2 and np.array_equal(d3.series[1].t, [0, 1])
    # arrays are read-only copies
    with pytest.raises(ValueError, match="read-only"):
        d.series[0].values[u][0] = 5.0


@pytest.mark.slow
def test_observables_are_expressions_of_the_states(lv):
    u, v = lv.states
    a = lv.lookup("alpha")
    data = sm.Dataset.from_model(lv, ts=TS, observe=[u, u + v, a * u * v])
    traj = sm.simulate(lv, saveat=TS)
    [(series, exprs)] = data.resolve(lv)
    assert exprs == [u, u + v, a * u * v]
    np.testing.assert_allclose(data[u + v], np.asarray(traj[u] + traj[v]), rtol=1e-12)
    np.testing.assert_allclose(data[a * u * v], 1.3 * np.asarray(traj[u] * traj[v]), rtol=1e-12)
    assert list(data.to_pandas().columns) == ["t", "u", "u + v", "alpha*u*v"]
    ts_, Y, obs = data.arrays(lv)[0]
    assert Y.shape == (21, 3) and obs == exprs
    dom = data.domain(lv)
    assert dom[u] == (float(np.min(data[u])), float(np.max(data[u])))


# ----------------------------------------------------------------------------- validation


def test_validation_messages():
    x = sm.states("x")[0]
    with pytest.raises(sm.DataError, match=r"Values of 'x' contain NaN or inf at rows 1, 3 \(t = 1, 3\)"):
        sm.Dataset(t=[0, 1, 2, 3], y={x: [0.0, np.nan, 1.0, np.inf]})
    with pytest.raises(sm.DataError, match=r"Times contain NaN or inf at rows 2"):
        sm.Dataset(t=[0, 1, np.nan], y={x: [0, 1, 2]})
    with pytest.raises(sm.DataError, match=r"strictly increasing; t\[1\] = 2 is followed by t\[2\] = 2"):
        sm.Dataset(t=[0, 2, 2, 3], y={x: [0, 1, 2, 3]})
    with pytest.raises(sm.DataError, match=r"strictly increasing \(trajectory 1\)"):
        sm.Dataset(t=[[0, 1], [1, 0]], y=[{x: [0, 1]}, {x: [0, 1]}])
    with pytest.raises(sm.DataError, match="Values of 'x' have 2 entries but there are 3 times"):
        sm.Dataset(t=[0, 1, 2], y={x: [0, 1]})
    with pytest.raises(sm.DataError, match="at least 2 time points"):
        sm.Dataset(t=[0], y={x: [1]})
    with pytest.raises(sm.DataError, match=r"Times must be a 1-D array; got shape \(2, 2\)"):
        sm.Dataset(t=np.zeros((2, 2)), y={x: [1, 2]})
    with pytest.raises(sm.DataError, match="No observed values"):
        sm.Dataset(t=[0, 1], y={})
    with pytest.raises(sm.DataError, match="Observed keys must be states, expressions or names; got 3"):
        sm.Dataset(t=[0, 1], y={3: [0, 1]})
    with pytest.raises(sm.DataError, match="Got 3 sets of initial values for 2 trajectories"):
        sm.Dataset(t=[0, 1], y=[{x: [0, 1]}, {x: [0, 1]}], ics=[{}, {}, {}])
    with pytest.raises(sm.DataError, match="Got 3 time arrays for 2 trajectories"):
        sm.Dataset(t=[[0, 1], [0, 1], [0, 1]], y=[{x: [0, 1]}, {x: [0, 1]}])
    with pytest.raises(sm.DataError, match="Initial value of 'x' is nan"):
        sm.Dataset(t=[0, 1], y={x: [0, 1]}, ics={x: np.nan})
    with pytest.raises(sm.DataError, match="needs times t=... and observed values"):
        sm.Dataset(t=[0, 1])
    with pytest.raises(sm.DataError, match="either series=... or t=/y=, not both"):
        sm.Dataset(t=[0, 1], y={x: [0, 1]}, series=[])
    with pytest.raises(sm.DataError, match="needs at least one trajectory"):
        sm.Dataset(series=[])
    with pytest.raises(sm.DataError, match=r"Values of 'x' must be 1-D; got shape \(2, 1\)"):
        sm.Dataset(t=[0, 1], y={x: [[0.0], [1.0]]})
    with pytest.raises(sm.UnknownNameError, match=r"'y' is not observed in this dataset \(observed: x\)"):
        sm.Dataset(t=[0, 1], y={x: [0, 1]})["y"]


def test_unknown_and_duplicate_names_against_a_model(lv):
    u, v = lv.states
    (w,) = sm.states("w")
    with pytest.raises(
        sm.UnknownNameError,
        match=r"Data column 'uu' is not a state of model 'lotka_volterra'.*Did you mean 'u'",
    ):
        sm.Dataset(t=[0, 1], y={"uu": [0, 1]}).resolve(lv)
    with pytest.raises(sm.UnknownNameError, match=r"Observed key w\(t\) \(trajectory 1\) is neither a state"):
        sm.Dataset(t=[0, 1], y=[{u: [0, 1]}, {w: [0, 1]}]).resolve(lv)
    with pytest.raises(sm.DataError, match="Columns 'u' and 'u' both measure u; keep one"):
        sm.Dataset(t=[0, 1], y={u: [0, 1], "u": [0, 1]}).resolve(lv)


# ----------------------------------------------------------------------------- synthetic data


def test_noise_kinds_have_the_stated_statistics(lv):
    u, v = lv.states
    ts = np.linspace(0, 30, 4001)
    exact = sm.Dataset.from_model(lv, ts=ts)
    for kind, spread in [
        ("relative", lambda e: 0.05 * np.mean(np.abs(e))),
        ("additive", lambda e: 0.05),
        ("proportional", lambda e: 0.05 * np.abs(e)),
    ]:
        noisy = sm.Dataset.from_model(lv, ts=ts, noise=0.05, noise_kind=kind, seed=1)
        for s in (u, v):
            z = (noisy[s] - exact[s]) / spread(exact[s])  # standard normal
            assert abs(np.mean(z)) < 0.06 and abs(np.std(z) - 1) < 0.04, (kind, s)
    # same seed, same data; another seed, other data; stored initial values are exact
    a = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=3)
    b = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=3)
    c = sm.Dataset.from_model(lv, ts=TS, noise=0.05, seed=4)
    assert np.array_equal(a[u], b[u]) and not np.array_equal(a[u], c[u])
    assert a.series[0].ics == {u: 0.44249296, v: 4.6280594}


@pytest.mark.slow
def test_from_model_several_trajectories_grids_and_settings():
    pend = sm.zoo.pendulum()
    theta, omega = pend.states
    g, l = pend.params
    ts = [np.linspace(0, 2, 11), np.linspace(1, 4, 7)]
    d = sm.Dataset.from_model(pend, ics=[{theta: 0.1}, {theta: 0.5, l: 2.0}], ts=ts, observe=[theta])
    assert [len(s) for s in d.series] == [11, 7] and d.series[1].t[0] == 1.0
    assert d.settings(pend, 0) == {} and d.settings(pend, 1) == {l: 2.0}
    assert d.initial_values(pend, 1) == {theta: 0.5, omega: 0.0}
    # the second pendulum (l = 2) starts at t = 1 from rest
    ref = sm.simulate(pend, ics={theta: 0.5}, params={l: 2.0}, saveat=ts[1] - 1.0)
    np.testing.assert_allclose(d.series[1].values[theta], ref[theta], rtol=1e-6, atol=1e-9)


def test_from_model_errors(lv):
    u, v = lv.states
    with pytest.raises(sm.DataError, match="noise_kind must be one of"):
        sm.Dataset.from_model(lv, ts=TS, noise=0.1, noise_kind="gaussian")
    with pytest.raises(sm.DataError, match="noise must be a finite number >= 0, got -0.1"):
        sm.Dataset.from_model(lv, ts=TS, noise=-0.1)
    with pytest.raises(sm.DataError, match="from_model needs ts="):
        sm.Dataset.from_model(lv)
    with pytest.raises(sm.DataError, match="observe is empty"):
        sm.Dataset.from_model(lv, ts=TS, observe=[])
    with pytest.raises(sm.DataError, match="strictly increasing"):
        sm.Dataset.from_model(lv, ts=TS[::-1])
    with pytest.raises(sm.DataError, match="empty list of initial values"):
        sm.Dataset.from_model(lv, ics=[], ts=TS)
    with pytest.raises(sm.UnknownNameError, match="'uu' is not a state or parameter.*Did you mean 'u'"):
        sm.Dataset.from_model(lv, ics={"uu": 1.0}, ts=TS)
    with pytest.raises(sm.DataError, match="one initial condition per trajectory; pass a list of dicts"):
        sm.Dataset.from_model(lv, ics={u: [0.4, 0.5]}, ts=TS)
    proj = sm.zoo.projectile()
    x, y, vx, vy = proj.states
    with pytest.raises(sm.DataError, match="The simulated 'x' is not finite everywhere"):
        sm.Dataset.from_model(proj, ts=np.linspace(0, 4, 9), event=sm.Event(y, direction="down"))


# ----------------------------------------------------------------------------- tables


def test_pandas_and_csv_round_trips(lv, tmp_path):
    u, v = lv.states
    d = sm.Dataset.from_model(lv, ics=[{u: 0.4}, {u: 1.0}], ts=TS, noise=0.05, seed=0)
    df = d.to_pandas()
    assert list(df.columns) == ["trajectory", "t", "u", "v"] and len(df) == 42
    back = sm.Dataset.from_pandas(df)
    assert len(back) == 2 and back.keys == ("u", "v")
    for s, r in zip(d.series, back.series):
        np.testing.assert_array_equal(s.t, r.t)
        np.testing.assert_array_equal(s.values[u], r.values["u"])
    d.to_csv(tmp_path / "lv.csv")
    csv = sm.Dataset.from_csv(tmp_path / "lv.csv", columns={"u": u, "v": v})
    assert csv.keys == (u, v)
    np.testing.assert_allclose(csv.series[1].values[v], d.series[1].values[v], rtol=1e-15)
    # a time column by another name, one trajectory, some columns only
    df1 = pd.DataFrame({"time": [0.0, 1.0, 2.0], "u": [1, 2, 3], "other": [5, 6, 7]})
    one = sm.Dataset.from_pandas(df1, time="time", columns=["u"])
    assert one.keys == ("u",) and len(one) == 1
    # saved and loaded bit-exactly
    sm.save(d, tmp_path / "d.json")
    loaded = sm.load(tmp_path / "d.json")
    assert np.array_equal(loaded.series[1].values[v], d.series[1].values[v])
    assert loaded.series[1].ics == d.series[1].ics


def test_table_errors(tmp_path):
    df = pd.DataFrame({"time": [0.0, 1.0], "x": [1.0, 2.0], "note": ["a", "b"]})
    with pytest.raises(sm.DataError, match=r"No time column 't'; columns are \['time', 'x', 'note'\]"):
        sm.Dataset.from_pandas(df)
    with pytest.raises(sm.DataError, match=r"Column 'y' is not in the table"):
        sm.Dataset.from_pandas(df, time="time", columns=["y"])
    with pytest.raises(
        sm.DataError, match=r"Column 'note' holds values that are not numbers \(rows 0, 1: 'a', 'b'\)"
    ):
        sm.Dataset.from_pandas(df, time="time")
    with pytest.raises(sm.DataError, match="No value columns besides time"):
        sm.Dataset.from_pandas(df[["time"]], time="time")
    with pytest.raises(sm.DataError, match="No such data file"):
        sm.Dataset.from_csv(tmp_path / "missing.csv")
    bad = pd.DataFrame({"t": [0.0, 1.0, 2.0], "x": [1.0, np.nan, 2.0]})
    with pytest.raises(sm.DataError, match=r"Values of 'x' contain NaN or inf at rows 1 \(t = 1\)"):
        sm.Dataset.from_pandas(bad)


def test_plot_saves_a_figure(lv, tmp_path):
    d = sm.Dataset.from_model(lv, ics=[{}, {"u": 1.0}], ts=TS, noise=0.05, seed=0)
    ax = d.plot()
    ax.figure.savefig(tmp_path / "data.png")
    assert (tmp_path / "data.png").stat().st_size > 0
    assert [tx.get_text() for tx in ax.get_legend().get_texts()] == ["u", "v"]


def test_derivative_states_and_names():
    osc = sm.zoo.harmonic_oscillator()
    x, xd = osc.states
    d = sm.Dataset(t=[0, 1, 2], y={"x_t": [0.0, 1.0, 0.5], x: [1.0, 0.8, 0.2]})
    [(_, exprs)] = d.resolve(osc)
    assert exprs == [xd, x]
    assert d.initial_values(osc) == {xd: 0.0, x: 1.0}
    assert key_name(xd**2 + x) == "x + x_t**2" or key_name(xd**2 + x) == "x_t**2 + x"
    assert key_name(sp.sin(x) * t) == "t*sin(x)"
