"""Write the four notebooks of this folder from the cell texts below, without outputs.

    python notebooks/build_notebooks.py          # rewrite notebooks/0*.ipynb
    python notebooks/build_notebooks.py --check  # exit 1 if a committed notebook differs

The notebooks are the product; this script only keeps them reviewable as plain text and makes
sure the committed files carry no outputs or execution counts. Edit the cells here, run the
script, and commit both. Every notebook reads ``EGU_FAST`` in its first code cell: ``EGU_FAST=1``
makes it small enough for CI (tests/test_notebooks.py executes all four that way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

FAST_CELL = '''\
import os

# EGU_FAST=1 (set by the test-suite and CI) runs a small version of every step; leave it unset
# for the full version.
FAST = os.environ.get("EGU_FAST", "0").strip().lower() not in ("", "0", "false", "no")
print("fast mode" if FAST else "full mode")'''


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# =============================================================================================
# 01 — linear mixing basics (for a class)
# =============================================================================================
NB01 = [
    md(r"""
# 1 · The linear mixing model

A hyperspectral camera measures, in every pixel, a whole spectrum: the reflectance in a few
hundred narrow bands. A pixel on the ground is usually larger than one material patch, so its
spectrum is a **mixture**. *Unmixing* answers: which pure materials (**endmembers**) are in the
scene, and in which proportions (**abundances**) are they in each pixel?

This notebook works on a tiny scene built from known materials, so that every answer can be
checked against the truth. You will

1. mix a pixel by hand,
2. see why mixed pixels fill a **simplex** (a triangle for three materials),
3. find its corners with **VCA** and the proportions with **FCLS**, and
4. see what the two constraints on abundances — **non-negativity** and **sum-to-one** — buy, and
   when one of them hurts.

Run the cells from top to bottom (*Run ▸ Run All Cells*).
"""),
    code(FAST_CELL),
    code('''
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd

from egu_widgets import EguError, metrics, open_cube, unmix
from egu_widgets.classic import fcls, nnls_unmix, vca
from egu_widgets.cube import make_demo

np.set_printoptions(precision=3, suppress=True)
plt.rcParams.update({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3})
'''),
    md(r"""
## 1. A tiny scene

`make_demo` builds a scene from three smooth reflectance spectra and smooth abundance maps, and
adds white noise at a chosen signal-to-noise ratio (SNR, in dB). It keeps the truth with the cube.
"""),
    code('''
cube = make_demo(height=30, width=30, n_bands=50, n_endmembers=3, snr_db=30, seed=0)
print(cube)

M = cube.true_endmembers       # (P, bands): one pure spectrum per row
A = cube.true_abundances       # (P, rows, cols): one abundance map per material
names = cube.endmember_names
wl = cube.wavelengths          # nm
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
'''),
    md(r"""
## 2. Mixing one pixel by hand

The **linear mixing model** says a pixel's spectrum is the abundance-weighted sum of the
endmember spectra, plus noise:

$$\mathbf{y} = \sum_{p=1}^{P} a_p\,\mathbf{m}_p + \mathbf{n}, \qquad a_p \ge 0, \qquad \sum_p a_p = 1 .$$

Take the most mixed pixel of the scene and rebuild its spectrum from its abundances.
"""),
    code('''
entropy = -(A * np.log(A + 1e-12)).sum(axis=0)
row, col = np.unravel_index(entropy.argmax(), entropy.shape)
a = A[:, row, col]
y_observed = cube.image[row, col]
y_model = a @ M                 # sum_p a_p m_p

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
'''),
    md(r"""
## 3. Simplex geometry

Because the abundances are non-negative and sum to one, every noise-free pixel lies inside the
**simplex** whose corners are the endmembers: for three materials, a triangle — even though each
spectrum has 50 coordinates. Projected on its two main directions (PCA), the whole cloud of pixels
is a triangle with the pure spectra at the corners.
"""),
    code('''
Y = cube.pixels.astype(np.float64)                # (pixels, bands)
truth = cube.true_abundance_pixels                  # (pixels, P)
mean = Y.mean(axis=0)
_, s, Vt = np.linalg.svd(Y - mean, full_matrices=False)
explained = s**2 / np.sum(s**2)
print(f"share of the variance along the first {P - 1} directions: {explained[:P - 1].sum():.4f}")


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
'''),
    md(r"""
