"""sm.train: universal ODEs trained through the solver.

The problems are small so that each compiles in a few seconds; configurations are shared
between tests (a compiled training step is cached per model and configuration).
"""

import json
import sys
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sympy as sp

import symml as sm
from symml._train import UDEProblem

run_module = sys.modules["symml._train._run"]
steps_module = sys.modules["symml._train._iteration"]
TrainingError = sm.TrainingError
TrainingWarning = sm.TrainingWarning

t = sm.t
u, v = sm.states("u v")
alpha, beta, gamma, delta = sm.parameters("alpha beta gamma delta", positive=True)
LV_TRUE = {alpha: 1.3, beta: 0.9, gamma: 0.8, delta: 1.8}
LV_ICS = {u: 0.44249296, v: 4.6280594}


def lotka_volterra():
    return sm.Model(
        [sp.Eq(u.diff(t), alpha * u - beta * u * v), sp.Eq(v.diff(t), -gamma * v + delta * u * v)],
        defaults={**LV_TRUE, **LV_ICS},
        name="lv",
    )


U = sm.neural("U", inputs=[u, v], outputs=2, width=16, depth=1)
UDE = sm.Model(
    [sp.Eq(u.diff(t), alpha * u + U[0]), sp.Eq(v.diff(t), -gamma * v + U[1])],
    defaults={alpha: 1.3, gamma: 0.8},
    name="lv_ude",
)


@pytest.fixture(scope="module")
def lv_data():
    return sm.Dataset.from_model(lotka_volterra(), ts=np.linspace(0, 5, 21))


def _arrays(net):
    return jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))


@pytest.fixture(scope="module")
def trained(lv_data):
    return sm.train(
        UDE, lv_data, optimizer=sm.Adam(steps=300), polish=sm.LBFGS(steps=1000), seed=0, verbose=False
    )


# ----------------------------------------------------------------------------- gradients


def _grad_problem(lv_data, adjoint):
    small = sm.neural("W", inputs=[u, v], outputs=2, width=4, depth=1)
    model = sm.Model(
        [sp.Eq(u.diff(t), alpha * u + small[0]), sp.Eq(v.diff(t), -gamma * v + delta * u * small[1])],
        defaults={alpha: 1.3, gamma: 0.8, delta: 1.8},
        name="grad_ude",
    )
    solve = sm.Solve(adjoint=adjoint, rtol=1e-10, atol=1e-12)
    return UDEProblem(model, lv_data, params=[gamma], learn_ics=[v], solve=solve, key=jax.random.PRNGKey(3))


def _flat_gradient(lv_data, adjoint):
    pr = _grad_problem(lv_data, adjoint)
    value, g = pr.loss_function()(pr.theta0)
    return pr, float(value), jax.flatten_util.ravel_pytree(g)[0]


@pytest.mark.slow
def test_gradients_checkpoint_and_forward_agree_and_match_finite_differences(lv_data):
    """Gradient of the loss w.r.t. network weights, a parameter and an initial value: the
    discretise-then-optimise (checkpoint) and forward-mode gradients agree to 1e-4 (relative),
    and a central difference along a random direction matches."""
    pr, loss0, ref = _flat_gradient(lv_data, "checkpoint")
    _, _, fwd = _flat_gradient(lv_data, "forward")
    assert ref.shape[0] == 2 * 4 + 4 + 4 * 2 + 2 + 1 + 1  # weights, gamma, v(0)
    rel = float(jnp.linalg.norm(fwd - ref) / jnp.linalg.norm(ref))
    assert rel < 1e-4, rel
    # finite differences of the loss itself (tight tolerances, so the solver error is ~1e-10)
    loss = pr.loss_function(with_grad=False)
    x0, unravel = jax.flatten_util.ravel_pytree(pr.theta0)
    direction = jax.random.normal(jax.random.PRNGKey(1), x0.shape)
    direction = direction / jnp.linalg.norm(direction)
    h = 1e-5
    fd = (float(loss(unravel(x0 + h * direction))) - float(loss(unravel(x0 - h * direction)))) / (2 * h)
    assert abs(float(loss(pr.theta0)) - loss0) < 1e-12 * abs(loss0)
    exact = float(ref @ direction)
    assert abs(fd - exact) < 1e-5 * float(jnp.linalg.norm(ref)), (fd, exact)


@pytest.mark.slow
def test_gradients_backsolve_agrees_with_checkpoint(lv_data):
    """The continuous adjoint (solved backwards, O(1) memory) gives the same gradient to 1e-4."""
    _, _, ref = _flat_gradient(lv_data, "checkpoint")
    _, _, back = _flat_gradient(lv_data, "backsolve")
    rel = float(jnp.linalg.norm(back - ref) / jnp.linalg.norm(ref))
    assert rel < 1e-4, rel


