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
# # 2 · EGU-Net, step by step
#
# EGU-Net (*Endmember-Guided Unmixing Network*; Hong et al., IEEE TNNLS 2021) learns abundances
# with a neural network, but does not let the network invent its materials freely: it first pulls
# nearly pure spectra out of the image itself — **spectral bundles** — and uses them as labelled
# examples that guide the unmixing. This notebook follows the data the way the package does:
#
# **cube → spectral bundles → two-stream network → training → result → views**
#
# and ends with the ablation the paper argues against: the same network without the bundles (`ae`).
# The views need the widget extra (`pip install "egu_widgets[widgets]"`), which Binder has.

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
from IPython.display import display

from egu_widgets import EguError, metrics, open_cube, unmix
from egu_widgets.engine import EGUNet, extract_bundles
from egu_widgets.plotting import network_figure
from egu_widgets.reproduce import engine_model
from egu_widgets.widgets import abundance_inspector, endmember_pairs, progress_callback, training_dashboard

plt.rcParams.update({"figure.dpi": 90})
EPOCHS = 30 if FAST else 200  # 200 is the paper's (and the engine's default) number of epochs
EPOCHS = int(os.environ.get("EGU_EPOCHS", EPOCHS))  # the browser test trains longer, to press Stop

# %% [markdown]
# ## 1. The scene
#
# Samson (95 × 95 pixels, 156 bands, three materials: rock, tree, water) when its files are
# available — here, or downloaded once — otherwise the built-in demo scene. Fast mode takes a crop.

# %%
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

# %% [markdown]
# The classical answer, for reference: VCA endmembers and FCLS abundances (notebook 1).

# %%
baseline = unmix(cube, method="vca-fcls", seed=0)
print(baseline)

# %% [markdown]
# ## 2. Spectral bundles
#
# Cut the image into 5 × 5 patches and run VCA in each one: the spectra it picks are the patch's
# most extreme pixels, i.e. *local* versions of the materials, with their natural variability
# (illumination, moisture, mixtures). Pooled over all patches they form the **bundles**. Each bundle
# spectrum gets **pseudo-abundances** by non-negative least squares against reference endmembers
# (the whole image's N-FINDR endmembers: the pixels spanning the largest simplex, each scaled to a
# maximum of 1 so that a material's brightness does not count as abundance), normalised to sum to
# one. No ground truth is used anywhere. (The authors label against a whole-image VCA with no
# scaling: `extract_bundles(cube, P, mode="faithful")`.)

# %%
bundles = extract_bundles(cube, P, seed=0)
print(bundles)
purity = bundles.labels.max(axis=1)
print(
    f"largest pseudo-abundance per bundle spectrum: median {np.median(purity):.2f}, "
    f"5th percentile {np.percentile(purity, 5):.2f}"
)

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

# %% [markdown]
# The **endmember-pair view** shows, for each material, the reference spectrum (the truth here),
# the estimate (VCA's, for now) and the envelope of the bundle spectra assigned to it. Use the
# selector or the ◀ ▶ buttons to page through the materials.

# %%
pairs_before = endmember_pairs(baseline, cube, bundles=bundles)

# %% [markdown]
# ## 3. The two streams
#
# Both streams share one encoder (bands → 256 → 128 → 32 → P, softmax: abundances that are
# non-negative and sum to one):
#
# * the **endmember stream** maps bundle spectra to their pseudo-abundances (cross-entropy loss);
# * the **unmixing stream** maps image pixels to abundances and decodes them back to spectra
#   (P → 32 → 128 → 256 → bands; mean squared reconstruction error).
#
# Because the encoder is the *same module*, every gradient from the bundles moves the unmixing
# stream too: the bundles guide it. The loss adds the two terms; the default weighs EGU-Net-pw's
# reconstruction at a tenth of the bundle loss (`reconstruction_weight=0.1`, measured in the
# docs' convergence page), `preset="paper"` at 1 as the authors do. The diagram below is not drawn by hand: it traces the engine's
# PyTorch model (which modules each stream calls, in which order, and which are shared).