## 4. Finding the corners: VCA

**Vertex Component Analysis** (Nascimento & Bioucas-Dias, 2005) looks for the most extreme pixels:
it projects the data on a random direction orthogonal to the corners found so far and takes the
pixel that goes furthest. It assumes that each material has at least one (nearly) **pure pixel**.

Estimated endmembers come in an arbitrary order: `metrics.align` matches them to the truth
(Hungarian algorithm on spectral angles) before comparing. The spectral angle distance (SAD) is the
angle between two spectra, in degrees.
"""),
    code('''
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
'''),
    md(r"""
### When there is no pure pixel

Shrink every abundance vector towards the centre of the simplex, so that no pixel has more than
about 70 % of one material. The cloud becomes a smaller triangle; VCA can only return pixels, so
its corners move inward and the spectra it reports are mixtures. This is the situation EGU-Net's
spectral bundles are designed for (notebook 2).
"""),
    code('''
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
'''),
    md(r"""
## 5. The proportions: FCLS

Given endmembers, **fully constrained least squares** finds, for every pixel, the abundances that
reproduce its spectrum best while being non-negative and summing to one:

$$\hat{\mathbf a} = \arg\min_{\mathbf a} \lVert \mathbf y - M^\top \mathbf a \rVert^2 \quad\text{s.t.}\quad \mathbf a \ge 0,\; \mathbf 1^\top \mathbf a = 1 .$$

Geometrically, FCLS projects each pixel onto the simplex spanned by the endmembers.
Abundance RMSE (root mean squared error, on the 0–1 scale) measures how close the maps are.
"""),
    code('''
A_fcls = fcls(Y, E_vca)                       # (pixels, P), aligned to the truth's order already
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
'''),
    md(r"""
## 6. Why the constraints matter

Keep the true endmembers fixed and change only the abundance estimator:

| estimator | non-negative | sums to one |
|---|---|---|
| unconstrained least squares (LS) | no | no |
| sum-to-one constrained LS (SCLS) | no | yes |
| non-negative LS (NNLS) | yes | no |
| fully constrained LS (FCLS) | yes | yes |

Without constraints, noise pushes pixels outside the simplex, and their abundances go negative or
above one: physically meaningless. The lower the SNR, the larger the difference.
"""),
    code('''
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
for snr_db in ([30, 15] if FAST else [40, 30, 20, 15, 10]):
    scene = make_demo(height=30, width=30, n_bands=50, n_endmembers=3, snr_db=snr_db, seed=0)
    for name, estimator in estimators.items():
        est = estimator(scene.pixels.astype(np.float64), M)
        rows.append({
            "SNR (dB)": snr_db,
            "estimator": name,
            "abundance RMSE": metrics.abundance_rmse(est, scene.true_abundance_pixels),
            "pixels with a negative abundance (%)": 100 * np.mean((est < -1e-9).any(axis=1)),
            "mean |sum - 1|": np.mean(np.abs(est.sum(axis=1) - 1)),
        })
table = pd.DataFrame(rows)
table.pivot(index="SNR (dB)", columns="estimator", values="abundance RMSE").round(4)
'''),
    code('''
table[table["SNR (dB)"] == table["SNR (dB)"].min()].set_index("estimator").round(4)
'''),
    md(r"""
### …and when sum-to-one hurts

Sum-to-one assumes every pixel is lit the same way. In shade, or on a slope facing away from the
sun, a pixel is a *darker* mixture: $\mathbf y = s\,M^\top\mathbf a$ with a brightness factor
$s < 1$. FCLS must still make the abundances sum to one and distorts them; NNLS lets the sum absorb
the brightness, and dividing its answer by its sum recovers the proportions. That is why
`unmix(cube, method="sunsal")` fits without sum-to-one and normalises afterwards (real scenes such
as Samson have such scale differences).
"""),
    code('''
brightness = rng.uniform(0.5, 1.0, size=(truth.shape[0], 1))  # per-pixel illumination
Y_shaded = brightness * (truth @ M)
Y_shaded = Y_shaded + rng.normal(0.0, np.sqrt(np.mean(Y_shaded**2) / 1000), Y_shaded.shape)  # 30 dB

a_fcls = fcls(Y_shaded, M)
a_nnls = nnls_unmix(Y_shaded, M)
a_renorm = a_nnls / a_nnls.sum(axis=1, keepdims=True)
for label, est in [("FCLS", a_fcls), ("NNLS", a_nnls), ("NNLS, then divided by its sum", a_renorm)]:
    print(f"{label:<30} abundance RMSE {metrics.abundance_rmse(est, truth):.4f}")
print(f"correlation of the NNLS sum with the true brightness: {np.corrcoef(a_nnls.sum(axis=1), brightness[:, 0])[0, 1]:.3f}")
'''),
    md(r"""
