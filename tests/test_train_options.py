"""sm.train options: multiple shooting, mini-batches over several trajectories, hidden states
and observables, learned initial values, optimisers, a plain neural ODE."""

import dataclasses
import json
import sys

import jax
import numpy as np
import optax
import pytest
import sympy as sp

import symml as sm
from symml._compile import _cache as cache
from symml._train import UDEProblem
from symml._train._options import option_from_json

train_module = sys.modules["symml._train._train"]

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


@pytest.mark.slow
def test_multiple_shooting_layout_counts_every_sample_once():
    data = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 6, 13))
    pr = UDEProblem(ude(), data, solve=sm.Shooting(4))
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


@pytest.mark.slow
def test_hidden_state_inputs_are_standardised_from_a_first_simulation():
    """Only u is observed: the range of the hidden input v comes from one simulation with the
    starting network and the given (to be learned) initial value v(0) = 3.2."""
    from symml._compile._networks import INIT_LAST_LAYER_SCALE, init_networks

    full = sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 4, 21))
    data = sm.Dataset(t=full.t, y={u: full[u]})
    model = ude()
    pr = UDEProblem(model, data, ics={v: 3.2}, learn_ics=[v])
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
    shoot, single = UDEProblem(ude(), data, solve=sm.Shooting(4)), UDEProblem(ude(), data)
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
    options = dict(optimizer=sm.Adam(steps=300), polish=sm.LBFGS(steps=1500), seed=0, verbose=False)
    result = sm.train(ude(), data, solve=sm.Shooting(segments=4, continuity=100.0), **options)
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
    result = sm.train(
        ude(width=8),
        data,
        solve=sm.Solve(adjoint="backsolve"),
        optimizer=sm.Adam(steps=100),
        polish=sm.LBFGS(steps=50),
        verbose=False,
    )
    assert result.history.final < 1e-2 * result.history.loss[0]


@pytest.mark.slow
def test_several_trajectories_with_mini_batches():
    lv = lotka_volterra()
    ics = [{u: 0.44249296, v: 4.6280594}, {u: 1.0, v: 2.0}, {u: 2.0, v: 1.0}, {u: 1.5, v: 3.0}]
    data = sm.Dataset.from_model(lv, ics=ics, ts=np.linspace(0, 3, 13))
    batches = sm.Adam(steps=300, batch_size=2)
    result = sm.train(ude(), data, optimizer=batches, polish=sm.LBFGS(steps=200), seed=1, verbose=False)
    assert len(result.ics) == 4
    assert result.ics[2][u] == pytest.approx(2.0)
    assert result.history.final < 1e-3 * result.history.loss[0]
    short = dict(optimizer=sm.Adam(steps=20, batch_size=2), polish=None, seed=1, verbose=False)
    again = sm.train(ude(), data, **short)
    same = sm.train(ude(), data, **short)
    np.testing.assert_array_equal(again.history.loss, same.history.loss)
    # the full-data loss of the mini-batch configuration is the plain MSE (a batch size that
    # does not divide the number of trajectories pads the last batch)
    pr = UDEProblem(ude(), data, batch_size=3)
    full = UDEProblem(ude(), data)
    lb, _ = pr.loss_function()(pr.theta0)
    lf, _ = full.loss_function()(full.theta0)
    assert abs(float(lb) - float(lf)) < 1e-12 * float(lf)


@pytest.mark.slow
def test_hidden_state_with_learned_initial_value():
    """Only u is observed; v(0) is learned (started 30 % off) together with the network."""
    lv = lotka_volterra()
    full = sm.Dataset.from_model(lv, ts=np.linspace(0, 4, 21))
    data = sm.Dataset(t=full.t, y={u: full[u]})
    result = sm.train(
        ude(), data, ics={v: 3.2}, learn_ics=[v], optimizer=sm.Adam(steps=300), polish=sm.LBFGS(steps=400),
        verbose=False,
    )  # fmt: skip
    assert result.loss < 1e-4
    assert result.ics[0][u] == pytest.approx(0.44249296)
    assert result.options["learn_ics"] == ["v(t)"]


@pytest.mark.slow
def test_observables_are_compiled_expressions():
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[u + v, v])
    pr = UDEProblem(ude(), data, ics={u: 0.44249296, v: 4.6280594})
    assert pr.config.obs_idx is None and pr.keys == [u + v, v]
    plain = UDEProblem(ude(), sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[v, u]))
    assert plain.config.obs_idx == (1, 0)


