# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Characterising a nonlinear resonator from a frequency sweep (Duffing)
#
# A driven Duffing resonator in the rotating frame: the complex amplitude z = a + i b obeys
# ż = −i(ω₀ − ω(t)) z − (γ/2) z − i ε |z|² z + i f while the drive frequency is swept linearly,
# ω(t) = ω_start + rate·t (docs/problems.md §4). What an experiment records is the response curve:
# the amplitude |z| = √(a² + b²) against the drive frequency. We sweep up (0.9 → 1.1) and down
# (1.1 → 0.9), add 2 % noise, and recover the resonance frequency ω₀, the linewidth γ and the
# Kerr coefficient ε from both curves at once.
#
# At this sweep rate the resonator never settles (its ringing is visible), and the two
# directions differ strongly because the resonance bends towards higher frequency with
# amplitude (hardening, ε > 0): the up-sweep rides the bent resonance to the end of the sweep,
# the down-sweep only catches it near ω ≈ 0.99. None of this troubles the fit: it models the
# full transient dynamics through the solver, not a steady-state response formula.
#
# Both sweeps are one `Dataset` with two trajectories; each stores its own sweep settings
# (ω_start, rate), which `fit` holds fixed per trajectory, and the observed key is the
# expression √(a² + b²) itself.

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

# %% [markdown]
# ## The resonator and the two sweeps

# %%
duffing = sm.zoo.duffing("amplitude")
a, b = duffing.states
eps, f, gam, w0, w_start, rate = duffing.params  # sorted by name
truth = {w0: 1.0, gam: 0.05, eps: 0.05}
duffing = duffing.with_defaults({**truth, f: 0.03})  # drive strength f is known
print(duffing)

amplitude = sp.sqrt(a**2 + b**2)
ts = np.linspace(0, 200, 101 if FAST else 401)
sweeps = [
    {a: 0.0, b: 0.0, w_start: 0.9, rate: 0.001},  # up: ω from 0.9 to 1.1
    {a: 0.0, b: 0.0, w_start: 1.1, rate: -0.001},  # down: ω from 1.1 to 0.9
]
data = sm.Dataset.from_model(duffing, ics=sweeps, ts=ts, noise=0.02, seed=0, observe=[amplitude])
print(data)
for name, s in zip(("up", "down"), data.series):
    k = int(np.argmax(s.values[amplitude]))
    w_peak = s.ics[w_start] + s.ics[rate] * s.t[k]
    print(f"{name:4s}-sweep: largest amplitude {s.values[amplitude][k]:.3f} at ω = {w_peak:.3f}")

# %% [markdown]
# ## The fit: three unknowns, both sweeps
#
# Starting from a rough guess (ω₀ = 0.98, γ = 0.08, ε = 0.01).

# %%
start = {w0: 0.98, gam: 0.08, eps: 0.01}
res = sm.fit(duffing, data, params=start)
print(res)
print(f"compiled in {res.compile_seconds:.1f} s, fitted in {res.seconds:.2f} s ({res.iterations} steps)")
ci = res.confidence_intervals()
covered = 0
for p, val in truth.items():
    lo, hi = ci[p.name]
    covered += lo <= val <= hi
    print(
        f"{p.name:8s} true {val:.4f}  estimate {res.params[p]:.5f} ± {res.stderr[p]:.5f}  "
        f"relative error {abs(res.params[p] / val - 1):.2e}"
    )
print(f"{covered} of 3 intervals contain the true value")

# %% [markdown]
# ## Figure: the response curves against the drive frequency

# %%
fig, ax = plt.subplots(figsize=(8, 4))
for i, (name, s) in enumerate(zip(("up-sweep", "down-sweep"), data.series)):
    omega_t = s.ics[w_start] + s.ics[rate] * s.t
    ax.plot(omega_t, s.values[amplitude], "o", ms=2.5, color=f"C{i}", alpha=0.6, label=f"{name} data")
    traj = res.trajectory(i, saveat=800)
    omega_f = s.ics[w_start] + s.ics[rate] * np.asarray(traj.t)
    ax.plot(omega_f, traj[amplitude], "-", color=f"C{i}", label=f"{name} fit")
ax.axvline(res.params[w0], color="0.5", ls=":", label=f"fitted ω₀ = {res.params[w0]:.4f}")
ax.set_xlabel("drive frequency ω")
ax.set_ylabel("|z|")
ax.set_title("Duffing resonator: up and down sweeps, data and fit")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "duffing_sweep.png"), dpi=120)
print("figure written to", OUT)