## 7. The same in one line

Everything above is what `unmix` does for `method="vca-fcls"`: it returns an `UnmixingResult`
with labelled abundance maps and endmembers, aligned to the truth and scored when the cube has one.
"""),
    code('''
result = unmix(cube, method="vca-fcls", seed=0)
print(result)
result.abundances.plot(col="endmember", vmin=0, vmax=1, size=2.4, yincrease=False)
plt.show()
'''),
    md(r"""
## 8. A real scene (when the data are available)

Samson is a 95 × 95 image with 156 bands and three materials (rock, tree, water), with reference
abundance maps. It is read from the project's data folder, or downloaded once (see the README).
Real data break the model's assumptions in many small ways: compare the RMSE with the toy scene.
"""),
    code('''
try:
    samson = open_cube("samson")
except EguError as exc:
    print(f"Samson is not available here ({exc}); skipping this section.")
else:
    real = unmix(samson, method="vca-fcls", seed=0)
    print(real)
    real.abundances.plot(col="endmember", vmin=0, vmax=1, size=2.4, yincrease=False)
    plt.show()
'''),
    md(r"""
## Exercises

1. Lower the SNR of the tiny scene to 10 dB. How far do VCA's endmembers move (SAD)? Which
   estimator in section 6 suffers most?
2. Ask VCA for 4 endmembers on the 3-material scene (`vca(Y, 4)`). Where is the fourth corner?
3. In section 4, change `shrink`. From which value on does VCA find spectra within 5° of the truth?
4. Replace the true endmembers in section 6 by VCA's. Do the conclusions change?
"""),
]


# =============================================================================================
# 02 — EGU-Net walkthrough
# =============================================================================================
NB02 = [
    md(r"""
# 2 · EGU-Net, step by step

EGU-Net (*Endmember-Guided Unmixing Network*; Hong et al., IEEE TNNLS 2021) learns abundances
with a neural network, but does not let the network invent its materials freely: it first pulls
nearly pure spectra out of the image itself — **spectral bundles** — and uses them as labelled
examples that guide the unmixing. This notebook follows the data the way the package does:

**cube → spectral bundles → two-stream network → training → result → views**

and ends with the ablation the paper argues against: the same network without the bundles (`ae`).
The views need the widget extra (`pip install "egu_widgets[widgets]"`), which Binder has.
"""),
    code(FAST_CELL),
    code('''
import numpy as np
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from egu_widgets import EguError, metrics, open_cube, unmix
from egu_widgets.engine import EGUNet, extract_bundles
from egu_widgets.plotting import network_figure
from egu_widgets.reproduce import engine_model
from egu_widgets.widgets import abundance_inspector, endmember_pairs, progress_callback, training_dashboard

plt.rcParams.update({"figure.dpi": 90})
EPOCHS = 30 if FAST else 200   # 200 is the paper's (and the engine's default) number of epochs
'''),
    md(r"""
## 1. The scene

Samson (95 × 95 pixels, 156 bands, three materials: rock, tree, water) when its files are
available — here, or downloaded once — otherwise the built-in demo scene. Fast mode takes a crop.
"""),
    code('''
try:
    cube = open_cube("samson")
except EguError as exc:
    print(f"Samson is not available ({exc}); using the built-in demo scene instead.")
    cube = open_cube("demo")
if FAST:  # a 48 x 48 window (or the whole scene, if it is smaller)
    top = max(0, cube.height // 2 - 24)
    cube = cube.isel(y=slice(top, top + 48), x=slice(0, 48))
P = cube.n_true_endmembers
print(cube)
'''),
    md(r"""
The classical answer, for reference: VCA endmembers and FCLS abundances (notebook 1).
"""),
    code('''
baseline = unmix(cube, method="vca-fcls", seed=0)
print(baseline)
'''),
    md(r"""
## 2. Spectral bundles

