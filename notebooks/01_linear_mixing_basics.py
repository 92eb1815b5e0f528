# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1 · The linear mixing model
#
# A hyperspectral camera measures, in every pixel, a whole spectrum: the reflectance in a few
# hundred narrow bands. A pixel on the ground is usually larger than one material patch, so its
# spectrum is a **mixture**. *Unmixing* answers: which pure materials (**endmembers**) are in the
# scene, and in which proportions (**abundances**) are they in each pixel?
#
# This notebook works on a tiny scene built from known materials, so that every answer can be
# checked against the truth. You will
#
# 1. mix a pixel by hand,
# 2. see why mixed pixels fill a **simplex** (a triangle for three materials),
# 3. find its corners with **VCA** and the proportions with **FCLS**, and
# 4. see what the two constraints on abundances — **non-negativity** and **sum-to-one** — buy, and
#    when one of them hurts.
#
# Run the cells from top to bottom (*Run ▸ Run All Cells*).

# %%
import os

# EGU_FAST=1 (set by the test-suite and CI) runs a small version of every step; leave it unset
# for the full version.
FAST = os.environ.get("EGU_FAST", "0").strip().lower() not in ("", "0", "false", "no")
print("fast mode" if FAST else "full mode")

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from egu_widgets import EguError, metrics, open_cube, unmix
from egu_widgets.classic import fcls, nnls_unmix, vca
from egu_widgets.cube import make_demo

np.set_printoptions(precision=3, suppress=True)
plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1. A tiny scene
#
# `make_demo` builds a scene from three smooth reflectance spectra and smooth abundance maps, and
# adds white noise at a chosen signal-to-noise ratio (SNR, in dB). It keeps the truth with the cube.

# %%
cube = make_demo(height=30, width=30, n_bands=50, n_endmembers=3, snr_db=30, seed=0)
print(cube)

M = cube.true_endmembers  # (P, bands): one pure spectrum per row
A = cube.true_abundances  # (P, rows, cols): one abundance map per material
names = cube.endmember_names
wl = cube.wavelengths  # nm
P = M.shape[0]

fig, axes = plt.subplots(1, P + 1, figsize=(13, 2.8))
for p in range(P):
    axes[0].plot(wl, M[p], label=names[p])
    im = axes[p + 1].imshow(A[p], vmin=0, vmax=1, cmap="viridis")
    axes[p + 1].set_title(names[p])
    axes[p + 1].axis("off")
axes[0].set(xlabel="wavelength (nm)", ylabel="reflectance", title="endmembers")
axes[0].legend(fontsize=8)
fig.colorbar(im, ax=axes[1:], shrink=0.8)
plt.show()

# %% [markdown]
# ## 2. Mixing one pixel by hand
#
# The **linear mixing model** says a pixel's spectrum is the abundance-weighted sum of the
# endmember spectra, plus noise:
#
# $$\mathbf{y} = \sum_{p=1}^{P} a_p\,\mathbf{m}_p + \mathbf{n}, \qquad a_p \ge 0, \qquad \sum_p a_p = 1 .$$
#
# Take the most mixed pixel of the scene and rebuild its spectrum from its abundances.

# %%
entropy = -(A * np.log(A + 1e-12)).sum(axis=0)
row, col = np.unravel_index(entropy.argmax(), entropy.shape)
a = A[:, row, col]
y_observed = cube.image[row, col]
y_model = a @ M  # sum_p a_p m_p

print(f"pixel ({row}, {col}): abundances {a}  (sum {a.sum():.3f})")
print(f"RMS difference between model and observation: {np.sqrt(np.mean((y_model - y_observed) ** 2)):.4f} (the noise)")

fig, ax = plt.subplots(figsize=(7, 3.2))
bottom = np.zeros_like(wl)
for p in range(P):
    ax.fill_between(wl, bottom, bottom + a[p] * M[p], alpha=0.45, label=f"{a[p]:.2f} x {names[p]}")
    bottom = bottom + a[p] * M[p]