# ----------------------------------------------------------------------------- training


@pytest.mark.slow
def test_training_lowers_the_loss_by_orders_of_magnitude(trained):
    h = trained.history
    assert h.loss[0] > 1.0  # the network starts near zero: the physics-only model is far off
    assert h.final < 1e-3 * h.loss[0]
    assert h.final < 1e-4
    assert h.rejected.size == 0
    assert set(np.unique(h.phase)) <= {0, 1, 2}
    assert np.all(np.diff(h.time) >= 0)
    # the result is evaluated: the returned loss is the data misfit of the returned model
    # mse() re-solves through sm.simulate, whose explicit solves run in normalised time: the same
    # solution to the tolerance, not to the last bit
    assert abs(trained.mse() - h.final) < 1e-2 * h.final + 1e-12


@pytest.mark.slow
def test_learned_terms_match_the_missing_physics(trained, lv_data):
    """Along the fitted trajectory the network reproduces the interactions it replaced: RMS
    error below 5 % of the terms' RMS (21 noise-free samples, 300 Adam + 1000 L-BFGS iterations)."""
    X, Y = trained.network_data(points=200)
    uu, vv = X[:, 0], X[:, 1]
    truth = np.stack([-0.9 * uu * vv, 1.8 * uu * vv], axis=-1)
    rms = np.sqrt(np.mean((Y - truth) ** 2, axis=0)) / np.sqrt(np.mean(truth**2, axis=0))
    assert np.all(rms < 0.05), rms


@pytest.mark.slow
def test_missing_damping_is_learned_with_the_stiffness():
    """A damped oscillator x'' = -k x - c x' whose damping is left to the network: D(x')
    matches -c x' on the velocities the data visits, within 3 % of the largest damping force,
    while the stiffness k, started 25 % low, is trained along with it (log-parametrised)."""
    (x,) = sm.states("x")
    k, c = sm.parameters("k c", positive=True)
    # exact data: x(t) = exp(-c t / 2) (cos(w t) + c / (2 w) sin(w t)), w = sqrt(k - c^2 / 4)
    kk, cc = 4.0, 0.3
    w = np.sqrt(kk - cc**2 / 4)
    ts = np.linspace(0, 6, 31)
    xs = np.exp(-cc * ts / 2) * (np.cos(w * ts) + cc / (2 * w) * np.sin(w * ts))
    vs = -np.exp(-cc * ts / 2) * (kk / w) * np.sin(w * ts)
    data = sm.Dataset(t=ts, y={x: xs, x.diff(t): vs})
    D = sm.neural("D", inputs=[x.diff(t)], outputs=1, width=8, depth=1)
    ude = sm.Model([sp.Eq(x.diff(t, 2), -k * x + D[0])], defaults={k: 4.0})
    result = sm.train(
        ude, data, params={k: 3.0}, optimizer=sm.Adam(steps=300), polish=sm.LBFGS(steps=300), verbose=False
    )
    grid = np.linspace(vs.min(), vs.max(), 200)[:, None]
    out = np.asarray(result.network("D")(grid))[:, 0]
    err = np.abs(out - (-cc * grid[:, 0])).max()
    assert err < 0.03 * cc * np.abs(vs).max(), err
    assert result.loss < 1e-6
    assert abs(result.params[k] - kk) < 1e-3
    assert result.model.defaults[k] == result.params[k]


@pytest.mark.slow
def test_same_seed_same_result_and_different_seed_differs(lv_data):
    options = dict(optimizer=sm.Adam(steps=30), polish=sm.LBFGS(steps=20), verbose=False)
    a = sm.train(UDE, lv_data, seed=7, **options)
    b = sm.train(UDE, lv_data, seed=7, **options)
    c = sm.train(UDE, lv_data, seed=8, **options)
    np.testing.assert_array_equal(a.history.loss, b.history.loss)
    wa, wb = _arrays(a.model.networks["U"]), _arrays(b.model.networks["U"])
    assert len(wa) == 7 and all(np.array_equal(p, q) for p, q in zip(wa, wb))
    assert not np.array_equal(a.history.loss, c.history.loss)


