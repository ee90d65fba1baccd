# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A Hamiltonian neural network for the pendulum, distilled back to its energy
#
# A network that learns the vector field of a pendulum from trajectories (a neural ODE) has no
# reason to conserve energy, and over long times it does not. A Hamiltonian neural network
# learns a scalar H(q, p) instead and moves along its symplectic gradient, q' = ∂H/∂p,
# p' = −∂H/∂q, so whatever it learns, it conserves its own H. In symml that is a SymPy
# statement: `Hn = sm.neural("H", inputs=[q, p])` and `sm.hamiltonian(Hn[0], [q], [p])`; the
# derivatives of the network compile to `jax.grad`, `sm.train` trains it like any universal
# ODE, and `sm.distill` turns the trained H back into an expression, which should be
# p²/2 − (g/ℓ) cos q up to an additive constant.

# %%
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import sympy as sp

import symml as sm

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)

# %%
q, p = sm.states("q p")
g, l = sm.parameters("g l", positive=True)
H_true = p**2 / 2 - g / l * sp.cos(q)
truth = sm.hamiltonian(H_true, [q], [p], defaults={g: 9.81, l: 9.81})  # g / l = 1
ts = np.linspace(0, 6, 31)
data = sm.Dataset.from_model(truth, ics=[{q: a, p: 0.0} for a in (0.5, 1.0, 1.5, 2.0)], ts=ts, seed=0)

# %% [markdown]
# The Hamiltonian network and a plain neural ODE of the same size (16 × 16 hidden units).

# %%
Hn = sm.neural("H", inputs=[q, p], outputs=1, width=16, depth=2)
hnn = sm.hamiltonian(Hn[0], [q], [p], name="hnn")
U = sm.neural("U", inputs=[q, p], outputs=2, width=16, depth=2)
node = sm.Model([sp.Eq(q.diff(sm.t), U[0]), sp.Eq(p.diff(sm.t), U[1])], name="node")
print(hnn)

adam = sm.Adam(steps=20 if FAST else 300, lr=1e-2)
polish = None if FAST else sm.LBFGS(steps=200)
trained = {
    m.name: sm.train(m, data, optimizer=adam, polish=polish, seed=0, verbose=False) for m in (hnn, node)
}
for name, tr in trained.items():
    print(name, tr.history)

# %% [markdown]
# Both predict from a held-out initial value (q = 1.2, at rest) for ten times the training
# window; the true energy along each prediction says which one respects the physics.

# %%
t_long = np.linspace(0, 60, 601)
energy_error = {}
for name, tr in trained.items():
    pred = tr.predict({q: 1.2, p: 0.0}, t_long)
    y = np.asarray(pred.y)
    E = y[:, 1] ** 2 / 2 - np.cos(y[:, 0])
    energy_error[name] = np.abs(E - E[0])
    print(f"{name}: max |E_true - E0| over t in [0, 60]: {energy_error[name].max():.3e}")

# %% [markdown]
# Distil the learned H with sparse regression on polynomials and cosines.

# %%
found = sm.distill(trained["hnn"], library=["polynomial", "cos"], degree=2, validate=False)
H_found = found.terms[Hn[0]]
print("H =", H_found)
coeffs = {str(k): float(v) for k, v in sp.expand(H_found).as_coefficients_dict().items()}
print(coeffs)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, err in energy_error.items():
    ax.semilogy(t_long, err + 1e-12, label=name)
ax.axvspan(0, 6, alpha=0.1, label="training window")
ax.set(xlabel="t", ylabel="|E_true - E0|")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "hnn_pendulum.png"), dpi=110)
