# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lotka–Volterra universal ODE: keep the physics you trust, learn the rest
#
# u' = α u − β u v,  v' = −γ v + δ u v with α, β, γ, δ = 1.3, 0.9, 0.8, 1.8, sampled on
# t ∈ [0, 5] every 0.25 (21 points) with 5 % noise (docs/problems.md §3). We keep the linear terms
# α u and −γ v, which we trust, and replace both interactions by one small network
# U(u, v) (2 → 32 → 32 → 2, tanh):
#
#     u' = α u + U₀(u, v),    v' = −γ v + U₁(u, v).
#
# `sm.train` trains U through the ODE solver (checkpointed adjoint) with its defaults:
# `sm.Adam(steps=100)` (warmup-cosine schedule), then an L-BFGS polish, `sm.LBFGS(steps=700)`.
# The target is the noise floor: the mean squared error of the *true* solution against the noisy
# data. Then we compare the learned terms with −β u v and δ u v over the region of (u, v) the
# data visits, and try a second placement of the network, inside a product:
# v' = −γ v + δ u (v + U₁(u, v)).

# %%
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import symml as sm

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)
# The two optimiser phases; fast mode shortens the polish, the full run keeps sm.train's defaults.
PHASES = dict(optimizer=sm.Adam(steps=100), polish=sm.LBFGS(steps=100)) if FAST else {}

# %% [markdown]
# ## Data and the noise floor

# %%
lv = sm.zoo.lotka_volterra()
u, v = lv.states
alpha, beta, delta, gamma = lv.params  # sorted by name
ts = np.linspace(0, 5, 21)
data = sm.Dataset.from_model(lv, ts=ts, noise=0.05, seed=0)
truth = sm.simulate(lv, saveat=ts)
observed = np.stack([data[u], data[v]], axis=-1)
floor = float(np.mean((np.asarray(truth.y) - observed) ** 2))
print(data)
print(f"noise floor (MSE of the true solution against the data): {floor:.5f}")

# %% [markdown]
# ## The universal ODE and its training

# %%
U = sm.neural("U", inputs=[u, v], outputs=2, width=32, depth=2)
ude = sm.Model(
    [sp.Eq(u.diff(sm.t), alpha * u + U[0]), sp.Eq(v.diff(sm.t), -gamma * v + U[1])],
    defaults={alpha: 1.3, gamma: 0.8},
    name="lv_ude",
)
print(ude)

start = time.perf_counter()
trained = sm.train(ude, data, **PHASES, seed=0, verbose=not FAST)
wall = time.perf_counter() - start
h = trained.history
print(trained.summary())
reached = h.time_to(floor)
print(
    f"final loss {h.final:.5f} = {h.final / floor:.2f} x noise floor; "
    f"noise floor reached after {'never' if reached is None else f'{reached:.1f} s'} "
    f"({wall:.1f} s in all, {trained.timing['compile']:.1f} s of it compiling)"
)

ax = trained.plot_history(noise_floor=floor)
ax.set_title("training loss")
ax.figure.savefig(os.path.join(OUT, "lv_ude_history.png"), dpi=120)

# %% [markdown]
# ## Data, fit, and the learned interactions
#
# Along the fitted trajectory (u, v) covers the region the data explores; there the network's
# outputs should match the terms it replaced. A least-squares fit of U₀ ≈ c₀ u v and
# U₁ ≈ c₁ u v along the trajectory summarises how close: the hand-written diffrax pipeline of
# docs/problems.md §3 recovered −0.856 and +1.718 (true −0.9 and +1.8) after sparse regression.

# %%
X, Y = trained.network_data(points=400)
uv = X[:, 0] * X[:, 1]
c0 = float(uv @ Y[:, 0] / (uv @ uv))
c1 = float(uv @ Y[:, 1] / (uv @ uv))
rel = np.abs(Y - np.stack([-0.9 * uv, 1.8 * uv], -1)).max(axis=0) / np.abs(
    np.stack([0.9 * uv, 1.8 * uv], -1)
).max(0)
print(f"U0 ~ {c0:+.3f} u v (true -0.9),  U1 ~ {c1:+.3f} u v (true +1.8)")
print(f"largest deviation from the true terms on the data domain: {rel[0]:.1%} (U0), {rel[1]:.1%} (U1)")