ax.plot(wl, y_observed, "k.", ms=4, label="observed pixel")
ax.set(xlabel="wavelength (nm)", ylabel="reflectance", title="a mixed pixel is a weighted sum of endmembers")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Simplex geometry
#
# Because the abundances are non-negative and sum to one, every noise-free pixel lies inside the
# **simplex** whose corners are the endmembers: for three materials, a triangle — even though each
# spectrum has 50 coordinates. Projected on its two main directions (PCA), the whole cloud of pixels
# is a triangle with the pure spectra at the corners.

# %%
Y = cube.pixels.astype(np.float64)  # (pixels, bands)
truth = cube.true_abundance_pixels  # (pixels, P)
mean = Y.mean(axis=0)
_, s, Vt = np.linalg.svd(Y - mean, full_matrices=False)
explained = s**2 / np.sum(s**2)
print(f"share of the variance along the first {P - 1} directions: {explained[: P - 1].sum():.4f}")


def to_2d(spectra):
    return (np.atleast_2d(spectra) - mean) @ Vt[:2].T


def simplex_plot(ax, points, title, colour_by=truth):
    xy = to_2d(points)
    ax.scatter(xy[:, 0], xy[:, 1], s=5, c=colour_by[:, :3] if colour_by.shape[1] >= 3 else None, alpha=0.7)
    corners = to_2d(M)
    ax.fill(corners[:, 0], corners[:, 1], fill=False, ec="k", lw=1.2, label="true simplex")
    for p in range(P):
        ax.annotate(names[p], corners[p], fontsize=8, ha="center", va="bottom")
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")