@pytest.mark.slow
def test_observable_that_is_not_a_state():
    """The data observes u + v (and v): the loss compares compiled observables."""
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 3, 16), observe=[u + v, v])
    ics = {u: 0.44249296, v: 4.6280594}
    result = sm.train(
        ude(), data, ics=ics, optimizer=sm.Adam(steps=200), polish=sm.LBFGS(steps=200), verbose=False
    )
    assert result.history.final < 1e-3 * result.history.loss[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer",
    [sm.AdamW(steps=100), sm.LBFGS(steps=100), sm.Optax(optax.sgd(1e-4, momentum=0.9), steps=100)],
)
def test_optimizers(optimizer):
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 2, 9))
    result = sm.train(ude(width=8), data, optimizer=optimizer, polish=None, verbose=False)
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
    result = sm.train(model, data, optimizer=sm.Adam(steps=200), polish=sm.LBFGS(steps=200), verbose=False)
    xs, out = result.network_data(points=50)
    np.testing.assert_allclose(out[:, 0], -xs[:, 0], atol=0.02)


@pytest.mark.slow
def test_penalties_shrink_the_weights():
    lv = lotka_volterra()
    data = sm.Dataset.from_model(lv, ts=np.linspace(0, 2, 9))
    options = dict(optimizer=sm.Adam(steps=100), polish=None, seed=0, verbose=False)
    plain = sm.train(ude(width=8), data, **options)
    l2 = sm.train(ude(width=8), data, loss=sm.Loss(l2=1e-1), **options)

    def norm(tr):
        return sum(float((layer.weight**2).sum()) for layer in tr.model.networks["U"].mlp.layers)

    assert norm(l2) < norm(plain)
    assert jax.tree_util.tree_structure(plain.model.networks) == jax.tree_util.tree_structure(
        l2.model.networks
    )


# ----------------------------------------------------------------------------- the option objects


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: sm.Adam(steps=2.5), r"Adam\(steps=2.5\): the steps and polish must be >= 0"),
        (
            lambda: sm.Adam(lr=optax.constant_schedule(1e-3), max_rejected=0),
            r"max_rejected must be an int >= 1",
        ),
        (lambda: sm.AdamW(weight_decay=-1.0), r"AdamW\(weight_decay=-1.0\): weight_decay must be a finite"),
        (lambda: sm.LBFGS(steps=-1), r"LBFGS\(steps=-1\)"),
        (lambda: sm.Optax("sgd"), r"Optax\(transform='sgd'\): transform must be an optax"),
        (lambda: sm.Loss(l1=float("nan")), r"Loss\(l1=nan\): l1 must be a finite number >= 0"),
        (lambda: sm.Solve(rtol=0.0), r"Solve\(rtol=0.0\): rtol and atol must be positive"),
        (lambda: sm.Solve(max_steps=8), r"Solve\(max_steps=8\): max_steps must be an int >= 16"),
        (lambda: sm.Solve(solver="rk99"), r"Unknown solver 'rk99'"),
        (
            lambda: sm.Solve(shooting=4),
            r"Solve\(shooting=4\): .* e.g. Solve\(shooting=sm.Shooting\(segments=4\)\)",
        ),
        (lambda: sm.Shooting(0), r"Shooting\(segments=0\): segments must be a number of segments"),
        (lambda: sm.Shooting(4, continuity=-1.0), r"Shooting\(continuity=-1.0\)"),
        (lambda: sm.Checkpoint(3), r"Checkpoint\(path=3\): path must be a file path"),
        (lambda: sm.Checkpoint("run.json", every=0), r"Checkpoint\(every=0\): every must be an int >= 1"),
        (lambda: sm.Checkpoint("run.json", resume="yes"), r"resume must be True or False"),
    ],
)
def test_option_objects_check_their_fields(build, match):
    """Each error names the object and the field, shows what came in and says what to pass."""
    with pytest.raises(ValueError, match=match):
        build()


OPTIONS = [
    sm.Adam(lr=3e-3, steps=50, schedule="cosine", batch_size=2, max_rejected=3),
    sm.AdamW(steps=20, weight_decay=1e-3),
    sm.LBFGS(steps=0),
    sm.Loss(l1=1e-4, target_loss=2e-3),
    sm.Solve(solver="kvaerno5", rtol=1e-8, adjoint="backsolve", shooting=sm.Shooting(3, continuity=10.0)),
    sm.Shooting(5),
    sm.Checkpoint("run.json", every=7, resume=True),
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: type(o).__name__)
def test_option_objects_round_trip_through_json_and_are_immutable(option):
    text = json.dumps(option.to_json())
    assert option_from_json(json.loads(text)) == option
    assert hash(option) == hash(option_from_json(json.loads(text)))
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'steps'"):
        option.steps = 3  # type: ignore[misc]


