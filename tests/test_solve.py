"""simulate(): numeric solutions against closed forms, convergence, events, gradients, ensembles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import sympy as sp

import symml as sm
from symml import t

M, K, G = 7.26, 0.45, 9.81
V0, TH = 15.0, math.radians(60)
VX, VY = V0 * math.cos(TH), V0 * math.sin(TH)


def stokes_closed_form(tt, k=K):
    e = 1 - np.exp(-k * tt / M)
    x = (M * VX / k) * e
    y = (M / k) * (VY + M * G / k) * e - (M * G / k) * tt
    return x, y


@pytest.fixture(scope="module")
def proj():
    return sm.zoo.projectile("stokes")


def test_stokes_projectile_matches_closed_form(proj):
    x, y, vx, vy = proj.states
    ts = np.linspace(0, 2.5, 51)
    traj = sm.simulate(proj, saveat=ts, rtol=1e-10, atol=1e-12)
    xe, ye = stokes_closed_form(ts)
    np.testing.assert_allclose(traj[x][1:], xe[1:], rtol=1e-8)
    np.testing.assert_allclose(traj[y][1:], ye[1:], rtol=1e-8, atol=1e-9)
    # velocities are the derivatives of the closed form
    np.testing.assert_allclose(traj[vx], VX * np.exp(-K * ts / M), rtol=1e-8)


def test_small_angle_pendulum_and_damped_oscillator():
    pend = sm.zoo.pendulum(small_angle=True, theta0=0.3)
    (theta, _) = pend.states
    ts = np.linspace(0, 5, 101)
    traj = sm.simulate(pend, saveat=ts, params={"g": 9.81, "l": 2.0}, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj[theta], 0.3 * np.cos(np.sqrt(9.81 / 2.0) * ts), atol=1e-8)

    osc = sm.zoo.harmonic_oscillator(damping=True)  # m x'' + c x' + k x = 0, m=1, k=4, c=0.4, x0=1
    (x, _) = osc.states
    traj = sm.simulate(osc, saveat=ts, rtol=1e-10, atol=1e-12)
    zeta_w, wd = 0.2, math.sqrt(4 - 0.04)
    exact = np.exp(-zeta_w * ts) * (np.cos(wd * ts) + zeta_w / wd * np.sin(wd * ts))
    np.testing.assert_allclose(traj[x], exact, atol=1e-8)


@pytest.mark.parametrize("theta0", [0.5, 1.5, 2.8])
@pytest.mark.slow
def test_nonlinear_pendulum_period_is_the_elliptic_integral(theta0):
    pend = sm.zoo.pendulum(theta0=theta0)
    theta, omega = pend.states
    # The angular velocity returns to zero (from below) after half a period.
    traj = sm.simulate(
        pend, t_span=(0, 10), saveat=2, rtol=1e-12, atol=1e-12, event=sm.Event(omega, direction="up")
    )
    period = 2 * float(traj.event_time)
    exact = 4 * math.sqrt(1.0 / 9.81) * scipy.special.ellipk(math.sin(theta0 / 2) ** 2)
    assert abs(period - exact) / exact < 1e-7


@pytest.mark.slow
def test_kepler_energy_and_angular_momentum_drift_is_bounded():
    kep = sm.zoo.kepler(eccentricity=0.5)
    qx, qy, vx, vy = kep.states
    (mu,) = kep.params
    energy = (vx**2 + vy**2) / 2 - mu / sp.sqrt(qx**2 + qy**2)
    ang = qx * vy - qy * vx
    period = 2 * math.pi  # semi-major axis 1, mu 1
    traj = sm.simulate(kep, t_span=(0, 20 * period), saveat=2001, rtol=1e-10, atol=1e-12)
    e, h = np.asarray(traj[energy]), np.asarray(traj[ang])
    assert np.max(np.abs(e - e[0])) / abs(e[0]) < 1e-7
    assert np.max(np.abs(h - h[0])) / abs(h[0]) < 1e-7
    # the orbit closes: back at periapsis after 20 periods
    np.testing.assert_allclose(traj.y[-1, :2], [0.5, 0.0], atol=1e-6)


def test_ground_hit_event_matches_scipy_root_of_closed_form(proj):
    x, y, *_ = proj.states
    traj = sm.simulate(
        proj, t_span=(0, 5), saveat=50, rtol=1e-12, atol=1e-12, event=sm.Event(y, direction="down")
    )
    t_hit = scipy.optimize.brentq(lambda s: stokes_closed_form(s)[1], 1.0, 5.0, xtol=1e-15, rtol=1e-15)
    assert abs(float(traj.event_time) - t_hit) / t_hit < 1e-8
    # the range: x at the event, the docs/problems.md number
    assert abs(float(traj.event_state[0]) - 17.8800198525094) / 17.88 < 1e-8
    # samples after the event are NaN, before it finite
    after = np.asarray(traj.t) > t_hit
    assert np.all(np.isnan(np.asarray(traj[y])[after])) and np.all(np.isfinite(np.asarray(traj[y])[~after]))


def test_event_without_crossing_reports_nan(proj):
    x, y, *_ = proj.states
    traj = sm.simulate(proj, t_span=(0, 1), saveat=5, event=sm.Event(y, direction="down"))
    assert np.isnan(float(traj.event_time))
    assert np.all(np.isfinite(np.asarray(traj.y)))


def test_gradients_through_simulate_match_finite_differences(proj):
    x, y, vx, vy = proj.states
    g, k, m = proj.params

    def height(kv, vy0):
        tr = sm.simulate(
            proj, ics={vy: vy0}, t_span=(0, 1.5), saveat=2, params={k: kv}, rtol=1e-12, atol=1e-12
        )
        return tr[y][-1]

    grad = jax.grad(height, argnums=(0, 1))(0.45, VY)
    h = 1e-5
    fd_k = (height(0.45 + h, VY) - height(0.45 - h, VY)) / (2 * h)
    fd_v = (height(0.45, VY + h) - height(0.45, VY - h)) / (2 * h)
    np.testing.assert_allclose([float(grad[0]), float(grad[1])], [fd_k, fd_v], rtol=1e-6)


@pytest.mark.slow
def test_gradients_through_an_event_match_finite_differences(proj):
    x, y, vx, vy = proj.states
    g, k, m = proj.params
    ev = sm.Event(y, direction="down")

    def distance(kv, vx0):
        tr = sm.simulate(
            proj, ics={vx: vx0}, t_span=(0, 5), saveat=2, params={k: kv}, rtol=1e-12, atol=1e-12, event=ev
        )
        return tr.event_state[0]

    def flight_time(kv):
        return sm.simulate(
            proj, t_span=(0, 5), saveat=2, params={k: kv}, rtol=1e-12, atol=1e-12, event=ev
        ).event_time

    grad = jax.grad(distance, argnums=(0, 1))(0.45, VX)
    h = 1e-5
    fd = [
        (distance(0.45 + h, VX) - distance(0.45 - h, VX)) / (2 * h),
        (distance(0.45, VX + h) - distance(0.45, VX - h)) / (2 * h),
    ]
    np.testing.assert_allclose([float(v) for v in grad], fd, rtol=1e-6)
    fd_t = (flight_time(0.45 + h) - flight_time(0.45 - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.grad(flight_time)(0.45)), fd_t, rtol=1e-6)


@pytest.mark.slow
def test_ensemble_equals_loop_of_single_solves(proj):
    x, y, vx, vy = proj.states
    ks = jnp.array([0.1, 0.45, 1.8, 3.0])
    vys = jnp.array([10.0, 13.0, 8.0, 15.0])
    ev = sm.Event(y, direction="down")
    ens = sm.simulate(proj, ics={vy: vys}, params={"k": ks}, t_span=(0, 4), saveat=30, event=ev)
    assert ens.batch_shape == (4,) and ens.y.shape == (4, 30, 4) and ens.event_time.shape == (4,)
    for i in range(4):
        one = sm.simulate(proj, ics={vy: vys[i]}, params={"k": ks[i]}, t_span=(0, 4), saveat=30, event=ev)
        np.testing.assert_allclose(ens.y[i], one.y, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(ens.event_time[i], one.event_time, rtol=1e-12)
    # scalar values broadcast against the batch
    assert sm.simulate(proj, params={"k": ks}, t_span=(0, 1), saveat=3).y.shape == (4, 3, 4)
    with pytest.raises(ValueError, match="Ensemble sizes differ"):
        sm.simulate(proj, ics={vy: vys[:3]}, params={"k": ks}, t_span=(0, 1))


def test_vmap_and_jit_through_simulate(proj):
    x, y, vx, vy = proj.states

    @jax.jit
    def top(vy0):
        return jnp.max(sm.simulate(proj, ics={vy: vy0}, t_span=(0, 2), saveat=101)[y])

    vals = jax.vmap(top)(jnp.array([5.0, 10.0]))
    assert vals.shape == (2,) and float(vals[1]) > float(vals[0]) > 0


@pytest.mark.parametrize(
    "solver,order",
    [
        ("euler", 1),
        ("tsit5", 5),
        ("rodas4", 4),  # the Rosenbrock method of solver="auto"
        # a compilation per solver and step size; the other two orders run with the slow tests
        pytest.param("heun", 2, marks=pytest.mark.slow),
        pytest.param("midpoint", 2, marks=pytest.mark.slow),
    ],
)
def test_fixed_step_convergence_order(solver, order):
    osc = sm.zoo.harmonic_oscillator(damping=False)  # x'' = -4 x, x(0)=1, x'(0)=0
    (x, _) = osc.states
    errors = []
    for dt in (0.02, 0.01):
        tr = sm.simulate(
            osc, t_span=(0, 2), saveat=[2.0], solver=solver, adaptive=False, dt0=dt, max_steps=1000
        )
        errors.append(abs(float(tr[x][-1]) - math.cos(4.0)))
    observed = math.log2(errors[0] / errors[1])
    assert abs(observed - order) < 0.2, observed


@pytest.mark.slow
def test_solver_names_and_objects_agree(proj):
    import diffrax

    y = proj.states[1]
    a = sm.simulate(proj, t_span=(0, 2), saveat=5, solver="dopri8", rtol=1e-10, atol=1e-12)
    b = sm.simulate(proj, t_span=(0, 2), saveat=5, solver=diffrax.Kvaerno5(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a[y], b[y], rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="Unknown solver 'rk99'.*tsit5"):
        sm.simulate(proj, t_span=(0, 2), solver="rk99")
    with pytest.raises(sm.MissingValueError, match="takes fixed steps: pass dt0"):
        sm.simulate(proj, t_span=(0, 2), solver="euler")


@pytest.mark.slow
def test_auto_solver_picks_implicit_for_stiff_van_der_pol():
    stiff = sm.zoo.van_der_pol(mu=1000.0)
    mild = sm.zoo.van_der_pol(mu=1.0)
    assert sm.choose_solver(stiff, [2.0, 0.0], [1000.0], 0.0, 3000.0) == "kvaerno5"
    assert sm.choose_solver(mild, [2.0, 0.0], [1.0], 0.0, 20.0) == "tsit5"
    assert sm.stiffness_index(stiff, [2.0, 0.0], [1000.0], 0.0, 3000.0) > 1e6
    x = stiff.states[0]
    tr = sm.simulate(stiff, t_span=(0, 3000), saveat=4, solver="auto", rtol=1e-6, atol=1e-6)
    assert int(tr.num_steps) < 5000 and np.all(np.isfinite(np.asarray(tr[x])))


def test_max_steps_failure_is_a_clear_error():
    stiff = sm.zoo.van_der_pol(mu=1000.0)
    with pytest.raises(sm.SolveError, match=r"max_steps=500.*stiff: try solver='auto' or 'rodas4'"):
        sm.simulate(stiff, t_span=(0, 3000), max_steps=500)


def test_blow_up_is_reported():
    (x,) = sm.states("x")
    blow = sm.Model([sp.Eq(x.diff(t), x**2)], defaults={x: 1.0})  # x = 1/(1-t): infinite at t=1
    with pytest.raises(sm.SolveError, match=r"max_steps=2000.*may blow up"):
        sm.simulate(blow, t_span=(0, 2), max_steps=2000)


def test_missing_values_are_named():
    (x,) = sm.states("x")
    k, c = sm.parameters("k c")
    model = sm.Model([sp.Eq(x.diff(t, 2), -k * x - c * x.diff(t))], name="osc")
    with pytest.raises(sm.MissingValueError, match=r"No value for parameter\(s\) c, k of model 'osc'"):
        sm.simulate(model, ics={x: 1, x.diff(t): 0}, t_span=(0, 1))
    with pytest.raises(
        sm.MissingValueError, match=r"No initial value for state\(s\) x_t.*x.diff\(t\): \.\.\."
    ):
        sm.simulate(model, ics={x: 1}, params={k: 1, c: 0}, t_span=(0, 1))
    with pytest.raises(sm.MissingValueError, match="No time span"):
        sm.simulate(model, ics={x: 1, "x_t": 0}, params={k: 1, c: 0})
    with pytest.raises(sm.UnknownNameError, match="'kk' is not a state or parameter.*Did you mean 'k'"):
        sm.simulate(model, ics={x: 1, "x_t": 0}, params={"kk": 1, c: 0}, t_span=(0, 1))


def test_trajectory_indexing_and_tables(proj):
    x, y, vx, vy = proj.states
    tr = sm.simulate(proj, t_span=(0, 1), saveat=11)
    np.testing.assert_array_equal(tr["x_t"], tr[vx])
    np.testing.assert_array_equal(tr["y'"], tr[vy])
    speed2 = np.asarray(tr[vx**2 + vy**2])
    np.testing.assert_allclose(speed2, np.asarray(tr[vx]) ** 2 + np.asarray(tr[vy]) ** 2, rtol=1e-14)
    g, k, m = proj.params
    np.testing.assert_allclose(tr[m * vy + t], 7.26 * np.asarray(tr[vy]) + np.asarray(tr.t))
    assert float(tr[k][0]) == 0.45
    df = tr.to_pandas()
    assert list(df.columns) == ["t", "x", "y", "x_t", "y_t"] and len(df) == 11
    with pytest.raises(sm.UnknownNameError, match=r"'q' is not a state or parameter of this trajectory"):
        tr["q"]
    with pytest.raises(sm.UnknownNameError, match="Did you mean 'x_t'"):
        tr["x_tt"]
    z = sp.Symbol("z")
    with pytest.raises(sm.SymmlError, match="z"):
        tr[x + z]


def test_plot_returns_axes(proj, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    tr = sm.simulate(proj, t_span=(0, 1), saveat=11)
    ax = tr.plot([proj.states[0], proj.states[1]])
    assert len(ax.lines) == 2
    ax.figure.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_event_validation(proj):
    with pytest.raises(ValueError, match="direction must be 'up', 'down' or None"):
        sm.Event(proj.states[1], direction="sideways")
    with pytest.raises(TypeError, match="event must be sm.Event"):
        sm.simulate(proj, t_span=(0, 1), event=proj.states[1])


@pytest.mark.slow
def test_the_core_is_one_pure_function_of_field_values_times_and_options(proj):
    from symml._solve import SolveOptions, TerminalEvent, check_result, integrate

    y = proj.states[1]
    ts = jnp.linspace(0.0, 5.0, 11)
    y0 = jnp.array([0.0, 0.0, VX, VY])
    p = jnp.array([G, K, M])
    event = TerminalEvent(sm.compile_exprs(proj, [y]), direction=False)
    options = SolveOptions.build("tsit5", rtol=1e-12, atol=1e-12, event=event)
    sol = jax.jit(lambda y0_, p_: integrate(sm.compile(proj), y0_, ts, p_, options))(y0, p)
    ys = check_result(sol.result, sol.ys, "tsit5", 1e-12, options.max_steps)
    ref = sm.simulate(
        proj, t_span=(0, 5), saveat=11, rtol=1e-12, atol=1e-12, event=sm.Event(y, direction="down")
    )
    np.testing.assert_allclose(ys, ref.y, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert abs(float(sol.event_state[0]) - 17.8800198525094) < 1e-8
    with pytest.raises(sm.MissingValueError, match="Solver euler takes fixed steps: pass dt0"):
        SolveOptions.build("euler")


@pytest.mark.slow
def test_compiled_artefacts_live_in_the_cache_and_die_with_the_model():
    import gc
    import weakref

    from symml._compile import _cache

    def solved(make, **kw):
        base = make()  # renamed: equal models share entries, and no other test holds this one
        model = sm.Model(base.equations, defaults=base.defaults, name=f"{base.name}_weakref_check")
        sm.simulate(model, t_span=(0, 1), saveat=3, **kw)
        assert _cache.sizes(model).get("runner", 0) + _cache.sizes(model).get("flow_runner", 0) == 1
        return weakref.ref(model)

    ground = sm.Event(sm.zoo.projectile().states[1], direction="down")
    refs = [
        solved(sm.zoo.lotka_volterra),
        solved(sm.zoo.projectile, event=ground),
        solved(sm.zoo.projectile, method="numeric"),
    ]
    gc.collect()
    assert [r() for r in refs] == [None, None, None]  # nothing held the models: their entries went too


def test_simulate_on_a_neural_model_needs_no_compile_first():
    from symml._compile import _cache

    u, v = sm.states("u v")
    (a,) = sm.parameters("a")
    U = sm.neural("U", inputs=[u, v], outputs=1, width=4, depth=1)
    ude = sm.Model([sp.Eq(u.diff(t), a * u + U[0]), sp.Eq(v.diff(t), -v)], defaults={a: -0.5, u: 1.0, v: 1.0})
    _cache.clear(ude)
    traj = sm.simulate(ude, t_span=(0, 1), saveat=4)
    assert traj.method == "numeric" and np.all(np.isfinite(np.asarray(traj.y)))
    np.testing.assert_allclose(traj[v], np.exp(-np.asarray(traj.t)), rtol=1e-6)


def test_an_event_is_a_sympy_expression_not_a_string():
    with pytest.raises(TypeError, match="Event needs a SymPy expression, got the string 'y'"):
        sm.Event("y")


def test_a_first_step_against_the_span_is_named():
    lv = sm.zoo.lotka_volterra()
    sm.simulate(lv, t_span=(0.0, 1.0), saveat=3, dt0=0.01)  # the fast path is keyed on dt0 too
    with pytest.raises(sm.InvalidValueError, match=r"dt0=0.01 points away from t1: .* from 1.0 to 0.0"):
        sm.simulate(lv, t_span=(1.0, 0.0), saveat=3, dt0=0.01)
    with pytest.raises(sm.InvalidValueError, match="dt0 must be a finite, non-zero step, got 0.0"):
        sm.simulate(lv, t_span=(0.0, 1.0), saveat=3, dt0=0.0)
    with pytest.raises(sm.InvalidValueError, match="dt0 must be a number"):
        sm.simulate(lv, t_span=(0.0, 1.0), saveat=3, dt0="small")
    u, v = lv.states
    near = {u: 0.5, v: 1.5}  # near the centre (the zoo's start blows up backwards)
    back = sm.simulate(lv, ics=near, t_span=(1.0, 0.0), saveat=3, dt0=-0.01)
    fwd = sm.simulate(lv, ics=near, t_span=(1.0, 0.0), saveat=3)
    assert back.t.tolist() == [1.0, 0.5, 0.0]
    np.testing.assert_allclose(back.y, fwd.y, rtol=1e-6)
