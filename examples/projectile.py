# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The shot put with Stokes drag, in closed form (docs/problems.md §1)
#
# m ẍ = −k ẋ,  m ÿ = −k ẏ − m g, launched from the origin with velocity (vₓ, v_y). symml derives
# the closed forms x(t), y(t), eliminates t to get the path y(x), and finds the range D — "not
# closed form", it is often said, but it is, through the Lambert W function. Every closed form
# compiles to JAX, so the range map over a 100×100 grid of launches is one vectorised call, and
# the inverse question (which speed reaches 50 m at 30°?) is root finding on a formula.
#
# Three independent answers for the range are compared: Lambert W, Newton's method on y(x), and
# the numeric solver's terminal ground-hit event.

# %%
import math
import os
import time

import matplotlib

matplotlib.use("Agg")
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import symml as sm
from symml import t
from symml._analytic._closed_form import roots, to_jax

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)

# %% [markdown]
# ## The closed forms

# %%
proj = sm.zoo.projectile("stokes")  # m = 7.26 kg, k = 0.45 kg/s, g = 9.81 m/s²
x, y, vx, vy = proj.states
g, k, m = proj.params
u, w = sm.parameters("v_x v_y", positive=True)  # launch velocity components

sol = sm.solve_analytic(proj, ics={x: 0, y: 0, vx: u, vy: w})
print(sol)

e = sp.exp(-k * t / m)
x_ref = (m * u / k) * (1 - e)
y_ref = (m / k) * (w + m * g / k) * (1 - e) - (m * g / k) * t
assert sp.simplify(sol[x] - x_ref) == 0 and sp.simplify(sol[y] - y_ref) == 0
print("x(t), y(t) equal the formulas of docs/problems.md §1")

# %%
path = sol.eliminate_t(x, y)  # y as a function of x (x stands for its value)
path_ref = ((w + m * g / k) / u) * x + (m**2 * g / k**2) * sp.log(1 - k * x / (m * u))
assert sp.simplify(path - path_ref) == 0
print("y(x) =", path)

# %% [markdown]
# ## Trajectories for several speeds, angles and drags
#
# The closed form evaluates through JAX like a simulation (`sol.trajectory` returns the same
# `Trajectory` as `sm.simulate`); arrays of parameter values give an ensemble in one call.

# %%
launches = [(15.0, 60.0, 0.45), (15.0, 60.0, 1.8), (15.0, 30.0, 0.45), (20.0, 45.0, 0.45), (20.0, 45.0, 5.0)]
vs, degs, ks = (jnp.array(c) for c in zip(*launches))
rad = jnp.radians(degs)
ts = jnp.linspace(0, 3.2, 400)
ens = sol.trajectory(ts, params={u: vs * jnp.cos(rad), w: vs * jnp.sin(rad), k: ks})
fig, ax = plt.subplots(figsize=(7, 4))
for i, (v0, deg, kv) in enumerate(launches):
    X, Y = np.asarray(ens[x][i]), np.asarray(ens[y][i])
    keep = Y >= -1e-9
    ax.plot(X[keep], Y[keep], label=f"v={v0:g} m/s, θ={deg:g}°, k={kv:g} kg/s")
ax.set_xlabel("x [m]")
ax.set_ylabel("y [m]")
ax.set_title("Shot put with Stokes drag: closed-form trajectories")
ax.legend(fontsize=8)
fig.savefig(os.path.join(OUT, "projectile_trajectories.png"), dpi=120, bbox_inches="tight")
plt.close(fig)

# %% [markdown]
# ## The range: Lambert W, Newton on y(x), and the numeric ground-hit event
#
# `roots` solves y(x) = 0 for x in closed form (SymPy returns the principal branch W₀; symml
# adds the lower branch W₋₁, which here is the trivial root x = 0, excluded). The flight time
# comes the same way from y(t) = 0 with `sol.when(y)`.

# %%
(D,) = roots(path, x, exclude=[0])
(T,) = sol.when(y)
print("D =", D)
print("T =", T)
range_fn = jax.jit(to_jax(D, [u, w, k, g, m]))


path_fn = jax.jit(to_jax(path, [x, u, w, k, g, m]))
path_slope = jax.jit(jax.grad(to_jax(path, [x, u, w, k, g, m])))


def newton_on_path(v0, theta, kv, x0=20.0):
    """Newton's method on y(x) = 0 from x0 = 20 (the docs/problems.md check), derivative by JAX."""
    args = (v0 * math.cos(theta), v0 * math.sin(theta), kv, 9.81, 7.26)
    X = x0
    for _ in range(50):
        step = float(path_fn(X, *args)) / float(path_slope(X, *args))
        X -= step
        if abs(step) < 1e-14 * abs(X):
            break
    return X


