"""Neural terms: the networks behind sm.neural placeholders."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import symml as sm
from symml._compile._networks import (
    INIT_LAST_LAYER_SCALE,
    init_network,
    init_networks,
    n_parameters,
    trainable_filter,
    weight_penalty,
)
from symml._train import UDEProblem

t = sm.t
u, v = sm.states("u v")


def _spec(width=8, depth=2, outputs=2, activation="tanh"):
    return sm.neural(
        "U", inputs=[u, v], outputs=outputs, width=width, depth=depth, activation=activation
    ).spec


def _leaves(net):
    return jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))


def test_same_key_same_weights_and_different_keys_differ():
    spec = _spec()
    a = init_network(spec, jax.random.PRNGKey(3))
    b = init_network(spec, jax.random.PRNGKey(3))
    c = init_network(spec, jax.random.PRNGKey(4))
    assert all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))
    assert not np.array_equal(a.mlp.layers[0].weight, c.mlp.layers[0].weight)
    typed = init_network(spec, jax.random.key(3))  # new-style keys work too
    assert all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(typed)))


def test_initialisation_follows_fan_in_bounds_and_last_layer_scale():
    spec = _spec(width=64, depth=2)
    net = init_network(spec, jax.random.PRNGKey(0))
    for layer in net.mlp.layers:
        lim = 1 / np.sqrt(layer.weight.shape[1])
        w = np.asarray(layer.weight)
        assert np.all(np.abs(w) <= lim)
        # uniform on (-lim, lim): standard deviation lim / sqrt(3), within sampling error
        assert abs(w.std() - lim / np.sqrt(3)) < 0.15 * lim / np.sqrt(3)
    small = init_network(spec, jax.random.PRNGKey(0), last_layer_scale=INIT_LAST_LAYER_SCALE)
    np.testing.assert_allclose(small.mlp.layers[-1].weight, INIT_LAST_LAYER_SCALE * net.mlp.layers[-1].weight)
    np.testing.assert_array_equal(small.mlp.layers[0].weight, net.mlp.layers[0].weight)


def test_network_formula_input_scaling_and_batching():
    spec = _spec(width=5, depth=1, activation="tanh")
    net = init_network(spec, jax.random.PRNGKey(1)).with_input_scaling([1.0, -2.0], [2.0, 4.0])
    net = net.with_output_scale(3.0)
    x = jnp.array([0.5, 1.5])
    l0, l1 = net.mlp.layers
    z = (x - jnp.array([1.0, -2.0])) / jnp.array([2.0, 4.0])
    expected = 3.0 * (l1.weight @ jnp.tanh(l0.weight @ z + l0.bias) + l1.bias)
    np.testing.assert_allclose(net(x), expected, rtol=1e-14)
    X = jnp.stack([x, 2 * x, -x])
    out = net.batched(X)
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out[0], expected, rtol=1e-14)
    np.testing.assert_allclose(net.batched(x), expected, rtol=1e-14)


def test_only_the_mlp_is_trainable_and_parameter_count():
    spec = _spec(width=7, depth=2)
    net = init_network(spec, jax.random.PRNGKey(0))
    train, rest = eqx.partition(net, trainable_filter(net))
    assert len(_leaves(train)) == 6  # 3 layers x (weight, bias)
    assert {tuple(x.shape) for x in _leaves(rest)} == {(2,)}  # in_shift, in_scale, out_scale
    assert n_parameters(net) == (2 * 7 + 7) + (7 * 7 + 7) + (7 * 2 + 2)


def test_weight_penalty_is_l1_plus_l2_of_the_weight_matrices():
    net = init_network(_spec(width=4, depth=1), jax.random.PRNGKey(2))
    ws = [np.asarray(layer.weight) for layer in net.mlp.layers]
    l1 = sum(np.abs(w).sum() for w in ws)
    l2 = sum((w * w).sum() for w in ws)
    np.testing.assert_allclose(weight_penalty(net.mlp, 0.3, 0.7), 0.3 * l1 + 0.7 * l2, rtol=1e-13)
    assert float(weight_penalty(net.mlp)) == 0.0


def test_init_networks_gives_each_placeholder_its_own_weights():
    U = sm.neural("U", inputs=[u], width=4, depth=1)
    V = sm.neural("V", inputs=[u], width=4, depth=1)
    nets = init_networks([V.spec, U.spec], jax.random.PRNGKey(0))
    assert list(nets) == ["U", "V"]
    assert not np.array_equal(nets["U"].mlp.layers[0].weight, nets["V"].mlp.layers[0].weight)


def test_compiled_model_evaluates_the_network_where_the_placeholder_stands():
    a, d = sm.parameters("a d")
    U = sm.neural("U", inputs=[u, v], outputs=2, width=6, depth=1)
    model = sm.Model(
        [sp.Eq(u.diff(t), a * u + U[0]), sp.Eq(v.diff(t), d * u * (v + U[1]))], defaults={a: 1.0, d: 2.0}
    )
    nets = init_networks(model.neural, jax.random.PRNGKey(5))
    f = sm.compile(model, networks=nets)
    y = jnp.array([0.7, 1.3])
    p = jnp.array([1.5, 0.25])  # (a, d)
    n = nets["U"](y)
    expected = jnp.stack([1.5 * 0.7 + n[0], 0.25 * 0.7 * (1.3 + n[1])])
    np.testing.assert_allclose(f(0.0, y, p), expected, rtol=1e-14)
    assert "networks['U']" in f.source


def test_network_outputs_print_as_placeholders():
    a = sm.parameters("a")[0]
    U = sm.neural("U", inputs=[u, v], outputs=2, width=6, depth=1)
    model = sm.Model([sp.Eq(u.diff(t), a * u + U[0]), sp.Eq(v.diff(t), U[1])], defaults={a: 1.0})
    text = repr(model)
    assert "U_0(u(t), v(t))" in text and "U_1(u(t), v(t))" in text
    with pytest.raises(IndexError, match="indices 0..1"):
        U[2]


def test_several_networks_with_t_and_derivative_inputs_in_several_equations():
    """Two networks in one model: N(t) inside a product, V(u') in both equations. The compiled
    vector field evaluates them where the placeholders stand; the model stays immutable; sm.train's
    problem standardises each network's inputs to the data range (t included)."""
    k = sm.parameters("k", positive=True)[0]
    N = sm.neural("N", inputs=[t], outputs=1, width=5, depth=1)
    V = sm.neural("V", inputs=[u.diff(t)], outputs=1, width=5, depth=2)
    model = sm.Model(
        [sp.Eq(u.diff(t, 2), -k * u + V[0]), sp.Eq(v.diff(t), -v * N[0] + u * V[0])], defaults={k: 2.0}
    )
    assert model.states == (u, v, u.diff(t)) and {s.name for s in model.neural} == {"N", "V"}
    assert model.networks == {}
    nets = init_networks(model.neural, jax.random.PRNGKey(0))
    trained = model.with_networks(nets)
    assert model.networks == {} and set(trained.networks) == {"N", "V"}  # a new model
    f = sm.compile(model, networks=nets)
    y = jnp.array([0.3, -1.2, 0.8])  # (u, v, u')
    tt = 0.7
    vv, nn = nets["V"](y[2:])[0], nets["N"](jnp.array([tt]))[0]
    expected = jnp.stack([y[2], -y[1] * nn + y[0] * vv, -2.0 * y[0] + vv])  # u', v', u''
    np.testing.assert_allclose(f(tt, y, jnp.array([2.0])), expected, rtol=1e-14)

    ts = np.linspace(1.0, 3.0, 9)
    data = sm.Dataset(t=ts, y={u: np.sin(ts), v: np.cos(ts), u.diff(t): 2 * np.cos(ts)})
    problem = UDEProblem(model, data)
    start = problem.networks_of(problem.theta0)
    np.testing.assert_allclose(start["N"].in_shift, [2.0], rtol=1e-14)
    np.testing.assert_allclose(start["N"].in_scale, [1.0], rtol=1e-14)
    lo, hi = 2 * np.cos(ts).min(), 2 * np.cos(ts).max()
    np.testing.assert_allclose(start["V"].in_shift, [(lo + hi) / 2], rtol=1e-14)
    np.testing.assert_allclose(start["V"].in_scale, [(hi - lo) / 2], rtol=1e-14)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("2U", [u]), {}, ValueError, "must be an identifier"),
        (("U", []), {}, ValueError, "needs at least one input"),
        (("U", [u * v]), {}, sm.ModelError, r"input u\(t\)\*v\(t\) is not a state"),
        (("U", [u]), dict(outputs=0), ValueError, "outputs must be >= 1"),
        (("U", [u]), dict(width=0), ValueError, "need depth >= 0 and width >= 1"),
        (("U", [u]), dict(activation="swish"), ValueError, "unknown activation 'swish'"),
    ],
)
def test_bad_placeholders_are_clear_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        sm.neural(*args, **kwargs)
