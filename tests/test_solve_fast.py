"""simulate's fast path for repeated calls: same answers as the general path, no binding work."""

import numpy as np
import pytest
import sympy as sp

import symml as sm
import symml._solve._numeric as numeric
from symml._compile._cache import peek, sizes

KW = dict(t_span=(0.0, 5.0), saveat=6, method="numeric")


@pytest.fixture(scope="module")
def lv():
    return sm.zoo.lotka_volterra()


def _general(model, **kw):
    # saveat as an array of the same times never takes the fast path
    t0, t1 = kw.pop("t_span")
    n = kw.pop("saveat")
    return sm.simulate(model, saveat=np.linspace(t0, t1, n), **kw)


@pytest.mark.slow
def test_repeated_calls_match_the_general_path(lv):
    u, v = lv.states
    alpha = lv.params[0]
    first = sm.simulate(lv, ics={u: 1.0}, params={alpha: 1.1}, **KW)
    for u0, a in [(0.5, 1.3), (2.0, 0.7), (1.0, 1.1)]:
        fast = sm.simulate(lv, ics={u: u0}, params={alpha: a}, **KW)
        ref = _general(lv, ics={u: u0}, params={alpha: a}, **KW)
        # a count of saves is a constant grid in normalised time, an array of times is divided
        # by the span while solving (and either may run with the span baked in or as an
        # argument, depending on what the configuration saw first): the same steps, the save
        # times and states differ by rounding
        np.testing.assert_allclose(fast.y, ref.y, rtol=1e-11, atol=1e-14)
        np.testing.assert_array_equal(fast.p, ref.p)
        np.testing.assert_array_equal(fast.t, ref.t)
        assert fast.solver == "tsit5" and fast.method == "numeric" and fast.model is lv
    assert first.y.shape == (6, 2)
    # a new span on the fast path is a new time grid, not a recompile
    long = sm.simulate(lv, ics={u: 1.0}, params={alpha: 1.1}, t_span=(0.0, 10.0), saveat=6, method="numeric")
    np.testing.assert_allclose(long.t, np.linspace(0, 10, 6))


def test_a_repeated_call_does_no_binding(lv, monkeypatch):
    u = lv.states[0]
    sm.simulate(lv, ics={u: 1.0}, **KW)

    def no_binding(*args, **kwargs):
        raise AssertionError("a repeated call bound its values again")

    monkeypatch.setattr(numeric, "bind", no_binding)
    traj = sm.simulate(lv, ics={u: 0.7}, **KW)
    assert float(traj.y[0, 0]) == 0.7
    # a new structure (another key) takes the general path again
    with pytest.raises(AssertionError, match="bound its values again"):
        sm.simulate(lv, ics={"v": 0.7}, **KW)


def test_the_plan_is_kept_per_structure_in_the_one_cache(lv):
    u = lv.states[0]
    sm.simulate(lv, ics={u: 1.0}, **KW)
    sm.simulate(lv, ics={u: 1.5}, **KW)
    key = ((), (u,), 6, "tsit5", 1e-7, 1e-9, None, True, 65536, True, None, "numeric")
    assert peek(lv, "call_plan", key) is not None


def test_bad_values_on_the_fast_path_are_named(lv):
    u = lv.states[0]
    sm.simulate(lv, ics={u: 1.0}, **KW)
    with pytest.raises(sm.InvalidValueError, match=r"ics value for u"):
        sm.simulate(lv, ics={u: float("nan")}, **KW)
    with pytest.raises(sm.InvalidValueError, match=r"t_span t1"):
        sm.simulate(lv, ics={u: 1.0}, t_span=(0.0, float("inf")), saveat=6, method="numeric")


def test_the_solver_is_recorded(lv):
    traj = sm.simulate(lv, **KW)
    assert traj.solver == "tsit5" and traj.solver_reason == "solver='tsit5' was asked for"


def _brusselator(name):
    x, y = sm.states("x y")
    a, b = sm.parameters("a b")
    eqs = [sp.Eq(x.diff(sm.t), a + x**2 * y - (b + 1) * x), sp.Eq(y.diff(sm.t), b * x - x**2 * y)]
    return sm.Model(eqs, defaults={a: 1.0, b: 3.0, x: 1.5, y: 3.0}, name=name)


def test_the_first_span_is_baked_in_and_later_spans_are_arguments():
    baked, general = _brusselator("baked"), _brusselator("general")  # unequal: separate caches
    kw = dict(saveat=11, method="numeric")
    first = sm.simulate(baked, t_span=(0.0, 5.0), **kw)  # its span becomes a constant
    sm.simulate(general, t_span=(0.0, 2.0), **kw)  # another span first ...
    ref = sm.simulate(general, t_span=(0.0, 5.0), **kw)  # ... so (0, 5) is an argument here
    # the same steps (the normalised solve starts with the step diffrax takes in real time); the
    # step sizes differ by rounding (h against (h / span) * span), so the states agree to
    # rounding (~1e-12 here; a re-implemented first-step heuristic had left them 1e-8 apart)
    assert int(first.num_steps) == int(ref.num_steps)
    np.testing.assert_allclose(first.y, ref.y, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(first.t, ref.t, rtol=1e-15)
    for span in [(0.0, 4.0), (1.0, 6.0), (0.0, 5.0), (2.0, 3.0)]:
        traj = sm.simulate(baked, t_span=span, **kw)
        other = sm.simulate(general, t_span=span, **kw)
        np.testing.assert_allclose(traj.y, other.y, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(traj.t, np.linspace(*span, 11), rtol=1e-15)
    # a sweep over spans compiles one more runner, not one per span
    assert sizes(baked)["runner"] == 2
    # backwards too (the first step is chosen in reflected time, as diffrax does)
    back = sm.simulate(
        baked, t_span=(5.0, 0.0), ics={"x": float(first.y[-1, 0]), "y": float(first.y[-1, 1])}, **kw
    )
    np.testing.assert_allclose(back.y[::-1], first.y, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(back.t, np.linspace(5.0, 0.0, 11), rtol=1e-15)


def test_the_parameters_of_a_fast_result_are_a_copy(lv):
    traj = sm.simulate(lv, **KW)
    again = sm.simulate(lv, **KW)
    assert isinstance(again.p, np.ndarray)  # read on the host from the packed values
    again.p[:] = 99.0
    np.testing.assert_array_equal(sm.simulate(lv, **KW).p, traj.p)