fig, ax = plt.subplots(figsize=(5, 4.2))
simplex_plot(ax, Y, "pixels (colour = true abundances as RGB)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 4. Finding the corners: VCA
#
# **Vertex Component Analysis** (Nascimento & Bioucas-Dias, 2005) looks for the most extreme pixels:
# it projects the data on a random direction orthogonal to the corners found so far and takes the
# pixel that goes furthest. It assumes that each material has at least one (nearly) **pure pixel**.
#
# Estimated endmembers come in an arbitrary order: `metrics.align` matches them to the truth
# (Hungarian algorithm on spectral angles) before comparing. The spectral angle distance (SAD) is the
# angle between two spectra, in degrees.

# %%
E_vca, picked = vca(Y, P, seed=0)
order = metrics.align(est_endmembers=E_vca, true_endmembers=M)
E_vca, picked = E_vca[order], picked[order]
print("SAD per endmember (deg):", metrics.sad(E_vca, M))
print("true abundances of the pixels VCA picked:")
print(truth[picked])

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
simplex_plot(axes[0], Y, "VCA picks the corners")
xy = to_2d(E_vca)
axes[0].scatter(xy[:, 0], xy[:, 1], marker="*", s=250, c="red", ec="k", label="VCA endmembers")
axes[0].legend(fontsize=8)
for p in range(P):
    axes[1].plot(wl, M[p], color=f"C{p}", label=f"true {names[p]}")
    axes[1].plot(wl, E_vca[p], "--", color=f"C{p}", label=f"VCA ({metrics.sad(E_vca, M)[p]:.1f} deg)")
axes[1].set(xlabel="wavelength (nm)", ylabel="reflectance", title="VCA endmembers vs truth")
axes[1].legend(fontsize=7, ncol=2)
plt.show()

# %% [markdown]
# ### When there is no pure pixel
#
# Shrink every abundance vector towards the centre of the simplex, so that no pixel has more than
# about 70 % of one material. The cloud becomes a smaller triangle; VCA can only return pixels, so
# its corners move inward and the spectra it reports are mixtures. This is the situation EGU-Net's
# spectral bundles are designed for (notebook 2).

# %%
rng = np.random.default_rng(0)
shrink = 0.6
truth_mixed = shrink * truth + (1 - shrink) / P
clean = truth_mixed @ M
noise = rng.normal(0.0, np.sqrt(np.mean(clean**2) / 10 ** (30 / 10)), clean.shape)  # 30 dB
Y_mixed = clean + noise
print(f"largest abundance of any pixel: {truth_mixed.max():.2f}")

E_mixed, _ = vca(Y_mixed, P, seed=0)
E_mixed = E_mixed[metrics.align(est_endmembers=E_mixed, true_endmembers=M)]
print("SAD per endmember without pure pixels (deg):", metrics.sad(E_mixed, M))

fig, ax = plt.subplots(figsize=(5, 4.2))
simplex_plot(ax, Y_mixed, "highly mixed scene", colour_by=truth_mixed)
xy = to_2d(E_mixed)
ax.scatter(xy[:, 0], xy[:, 1], marker="*", s=250, c="red", ec="k", label="VCA endmembers")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 5. The proportions: FCLS
#
# Given endmembers, **fully constrained least squares** finds, for every pixel, the abundances that
# reproduce its spectrum best while being non-negative and summing to one:
#
# $$\hat{\mathbf a} = \arg\min_{\mathbf a} \lVert \mathbf y - M^\top \mathbf a \rVert^2 \quad\text{s.t.}\quad \mathbf a \ge 0,\; \mathbf 1^\top \mathbf a = 1 .$$
#
# Geometrically, FCLS projects each pixel onto the simplex spanned by the endmembers.
# Abundance RMSE (root mean squared error, on the 0–1 scale) measures how close the maps are.

# %%
A_fcls = fcls(Y, E_vca)  # (pixels, P), aligned to the truth's order already
scores = metrics.score(A_fcls, truth, E_vca, M)
print(f"VCA + FCLS: abundance RMSE {scores['rmse']:.4f}, mean SAD {scores['sad']:.2f} deg")

fig, axes = plt.subplots(2, P, figsize=(2.6 * P, 5.2))
for p in range(P):
    axes[0, p].imshow(A_fcls[:, p].reshape(cube.height, cube.width), vmin=0, vmax=1)
    axes[0, p].set_title(f"FCLS: {names[p]}", fontsize=9)
    axes[1, p].imshow(A[p], vmin=0, vmax=1)
    axes[1, p].set_title(f"truth: {names[p]}", fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
plt.show()


# %% [markdown]
# ## 6. Why the constraints matter
#
# Keep the true endmembers fixed and change only the abundance estimator:
#
# | estimator | non-negative | sums to one |
# |---|---|---|
# | unconstrained least squares (LS) | no | no |
# | sum-to-one constrained LS (SCLS) | no | yes |
# | non-negative LS (NNLS) | yes | no |
# | fully constrained LS (FCLS) | yes | yes |
#
# Without constraints, noise pushes pixels outside the simplex, and their abundances go negative or
# above one: physically meaningless. The lower the SNR, the larger the difference.


# %%
def scls(pixels, endmembers):
    """Least squares with only the sum-to-one constraint (closed form, Lagrange multiplier)."""
    G_inv = np.linalg.inv(endmembers @ endmembers.T)
    a_ls = pixels @ endmembers.T @ G_inv
    ones = np.ones(endmembers.shape[0])
    correction = (a_ls.sum(axis=1, keepdims=True) - 1.0) / (ones @ G_inv @ ones)
    return a_ls - correction * (G_inv @ ones)


def least_squares(pixels, endmembers):
    return np.linalg.lstsq(endmembers.T, pixels.T, rcond=None)[0].T


estimators = {"LS": least_squares, "SCLS": scls, "NNLS": nnls_unmix, "FCLS": fcls}
rows = []
for snr_db in [30, 15] if FAST else [40, 30, 20, 15, 10]:
    scene = make_demo(height=30, width=30, n_bands=50, n_endmembers=3, snr_db=snr_db, seed=0)
    for name, estimator in estimators.items():
        est = estimator(scene.pixels.astype(np.float64), M)
        rows.append(
            {
                "SNR (dB)": snr_db,
                "estimator": name,
                "abundance RMSE": metrics.abundance_rmse(est, scene.true_abundance_pixels),
                "pixels with a negative abundance (%)": 100 * np.mean((est < -1e-9).any(axis=1)),
                "mean |sum - 1|": np.mean(np.abs(est.sum(axis=1) - 1)),
            }
        )
table = pd.DataFrame(rows)
table.pivot(index="SNR (dB)", columns="estimator", values="abundance RMSE").round(4)

# %%
table[table["SNR (dB)"] == table["SNR (dB)"].min()].set_index("estimator").round(4)

# %% [markdown]
# ### …and when sum-to-one hurts
#
# Sum-to-one assumes every pixel is lit the same way. In shade, or on a slope facing away from the
# sun, a pixel is a *darker* mixture: $\mathbf y = s\,M^\top\mathbf a$ with a brightness factor
# $s < 1$. FCLS must still make the abundances sum to one and distorts them; NNLS lets the sum absorb
# the brightness, and dividing its answer by its sum recovers the proportions. That is why
# `unmix(cube, method="sunsal")` fits without sum-to-one and normalises afterwards (real scenes such
# as Samson have such scale differences).

# %%
brightness = rng.uniform(0.5, 1.0, size=(truth.shape[0], 1))  # per-pixel illumination
Y_shaded = brightness * (truth @ M)
Y_shaded = Y_shaded + rng.normal(0.0, np.sqrt(np.mean(Y_shaded**2) / 1000), Y_shaded.shape)  # 30 dB

a_fcls = fcls(Y_shaded, M)
a_nnls = nnls_unmix(Y_shaded, M)
a_renorm = a_nnls / a_nnls.sum(axis=1, keepdims=True)
for label, est in [("FCLS", a_fcls), ("NNLS", a_nnls), ("NNLS, then divided by its sum", a_renorm)]:
    print(f"{label:<30} abundance RMSE {metrics.abundance_rmse(est, truth):.4f}")
print(
    f"correlation of the NNLS sum with the true brightness: {np.corrcoef(a_nnls.sum(axis=1), brightness[:, 0])[0, 1]:.3f}"
)

# %% [markdown]
# ## 7. The same in one line
#
# Everything above is what `unmix` does for `method="vca-fcls"`: it returns an `UnmixingResult`
# with labelled abundance maps and endmembers, aligned to the truth and scored when the cube has one.

# %%
result = unmix(cube, method="vca-fcls", seed=0)
print(result)
result.abundances.plot(col="endmember", vmin=0, vmax=1, size=2.4, yincrease=False)
plt.show()

# %% [markdown]
# ## 8. A real scene (when the data are available)
#
# Samson is a 95 × 95 image with 156 bands and three materials (rock, tree, water), with reference
# abundance maps. It is read from the project's data folder, or downloaded once (see the README).
# Real data break the model's assumptions in many small ways: compare the RMSE with the toy scene.

# %%
try:
    samson = open_cube("samson")
except EguError as exc:
    print(f"Samson is not available here ({exc}); skipping this section.")
else:
    real = unmix(samson, method="vca-fcls", seed=0)
    print(real)
    real.abundances.plot(col="endmember", vmin=0, vmax=1, size=2.4, yincrease=False)
    plt.show()

# %% [markdown]
# ## Exercises
#
# 1. Lower the SNR of the tiny scene to 10 dB. How far do VCA's endmembers move (SAD)? Which
#    estimator in section 6 suffers most?
# 2. Ask VCA for 4 endmembers on the 3-material scene (`vca(Y, 4)`). Where is the fourth corner?
# 3. In section 4, change `shrink`. From which value on does VCA find spectra within 5° of the truth?
# 4. Replace the true endmembers in section 6 by VCA's. Do the conclusions change?