# %%
model = engine_model("pw", cube.n_bands, P)
display(network_figure(model, title=f"EGU-Net-pw for this scene ({cube.n_bands} bands, P={P})"))
shared = sum(p.numel() for p in model.encoder.parameters())
total = sum(p.numel() for p in model.parameters())
print(f"{total:,} parameters; the encoder's {shared:,} are used by both streams")

# %% [markdown]
# The spatial-spectral variant (`EGUNet("ss")`, method `egu-ss`) makes the unmixing stream
# convolutional and shares only the encoder's third layer, used there as a 1 × 1 convolution:

# %%
display(network_figure(engine_model("ss", cube.n_bands, P), title="EGU-Net-ss"))

# %% [markdown]
# ## 4. Training, live
#
# `TrainingDashboard.run` trains in a background thread, so the cell returns at once and the
# dashboard keeps drawing: progress, the loss terms, the abundance RMSE against the truth (when the
# cube has one) and the learning rate. **Stop** ends training after the current epoch and keeps the
# model trained so far. The next cell waits for the run to finish with `await run`: while it waits
# the kernel still handles the dashboard's buttons, so Stop works under Run All too.

# %%
egu = EGUNet("pw", P, epochs=EPOCHS, seed=0, bundles=bundles)
dashboard = training_dashboard("EGU-Net-pw")["view"]
run = dashboard.run(egu.fit, cube)

# %%
await run  # waits for training to end (or for Stop), with Stop still working
result = egu.result_
print(result)
print(
    f"training took {run.seconds:.1f} s"
    + (" (stopped early: what follows uses the partial model)" if result.partial else "")
)

# %% [markdown]
# ## 5. Inspecting the result
#
# The **abundance inspector** shows every abundance map beside the truth and the error. Click a
# pixel (or type its row and column): the plot below shows its observed spectrum against the
# network's own reconstruction (the decoder's output for that pixel, `egu.reconstruct(cube)`) and
# the residual between them, and the bars its estimated and true abundances. The maps share pan and
# zoom; the image beside them shows one band of the cube (move the band slider).

# %%
inspector = abundance_inspector(result, cube, reconstruct=egu)

# %% [markdown]
# The endmembers in EGU-Net's result are the reference spectra its bundle labels refer to (the
# whole-image N-FINDR spectra): the network's output *p* is trained to be the abundance of reference spectrum
# *p*. The view shows them against the truth, with the bundles around them. The decoder's own
# spectra (`egu.decoder_endmembers_`) are printed below: they only have to reconstruct pixels, and
# are usually further from the truth.

# %%
pairs_after = endmember_pairs(result, cube, bundles=bundles)
decoded = egu.decoder_endmembers_
order = metrics.align(est_endmembers=decoded, true_endmembers=cube.true_endmembers)
print("SAD to the truth (deg), result's endmembers:", np.round(result.scores["sad_per_endmember"], 2))
print("SAD to the truth (deg), decoder's spectra:  ", np.round(metrics.sad(decoded[order], cube.true_endmembers), 2))

# %% [markdown]
# ## 6. Ablation: the same network without bundles
#
# `method="ae"` trains the unmixing stream alone — a plain unmixing autoencoder, with the same
# architecture, epochs and seed, but no endmember stream. Whatever difference you see below is what
# the bundles contribute on this scene.

# %%
ae = unmix(cube, method="ae", epochs=EPOCHS, seed=0, callbacks=[progress_callback("AE ablation")])
print(ae)

# %%
runs = {"VCA + FCLS": baseline, "AE (no bundles)": ae, "EGU-Net-pw": result}
names = cube.endmember_names
table = pd.DataFrame(
    {
        label: {
            "abundance RMSE": r.rmse,
            "mean SAD (deg)": r.sad,
            **{f"RMSE {m}": v for m, v in zip(names, r.scores["rmse_per_endmember"])},
        }
        for label, r in runs.items()
    }
).T
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

# %% [markdown]
# ## Where to go next
#
# * `EGUNet("ss", P)` (or `unmix(cube, method="egu-ss")`) trains the spatial-spectral variant.
# * `extract_bundles(cube, P, stride=2, dedup=True, project=False)` builds bundles from overlapping
#   patches with duplicates removed; docs/bundles.md shows how each bundle option fared.
# * Notebook 3 runs all this on a file of your own; notebook 4 reruns the paper's comparison.
