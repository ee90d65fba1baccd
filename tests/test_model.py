"""Declaring models: order reduction, explicit form, inspection and the errors of item 3."""

import pytest
import sympy as sp

import symml as sm
from symml import t
from symml._declare._symbols import state_name


@pytest.fixture
def projectile_parts():
    x, y = sm.states("x y")
    m, k, g = sm.parameters("m k g")
    eqs = [sp.Eq(m * x.diff(t, 2), -k * x.diff(t)), sp.Eq(m * y.diff(t, 2), -k * y.diff(t) - m * g)]
    return x, y, m, k, g, eqs


def test_order_reduction_and_explicit_form(projectile_parts):
    x, y, m, k, g, eqs = projectile_parts
    proj = sm.Model(eqs, defaults={m: 7.26, k: 0.45, g: 9.81}, name="projectile")
    assert proj.states == (x, y, x.diff(t), y.diff(t))
    assert proj.params == (g, k, m)
    assert proj.rhs[x] == x.diff(t)
    assert sp.simplify(proj.rhs[x.diff(t)] - (-k * x.diff(t) / m)) == 0
    assert sp.simplify(proj.rhs[y.diff(t)] - (-g - k * y.diff(t) / m)) == 0
    assert proj.equations == tuple(eqs)
    assert proj.defaults[g] == 9.81
    J = proj.jacobian()
    assert J.shape == (4, 4)
    assert J[2, 2] == -k / m and J[0, 2] == 1 and J[3, 1] == 0


def test_third_order_nonautonomous_and_expression_form():
    (x,) = sm.states("x")
    (a,) = sm.parameters("a")
    model = sm.Model([x.diff(t, 3) + a * x.diff(t) - sp.sin(t)])  # an expression means "= 0"
    assert model.states == (x, x.diff(t), x.diff(t, 2))
    assert model.rhs[x.diff(t, 2)] == -a * x.diff(t) + sp.sin(t)
    assert not model.is_autonomous


def test_implicit_but_linear_in_highest_derivatives():
    x, y = sm.states("x y")
    (k,) = sm.parameters("k")
    # x'' + y'' = -k x ; x'' - y'' = -k y  (coupled in the highest derivatives)
    model = sm.Model([sp.Eq(x.diff(t, 2) + y.diff(t, 2), -k * x), sp.Eq(x.diff(t, 2) - y.diff(t, 2), -k * y)])
    assert sp.simplify(model.rhs[x.diff(t)] - (-k * (x + y) / 2)) == 0
    assert sp.simplify(model.rhs[y.diff(t)] - (-k * (x - y) / 2)) == 0


def test_mixed_orders_and_names():
    x, v = sm.states("x v")
    (c,) = sm.parameters("c")
    model = sm.Model([sp.Eq(x.diff(t, 2), -v), sp.Eq(v.diff(t), -c * x.diff(t))])
    assert set(model.states) == {x, v, x.diff(t)}
    assert model.lookup("x_t") == x.diff(t)
    assert model.lookup("x'") == x.diff(t)
    assert model.lookup("c") == c
    assert model.state_names() == tuple(state_name(s) for s in model.states)


def test_immutable_and_subs(projectile_parts):
    x, y, m, k, g, eqs = projectile_parts
    proj = sm.Model(eqs, defaults={m: 7.26, k: 0.45, g: 9.81})
    with pytest.raises(AttributeError, match="immutable"):
        proj.name = "other"
    nodrag = proj.subs({k: 0})
    assert k not in nodrag.params and k in proj.params
    assert nodrag.rhs[x.diff(t)] == 0
    assert k not in nodrag.defaults
    heavier = proj.with_defaults({"m": 10.0})
    assert heavier.defaults[m] == 10.0 and proj.defaults[m] == 7.26


def test_latex_and_repr(projectile_parts):
    *_, eqs = projectile_parts
    proj = sm.Model(eqs, name="projectile")
    assert "\\frac{d^{2}}{d t^{2}}" in proj.latex()
    assert proj._repr_latex_().startswith("$")
    text = repr(proj)
    assert "projectile" in text and "Derivative(x(t), (t, 2)) = -k*Derivative(x(t), t)/m" in text


def test_equality_and_hash():
    a = sm.zoo.lotka_volterra()
    b = sm.zoo.lotka_volterra()
    assert a == b and hash(a) == hash(b)
    assert a != a.with_defaults({"alpha": 1.0})


