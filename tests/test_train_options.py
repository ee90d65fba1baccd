"""sm.train options: multiple shooting, mini-batches over several trajectories, hidden states
and observables, learned initial values, optimisers, a plain neural ODE."""

import jax
import numpy as np
import optax
import pytest
import sympy as sp

import symml as sm
from symml._train._problem import Problem

t = sm.t
u, v = sm.states("u v")
alpha, beta, gamma, delta = sm.parameters("alpha beta gamma delta", positive=True)


def lotka_volterra():
    return sm.Model(
        [sp.Eq(u.diff(t), alpha * u - beta * u * v), sp.Eq(v.diff(t), -gamma * v + delta * u * v)],
        defaults={alpha: 1.3, beta: 0.9, gamma: 0.8, delta: 1.8, u: 0.44249296, v: 4.6280594},
        name="lv",
    )


def ude(width=16):
    U = sm.neural("U", inputs=[u, v], outputs=2, width=width, depth=1)
    return sm.Model(
        [sp.Eq(u.diff(t), alpha * u + U[0]), sp.Eq(v.diff(t), -gamma * v + U[1])],
        defaults={alpha: 1.3, gamma: 0.8},
        name="lv_ude",
    )


def test_multiple_shooting_layout_counts_every_sample_once():
    data = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 6, 13))
    pr = Problem(ude(), data, shooting=4)
    lay = pr.layout
    assert [(a, b) for _, _, a, b in lay["rows"]] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    W = lay["W"]
    assert W.sum() == 13 * 2  # each sample once, both states
    np.testing.assert_array_equal(W[1:, 0], 0.0)  # a segment's first sample belongs to the one before
    # nodes start at the data; continuity links each segment to the next node
    np.testing.assert_allclose(np.asarray(pr.theta0["nodes"]), lay["Y"][1:, 0, :])
    np.testing.assert_array_equal(lay["cmask"], [1, 1, 1, 0])
    np.testing.assert_array_equal(lay["y0_src"], [0, 1, 2, 3])  # trajectory 0, then nodes 0..2
    np.testing.assert_array_equal(lay["next_src"][:3], [1, 2, 3])


def test_hidden_state_inputs_are_standardised_from_a_first_simulation():
    """Only u is observed: the range of the hidden input v comes from one simulation with the
    starting network and the given (to be learned) initial value v(0) = 3.2."""
    from symml._compile._networks import INIT_LAST_LAYER_SCALE, init_networks

    full = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 4, 21))
    data = sm.Dataset(t=full.t, y={u: full[u]})
    model = ude()
    pr = Problem(model, data, ics={v: 3.2}, learn_ics=[v])
    np.testing.assert_array_equal(np.asarray(pr.theta0["ics"]), [[3.2]])
    fresh = init_networks(model.neural, jax.random.PRNGKey(0), last_layer_scale=INIT_LAST_LAYER_SCALE)
    first = sm.simulate(model.with_networks(fresh), ics={u: full[u][0], v: 3.2}, saveat=data.t)
    lo = np.array([full[u].min(), np.min(first[v])])
    hi = np.array([full[u].max(), np.max(first[v])])
    start = pr.networks_of(pr.theta0)["U"]
    np.testing.assert_allclose(start.in_shift, (lo + hi) / 2, rtol=1e-6)
    np.testing.assert_allclose(start.in_scale, (hi - lo) / 2, rtol=1e-6)


@pytest.mark.slow
def test_multiple_shooting_loss_equals_the_plain_loss_on_a_continuous_path():
    """With the nodes on the network model's own trajectory, the continuity penalty vanishes and
    the shooting loss is the single-shooting loss."""
    data = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 6, 13))
    shoot, single = Problem(ude(), data, shooting=4), Problem(ude(), data)
    start = single.networks_of(single.theta0)
    path = sm.simulate(
        ude().with_networks(start), ics=shoot.ics_dict(0), saveat=data.t, rtol=1e-10, atol=1e-12
    )
    theta = dict(shoot.theta0)
    theta["nodes"] = path.y[np.array([3, 6, 9])]
    a = float(shoot.loss_function(with_grad=False)(theta))
    b = float(single.loss_function(with_grad=False)(single.theta0))
    assert abs(a - b) < 1e-5 * b


@pytest.mark.slow
def test_multiple_shooting_trains_a_long_series_and_closes_the_gaps():
    """On ten time units (about two cycles) single shooting stalls in a poor local minimum;
    four shooting segments with the same budget fit the series, and the segments join up."""
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 10, 41))
    options = dict(steps=300, polish=1500, seed=0, verbose=False)
    result = sm.train(ude(), data, shooting=4, continuity=100.0, **options)
    single = sm.train(ude(), data, **options)
    # segment ends meet the learned nodes
    nodes = result.nodes
    traj = result.predict(ts=data.t)
    assert nodes.shape == (3, 2)
    np.testing.assert_allclose(nodes, np.asarray(traj.y)[[10, 20, 30]], rtol=0.02, atol=0.02)
    # one simulation from the initial values (single shooting) follows the whole series
    assert result.mse() < 1e-3
    assert single.mse() > 10 * result.mse()


