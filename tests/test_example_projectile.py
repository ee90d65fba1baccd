"""examples/projectile.py in fast mode: closed forms, the three ranges, the range map, the
inverse question; figures written."""

import pytest
from conftest import run_example

pytestmark = pytest.mark.slow  # runs the whole example script: a pipeline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("projectile")
    return run_example("projectile.py", out), out


def test_three_ranges_agree_with_problems_md(run):
    ns, _ = run
    for kv, expected in ((0.45, 17.8800198525094), (1.8, 13.6065731068121)):
        lambert, newton, event = ns["ranges"][kv]
        assert lambert == pytest.approx(expected, rel=1e-13)
        assert newton == pytest.approx(lambert, rel=1e-10) and event == pytest.approx(lambert, rel=1e-9)


def test_range_map_and_inverse_question(run):
    ns, out = run
    grid = ns["grid"]
    assert grid.shape == (100, 100) and float(grid.min()) > 0
    assert ns["agree"] < 1e-6  # closed form against the numeric ground-hit events
    assert 24 < ns["v_star"] < 27 and abs(ns["d_check"] - 50.0) < 1e-8
    for name in ("projectile_trajectories.png", "projectile_range_map.png"):
        assert (out / name).stat().st_size > 10_000


def test_inverse_problem_of_problems_md_for_150_m(run):
    ns, _ = run
    found = ns["inverse150"]
    v, th, d_closed, d_sim = found["lecture (75.3 m/s, 11.9°)"]
    assert d_closed == pytest.approx(150.0671341137836, rel=1e-12) and d_sim == pytest.approx(
        d_closed, rel=1e-9
    )
    for name in ("speed at θ = 11.9°", "low throw at 75.3 m/s", "high throw at 75.3 m/s", "slowest throw"):
        v, th, d_closed, d_sim = found[name]
        assert d_closed == pytest.approx(150.0, rel=1e-12) and d_sim == pytest.approx(150.0, rel=1e-9)
    assert found["speed at θ = 11.9°"][0] == pytest.approx(75.3, abs=0.05)
    low, high = found["low throw at 75.3 m/s"][1], found["high throw at 75.3 m/s"][1]
    assert low == pytest.approx(11.9, abs=0.05) and 45 < high < 70  # two throws for one distance
    v_min, th_min = found["slowest throw"][:2]
    assert v_min < 75.3 and low < th_min < high