# ----------------------------------------------------------------------------- errors


def test_undeclared_symbols_are_all_listed():
    (x,) = sm.states("x")
    q, r = sp.symbols("q r")
    with pytest.raises(
        sm.UndeclaredSymbolError, match=r"Symbol\(s\) q, r are neither states, parameters nor t"
    ):
        sm.Model([sp.Eq(x.diff(t), -q * x + r)])


def test_symbols_in_defaults_or_params_count_as_parameters():
    (x,) = sm.states("x")
    q, r = sp.symbols("q r")
    model = sm.Model([sp.Eq(x.diff(t), -q * x + r)], defaults={q: 1.0}, params=[r])
    assert model.params == (q, r)


def test_algebraic_equation_is_rejected():
    x, y = sm.states("x y")
    with pytest.raises(sm.AlgebraicEquationError, match="contains no derivative.*not supported yet"):
        sm.Model([sp.Eq(x.diff(t), -y), sp.Eq(x + y, 1)])


def test_two_equations_for_the_same_highest_derivative():
    (x,) = sm.states("x")
    with pytest.raises(sm.DuplicateEquationError, match=r"2 equations define the same highest derivative"):
        sm.Model([sp.Eq(x.diff(t), -x), sp.Eq(x.diff(t), 2 * x)])


def test_state_without_equation():
    x, y = sm.states("x y")
    with pytest.raises(sm.MissingEquationError, match=r"State\(s\) y\(t\) appear.*no equation defines"):
        sm.Model([sp.Eq(x.diff(t), -y)])


def test_nonlinear_in_highest_derivative():
    (x,) = sm.states("x")
    with pytest.raises(sm.NotSolvableError, match="nonlinear in its highest derivatives"):
        sm.Model([sp.Eq(x.diff(t) ** 2, x)])


def test_singular_highest_derivatives():
    x, y = sm.states("x y")
    with pytest.raises(sm.NotSolvableError, match="singular"):
        sm.Model([sp.Eq(x.diff(t) + y.diff(t), x), sp.Eq(2 * x.diff(t) + 2 * y.diff(t), y)])


def test_bad_states_and_derivatives():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k")
    f = sp.Function("f")
    with pytest.raises(sm.ModelError, match="states must be functions of t alone"):
        sm.Model([sp.Eq(x.diff(t), f(x, t))])
    with pytest.raises(sm.ModelError, match="Unsupported derivative"):
        sm.Model([sp.Eq(x.diff(t), sp.Derivative(x * k, k))])
    with pytest.raises(sm.ModelError, match="at least one equation"):
        sm.Model([])


def test_unknown_name_suggests_close_names():
    pend = sm.zoo.pendulum()
    with pytest.raises(
        sm.UnknownNameError, match=r"'thta' is not a state or parameter.*Did you mean 'theta'"
    ):
        pend.lookup("thta")
    with pytest.raises(sm.UnknownNameError, match="not a state or parameter"):
        pend.with_defaults({"gg": 1.0})


def test_bad_default_value():
    (x,) = sm.states("x")
    (k,) = sm.parameters("k")
    with pytest.raises(sm.ModelError, match="default for k must be a number, got the string 'fast'"):
        sm.Model([sp.Eq(x.diff(t), -k * x)], defaults={k: "fast"})


def test_reserved_names():
    with pytest.raises(sm.ModelError, match="cannot be called 't'"):
        sm.parameters("t")
    with pytest.raises(sm.ModelError, match="cannot be called 't'"):
        sm.states("t")


def test_strings_are_refused_never_parsed(tmp_path, monkeypatch):
    # SymPy parses strings with eval: a string equation or substitution must never reach it.
    monkeypatch.chdir(tmp_path)
    evil = "__import__('os').system('touch pwned')"
    with pytest.raises(sm.ModelError, match=r"An equation is the string .*Write it in SymPy instead"):
        sm.Model([evil])
    lv = sm.zoo.lotka_volterra()
    with pytest.raises(sm.ModelError, match=r"The replacement for alpha is the string"):
        lv.subs({"alpha": evil})
    with pytest.raises(sm.ModelError, match=r"An equation must be a SymPy expression or a number, got obj"):
        sm.Model([object()])
    assert not (tmp_path / "pwned").exists()
    assert "alpha" not in lv.subs({"alpha": 1.5}).param_names()