dense = np.linspace(0, 5, 400)
fit = trained.predict(ts=dense)
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for k, (s, name) in enumerate(((u, "u"), (v, "v"))):
    axes[0].plot(ts, data[s], "o", color=f"C{k}", ms=4, label=f"{name} data")
    axes[0].plot(dense, fit[s], "-", color=f"C{k}", label=f"{name} UDE")
    axes[0].plot(dense, sm.simulate(lv, saveat=dense)[s], ":", color=f"C{k}", lw=1)
axes[0].set_xlabel("t")
axes[0].legend()
axes[0].set_title("data (dots), fit (lines), truth (dotted)")
tt = np.linspace(0, 5, 400)
axes[1].plot(tt, Y[:, 0], label="U₀ learned")
axes[1].plot(tt, -0.9 * uv, "k--", lw=1, label="−β u v")
axes[1].plot(tt, Y[:, 1], label="U₁ learned")
axes[1].plot(tt, 1.8 * uv, "k:", lw=1, label="δ u v")
axes[1].set_xlabel("t (along the fitted trajectory)")
axes[1].legend()
# over the box of (u, v) the data spans: learned U0 against -beta u v
dom = trained.domain()
gu = np.linspace(*dom[u], 60)
gv = np.linspace(*dom[v], 60)
GU, GV = np.meshgrid(gu, gv)
grid = np.stack([GU.ravel(), GV.ravel()], -1)
err = np.asarray(trained.network()(grid))[:, 0].reshape(GU.shape) - (-0.9 * GU * GV)
im = axes[2].contourf(GU, GV, err, levels=20, cmap="RdBu_r")
axes[2].plot(X[:, 0], X[:, 1], "k-", lw=1)
axes[2].set_xlabel("u")
axes[2].set_ylabel("v")
axes[2].set_title("U₀ − (−β u v) over the data box; trajectory in black")
fig.colorbar(im, ax=axes[2])
fig.tight_layout()
fig.savefig(os.path.join(OUT, "lv_ude_fit.png"), dpi=120)

# %% [markdown]
# ## Another placement: the network inside a product
#
# Here we trust that predators grow in proportion to the prey, δ u (…), but not how the rate
# depends on v: v' = −γ v + δ u (v + U₁(u, v)), while u' = α u + U₀(u, v) as before. With
# the right structure, U₁ has nothing to add and should stay near zero, while U₀ again learns
# −β u v.
#
# This model is harder to start: with W ≈ 0 the prey grow without predation and δ u v makes the
# predators explode (v ≈ 1e185 by t = 5), so one solve over the whole series overflows and the
# loss at the starting weights is infinite. Multiple shooting (`sm.Shooting(4)`: four segments
# starting from the data, joined by a continuity penalty) keeps every solve short; the segments
# join up as the network learns. It runs with `sm.train`'s default schedule in both modes.

# %%
W = sm.neural("W", inputs=[u, v], outputs=2, width=32, depth=2)
placed = sm.Model(
    [sp.Eq(u.diff(sm.t), alpha * u + W[0]), sp.Eq(v.diff(sm.t), -gamma * v + delta * u * (v + W[1]))],
    defaults={alpha: 1.3, gamma: 0.8, delta: 1.8},
    name="lv_ude_product",
)
print(placed)
trained2 = sm.train(placed, data, solve=sm.Shooting(segments=4), seed=0, verbose=not FAST)
X2, Y2 = trained2.network_data(points=400)
uv2 = X2[:, 0] * X2[:, 1]
c0b = float(uv2 @ Y2[:, 0] / (uv2 @ uv2))
print(
    f"product placement: final loss {trained2.loss:.5f} = {trained2.loss / floor:.2f} x noise floor "
    f"(one solve from t = 0: {trained2.mse() / floor:.2f} x); "
    f"W0 ~ {c0b:+.3f} u v (true -0.9); |W1| <= {np.abs(Y2[:, 1]).max():.3f} "
    f"(v ranges over {X2[:, 1].min():.2f}..{X2[:, 1].max():.2f})"
)

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(tt, Y2[:, 0], label="W₀ learned")
ax.plot(tt, -0.9 * uv2, "k--", lw=1, label="−β u v")
ax.plot(tt, Y2[:, 1], label="W₁ learned (ideal: 0)")
ax.set_xlabel("t (along the fitted trajectory)")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "lv_ude_product.png"), dpi=120)