ground = sm.Event(y, direction="down")
print(f"{'k [kg/s]':>9} {'Lambert W':>20} {'Newton on y(x)':>20} {'numeric event':>20}")
ranges = {}
for kv, expected in ((0.45, 17.8800198525094), (1.8, 13.6065731068121)):
    v0, theta = 15.0, math.radians(60)
    d_w = float(range_fn(v0 * math.cos(theta), v0 * math.sin(theta), kv, 9.81, 7.26))
    d_newton = newton_on_path(v0, theta, kv)
    num = sm.simulate(
        proj, t_span=(0, 5), saveat=2, params={k: kv}, event=ground, method="numeric", rtol=1e-12, atol=1e-12
    )
    d_event = float(num.event_state[0])
    ranges[kv] = (d_w, d_newton, d_event)
    print(f"{kv:>9} {d_w:>20.13f} {d_newton:>20.13f} {d_event:>20.13f}")
    assert abs(d_w - expected) < 1e-12 * expected
    assert abs(d_newton - d_w) < 1e-10 * d_w and abs(d_event - d_w) < 1e-9 * d_w
print("no drag: v² sin 2θ / g =", round(15.0**2 * math.sin(2 * math.radians(60)) / 9.81, 3), "m")

# %% [markdown]
# ## The range map D(v, θ), v ∈ [5, 85] m/s, θ ∈ [5°, 85°]: one vectorised call
#
# The closed form evaluated on the 100×100 grid, against the numeric solver integrating all
# 10,000 throws to their ground-hit events (one vmapped ensemble solve).

# %%
v_sym, th_sym = sm.parameters("v theta", positive=True)
D_vt = D.subs({u: v_sym * sp.cos(th_sym), w: v_sym * sp.sin(th_sym), g: 9.81, m: 7.26, k: 0.45})
D_map = jax.jit(to_jax(D_vt, [v_sym, th_sym]))
v_axis = jnp.linspace(5, 85, 100)
th_axis = jnp.linspace(5, 85, 100)
V, TH = jnp.meshgrid(v_axis, th_axis, indexing="ij")
TH_rad = jnp.radians(TH)
grid = D_map(V, TH_rad).block_until_ready()


def best_time(fn, repeats):
    fn()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


closed_s = best_time(lambda: D_map(V, TH_rad).block_until_ready(), 20)

# The numeric ground truth: every throw integrated to its event (fast mode: a sub-grid).
stride = 5 if FAST else 1
Vs, THs = V[::stride, ::stride].ravel(), TH_rad[::stride, ::stride].ravel()


def numeric_grid():
    tr = sm.simulate(
        proj,
        ics={vx: Vs * jnp.cos(THs), vy: Vs * jnp.sin(THs)},
        t_span=(0, 20),
        saveat=2,
        event=ground,
        method="numeric",
    )
    return tr.event_state[:, 0].block_until_ready()


numeric_s = best_time(numeric_grid, 1 if FAST else 3)
d_numeric = numeric_grid()
d_closed = grid[::stride, ::stride].ravel()
agree = float(jnp.max(jnp.abs(d_numeric - d_closed) / d_closed))
per_point_ratio = (numeric_s / Vs.size) / (closed_s / V.size)
print(f"closed form, {V.size} launches: {closed_s * 1e3:.3f} ms")
print(f"numeric events, {Vs.size} launches: {numeric_s * 1e3:.1f} ms")
print(f"per launch the closed form is {per_point_ratio:.0f}x faster; max relative difference {agree:.1e}")
assert agree < 1e-6

fig, ax = plt.subplots(figsize=(6, 4.5))
cs = ax.contourf(np.asarray(V), np.asarray(TH), np.asarray(grid), levels=30, cmap="viridis")
ax.contour(np.asarray(V), np.asarray(TH), np.asarray(grid), levels=[50, 150], colors="white", linewidths=1)
fig.colorbar(cs, ax=ax, label="range D [m]")
ax.set_xlabel("launch speed v [m/s]")
ax.set_ylabel("launch angle θ [°]")
ax.set_title("Range of a 7.26 kg shot, k = 0.45 kg/s (Lambert W closed form)")
fig.savefig(os.path.join(OUT, "projectile_range_map.png"), dpi=120, bbox_inches="tight")
plt.close(fig)
best_angle = float(TH.ravel()[jnp.argmax(jnp.where(V.ravel() == 85.0, grid.ravel(), -1.0))])
print(f"at v = 85 m/s the longest throw is at θ ≈ {best_angle:.1f}° (below 45°: drag)")

