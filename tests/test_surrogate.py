"""sm.surrogate and sm.invert: error on held-back grid points, the encoder's S(P(d)) = d, agreement
with sm.solve_for on both branches, and clear errors."""

import math

import numpy as np
import pytest
import sympy as sp

import symml as sm

v, th = sp.symbols("v theta", positive=True)
RANGE = v**2 * sp.sin(2 * th) / 9.81  # drag-free range: the low and the high throw reach each d < max
DOMAIN = {v: (10.0, 20.0), th: (0.05, 1.52)}


@pytest.fixture(scope="module")
def D():
    return sm.surrogate(RANGE, DOMAIN, n=400, width=32, depth=2, optimizer=sm.Adam(steps=1000), verbose=False)


@pytest.mark.slow
def test_surrogate_error_on_held_back_grid_points(D):
    assert D.error["held_back"] == 40
    assert D.error["relative_rms"] < 0.05 and D.error["max"] < 3.0
    # and away from the grid: a fresh Latin hypercube, checked against the closed form
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(10, 20, 200), rng.uniform(0.05, 1.52, 200)])
    exact = pts[:, 0] ** 2 * np.sin(2 * pts[:, 1]) / 9.81
    assert np.sqrt(np.mean((D.predict(pts) - exact) ** 2)) < 0.05 * np.std(exact)
    assert D.predict({v: [15.0], th: [math.pi / 4]}).shape == (1,)


@pytest.mark.slow  # two encoders trained through the surrogate
def test_encoder_inverts_the_surrogate_on_both_branches(D):
    opt = sm.Adam(lr=3e-3, steps=1500)
    lo_branch = sm.invert(
        D, (14.0, 30.0), fixed={v: 18.0}, bounds={th: (0.05, math.pi / 4)}, optimizer=opt, verbose=False
    )
    hi_branch = sm.invert(
        D, (14.0, 30.0), fixed={v: 18.0}, bounds={th: (math.pi / 4, 1.52)}, optimizer=opt, verbose=False
    )
    for P in (lo_branch, hi_branch):
        ds = np.linspace(14.0, 30.0, 17)
        got = P.predict(ds)
        assert np.all(got[v] == 18.0)
        back = D.predict(np.column_stack([got[v], got[th]]))
        assert np.max(np.abs(back - ds)) < 0.6 and P.error["rms"] < 0.2  # D(P(d)) = d
    # against the direct answer through the closed form
    for P, guess in ((lo_branch, 0.3), (hi_branch, 1.2)):
        sol = sm.solve_for(RANGE, [v, th], 25.0, [18.0, guess], fixed=[v])
        assert abs(float(P(25.0)[1]) - sol[th]) < 0.03
    assert float(lo_branch(25.0)[1]) < math.pi / 4 < float(hi_branch(25.0)[1])


@pytest.mark.slow
def test_surrogate_of_a_function_and_lhs():
    S = sm.surrogate(
        lambda a, b: a + 2 * b,
        {"a": (0, 1), "b": (0, 1)},
        n=200,
        sampling="lhs",
        width=16,
        depth=1,
        optimizer=sm.Adam(steps=600),
        verbose=False,
    )
    assert S.inputs == ("a", "b") and abs(float(S(0.5, 0.25)) - 1.0) < 0.05


@pytest.fixture(scope="module")
def tiny():
    # error tests need a surrogate object, not an accurate one
    return sm.surrogate(RANGE, DOMAIN, n=32, width=4, depth=1, optimizer=sm.Adam(steps=5), verbose=False)


def test_errors(tiny):
    D = tiny
    with pytest.raises(sm.DataError, match=r"domain must be a non-empty dict"):
        sm.surrogate(RANGE, {})
    with pytest.raises(sm.DataError, match=r"domain\[v\] must be \(lo, hi\) with lo < hi, got \(2, 1\)"):
        sm.surrogate(RANGE, {v: (2, 1), th: (0, 1)})
    with pytest.raises(sm.DataError, match=r"fn has symbols \['theta'\] that are not in domain"):
        sm.surrogate(RANGE, {v: (1, 2)})
    with pytest.raises(ValueError, match="sampling must be one of"):
        sm.surrogate(RANGE, DOMAIN, sampling="sobol")
    with pytest.raises(ValueError, match=r"n must be an int >= 4 \(samples\), got 2"):
        sm.surrogate(RANGE, DOMAIN, n=2)
    with pytest.raises(ValueError, match=r"holdout must be a fraction in \(0, 0.5\), got 0.7"):
        sm.surrogate(RANGE, DOMAIN, holdout=0.7)
    with pytest.raises(sm.DataError, match=r"fn must be a JAX-traceable function of the inputs or a SymPy"):
        sm.surrogate(3.0, DOMAIN)  # type: ignore[arg-type]
    with pytest.raises(sm.DataError, match=r"domain key 'v': a SymPy quantity needs its input symbols"):
        sm.surrogate(RANGE, {"v": (10.0, 20.0), th: (0.1, 1.0)})
    with pytest.raises(sm.DataError, match=r"fn is finite at only 0 of 9 samples; check fn and domain"):
        sm.surrogate(lambda a: a * float("nan"), {"a": (0.0, 1.0)}, n=9, verbose=False)
    with pytest.raises(sm.DataError, match=r"target \(lo, hi\) needs lo < hi, got \(2.0, 1.0\)"):
        sm.invert(D, (2.0, 1.0))
    with pytest.raises(sm.DataError, match="fixed holds every input"):
        sm.invert(D, (1, 2), fixed={v: 15.0, th: 0.5})
    with pytest.raises(sm.DataError, match=r"bounds\[theta\] = \(0.0, 2.0\) must lie inside"):
        sm.invert(D, (1, 2), bounds={th: (0.0, 2.0)})
    with pytest.raises(sm.DataError, match=r"fixed: 'w' is not an input of the surrogate"):
        sm.invert(D, (1, 2), fixed={"w": 1.0})
    with pytest.raises(sm.DataError, match="surrogate must be an sm.surrogate"):
        sm.invert(lambda x: x, (1, 2))  # type: ignore[arg-type]