# %% [markdown]
# ## Distillation: the networks back into equations
#
# `sm.distill` samples U along the fitted trajectories (never outside the data) and fits each
# output. With SINDy (polynomials to degree 4), forward selection on the network's samples
# proposes candidate structures and BIC *on the data*, through the solver, decides: the network
# is only right to within the noise, so its samples alone cannot tell −β u v from a dozen
# cancelling terms. Operon (symbolic regression, offline) searches expression trees on the
# samples instead. Each result is a plain symbolic model with the constants as new parameters,
# which `refit` re-estimates through the solver.

# %%
truth_terms = {U[0]: -0.9 * u * v, U[1]: 1.8 * u * v}
distilled = {}
for backend, options in (("sindy", {}), ("operon", {"max_time": 10.0 if FAST else 60.0})):
    start = time.perf_counter()
    found = sm.distill(trained, backend=backend, **options)
    refit = found.refit(params=list(found.constants), weights="relative")
    distilled[backend] = (found, refit)
    print(f"--- {backend} ({time.perf_counter() - start:.1f} s with the refit)")
    print(found.report())
    print("  refitted:", {str(k): round(float(val), 4) for k, val in refit.params.items()})

far = np.linspace(0, 50, 1001)
truth_far = sm.simulate(lv, saveat=far)
fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
for k, s in enumerate((u, v)):
    axes[k].plot(far, truth_far[s], "k-", lw=1.5, label="truth")
    for j, (backend, (_, refit)) in enumerate(distilled.items()):
        try:
            axes[k].plot(far, sm.simulate(refit.model, saveat=far)[s], "--", color=f"C{j + 1}", label=backend)
        except sm.SolveError as err:  # a wrong structure may blow up far from the data
            print(f"{backend}: the recovered model cannot be integrated to t = 50 ({err})")
    axes[k].axvspan(0, 5, color="0.9")
    axes[k].set_ylabel(str(s.func))
axes[0].legend(loc="upper right")
axes[1].set_xlabel("t")
fig.suptitle("distilled and refitted models, extrapolated ten times past the data")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "lv_ude_distilled.png"), dpi=120)

# %% [markdown]
# The trained models are ordinary symml models carrying their networks: `trained.model` can be
# simulated and saved (`sm.save(trained, "lv_ude.json")`, bit-exact, no pickle).

# %%
sm.save(trained, os.path.join(OUT, "lv_ude.json"))
print("saved", os.path.join(OUT, "lv_ude.json"))

# %% [markdown]
# ## Early stopping at the noise floor
#
# With its defaults `sm.train` polishes until L-BFGS converges, to a loss *below* the noise
# floor: the network then also fits part of the noise, and the learned terms wiggle around
# −β u v and δ u v. `loss=sm.Loss(target_loss=floor)` stops at the first iterate whose loss
# reaches the floor (the same run up to that point), which is usually closer to the true
# interactions.

# %%
early = sm.train(ude, data, **PHASES, loss=sm.Loss(target_loss=floor), seed=0, verbose=False)
Xe, Ye = early.network_data(points=400)
uve = Xe[:, 0] * Xe[:, 1]


def rms_deviation(uv_, out):
    true = np.stack([-0.9 * uv_, 1.8 * uv_], -1)
    return np.sqrt(np.mean((out - true) ** 2, axis=0) / np.mean(true**2, axis=0))


rms_full, rms_early = rms_deviation(uv, Y), rms_deviation(uve, Ye)
print(
    f"early stopping: {len(early.history)} iterations (instead of {len(h)}), loss {early.loss / floor:.2f} x "
    f"floor; RMS deviation from the true terms {rms_early[0]:.1%}, {rms_early[1]:.1%} "
    f"(without: {rms_full[0]:.1%}, {rms_full[1]:.1%})"
)