@pytest.mark.slow
def test_backsolve_adjoint_trains():
    data = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 2, 9))
    result = sm.train(ude(width=8), data, adjoint="backsolve", steps=100, polish=50, verbose=False)
    assert result.history.final < 1e-2 * result.history.loss[0]


@pytest.mark.slow
def test_several_trajectories_with_mini_batches():
    lv = lotka_volterra()
    ics = [{u: 0.44249296, v: 4.6280594}, {u: 1.0, v: 2.0}, {u: 2.0, v: 1.0}, {u: 1.5, v: 3.0}]
    data = sm.Dataset.from_model(lv, ics=ics, ts=np.linspace(0, 3, 13))
    result = sm.train(ude(), data, batch_size=2, steps=300, polish=200, seed=1, verbose=False)
    assert len(result.ics) == 4
    assert result.ics[2][u] == pytest.approx(2.0)
    assert result.history.final < 1e-3 * result.history.loss[0]
    again = sm.train(ude(), data, batch_size=2, steps=20, polish=0, seed=1, verbose=False)
    same = sm.train(ude(), data, batch_size=2, steps=20, polish=0, seed=1, verbose=False)
    np.testing.assert_array_equal(again.history.loss, same.history.loss)
    # the full-data loss of the mini-batch configuration is the plain MSE (a batch size that
    # does not divide the number of trajectories pads the last batch)
    pr = Problem(ude(), data, batch_size=3)
    full = Problem(ude(), data)
    lb, _ = pr.loss_function()(pr.theta0)
    lf, _ = full.loss_function()(full.theta0)
    assert abs(float(lb) - float(lf)) < 1e-12 * float(lf)


@pytest.mark.slow
def test_hidden_state_with_learned_initial_value():
    """Only u is observed; v(0) is learned (started 30 % off) together with the network."""
    lv = lotka_volterra()
    full = sm.Dataset.from_model(lv, ts=np.linspace(0, 4, 21))
    data = sm.Dataset(t=full.t, y={u: full[u]})
    result = sm.train(ude(), data, ics={v: 3.2}, learn_ics=[v], steps=300, polish=400, verbose=False)
    assert result.loss < 1e-4
    assert result.ics[0][u] == pytest.approx(0.44249296)
    assert result.options["learn_ics"] == ["v(t)"]


@pytest.mark.slow
def test_observables_are_compiled_expressions():
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[u + v, v])
    pr = Problem(ude(), data, ics={u: 0.44249296, v: 4.6280594})
    assert pr.config.obs_idx is None and pr.keys == [u + v, v]
    plain = Problem(ude(), sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[v, u]))
    assert plain.config.obs_idx == (1, 0)


@pytest.mark.slow
def test_observable_that_is_not_a_state():
    """The data observes u + v (and v): the loss compares compiled observables."""
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[u + v, v])
    result = sm.train(ude(), data, ics={u: 0.44249296, v: 4.6280594}, steps=200, polish=200, verbose=False)
    assert result.history.final < 1e-3 * result.history.loss[0]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adamw", "lbfgs", optax.sgd(1e-4, momentum=0.9)])
def test_optimizers(optimizer):
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 2, 9))
    result = sm.train(ude(width=8), data, optimizer=optimizer, steps=100, polish=0, verbose=False)
    assert result.history.final < 0.5 * result.history.loss[0]


@pytest.mark.slow
def test_plain_neural_ode():
    """A right-hand side that is only a network: learn x' = -x from data."""
    (x,) = sm.states("x")
    N = sm.neural("N", inputs=[x], width=8, depth=1)
    model = sm.Model([sp.Eq(x.diff(t), N[0])])
    data = sm.Dataset.from_model(
        sm.Model([sp.Eq(x.diff(t), -x)], defaults={x: 2.0}), ts=np.linspace(0, 2, 11)
    )
    result = sm.train(model, data, steps=200, polish=200, verbose=False)
    xs, out = result.network_data(points=50)
    np.testing.assert_allclose(out[:, 0], -xs[:, 0], atol=0.02)


@pytest.mark.slow
def test_penalties_shrink_the_weights():
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 2, 9))
    plain = sm.train(ude(width=8), data, steps=100, polish=0, seed=0, verbose=False)
    l2 = sm.train(ude(width=8), data, steps=100, polish=0, seed=0, l2=1e-1, verbose=False)

    def norm(tr):
        return sum(float((layer.weight**2).sum()) for layer in tr.model.networks["U"].mlp.layers)

    assert norm(l2) < norm(plain)
    assert jax.tree_util.tree_structure(plain.model.networks) == jax.tree_util.tree_structure(
        l2.model.networks
    )