Cut the image into 5 × 5 patches and run VCA in each one: the spectra it picks are the patch's
most extreme pixels, i.e. *local* versions of the materials, with their natural variability
(illumination, moisture, mixtures). Pooled over all patches they form the **bundles**. Each bundle
spectrum gets **pseudo-abundances** by non-negative least squares against reference endmembers
(the whole image's N-FINDR endmembers: the pixels spanning the largest simplex, each scaled to a
maximum of 1 so that a material's brightness does not count as abundance), normalised to sum to
one. No ground truth is used anywhere. (The authors label against a whole-image VCA with no
scaling: `extract_bundles(cube, P, mode="faithful")`.)
"""),
    code('''
bundles = extract_bundles(cube, P, seed=0)
print(bundles)
purity = bundles.labels.max(axis=1)
print(f"largest pseudo-abundance per bundle spectrum: median {np.median(purity):.2f}, "
      f"5th percentile {np.percentile(purity, 5):.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].hist(purity, bins=30)
axes[0].set(xlabel="largest pseudo-abundance", ylabel="bundle spectra", title="how pure are the bundles?")
group = bundles.labels.argmax(axis=1)
wl = cube.wavelengths
for p in range(P):
    members = bundles.spectra[group == p]
    axes[1].plot(wl, members[:40].T, color=f"C{p}", alpha=0.25, lw=0.7)
    axes[1].plot(wl, bundles.reference[p], color=f"C{p}", lw=2, label=f"reference {p + 1} ({len(members)} spectra)")
axes[1].set(xlabel="wavelength (nm)", ylabel="reflectance", title="bundle spectra grouped by their largest label")
axes[1].legend(fontsize=8)
plt.show()
'''),
    md(r"""
The **endmember-pair view** shows, for each material, the reference spectrum (the truth here),
the estimate (VCA's, for now) and the envelope of the bundle spectra assigned to it. Use the
selector or the ◀ ▶ buttons to page through the materials.
"""),
    code('''
pairs_before = endmember_pairs(baseline, cube, bundles=bundles)
'''),
    md(r"""
## 3. The two streams

Both streams share one encoder (bands → 256 → 128 → 32 → P, softmax: abundances that are
non-negative and sum to one):

* the **endmember stream** maps bundle spectra to their pseudo-abundances (cross-entropy loss);
* the **unmixing stream** maps image pixels to abundances and decodes them back to spectra
  (P → 32 → 128 → 256 → bands; mean squared reconstruction error).

Because the encoder is the *same module*, every gradient from the bundles moves the unmixing
stream too: the bundles guide it. The diagram below is not drawn by hand: it traces the engine's
PyTorch model (which modules each stream calls, in which order, and which are shared).
"""),
    code('''
model = engine_model("pw", cube.n_bands, P)
display(network_figure(model, title=f"EGU-Net-pw for this scene ({cube.n_bands} bands, P={P})"))
shared = sum(p.numel() for p in model.encoder.parameters())
total = sum(p.numel() for p in model.parameters())
print(f"{total:,} parameters; the encoder's {shared:,} are used by both streams")
'''),
    md(r"""
The spatial-spectral variant (`EGUNet("ss")`, method `egu-ss`) makes the unmixing stream
convolutional and shares only the encoder's third layer, used there as a 1 × 1 convolution:
"""),
    code('''
display(network_figure(engine_model("ss", cube.n_bands, P), title="EGU-Net-ss"))
'''),
    md(r"""
## 4. Training, live

`TrainingDashboard.run` trains in a background thread, so the cell returns at once and the
dashboard keeps drawing: progress, the loss terms, the abundance RMSE against the truth (when the
cube has one) and the learning rate. **Stop** ends training after the current epoch and keeps the
model trained so far. The next cell waits for the run to finish.
"""),
    code('''
egu = EGUNet("pw", P, epochs=EPOCHS, seed=0, bundles=bundles)
dashboard = training_dashboard("EGU-Net-pw")["view"]
run = dashboard.run(egu.fit, cube)
'''),
    code('''
run.result()            # waits for training to end (or for Stop)
result = egu.result_
print(result)
print(f"training took {run.seconds:.1f} s")
'''),
    md(r"""
## 5. Inspecting the result

The **abundance inspector** shows every abundance map beside the truth and the error. Click a
pixel (or type its row and column): the plot below shows its observed spectrum against the
network's reconstruction, and the bars its estimated and true abundances. The maps share pan and
zoom.
"""),
    code('''
inspector = abundance_inspector(result, cube)
'''),
    md(r"""
The endmembers in EGU-Net's result are the reference spectra its bundle labels refer to (the
whole-image N-FINDR spectra): the network's output *p* is trained to be the abundance of reference spectrum
*p*. The view shows them against the truth, with the bundles around them. The decoder's own
spectra (`egu.decoder_endmembers_`) are printed below: they only have to reconstruct pixels, and
are usually further from the truth.
"""),
    code('''
pairs_after = endmember_pairs(result, cube, bundles=bundles)
decoded = egu.decoder_endmembers_
order = metrics.align(est_endmembers=decoded, true_endmembers=cube.true_endmembers)
print("SAD to the truth (deg), result's endmembers:", np.round(result.scores["sad_per_endmember"], 2))
print("SAD to the truth (deg), decoder's spectra:  ", np.round(metrics.sad(decoded[order], cube.true_endmembers), 2))
'''),
    md(r"""
## 6. Ablation: the same network without bundles

`method="ae"` trains the unmixing stream alone — a plain unmixing autoencoder, with the same
architecture, epochs and seed, but no endmember stream. Whatever difference you see below is what
the bundles contribute on this scene.
"""),
    code('''
ae = unmix(cube, method="ae", epochs=EPOCHS, seed=0, callbacks=[progress_callback("AE ablation")])
print(ae)
'''),
    code('''
runs = {"VCA + FCLS": baseline, "AE (no bundles)": ae, "EGU-Net-pw": result}
names = cube.endmember_names
table = pd.DataFrame({
    label: {"abundance RMSE": r.rmse, "mean SAD (deg)": r.sad,
            **{f"RMSE {m}": v for m, v in zip(names, r.scores["rmse_per_endmember"])}}
    for label, r in runs.items()
}).T
display(table.round(4))

fig, axes = plt.subplots(P, 1 + len(runs), figsize=(2.3 * (1 + len(runs)), 2.3 * P), squeeze=False)
for p, name in enumerate(names):
    axes[p, 0].imshow(cube.true_abundances[p], vmin=0, vmax=1)
    axes[p, 0].set_ylabel(name)
    for c, r in enumerate(runs.values(), start=1):
        axes[p, c].imshow(r.abundances.sel(endmember=name), vmin=0, vmax=1)
for c, label in enumerate(["truth"] + list(runs)):
    axes[0, c].set_title(label, fontsize=9)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
plt.show()

fig, ax = plt.subplots(figsize=(6, 3.2))
for label, r in (("AE (no bundles)", ae), ("EGU-Net-pw", result)):
    rmse = r.history["rmse"]
    ok = np.isfinite(rmse)
    ax.plot(np.arange(1, rmse.size + 1)[ok], rmse[ok], marker=".", label=label)
ax.axhline(baseline.rmse, color="k", ls=":", label="VCA + FCLS")
ax.set(xlabel="epoch", ylabel="abundance RMSE", title="RMSE during training")
ax.legend()
plt.show()
'''),
    md(r"""
## Where to go next

* `EGUNet("ss", P)` (or `unmix(cube, method="egu-ss")`) trains the spatial-spectral variant.
* `extract_bundles(cube, P, mode="overlap")` builds bundles from overlapping patches with duplicates
  removed; `n_clusters=` reduces them by k-means.
* Notebook 3 runs all this on a file of your own; notebook 4 reruns the paper's comparison.
"""),
]


# =============================================================================================
# 03 — explore your own cube
# =============================================================================================
NB03 = [
    md(r"""
# 3 · Explore your own cube

From a file on disk to abundance maps you can save: **open → look → choose the number of
materials P → unmix → inspect → save**.

`open_cube` reads ENVI images (`.hdr` + data file), MATLAB `.mat` files (the common unmixing
layouts) and netCDF files written by this package. To make the notebook run anywhere, it first
*writes* a small example scene in all three formats; point `CUBE_FILE` at your own file instead
(or set the environment variable `EGU_CUBE` before starting Jupyter).
"""),
    code(FAST_CELL),
    code('''
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
import scipy.io
import spectral.io.envi as envi

from egu_widgets import UnmixingResult, metrics, open_cube, unmix
from egu_widgets.cube import make_demo
from egu_widgets.plotting import save_figures
from egu_widgets.widgets import abundance_inspector, endmember_pairs, progress_callback

plt.rcParams.update({"figure.dpi": 90})
OUT = Path(os.environ.get("EGU_OUTPUT", "egu-explore-output")).absolute()
OUT.mkdir(parents=True, exist_ok=True)
print("outputs go to", OUT)
'''),
    md(r"""
## 1. An example file (skip this if you have your own)

A 40 × 56 scene with 80 bands and four materials, written as ENVI, as a MATLAB file (pixels as
columns of a `bands × pixels` matrix in MATLAB's column order, with `nRow`/`nCol`; the truth in a
second file with `A` and `M`), and as netCDF.
"""),
    code('''
example = make_demo(height=40, width=56, n_bands=80, n_endmembers=4, snr_db=35, seed=3)
folder = OUT / "example"
folder.mkdir(exist_ok=True)

# ENVI: a header with the wavelengths, and the raw image
envi.save_image(str(folder / "scene.hdr"), example.image.astype(np.float32), force=True, ext=".img",
                metadata={"wavelength": [f"{w:.2f}" for w in example.wavelengths], "wavelength units": "Nanometers"})

# MATLAB, column-major pixel order as MATLAB writes it; the truth in its own file
rows, cols, bands = example.shape
scipy.io.savemat(folder / "scene.mat", {"Y": example.image.reshape(-1, bands, order="F").T,
                                        "nRow": rows, "nCol": cols, "nBand": bands})
scipy.io.savemat(folder / "truth.mat", {"A": example.true_abundances.transpose(1, 2, 0).reshape(-1, 4, order="F").T,
                                        "M": example.true_endmembers.T})

# netCDF (this package's own format, truth included)
example.to_netcdf(folder / "scene.nc")
print(sorted(p.name for p in folder.iterdir()))
'''),
    md(r"""
## 2. Open it

All three files hold the same pixels; `open_cube` reads each layout (and checks for NaN and
negative values, which real files sometimes have: see `invalid=` and `negative=` in its help).
"""),
    code('''
CUBE_FILE = os.environ.get("EGU_CUBE") or str(folder / "scene.hdr")   # <- your file here

for path in [folder / "scene.hdr", folder / "scene.mat", folder / "scene.nc"]:
    print(f"{path.name:>10}: {open_cube(path)}")
same = np.array_equal(open_cube(folder / "scene.mat").image, open_cube(folder / "scene.hdr").image)
print("the .mat and ENVI copies hold identical pixels:", same)

cube = open_cube(CUBE_FILE)
print("working on:", cube)
'''),
    md(r"""
## 3. Look at it

A false-colour picture (three bands as red, green, blue) and the spectra: the mean with its
spread, and a few single pixels.
"""),
    code('''
image = cube.image
wl = cube.wavelengths if cube.wavelengths is not None else np.arange(cube.n_bands)
picks = [int(np.argmin(np.abs(wl - t))) for t in np.quantile(wl, [0.8, 0.5, 0.2])]
rgb = image[:, :, picks].astype(np.float64)
rgb = (rgb - np.percentile(rgb, 2)) / (np.percentile(rgb, 98) - np.percentile(rgb, 2))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].imshow(np.clip(rgb, 0, 1))
axes[0].set_title(f"bands {picks} as RGB")
pixels = cube.pixels.astype(np.float64)
mean, std = pixels.mean(axis=0), pixels.std(axis=0)
axes[1].fill_between(wl, mean - std, mean + std, alpha=0.3, label="mean ± std")
axes[1].plot(wl, mean, lw=2)
rng = np.random.default_rng(0)
for i in rng.choice(len(pixels), 5, replace=False):
    axes[1].plot(wl, pixels[i], lw=0.8)
axes[1].set(xlabel=f"wavelength ({cube.wavelength_units or 'band'})", ylabel="reflectance", title="spectra")
axes[1].legend()
plt.show()
'''),
    md(r"""
## 4. How many materials?

Two quick views of the same question:

* the **eigenvalues** of the pixels' covariance: P materials span P − 1 directions of real
  signal above a flat floor of noise;
* the **reconstruction error** of VCA + FCLS as P grows: it drops while each new endmember
  explains real structure and levels off once it only fits noise.

Neither is a proof; look at both, pick P, and check the maps it gives.
"""),
    code('''
eig = np.linalg.svd(pixels - mean, compute_uv=False) ** 2 / len(pixels)

candidates = list(range(2, 7 if FAST else 9))
errors = []
for p in candidates:
    r = unmix(cube, method="vca-fcls", n_endmembers=p, seed=0)
    errors.append(metrics.reconstruction_rmse(pixels, r.abundance_pixels @ r.endmembers.values))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
axes[0].semilogy(np.arange(1, 21), eig[:20], "o-")
axes[0].set(xlabel="component", ylabel="variance", title="eigenvalues")
axes[1].plot(candidates, errors, "o-")
axes[1].set(xlabel="P", ylabel="reconstruction RMSE", title="VCA + FCLS fit", xticks=candidates)
plt.show()

# A simple rule: count the eigenvalues standing clearly (10x) above the noise floor (the median of
# the smaller half); P materials give P - 1 of them.
floor = np.median(eig[len(eig) // 2:])
P = int(np.clip(np.sum(eig > 10 * floor) + 1, candidates[0], candidates[-1]))
print("eigenvalues / noise floor:", np.round(eig[:8] / floor, 1))
print("VCA + FCLS reconstruction RMSE for P =", candidates, ":", np.round(errors, 4))
print("suggested P =", P)
'''),
    md(r"""
Change `P` here if your eyes disagree with the rule. In a live notebook the slider redraws the
VCA + FCLS maps for any P.
"""),
    code('''
# P = 4   # <- override the suggestion here

import ipywidgets as widgets


def show_maps(p):
    r = unmix(cube, method="vca-fcls", n_endmembers=p, seed=0)
    r.abundances.plot(col="endmember", col_wrap=4, vmin=0, vmax=1, size=2.0, yincrease=False)
    plt.show()


widgets.interact(show_maps, p=widgets.IntSlider(value=P, min=2, max=candidates[-1], description="P"));
'''),
    md(r"""
## 5. Unmix

EGU-Net-pw with the chosen P (its bundles and reference endmembers are computed from the cube;
no truth is needed). The progress shows as a dashboard in a notebook. VCA + FCLS runs alongside
for comparison.
"""),
    code('''
EPOCHS = 25 if FAST else 200
baseline = unmix(cube, method="vca-fcls", n_endmembers=P, seed=0)
result = unmix(cube, method="egu-pw", n_endmembers=P, epochs=EPOCHS, seed=0,
               callbacks=[progress_callback("EGU-Net-pw")])
print(baseline)
print(result)
'''),
    md(r"""
## 6. Inspect

Without truth, the inspector shows the maps and, for any pixel you click, its spectrum against
the network's reconstruction. The endmember-pair view compares EGU-Net's spectra with VCA's.
"""),
    code('''
inspector = abundance_inspector(result, cube)
'''),
    code('''
pairs = endmember_pairs(result, cube, reference=baseline.endmembers.values, reference_label="VCA", align=True)
'''),
    md(r"""
## 7. Save

The result as netCDF (abundances, endmembers, training history, configuration; `UnmixingResult.open`
reads it back identical), the figures as PNG, the abundance maps as an ENVI image for GIS tools and
the endmember spectra as CSV.
"""),
    code('''
result.to_netcdf(OUT / "result.nc")
again = UnmixingResult.open(OUT / "result.nc")
print("reopened identical:", again == result)

figures = save_figures(result, cube, OUT, prefix="egu-pw-")
maps = result.abundances.transpose("y", "x", "endmember").values.astype(np.float32)
envi.save_image(str(OUT / "abundances.hdr"), maps, force=True, ext=".img",
                metadata={"band names": [str(n) for n in result.abundances["endmember"].values]})
result.endmembers.to_pandas().T.to_csv(OUT / "endmembers.csv")
print("wrote:", sorted(p.name for p in OUT.iterdir() if p.is_file()))
'''),
    md(r"""
## 8. Only for the example: how good was it?

The example's truth sits in `truth.mat`; opened together, `unmix` scores the result (Hungarian
matching of estimated to true materials, abundance RMSE on the 0–1 scale, SAD in degrees).
"""),
    code('''
scored_cube = open_cube(folder / "scene.mat", truth=folder / "truth.mat")
if P == scored_cube.n_true_endmembers:
    for method in ("vca-fcls", "egu-pw"):
        r = unmix(scored_cube, method=method, seed=0, **({"epochs": EPOCHS} if method == "egu-pw" else {}))
        print(f"{method:>9}: abundance RMSE {r.rmse:.4f}, mean SAD {r.sad:.2f} deg")
else:
    print(f"P={P} differs from the example's 4 materials; set P = 4 above to score against the truth.")
'''),
]


# =============================================================================================
# 04 — reproduce the paper
# =============================================================================================
NB04 = [
    md(r"""