@pytest.mark.slow
def test_a_second_training_reuses_the_compiled_step(trained, lv_data):
    """New seed, lr, step counts and penalty weights are traced values: no re-tracing."""
    before = steps_module.TRACES["count"]
    sm.train(
        UDE, lv_data, optimizer=sm.Adam(steps=5, lr=3e-3), polish=sm.LBFGS(steps=5), seed=3, verbose=False
    )
    adam = sm.Adam(steps=7, schedule="warmup_cosine")
    sm.train(UDE, lv_data, optimizer=adam, polish=sm.LBFGS(steps=3), seed=4, verbose=False)
    assert steps_module.TRACES["count"] == before


@pytest.mark.slow
def test_save_and_load_round_trip_bit_exactly(trained, tmp_path):
    path = tmp_path / "trained.json"
    sm.save(trained, path)
    text = path.read_text()
    assert "pickle" not in text
    back = sm.load(path)
    assert isinstance(back, sm.Trained)
    la, lb = _arrays(trained.model.networks["U"]), _arrays(back.model.networks["U"])
    assert len(la) == len(lb) == 7 and all(np.array_equal(p, q) for p, q in zip(la, lb))
    for name in ("loss", "phase", "time", "rejected"):
        np.testing.assert_array_equal(getattr(trained.history, name), getattr(back.history, name))
    assert back.ics == trained.ics and back.options == trained.options
    assert back.model == back.model and back.model.equations == trained.model.equations
    ts = np.linspace(0, 5, 7)
    np.testing.assert_array_equal(trained.predict(ts=ts).y, back.predict(ts=ts).y)
    assert trained.predict(ts=ts).y.shape == (7, 2)


@pytest.mark.slow
def test_trained_network_is_a_function_on_arrays(trained):
    f = trained.network(U)
    X = np.array([[1.0, 2.0], [0.5, 3.0], [2.0, 1.0]])
    out = np.asarray(f(X))
    assert out.shape == (3, 2)
    np.testing.assert_allclose(np.asarray(trained.network("U")(X[1])), out[1], rtol=1e-14)
    np.testing.assert_allclose(np.asarray(trained.network(U[1])(X))[:, 1], out[:, 1], rtol=1e-14)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        f(np.ones((3, 3)))
    with pytest.raises(sm.UnknownNameError, match="No network 'V'"):
        trained.network("V")
    dom = trained.domain()
    data = trained.data
    for s in (u, v):  # the fitted trajectory covers the range the data spans
        assert abs(dom[s][0] - data[s].min()) < 0.02 and abs(dom[s][1] - data[s].max()) < 0.02
    assert "final loss" in trained.summary() and "U" in repr(trained)


