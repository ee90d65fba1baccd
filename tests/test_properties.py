"""Property tests (hypothesis): Model construction on random expressions, names and values
either builds a model or raises a `ModelError`, never anything else; every model that builds
survives a save/load round trip exactly; the binder accepts every finite real value and refuses
every NaN, infinity and complex number (issue 12).
"""

import math
import os
import tempfile

import hypothesis.strategies as st
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings

import symml as sm
from symml._declare._bind import bind_ics, bind_params

t = sm.t
NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n != "t")
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def names(draw, n):
    return draw(st.lists(NAMES, min_size=n, max_size=n, unique_by=str.lower))


def expressions(leaves):
    """Random SymPy expressions over ``leaves`` (states, parameters, t and numbers)."""
    numbers = st.one_of(
        st.integers(-5, 5).map(sp.Integer),
        st.tuples(st.integers(-9, 9), st.integers(1, 9)).map(lambda pq: sp.Rational(*pq)),
        st.floats(-10, 10, allow_nan=False).map(sp.Float),
    )
    base = st.one_of(st.sampled_from(leaves), numbers)
    unary = st.sampled_from([sp.sin, sp.cos, sp.exp, sp.tanh, sp.Abs, sp.atan])

    def extend(children):
        return st.one_of(
            st.tuples(children, children).map(lambda ab: ab[0] + ab[1]),
            st.tuples(children, children).map(lambda ab: ab[0] * ab[1]),
            st.tuples(children, st.integers(-3, 3)).map(lambda ab: ab[0] ** ab[1]),
            st.tuples(unary, children).map(lambda fa: fa[0](fa[1])),
        )

    return st.recursive(base, extend, max_leaves=8)


@st.composite
def models(draw):
    sx, sy = draw(names(2))
    pa, pb = draw(names(2).filter(lambda ps: not {p.lower() for p in ps} & {sx.lower(), sy.lower()}))
    x, y = sm.states(f"{sx} {sy}")
    a, b = sm.parameters(f"{pa} {pb}")
    leaves = [x, y, a, b, t]
    f, g = draw(expressions(leaves)), draw(expressions(leaves))
    defaults = {a: draw(FINITE), b: draw(FINITE), x: draw(FINITE)}
    return [sp.Eq(x.diff(t), f), sp.Eq(y.diff(t, 2), g)], defaults, draw(NAMES)


@FAST
@given(models())
def test_random_models_build_or_refuse_clearly_and_round_trip_exactly(spec):
    eqs, defaults, name = spec
    try:
        model = sm.Model(eqs, defaults=defaults, name=name)
    except (sm.ModelError, sm.UnknownNameError):
        return  # e.g. 1/0 folded to zoo, or a default for a parameter the equations lost
    path = os.path.join(tempfile.mkdtemp(), "m.json")
    sm.save(model, path)
    back = sm.load(path)
    assert back == model
    assert back.states == model.states and back.params == model.params
    assert dict(back.defaults) == dict(model.defaults)
    assert all(back.rhs[s] == model.rhs[s] for s in model.states)


BAD = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.complex_numbers(allow_nan=False, allow_infinity=False).filter(lambda z: z.imag != 0),
)


@pytest.fixture(scope="module")
def osc():
    return sm.zoo.pendulum()


@settings(max_examples=40, deadline=None)
@given(value=FINITE, bad=BAD)
def test_binder_takes_finite_reals_and_refuses_the_rest(osc, value, bad):
    g = osc.lookup("g")
    theta = osc.states[0]
    assert bind_params(osc, {g: value})[osc.params.index(g)] == value
    assert bind_ics(osc, {theta: value})[0] == value
    with pytest.raises(sm.InvalidValueError, match="params value for g"):
        bind_params(osc, {g: bad})
    with pytest.raises(sm.InvalidValueError, match="ics value for theta"):
        bind_ics(osc, {"theta": bad})


@settings(max_examples=40, deadline=None)
@given(value=st.one_of(FINITE, BAD))
def test_defaults_are_finite_reals_or_refused(value):
    (x,) = sm.states("x")
    (k,) = sm.parameters("k")
    finite = not isinstance(value, complex) and math.isfinite(value)
    if finite:
        assert sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: value}).defaults[k] == value
    else:
        with pytest.raises(sm.ModelError, match="The default for k"):
            sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: value})


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=12))
def test_names_are_identifiers_or_refused(text):
    parts = text.replace(",", " ").split()
    ok = parts and all(p.isidentifier() for p in parts) and len(set(parts)) == len(parts) and "t" not in parts
    if ok:
        assert [p.name for p in sm.parameters(text)] == parts
    else:
        with pytest.raises((sm.ModelError, ValueError), match="name"):
            sm.parameters(text)