# 4 · Reproduce the paper's comparison

`reproduce()` (or `egu-widgets reproduce --out DIR` in a terminal) unmixes the three scenes of
the EGU-Net paper's comparison — the synthetic scene (the paper's 200 × 200 abundance maps mixed
with five USGS spectra at 30 dB), Samson and Jasper Ridge — with FCLS and SUnSAL on VCA
endmembers, the `ae` ablation, EGU-Net-pw and EGU-Net-ss, over several seeds, and writes a table
(median and range over seeds), the figures and every result.

* **Fast mode** (`EGU_FAST=1`, or `FAST = True` below): cropped scenes, 20 epochs, 2 seeds —
  a few minutes; it shows that everything runs, not the paper's numbers.
* **Full mode**: whole scenes, 3 seeds, every method's default settings (200 epochs) — under
  an hour on two CPU cores; the table header records what ran and how long it took. A finished full run is reused when you open this notebook again; set `RERUN = True` to
  redo it.

The datasets are read from the data folder or downloaded once (see the README).
"""),
    code(FAST_CELL),
    code('''
# FAST = True   # <- uncomment for the quick version
RERUN = False

from pathlib import Path

from IPython.display import Image, Markdown, display

from egu_widgets import EguError
from egu_widgets.reproduce import ReproduceReport, reproduce

OUT = Path(os.environ.get("EGU_OUTPUT", "egu-reproduce-output")).absolute() / ("fast" if FAST else "full")
print("results go to", OUT)
'''),
    code('''
report = None
if not FAST and not RERUN and (OUT / "manifest.json").exists():
    report = ReproduceReport.open(OUT)
    print(f"reusing the full run in {report.out_dir} ({report.seconds:.0f} s); set RERUN = True to run it again")
else:
    try:
        report = reproduce(OUT, fast=FAST)
    except EguError as exc:
        print(f"could not run the comparison: {exc}")
report
'''),
    md(r"""