@pytest.mark.slow
def test_plot_history(trained, tmp_path):
    ax = trained.plot_history(noise_floor=1e-6)
    ax.figure.savefig(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 0


@pytest.mark.slow  # three trainings, each compiled
def test_checkpoint_and_resume_continue_exactly(lv_data, tmp_path, monkeypatch):
    """A run interrupted after a checkpoint and resumed ends exactly where an uninterrupted
    run ends (same losses, same weights)."""
    options = dict(optimizer=sm.Adam(steps=40), polish=sm.LBFGS(steps=20), seed=2, verbose=False)
    full = sm.train(UDE, lv_data, **options)
    path = tmp_path / "ckpt.json"
    write = run_module.Run.write_checkpoint

    def crash_after_first(self, carry, result):
        write(self, carry, result)
        raise KeyboardInterrupt("the machine went away")  # right after writing the checkpoint

    monkeypatch.setattr(run_module.Run, "write_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt, match="the machine went away"):
        sm.train(UDE, lv_data, checkpoint=sm.Checkpoint(path, every=20), **options)
    monkeypatch.setattr(run_module.Run, "write_checkpoint", write)
    partial = sm.load(path)  # a checkpoint is a loadable result
    assert isinstance(partial, sm.Trained) and len(partial.history) == 20
    with pytest.raises(TrainingError, match="different options"):
        sm.train(UDE, lv_data, checkpoint=sm.Checkpoint(path, resume=True), **{**options, "seed": 5})
    resumed = sm.train(UDE, lv_data, checkpoint=sm.Checkpoint(path, resume=True), **options)
    np.testing.assert_array_equal(resumed.history.loss, full.history.loss)
    wa, wb = _arrays(full.model.networks["U"]), _arrays(resumed.model.networks["U"])
    assert all(np.array_equal(p, q) for p, q in zip(wa, wb))
    data = json.loads(path.read_text())
    assert data["symml"] == "trained" and "resume" in data


def test_target_loss_stops_at_the_first_iterate_that_reaches_it(lv_data):
    """Early stopping: the run is the uninterrupted run up to the first loss at or below the
    target, in the Adam phase (then no polish) or in the L-BFGS polish, and returns that point."""
    options = dict(optimizer=sm.Adam(steps=30), polish=sm.LBFGS(steps=20), seed=7, verbose=False)
    full = sm.train(UDE, lv_data, **options)
    h = full.history
    for phase in (0, 1):
        idx = np.flatnonzero(h.phase == phase)
        target = float(h.loss[idx[len(idx) // 2]])
        hit = int(np.flatnonzero(h.loss <= target)[0])
        early = sm.train(UDE, lv_data, loss=sm.Loss(target_loss=target), **options)
        e = early.history
        np.testing.assert_array_equal(e.loss[: hit + 1], h.loss[: hit + 1])
        assert early.loss == h.loss[hit] <= target
        assert early.options["target_loss"] == target
        if phase == 0:  # stopped in the first phase: one evaluation of the returned point, no polish
            assert len(e) == hit + 2 and e.phase[-1] == 2 and 1 not in e.phase
            assert e.loss[-1] == h.loss[hit]
        else:
            assert len(e) == hit + 1 and e.phase[-1] == 1
        assert abs(early.mse() - early.loss) < 1e-6 * early.loss


@pytest.mark.slow
def test_learning_rate_schedule_object_matches_the_named_schedule(lv_data):
    """lr may be an optax schedule: a constant one reproduces schedule="constant" exactly."""
    options = dict(polish=sm.LBFGS(steps=3), seed=1, verbose=False)
    named = sm.train(UDE, lv_data, optimizer=sm.Adam(steps=15, lr=3e-3, schedule="constant"), **options)
    schedule = sm.train(
        UDE, lv_data, optimizer=sm.Adam(steps=15, lr=optax.constant_schedule(3e-3)), **options
    )
    np.testing.assert_array_equal(named.history.loss, schedule.history.loss)


def test_progress_bar_shows_the_loss_and_is_silent_when_not_verbose(lv_data, capsys):
    options = dict(optimizer=sm.Adam(steps=5), polish=sm.LBFGS(steps=5), seed=0)
    sm.train(UDE, lv_data, verbose=True, **options)
    err = capsys.readouterr().err
    assert "train" in err and "loss=" in err and "10/10" in err
    sm.train(UDE, lv_data, verbose=False, **options)
    assert capsys.readouterr() == ("", "")


@pytest.mark.slow
def test_loss_callable_and_weight_penalties_enter_the_objective_exactly(lv_data):
    """A callable loss computing the MSE gives the built-in loss; l1 and l2 add exactly
    l1 * sum|W| + l2 * sum W^2 over the weight matrices (not the biases)."""

    def mse(pred, target, weights):
        return jnp.sum(weights * (pred - target) ** 2) / jnp.sum(weights)

    key = jax.random.PRNGKey(0)
    plain = UDEProblem(UDE, lv_data, key=key)
    base = float(plain.loss_function(with_grad=False)(plain.theta0))
    custom = UDEProblem(UDE, lv_data, loss=sm.Loss(mse), key=key)
    assert abs(float(custom.loss_function(with_grad=False)(custom.theta0)) - base) < 1e-13 * base
    penal = UDEProblem(UDE, lv_data, loss=sm.Loss(l1=0.3, l2=0.7), key=key)
    ws = [np.asarray(layer.weight) for layer in plain.networks_of(plain.theta0)["U"].mlp.layers]
    extra = sum(0.3 * np.abs(w).sum() + 0.7 * (w * w).sum() for w in ws)
    value = float(penal.loss_function(with_grad=False)(penal.theta0))
    assert abs(value - (base + extra)) < 1e-12 * (base + extra)


def test_bad_checkpoint_files_are_clear_errors(lv_data, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(TrainingError, match="is not a JSON file"):
        sm.train(UDE, lv_data, checkpoint=sm.Checkpoint(garbage, resume=True), verbose=False)
    result = tmp_path / "result.json"
    sm.save(lotka_volterra(), result)  # a symml file, not a checkpoint
    with pytest.raises(TrainingError, match="not a training checkpoint"):
        sm.train(UDE, lv_data, checkpoint=sm.Checkpoint(result, resume=True), verbose=False)


# ----------------------------------------------------------------------------- failures


def test_nan_in_data_is_a_clear_error():
    with pytest.raises(sm.DataError, match="NaN or inf at rows 2"):
        sm.Dataset(t=[0.0, 1.0, 2.0, 3.0], y={u: [1.0, 2.0, np.nan, 1.0], v: [1.0, 1.0, 1.0, 1.0]})
    data = sm.Dataset(t=[0.0, 1.0, 2.0], y={u: [1.0, 2.0, 1.0], v: [1.0, 1.0, 1.0]})
    with pytest.raises(sm.DataError, match="must be finite"):
        sm.train(UDE, data, ics={u: np.inf}, verbose=False)


def test_a_diverging_step_is_rejected_and_reported(lv_data):
    """A huge learning rate throws the weights where the solve blows up: the step is undone
    (never written), reported as a warning, and the returned parameters have a finite loss."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        huge = sm.Adam(steps=12, lr=50.0, schedule="constant")
        result = sm.train(UDE, lv_data, optimizer=huge, polish=sm.LBFGS(steps=5), verbose=False)
    assert result.history.rejected.size > 0
    assert any(issubclass(w.category, TrainingWarning) and "undone" in str(w.message) for w in caught)
    assert np.isfinite(result.loss)
    assert all(np.all(np.isfinite(x)) for x in _arrays(result.model.networks["U"]))
    # the recorded loss of every step that was applied is finite
    ok = np.setdiff1d(np.arange(len(result.history)), result.history.rejected)
    assert np.all(np.isfinite(result.history.loss[ok]))
    with pytest.raises(TrainingError, match="consecutive steps gave a NaN/inf") as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            huge = sm.Adam(steps=12, lr=50.0, schedule="constant", max_rejected=1)
            sm.train(UDE, lv_data, optimizer=huge, polish=sm.LBFGS(steps=5), verbose=False)
    assert err.value.trained is not None and np.isfinite(err.value.trained.loss)


def test_a_failing_start_is_a_clear_error(lv_data):
    """Initial values so large that the solve overflows: no parameters to fall back on."""
    with pytest.raises(TrainingError, match="NaN/inf at the starting parameters"):
        sm.train(
            UDE, lv_data, ics={u: 1e300}, optimizer=sm.Adam(steps=3), polish=sm.LBFGS(steps=5), verbose=False
        )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (lambda: dict(optimizer="sgdx"), ValueError, "Unknown optimizer 'sgdx'"),
        (lambda: dict(solve=sm.Solve(adjoint="adjoint")), ValueError, "adjoint must be one of"),
        (lambda: dict(loss="mae"), ValueError, "loss must be one of"),
        (lambda: dict(optimizer=sm.Adam(schedule="linear")), ValueError, "Unknown schedule 'linear'"),
        (lambda: dict(optimizer=sm.Adam(lr=-1.0)), ValueError, "lr must be a positive number"),
        (lambda: dict(solve=sm.Shooting(40)), ValueError, "need at least 41 samples"),
        (lambda: dict(solve=sm.Shooting(2.5)), ValueError, "number of segments"),
        (
            lambda: dict(checkpoint=sm.Checkpoint(None, resume=True)),
            ValueError,
            "resume=True needs checkpoint",
        ),
        (lambda: dict(params=[u]), ValueError, "is a state, not a parameter"),
        (lambda: dict(params={"gama": 1.0}), sm.UnknownNameError, "Did you mean 'gamma'"),
        (lambda: dict(learn_ics=[alpha]), ValueError, "learn_ics lists alpha"),
        (lambda: dict(optimizer=sm.Adam(steps=-1)), ValueError, "steps and polish must be >= 0"),
        (lambda: dict(optimizer=sm.Adam(batch_size=0)), ValueError, "batch_size must be a positive"),
        (lambda: dict(loss=sm.Loss(l2=-1.0)), ValueError, "l2 must be a finite number >= 0"),
        (lambda: dict(loss=sm.Loss(target_loss=-1.0)), ValueError, "target_loss must be a positive number"),
        (lambda: dict(loss=lambda p, y, w: (p - y) ** 2), ValueError, "must return a scalar"),
        (lambda: dict(loss=lambda p, y, w: p @ y), ValueError, "loss function failed on arrays of shape"),
    ],
)
def test_bad_options_are_clear_errors(lv_data, kwargs, error, match):
    with pytest.raises(error, match=match):
        sm.train(UDE, lv_data, verbose=False, **kwargs())


def test_missing_initial_value_of_a_hidden_state_is_a_clear_error():
    data = sm.Dataset(t=np.linspace(0, 1, 5), y={u: np.ones(5)})
    with pytest.raises(sm.MissingValueError, match=r"learn_ics=\[v\]"):
        sm.train(UDE, data, verbose=False)


def test_model_without_networks_needs_parameters(lv_data):
    with pytest.raises(ValueError, match="no neural terms and no parameters"):
        sm.train(lotka_volterra(), lv_data, verbose=False)
    with pytest.raises(sm.DataError, match="must be an sm.Dataset"):
        sm.train(UDE, {"u": [1, 2]}, verbose=False)