def test_callables_are_named_in_json_and_not_rebuilt():
    """A schedule, a loss function or a diffrax object can only be named in a JSON file."""
    adam = sm.Adam(lr=optax.constant_schedule(1e-3))
    stored = adam.to_json()
    assert stored["lr"].startswith("<callable optax.") and "constant_schedule" in stored["lr"]
    with pytest.raises(ValueError, match="can only name"):
        option_from_json(stored)
    import diffrax

    assert sm.Solve(adjoint=diffrax.BacksolveAdjoint()).to_json()["adjoint"].startswith("<BacksolveAdjoint")


@pytest.fixture(scope="module")
def small():
    """A small universal ODE on 9 samples: every run below shares one compiled step."""
    return ude(width=4), sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 2, 9))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(optimizer=3), "Unknown optimizer 3"),
        (dict(polish="lbfgs"), r"polish must be an sm.LBFGS\(steps=...\) or None"),
        (dict(solve="tsit5"), r"solve must be an sm.Solve\(solver=..."),
        (dict(checkpoint=3), r"checkpoint must be an sm.Checkpoint\(path"),
        (dict(loss=sm.Solve()), r"loss must be one of \('mse',\) or a callable"),
        (dict(seed=1.5), "seed must be an int"),
    ],
)
def test_train_checks_what_kind_of_option_it_gets(small, kwargs, match):
    model, data = small
    with pytest.raises(ValueError, match=match):
        sm.train(model, data, verbose=False, **kwargs)


# ----------------------------------------------------------------------------- runs with the options


@pytest.mark.slow
def test_old_keywords_work_for_one_release_and_warn(small):
    """symml 0.1's keywords give the same run as the option objects, with a DeprecationWarning
    naming the replacement of each. (The runs of this section share one compiled step.)"""
    model, data = small
    new = sm.train(
        model, data, optimizer=sm.Adam(steps=8, lr=3e-3), polish=None, loss=sm.Loss(target_loss=1e-12),
        seed=1, verbose=False,
    )  # fmt: skip
    with pytest.warns(DeprecationWarning) as caught:
        old = sm.train(model, data, steps=8, lr=3e-3, polish=0, target_loss=1e-12, seed=1, verbose=False)
    np.testing.assert_array_equal(old.history.loss, new.history.loss)
    assert old.options == new.options
    message = str(caught[0].message)
    assert "steps= pass optimizer=sm.Adam(steps=...)" in message
    assert "target_loss= pass loss=sm.Loss(target_loss=...)" in message
    assert "polish= pass polish=sm.LBFGS(steps=...)" in message
    with pytest.raises(TypeError, match="unexpected keyword argument 'stepz'"):
        sm.train(model, data, stepz=3, verbose=False)


@pytest.mark.slow
def test_resume_checks_the_option_objects(small, tmp_path):
    """A checkpoint records the option objects; resuming with another learning rate is refused
    (the message names the field), with more steps it continues."""
    model, data = small
    path = tmp_path / "run.json"
    first = sm.train(
        model,
        data,
        optimizer=sm.Adam(steps=6),
        polish=None,
        checkpoint=sm.Checkpoint(path, every=3),
        verbose=False,
    )
    saved = json.loads(path.read_text())["resume"]["options"]
    assert saved["optimizer"] == sm.Adam(steps=6).to_json() and saved["polish"]["steps"] == 0
    with pytest.raises(sm.TrainingError, match=r"different options \(optimizer.lr: 0.01 -> 0.003\)"):
        sm.train(
            model, data, optimizer=sm.Adam(steps=6, lr=3e-3), polish=None,
            checkpoint=sm.Checkpoint(path, resume=True), verbose=False,
        )  # fmt: skip
    more = sm.train(
        model, data, optimizer=sm.Adam(steps=10), polish=None, checkpoint=sm.Checkpoint(path, resume=True),
        verbose=False,
    )  # fmt: skip
    assert len(more.history) == len(first.history) + 4
    np.testing.assert_array_equal(more.history.loss[:6], first.history.loss[:6])


@pytest.mark.slow  # two trainings compiled afresh
def test_compiled_steps_live_in_the_artefact_cache(small):
    """The training step is a "train_step" artefact of the model (not an entry in the Model), and
    a new seed or learning rate reuses it; a bare optax transformation means `sm.Optax`."""
    model, data = small
    # one run of its own (the runs above may be deselected as slow)
    sm.train(model, data, optimizer=sm.Adam(steps=3, lr=1e-3), polish=None, seed=3, verbose=False)
    before = cache.sizes(model)["train_step"]
    assert before >= 1
    sm.train(model, data, optimizer=sm.Adam(steps=3, lr=5e-3), polish=None, seed=4, verbose=False)
    assert cache.sizes(model)["train_step"] == before
    assert "train_steps" not in getattr(model, "_cache", {})
    sgd = optax.sgd(1e-3)
    assert train_module._first_phase(sgd) == sm.Optax(sgd)