## The table
"""),
    code('''
if report is not None:
    display(Markdown(report.table_markdown))
'''),
    md(r"""
## Summary and abundance maps

Every map is from the seed whose RMSE is the median of its method; all maps share one 0–1 colour
scale.
"""),
    code('''
def show(name):
    path = report.out_dir / name
    if path.exists():
        display(Markdown(f"**{name}**"))
        display(Image(filename=str(path), width=1000))


if report is not None:
    show("summary.png")
    for ds in report.plan.datasets:
        show(f"abundances-{ds}.png")
'''),
    md(r"""
## Endmembers and training curves
"""),
    code('''
if report is not None:
    for ds in report.plan.datasets:
        show(f"endmembers-{ds}.png")
        show(f"training-{ds}.png")
'''),
    md(r"""
## The network, traced from the model
"""),
    code('''
if report is not None:
    show("network-egu-pw.png")
    show("network-egu-ss.png")
'''),
    md(r"""
## Every result is saved

Each run is a netCDF file under `results/`; open any of them to look closer, for example with
the views of notebook 2.
"""),
    code('''
if report is not None:
    saved = sorted(str(p.relative_to(report.out_dir)) for p in (report.out_dir / "results").rglob("*.nc"))
    print(len(saved), "result files, e.g.", saved[:3])
    first = report.runs[0]
    print(report.result(first.dataset, first.method, first.seed))
'''),
]


# =============================================================================================
NOTEBOOKS = {
    "01_linear_mixing_basics.ipynb": NB01,
    "02_egu_net_walkthrough.ipynb": NB02,
    "03_explore_your_own_cube.ipynb": NB03,
    "04_reproduce_the_paper.ipynb": NB04,
}


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids keep diffs small
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the files on disk")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = nbformat.writes(build(cells)) + "\n"
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run python notebooks/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
