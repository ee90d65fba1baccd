# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The pendulum's law from images
#
# We film a pendulum swinging through large angles: each frame is a Gaussian blob at the bob's
# position on a small grid, and nothing else. From the frames alone, an autoencoder estimates
# how many numbers describe the scene, and a SINDy autoencoder (Champion et al. 2019) learns at
# once an encoder z = φ(x), a decoder x ≈ ψ(z) and a sparse second-order law
# z'' = Θ(z, z') Ξ from a library of polynomials in (z, z') to degree 4 plus sin z and sin z'
# (docs/problems.md §2). The truth is θ'' = −(g/ℓ) sin θ with g/ℓ = 9.81.
#
# A latent coordinate is only defined up to an invertible map. Two things fix it here: an
# isometry term keeps z proportional to arc length along the images' curve (affine in θ for a
# blob that moves rigidly), and the sin term fixes the scale and shift (z = ±θ), which
# `discover_latent` chooses together with the law's terms. So the recovered law can be compared
# with the truth number for number.

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
# ## Frames: 20 swings, 31 frames each, 12 x 12 pixels
#
# Initial angles and speeds are drawn at random, keeping swings that do not go over the top.
# `sm.frames` also returns the frames' exact time derivatives (chain rule through the renderer).

# %%
truth = sm.zoo.pendulum()
theta, omega = truth.states
rng = np.random.default_rng(0)
ics = []
while len(ics) < 20:
    a, w = rng.uniform(-np.pi, np.pi), rng.uniform(-6, 6)
    if w**2 / 2 - 9.81 * np.cos(a) < 0.9 * 9.81:
        ics.append({theta: a, omega: w})
ts = np.linspace(0, 3, 31)
video = sm.frames(truth, ics, ts, render=sm.Blob.pendulum(truth, n=12))
print(video)

# %% [markdown]
# ## How many latent numbers? Reconstruction error against latent size
#
# One autoencoder per size. A size is good enough when it reconstructs the frames (relative
# error below 0.04) and its latent path does not jump between consecutive frames (a torn
# encoding can reconstruct every sampled frame, see `sm.autoencoder`).

# %%
scan = sm.autoencoder(video, latent=[1, 2, 3], steps=1500 if FAST else 3000, progress=False)
print(scan)

# %% [markdown]
# ## The SINDy autoencoder
#
# A warm-up of the autoencoder alone (with the isometry term), sparsifying steps with the whole
# loss, then the gauge and the terms chosen together, and a refinement of the kept terms. The
# report lists the candidates that were compared, with their residuals on the encoded path.

# %%
found = sm.discover_latent(video, latent=1, order=2, seed=0, progress=False)
print(found.report())
z = found.latent_states[0]
(law,) = found.equations
coef_sin = float(law.rhs.coeff(sp.sin(z)))
print(f"\nrecovered: {sp.sstr(law)}")
print(f"truth:     theta'' = -{9.81} sin(theta)")

# %% [markdown]
# ## Figures: input and reconstructed frames, latent trajectories

# %%
latent, dlatent = found.encode(video, derivative=True)
recon = found.decode(latent)
fig, axes = plt.subplots(2, 6, figsize=(10, 3.6))
for k, i in enumerate(np.linspace(0, len(ts) - 1, 6).astype(int)):
    axes[0, k].imshow(video.x[0, i], cmap="gray")
    axes[1, k].imshow(recon[0, i], cmap="gray")
    axes[0, k].set_title(f"t = {ts[i]:.1f}")
    for ax in axes[:, k]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_ylabel("input")
axes[1, 0].set_ylabel("decoded")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "pendulum_images_frames.png"), dpi=120)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for j in range(3):
    axes[0].plot(video.states[j, :, 0], latent[j, :, 0], ".", ms=4, label=f"swing {j}")
axes[0].set_xlabel("true angle θ")
axes[0].set_ylabel("latent z")
axes[0].set_title("the encoder's coordinate")
axes[0].legend()
# simulate the recovered law from the encoded start of one swing, next to the encoded frames
t_sim = np.linspace(0, 3, 301)
z0 = {z: float(latent[0, 0, 0]), z.diff(sm.t): float(dlatent[0, 0, 0])}
sim = sm.simulate(found.model, ics=z0, saveat=t_sim)
axes[1].plot(ts, latent[0, :, 0], "k.", label="encoded frames")
axes[1].plot(t_sim, sim[z], "C0", label="recovered law")
axes[1].set_xlabel("t [s]")
axes[1].set_ylabel("z")
axes[1].set_title(sp.sstr(law).replace("Derivative(z(t), (t, 2))", "z''").replace("z(t)", "z")[:60])
axes[1].legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "pendulum_images_latent.png"), dpi=120)

# %% [markdown]
# ## The law is a symml Model: save it, load it

# %%
path = os.path.join(OUT, "pendulum_images_law.json")
sm.save(found.model, path)
reloaded = sm.load(path)
print(reloaded)
