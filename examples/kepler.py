# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Kepler's two-body problem: leapfrog against Runge–Kutta
#
# A planet on an orbit of eccentricity e = 0.5 around a unit mass (docs/problems.md §5), written
# as a Hamiltonian H = |p|²/2 − μ/|q|. `sm.hamiltonian` derives Hamilton's equations and finds the
# conserved quantities on its own: the energy H and the angular momentum x p_y − y p_x (the
# Poisson bracket with H vanishes). We integrate 1000 orbits with the symplectic leapfrog and
# with tsit5 at the same cost (leapfrog evaluates the field 3 times a step, tsit5 6 times: tsit5
# takes steps twice as long), and with the fourth-order symplectic Yoshida method (7
# evaluations a step). The symplectic methods' energy errors stay bounded, with no secular
# drift; tsit5's grows steadily (from a smaller start: it is of fourth order, and at this coarse
# step Yoshida's large error constant shows at periapsis). Both symplectic methods keep the
# angular momentum to round-off, since each kick is radial.

# %%
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import symml as sm

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)

# %%
kep = sm.zoo.kepler_hamiltonian(0.5)
print(kep)
print(kep.invariants)
energy, angular = kep.energy, kep.invariants["angular_momentum_xy"]

# %% [markdown]
# One orbit takes 2π (the semi-major axis is 1); 400 leapfrog steps an orbit.

# %%
orbits = 50 if FAST else 1000
steps_per_orbit = 400
T = orbits * 2 * np.pi
steps = orbits * steps_per_orbit
runs = {}
for name, kw in {
    "leapfrog": dict(solver="leapfrog", dt=T / steps),
    "tsit5": dict(solver="tsit5", dt=2 * T / steps),
    "yoshida4": dict(solver="yoshida4", dt=7 / 3 * T / steps),
}.items():
    start = time.perf_counter()
    n_steps = orbits * 20 * max(1, int(round(T / kw["dt"] / (orbits * 20))))
    kw["dt"] = T / n_steps  # a whole number of steps between saves (20 an orbit)
    traj = sm.simulate(
        kep, t_span=(0, T), saveat=np.linspace(0, T, n_steps // 20 + 1), max_steps=n_steps + 10, **kw
    )
    traj.y.block_until_ready()
    runs[name] = dict(
        seconds=time.perf_counter() - start,
        t=np.asarray(traj.t),
        energy_error=np.abs(np.asarray(traj[energy]) + 0.5),
        angular_error=np.abs(np.asarray(traj[angular]) - float(traj[angular][0])),
    )
    r = runs[name]
    tenth = len(r["t"]) // 10
    r["first"], r["last"] = r["energy_error"][:tenth].max(), r["energy_error"][-tenth:].max()
    print(
        f"{name:9s} {r['seconds']:6.2f} s   max |dE| first 10 %: {r['first']:.2e}   "
        f"last 10 %: {r['last']:.2e}   max |dL|: {r['angular_error'].max():.1e}"
    )

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
for name, r in runs.items():
    ax[0].semilogy(r["t"] / (2 * np.pi), r["energy_error"] + 1e-17, label=name, lw=0.7)
    ax[1].semilogy(r["t"] / (2 * np.pi), r["angular_error"] + 1e-17, label=name, lw=0.7)
ax[0].set(xlabel="orbits", ylabel="|E - E0|", title="energy error")
ax[1].set(xlabel="orbits", ylabel="|L - L0|", title="angular momentum error")
ax[0].legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "kepler.png"), dpi=110)
