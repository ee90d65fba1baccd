"""Operon backend: tree -> SymPy conversion checked against Operon's own evaluator for every
node type, recovery of a known closed form, reproducibility, errors (the time budgets are in
test_distill_budget.py)."""

import time

import numpy as np
import pyoperon as op
import pytest
import sympy as sp

import symml as sm
from symml.distill import Operon
from symml.distill.library import evaluate
from symml.distill.operon import _ARITY, OperonError, tree_to_sympy
from symml.distill.postprocess import refine_constants, simplify

a, b, c = sp.symbols("a b c", real=True)


def _exact(expr, tol):
    """``expr`` with each Float replaced by the simplest rational within ``tol``."""
    return expr.xreplace({f: sp.nsimplify(f, tolerance=tol, rational=True) for f in expr.atoms(sp.Float)})


def _dataset():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0.2, 0.9, 64), rng.uniform(0.5, 1.5, 64), rng.uniform(-1, 1, 64)])
    ds = op.Dataset(np.asfortranarray(X))
    hashes = [v.Hash for v in sorted(ds.Variables, key=lambda v: v.Index)]
    return X, ds, hashes


def _var(h, w):
    n = op.Node.Variable(w)
    n.HashValue = h
    return n


def _trees(hashes):
    """One small tree per Operon function (and n-ary + - * /), with positive bases for pow."""
    for ty in op.NodeType.__members__.values():
        if ty in (op.NodeType.Constant, op.NodeType.Variable, op.NodeType.Dyn):
            continue
        name = op.Node(ty).Name
        arities = [1, 2, 3] if name in ("+", "-", "*", "/") else [_ARITY[name]]
        for k in arities:
            node = op.Node(ty)
            node.Arity = k
            if k == 1:
                # real-line functions see negative inputs too; the others stay in their domain
                kids = (
                    [_var(hashes[2], 0.9)]
                    if name in ("abs", "cbrt", "atan", "sin", "exp")
                    else [_var(hashes[0], 0.9)]
                )
            else:
                kids = [_var(hashes[2], 0.7), _var(hashes[1], 1.3), _var(hashes[0], 0.8)][-k:]
            yield name, k, op.Tree([*kids, node]).UpdateNodes()


@pytest.mark.slow
def test_tree_conversion_matches_operon_for_every_node_type():
    X, ds, hashes = _dataset()
    variables = dict(zip(hashes, (a, b, c)))
    seen = set()
    for name, k, tree in _trees(hashes):
        want = np.asarray(op.Evaluate(op.DispatchTable(), tree, ds, op.Range(0, ds.Rows)), dtype=float)
        expr = tree_to_sympy(tree, variables)
        got = evaluate([expr], [a, b, c], X)[:, 0]
        assert np.all(np.isfinite(want)), name
        np.testing.assert_allclose(got, want, rtol=3e-6, atol=3e-6, err_msg=f"{name} (arity {k}): {expr}")
        seen.add(name)
    assert seen == set(_ARITY) | {"+", "-", "*", "/"}


def test_nested_tree_and_constants():
    X, ds, hashes = _dataset()
    N = op.Node
    # sin(0.5 * a) / (b - 2.0) * 3.0, in postfix with Operon's child order (first child last)
    nodes = [N.Constant(2.0), _var(hashes[1], 1.0), N.Sub(), _var(hashes[0], 0.5), N.Sin(), N.Div()]
    nodes += [N.Constant(3.0), N.Mul()]
    tree = op.Tree(nodes).UpdateNodes()
    expr = tree_to_sympy(tree, dict(zip(hashes, (a, b, c))))
    assert sp.simplify(sp.nsimplify(expr, rational=True) - 3 * sp.sin(a / 2) / (b - 2)) == 0
    want = op.Evaluate(op.DispatchTable(), tree, ds, op.Range(0, ds.Rows))
    np.testing.assert_allclose(evaluate([expr], [a, b, c], X)[:, 0], want, rtol=3e-6)


def test_unknown_variable_in_tree():
    _, _, hashes = _dataset()
    tree = op.Tree([_var(hashes[0], 1.0), op.Node.Sin()]).UpdateNodes()
    with pytest.raises(OperonError, match="unknown variable"):
        tree_to_sympy(tree, {})


@pytest.fixture(scope="module")
def closed_form():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 2))
    y = 1.5 * X[:, 0] * X[:, 1] - 0.7 * np.sin(X[:, 0])
    t0 = time.perf_counter()
    found = Operon(generations=50, random_state=0).fit(X, y, [a, b])
    return X, y, found, time.perf_counter() - t0


@pytest.mark.slow
def test_operon_recovers_a_closed_form(closed_form):
    X, y, found, seconds = closed_form
    # the constants are refitted in double precision: the closed form to 1e-9
    assert _exact(found.expr, 1e-9) == sp.Rational(3, 2) * a * b - sp.Rational(7, 10) * sp.sin(a)
    assert found.coefficients[a * b] == pytest.approx(1.5, abs=1e-12)
    assert found.coefficients[sp.sin(a)] == pytest.approx(-0.7, abs=1e-12)
    assert found.mse < 1e-24 and found.r2 == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(found.predict(X), y, atol=1e-11)
    # the Pareto front: increasing size, decreasing error; chosen by BIC among them
    sizes = [cand.complexity for cand in found.front]
    assert sizes == sorted(sizes) and len(found.front) >= 3
    assert found.front[0].mse > 1e3 * found.front[-1].mse
    assert found.selection == "bic" and found.info["random_state"] == 0
    print(f"operon closed form: {found.expr} in {seconds:.1f} s, front of {len(found.front)}")


@pytest.mark.slow
def test_operon_is_reproducible():
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 2, (100, 1))
    y = 2.0 / X[:, 0] + X[:, 0]
    runs = [Operon(generations=15, population_size=200, random_state=7).fit(X, y, [a]) for _ in range(2)]
    assert runs[0].expr == runs[1].expr
    assert [cand.expr for cand in runs[0].front] == [cand.expr for cand in runs[1].front]


def test_refine_constants_and_simplify():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (80, 2))
    y = 1.25 * np.exp(-0.5 * X[:, 0]) + 0.3 * X[:, 1]
    start = sp.Float(1.2) * sp.exp(sp.Float(-0.45) * a) + sp.Float(0.31) * b
    refined = refine_constants(start, [a, b], X, y)
    assert _exact(refined, 1e-10) == sp.Rational(5, 4) * sp.exp(-a / 2) + sp.Rational(3, 10) * b
    assert simplify(sp.Float(2.0) * a * (sp.Float(0.5) * a) + a**2) == sp.Float(2.0) * a**2


def test_operon_errors():
    with pytest.raises(OperonError, match=r"Unknown Operon function 'sine'.*Did you mean 'sin'"):
        Operon(functions=("add", "sine"))
    with pytest.raises(OperonError, match=r"Unknown selection rule 'mdl'"):
        Operon(selection="mdl")
    with pytest.raises(OperonError, match="population_size must be >= 1"):
        Operon(population_size=0)
    with pytest.raises(OperonError, match="max_time must be > 0"):
        Operon(max_time=0)
    with pytest.raises(OperonError, match=r"timeout must be > 0 seconds \(or None for the default\), got -1"):
        Operon(timeout=-1)
    with pytest.raises(sm.DataError, match="Operon needs at least 5 samples; got 3"):
        Operon().fit(np.ones((3, 1)), np.ones(3), [a])
    assert Operon(functions="add,mul").functions == ("add", "mul")