# %% [markdown]
# ## The inverse question: which speed reaches d = 50 m at θ = 30°?
#
# Newton's method on the closed form D(v, 30°) − 50, with the derivative from JAX; checked by
# simulating the proposed throw numerically.

# %%
theta30 = math.radians(30)


def miss(v0):
    return D_map(v0, theta30) - 50.0


v_star = 25.0
for _ in range(30):
    v_star = v_star - float(miss(v_star)) / float(jax.grad(miss)(v_star))
check = sm.simulate(
    proj,
    ics={vx: v_star * math.cos(theta30), vy: v_star * math.sin(theta30)},
    t_span=(0, 10),
    saveat=2,
    event=ground,
    method="numeric",
    rtol=1e-12,
    atol=1e-12,
)
d_check = float(check.event_state[0])
print(f"v = {v_star:.10f} m/s reaches {d_check:.10f} m at 30° (numeric check)")
assert abs(d_check - 50.0) < 1e-8

# %% [markdown]
# ## The inverse problem of docs/problems.md §1: which throws reach d = 150 m?
#
# With the "massive drag" k = 1.8 kg/s. Not a function: every speed above a minimum reaches
# 150 m with a low and a high throw. The lecture's answer, v ≈ 75.3 m/s at θ ≈ 11.9° (from a
# neural surrogate of D and an encoder trained through it), is checked on the closed form, and
# the closed form answers directly: the speed at θ = 11.9°, the two angles at v = 75.3 m/s and
# the slowest throw that reaches 150 m (where ∂D/∂θ = 0), all by Newton's method with JAX
# derivatives, each confirmed by simulating the throw. (examples/projectile_inverse.py compares
# this with solving through the simulation and with the neural route.)

# %%
TARGET = 150.0
D_heavy = jax.jit(
    to_jax(
        D.subs({u: v_sym * sp.cos(th_sym), w: v_sym * sp.sin(th_sym), g: 9.81, m: 7.26, k: 1.8}),
        [v_sym, th_sym],
    )
)
dD_heavy = jax.jit(jax.grad(D_heavy, argnums=(0, 1)))


def newton(f, df, x0):
    X = x0
    for _ in range(40):
        step = float(f(X)) / float(df(X))
        X -= step
        if abs(step) < 1e-15 * abs(X):
            break
    return X


th_lecture = math.radians(11.9)
d_lecture = float(D_heavy(75.3, th_lecture))
v_at_lecture_angle = newton(
    lambda s: D_heavy(s, th_lecture) - TARGET, lambda s: dD_heavy(s, th_lecture)[0], 75.0
)
low, high = (
    newton(lambda a: D_heavy(75.3, a) - TARGET, lambda a: dD_heavy(75.3, a)[1], math.radians(start))
    for start in (10.0, 60.0)
)


@jax.jit
def slowest_conditions(z):
    return jnp.stack([D_heavy(z[0], z[1]) - TARGET, dD_heavy(z[0], z[1])[1]])


slowest_jacobian = jax.jit(jax.jacobian(slowest_conditions))
z = jnp.array([70.0, math.radians(35.0)])
for _ in range(30):
    z = z - jnp.linalg.solve(slowest_jacobian(z), slowest_conditions(z))
v_min, th_min = float(z[0]), float(z[1])

throws = {
    "lecture (75.3 m/s, 11.9°)": (75.3, th_lecture),
    "speed at θ = 11.9°": (v_at_lecture_angle, th_lecture),
    "low throw at 75.3 m/s": (75.3, low),
    "high throw at 75.3 m/s": (75.3, high),
    "slowest throw": (v_min, th_min),
}
inverse150 = {}
print(f"{'throw':<28} {'v [m/s]':>10} {'θ [deg]':>9} {'closed-form D':>14} {'simulated D':>14}")
for name, (v0, th0) in throws.items():
    v0, th0 = float(v0), float(th0)
    hit = sm.simulate(
        proj,
        ics={vx: v0 * math.cos(th0), vy: v0 * math.sin(th0)},
        params={k: 1.8},
        t_span=(0, 20),
        saveat=2,
        event=ground,
        method="numeric",
        rtol=1e-12,
        atol=1e-12,
    )
    d_closed, d_sim = float(D_heavy(v0, th0)), float(hit.event_state[0])
    inverse150[name] = (v0, math.degrees(th0), d_closed, d_sim)
    print(f"{name:<28} {v0:>10.4f} {math.degrees(th0):>9.4f} {d_closed:>14.8f} {d_sim:>14.8f}")
    assert abs(d_sim - d_closed) < 1e-8 * d_closed
assert abs(d_lecture - TARGET) < 0.1  # the lecture's surrogate answer is 150.07 m
