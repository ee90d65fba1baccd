"""Fuzzing `sm.load` (hypothesis): random JSON and valid files with random parts replaced either
load or raise a symml error (`FileFormatError`, `ModelError`, ...), never another exception, and
each file is dealt with quickly: no input may hang (issue 12).

The default run is bounded to a few seconds (``max_examples``); ``-m slow`` runs a longer fuzz.
"""

import json
import os
import tempfile
import time

import hypothesis.strategies as st
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings

import symml as sm

PER_FILE_S = 20.0  # generous for a loaded CI machine; a hang is minutes or hours

_x, _y = sm.states("x y")
_k, _c = sm.parameters("k c")
_MODEL = sm.Model(
    [sp.Eq(_x.diff(sm.t), -_k * _x + sp.sin(_y)), sp.Eq(_y.diff(sm.t, 2), -_c * _y**3 + sp.Rational(1, 3))],
    defaults={_k: 0.5, _c: 1.25},
    name="fuzz",
)
_DATA = sm.Dataset(t=np.linspace(0, 1, 4), y={_x: np.arange(4.0)}, ics={_x: 0.0})


def _valid(obj) -> dict:
    path = os.path.join(tempfile.mkdtemp(), "v.json")
    sm.save(obj, path)
    with open(path) as f:
        return json.load(f)


VALID = [_valid(_MODEL), _valid(_DATA)]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(),
    st.sampled_from(
        ["Pow", "Add", "Mul", "Integer", "Derivative", "State", "Fn", "Float", "t", "sin", "Parameter"]
    ),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))


def _replace(node, path, value):
    if not path:
        return value
    node = json.loads(json.dumps(node))
    cur = node
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return node


def _load_text(text: str):
    path = os.path.join(tempfile.mkdtemp(), "f.json")
    with open(path, "w") as f:
        f.write(text)
    start = time.monotonic()
    try:
        sm.load(path)
    except sm.SymmlError:
        pass
    assert time.monotonic() - start < PER_FILE_S


@st.composite
def mutated(draw):
    base = draw(st.sampled_from(VALID))
    out = base
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(out))
        out = _replace(out, draw(st.sampled_from(paths)), draw(JSON))
    return out


def _fuzz(examples):
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


@_fuzz(40)
@given(mutated())
def test_mutated_files_load_or_fail_clearly(doc):
    _load_text(json.dumps(doc))


@_fuzz(40)
@given(JSON)
def test_random_json_loads_or_fails_clearly(doc):
    _load_text(json.dumps({"symml": "model", "version": 1, "content": doc}))


@_fuzz(30)
@given(st.binary(max_size=64))
def test_random_bytes_fail_clearly(raw):
    path = os.path.join(tempfile.mkdtemp(), "b.json")
    with open(path, "wb") as f:
        f.write(raw)
    try:
        sm.load(path)
    except sm.SymmlError:
        pass


@pytest.mark.slow
@_fuzz(1500)
@given(mutated())
def test_mutated_files_long_fuzz(doc):
    _load_text(json.dumps(doc))
