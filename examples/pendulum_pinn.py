# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A physics-informed network for the pendulum: forward, and g from 25 noisy points
#
# `sm.pinn` generates the PINN loss from the model: the residual of θ'' = −(g/l) sin θ on
# collocation points (Taylor-mode derivatives of the network, not finite differences), the
# initial values, and the data when given, with loss weights that balance themselves
# (gradient-norm rule) and causal training over the span. No weight is tuned by hand here.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import symml as sm

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)
steps = dict(optimizer=sm.Adam(steps=1000 if FAST else 2000), polish=sm.LBFGS(steps=300 if FAST else 500))

pend = sm.zoo.pendulum(theta0=1.0)
theta = pend.states[0]
g = pend.lookup("g")

# %% [markdown]
# ## Forward: the large swing, against `sm.simulate`

# %%
forward = sm.pinn(pend, t_span=(0, 3), seed=0, verbose=False, **steps)
print(forward.report())
errors = forward.compare()

# %% [markdown]
# ## Inverse: g from 25 points at 1 % noise, starting from g = 8

# %%
data = sm.Dataset.from_model(pend, ts=np.linspace(0, 3, 25), noise=0.01, seed=0, observe=[theta])
inverse = sm.pinn(pend.with_defaults({g: 8.0}), data, params=[g], seed=0, verbose=False, **steps)
g_pinn = inverse.params[g]
g_fit = sm.fit(pend.with_defaults({g: 8.0}), data, params=[g]).params[g]
print(inverse.report())
print(
    f"g: PINN {g_pinn:.4f} ({100 * (g_pinn / 9.81 - 1):+.3f} %), "
    f"sm.fit {g_fit:.4f} ({100 * (g_fit / 9.81 - 1):+.3f} %)"
)

# %% [markdown]
# ## Figure

# %%
ts = np.linspace(0, 3, 300)
ref = sm.simulate(pend, t_span=(0, 3), saveat=ts)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(ts, np.asarray(ref[theta]), "k", label="sm.simulate")
axes[0].plot(ts, np.asarray(forward.predict(ts)[theta]), "--", label="sm.pinn (forward)")
axes[0].set_title("forward problem")
axes[1].plot(data.t, data[theta], "o", ms=4, label="25 points, 1 % noise")
axes[1].plot(ts, np.asarray(inverse.predict(ts)[theta]), label=f"sm.pinn, g = {g_pinn:.3f}")
axes[1].set_title("inverse problem")
for ax in axes:
    ax.set_xlabel("t [s]")
    ax.set_ylabel("θ [rad]")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "pendulum_pinn.png"), dpi=120)
print("figure written to", OUT)
