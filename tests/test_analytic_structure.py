"""The cheap structural facts behind the closed-form check: linearity read off the expression tree
agrees with the dense Jacobian, and the dependency components of big and random models."""

import numpy as np
import sympy as sp

import symml as sm
from symml._analytic import _structure as S
from symml._analytic._closed_form import _odes, _Plain


def odes_of(model):
    return _odes(model, _Plain())


def test_linearity_agrees_with_the_dense_jacobian():
    x, y = sm.states("x y")
    a, b = sm.parameters("a b")
    t = sm.t
    rhss = [
        (a * x - b * y, -x),  # linear, constant coefficients
        (a * x + sp.sin(t), y),  # forcing in t: still constant coefficients
        (t * x, y),  # a coefficient in t
        ((x + 1) ** 2 - x**2, y),  # syntactically quadratic, linear after cancellation
        (x * y, -x),  # nonlinear
        (sp.sin(x), y),  # nonlinear
        (sp.sqrt(x), y),
        (x**2 / (1 + t), y),
        (a * (x - 2 * y) + sp.exp(-t) * y, x / 3),  # a coefficient in t
    ]
    for f, g in rhss:
        model = sm.Model([sp.Eq(x.diff(t), f), sp.Eq(y.diff(t), g)])
        odes = odes_of(model)
        assert S.linearity(odes, t) == S.first_order(odes, t)[3:], (f, g)
    pend = sm.zoo.pendulum(small_angle=True)
    assert S.linearity(odes_of(pend), t) == S.first_order(odes_of(pend), t)[3:] == (True, True)


def brute_force_components(bases, deps):
    reach = {b: {b} for b in bases}
    changed = True
    while changed:
        changed = False
        for b in bases:
            new = set().union(*(reach[c] for c in deps[b])) | reach[b]
            if new != reach[b]:
                reach[b], changed = new, True
    return {frozenset(c for c in bases if b in reach[c] and c in reach[b]) for b in bases}


def test_components_of_a_random_dependency_graph():
    rng = np.random.default_rng(3)
    xs = sm.states(" ".join(f"u{i}" for i in range(30)))
    deps = {x: [xs[j] for j in rng.choice(30, size=2, replace=False) if xs[j] != x] for x in xs}
    model = sm.Model([sp.Eq(x.diff(sm.t), sum(deps[x]) - x) for x in xs])
    comps = S.components(odes_of(model), sm.t)
    assert {frozenset(c) for c in comps} == brute_force_components(list(xs), deps)
    # dependencies first: every component depends only on itself and components listed before it
    seen = set()
    for c in comps:
        assert all(d in seen or d in c for x in c for d in deps[x])
        seen |= set(c)


def test_a_chain_deeper_than_the_recursion_limit():
    n = 1500
    x = sm.states("x", n=n)
    eqs = [sp.Eq(x[i].diff(sm.t), (x[i - 1] if i else 0) - x[i], evaluate=False) for i in range(n)]
    comps = S.components(odes_of(sm.Model(eqs)), sm.t)
    assert [len(c) for c in comps] == [1] * n and comps[0] == [x[0]] and comps[-1] == [x[-1]]
