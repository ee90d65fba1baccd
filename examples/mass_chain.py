# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # A chain of masses on springs: equilibrium by minimising the energy
#
# N masses hang between two fixed ends one unit apart horizontally, joined by springs of
# stiffness K and rest length ℓ, under gravity (docs/problems.md §5):
#
# E = Σⱼ K/2 (√((y_{j+1} − y_j)² + 1) − ℓ)² + Σⱼ m g y_j,  y_0 = y_{N+1} = 0.
#
# `sm.minimize` takes E as a SymPy expression, the fixed ends as constraints by substitution,
# compiles E and its gradient with JAX (each distinct term shape once, vectorised over the
# springs) and runs BFGS; the result is differentiable in K, ℓ, m, g.
# We check it against SciPy's BFGS for N = 10 and time N = 1000.

# %%
import os
import time

import matplotlib

matplotlib.use("Agg")
import jax
import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize
import sympy as sp

import symml as sm

FAST = os.environ.get("SYMML_EXAMPLE_FAST") == "1"
OUT = os.environ.get("SYMML_EXAMPLE_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
os.makedirs(OUT, exist_ok=True)

K, ell, m, g = sm.parameters("K ell m g", positive=True)
values = {K: 50.0, ell: 0.8, m: 0.1, g: 9.81}


def chain(n):
    ys = sp.symbols(f"y0:{n + 2}")
    # sp.Add(*terms) builds the sum at once (a running sum re-sorts it at every term).
    springs = sp.Add(*[K / 2 * (sp.sqrt((ys[j + 1] - ys[j]) ** 2 + 1) - ell) ** 2 for j in range(n + 1)])
    return springs + sp.Add(*[m * g * ys[j] for j in range(1, n + 1)]), ys


def numpy_energy(y):
    d = np.diff(np.concatenate([[0.0], y, [0.0]]))
    return np.sum(50.0 / 2 * (np.sqrt(d**2 + 1) - 0.8) ** 2) + np.sum(0.1 * 9.81 * y)


def numpy_grad(y):
    full = np.concatenate([[0.0], y, [0.0]])
    d = np.diff(full)
    s = np.sqrt(d**2 + 1)
    f = 50.0 * (s - 0.8) * d / s  # dE/d(d_j)
    return f[:-1] - f[1:] + 0.1 * 9.81


# %%
results = {}
for n in (10, 100 if FAST else 1000):
    E, ys = chain(n)
    start = time.perf_counter()
    res = sm.minimize(E, over=list(ys), params=values, constraints={ys[0]: 0, ys[-1]: 0}, max_steps=20000)
    y_sm = np.array([float(res[s]) for s in ys[1:-1]])
    t_sm = time.perf_counter() - start
    start = time.perf_counter()
    ref = scipy.optimize.minimize(
        numpy_energy, np.zeros(n), jac=numpy_grad, method="BFGS", options={"gtol": 1e-9}
    )
    t_sp = time.perf_counter() - start
    results[n] = dict(
        y=y_sm, ref=ref.x, diff=float(np.max(np.abs(y_sm - ref.x))), converged=bool(res.converged)
    )
    print(
        f"N = {n:5d}: symml {t_sm:6.2f} s (compile included, {int(res.steps)} steps), "
        f"SciPy BFGS {t_sp:6.2f} s, "
        f"max |Δy| = {results[n]['diff']:.1e}, sag {y_sm.min():.4f}"
    )

# %% [markdown]
# How much deeper does the middle sag per unit of mass? The implicit function theorem through
# the minimiser (`jax.grad`), against a central difference.

# %%
E10, ys10 = chain(10)
mid = ys10[5]


def sag(mass):
    return sm.minimize(
        E10, over=list(ys10), params={**values, m: mass}, constraints={ys10[0]: 0, ys10[-1]: 0}
    )[mid]


dsag = float(jax.grad(sag)(0.1))
fd = (float(sag(0.1 + 1e-3)) - float(sag(0.1 - 1e-3))) / 2e-3
print(f"d y_5 / d m = {dsag:.6f} (finite difference {fd:.6f})")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for n, r in results.items():
    x = np.linspace(0, 1, n + 2)
    ax.plot(x, np.concatenate([[0], r["y"], [0]]), ".-" if n <= 10 else "-", label=f"N = {n}", ms=4)
ax.set(xlabel="position along the chain (scaled)", ylabel="y")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "mass_chain.png"), dpi=110)
