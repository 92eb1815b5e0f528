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
# # 3 · Explore your own cube
#
# From a file on disk to abundance maps you can save: **open → look → choose the number of
# materials P → unmix → inspect → save**.
#
# `open_cube` reads ENVI images (`.hdr` + data file), MATLAB `.mat` files (the common unmixing
# layouts) and netCDF files written by this package. To make the notebook run anywhere, it first
# *writes* a small example scene in all three formats; point `CUBE_FILE` at your own file instead
# (or set the environment variable `EGU_CUBE` before starting Jupyter).

# %%
import os

# EGU_FAST=1 (set by the test-suite and CI) runs a small version of every step; leave it unset
# for the full version.
FAST = os.environ.get("EGU_FAST", "0").strip().lower() not in ("", "0", "false", "no")
print("fast mode" if FAST else "full mode")

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import scipy.io
import spectral.io.envi as envi

from egu_widgets import UnmixingResult, metrics, open_cube, unmix
from egu_widgets.classic.subspace import estimate_n_endmembers
from egu_widgets.cube import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.plotting import save_figures
from egu_widgets.widgets import (
    abundance_inspector,
    bundle_curation,
    endmember_pairs,
    progress_callback,
    subspace_view,
)

plt.rcParams.update({"figure.dpi": 90})
OUT = Path(os.environ.get("EGU_OUTPUT", "egu-explore-output")).absolute()
OUT.mkdir(parents=True, exist_ok=True)
print("outputs go to", OUT)

# %% [markdown]
# ## 1. An example file (skip this if you have your own)
#
# A 40 × 56 scene with 80 bands and four materials, written as ENVI, as a MATLAB file (pixels as
# columns of a `bands × pixels` matrix in MATLAB's column order, with `nRow`/`nCol`; the truth in a
# second file with `A` and `M`), and as netCDF.

# %%
example = make_demo(height=40, width=56, n_bands=80, n_endmembers=4, snr_db=35, seed=3)
folder = OUT / "example"
folder.mkdir(exist_ok=True)

# ENVI: a header with the wavelengths, and the raw image
envi.save_image(
    str(folder / "scene.hdr"),
    example.image.astype(np.float32),
    force=True,
    ext=".img",
    metadata={"wavelength": [f"{w:.2f}" for w in example.wavelengths], "wavelength units": "Nanometers"},
)

# MATLAB, column-major pixel order as MATLAB writes it; the truth in its own file
rows, cols, bands = example.shape
scipy.io.savemat(
    folder / "scene.mat",
    {"Y": example.image.reshape(-1, bands, order="F").T, "nRow": rows, "nCol": cols, "nBand": bands},
)
scipy.io.savemat(
    folder / "truth.mat",
    {"A": example.true_abundances.transpose(1, 2, 0).reshape(-1, 4, order="F").T, "M": example.true_endmembers.T},
)

# netCDF (this package's own format, truth included)
example.to_netcdf(folder / "scene.nc")
print(sorted(p.name for p in folder.iterdir()))

# %% [markdown]
# ## 2. Open it
#
# All three files hold the same pixels; `open_cube` reads each layout (and checks for NaN and
# negative values, which real files sometimes have: see `invalid=` and `negative=` in its help).

# %%
CUBE_FILE = os.environ.get("EGU_CUBE") or str(folder / "scene.hdr")  # <- your file here

for path in [folder / "scene.hdr", folder / "scene.mat", folder / "scene.nc"]:
    print(f"{path.name:>10}: {open_cube(path)}")
same = np.array_equal(open_cube(folder / "scene.mat").image, open_cube(folder / "scene.hdr").image)
print("the .mat and ENVI copies hold identical pixels:", same)

cube = open_cube(CUBE_FILE)
print("working on:", cube)

# %% [markdown]
# ## 3. Look at it
#
# A false-colour picture (three bands as red, green, blue) and the spectra: the mean with its
# spread, and a few single pixels.

# %%
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

# %% [markdown]
# ## 4. How many materials?
#
# `estimate_n_endmembers` counts the directions of real signal in the pixels three ways:
#
# * **HySime** (Bioucas-Dias & Nascimento 2008): estimates the noise of every band from the others,
#   then keeps the eigenvectors along which the signal's power exceeds the noise's;
# * **HFC**: the eigenvalues of the correlation and covariance matrices differ only along signal
#   directions; a test at a fixed false-alarm rate counts them;
# * **RMT**: whitened eigenvalues above the edge random noise alone would reach.
#
# The view draws each criterion's eigenvalue spectrum against its noise threshold, with the count
# marked; the toggle switches criterion. The VCA + FCLS reconstruction error as P grows is a
# second look: it drops while each new endmember explains real structure and levels off after.
# Neither is a proof; look at both, pick P, and check the maps it gives.

# %%
estimates = {c: estimate_n_endmembers(cube, c) for c in ("hysime", "hfc", "rmt")}
subspace = subspace_view(estimates)
print({c: e.n_endmembers for c, e in estimates.items()})

# %%
candidates = list(range(2, 7 if FAST else 9))
errors = []
for p in candidates:
    r = unmix(cube, method="vca-fcls", n_endmembers=p, seed=0)
    errors.append(metrics.reconstruction_rmse(pixels, r.abundance_pixels @ r.endmembers.values))

fig, ax = plt.subplots(figsize=(5.5, 3.3))
ax.plot(candidates, errors, "o-")
ax.set(xlabel="P", ylabel="reconstruction RMSE", title="VCA + FCLS fit", xticks=candidates)
plt.show()
print("VCA + FCLS reconstruction RMSE for P =", candidates, ":", np.round(errors, 4))

# HySime's count feeds P (kept within the candidates tried above)
P = int(np.clip(estimates["hysime"].n_endmembers, candidates[0], candidates[-1]))
print("suggested P =", P)

# %% [markdown]
# Change `P` here if your eyes disagree with the count. In a live notebook the slider redraws the
# VCA + FCLS maps for any P.

# %%
# P = 4   # <- override the suggestion here

import ipywidgets as widgets


def show_maps(p):
    r = unmix(cube, method="vca-fcls", n_endmembers=p, seed=0)
    r.abundances.plot(col="endmember", col_wrap=4, vmin=0, vmax=1, size=2.0, yincrease=False)
    plt.show()


widgets.interact(show_maps, p=widgets.IntSlider(value=P, min=2, max=candidates[-1], description="P"))
# %% [markdown]
# ## 5. Unmix, with an uncertainty estimate
#
# EGU-Net-pw with the chosen P (its bundles and reference endmembers are computed from the cube;
# no truth is needed). `ensemble=K` trains K networks from seeds derived from `seed` and returns
# their mean, with the per-pixel spread across members (standard deviation and a 90 % interval)
# beside it: where the members disagree, trust the map less. The progress shows as a dashboard in
# a notebook. VCA + FCLS runs alongside for comparison.

# %%
EPOCHS = 25 if FAST else 200
K = 3
baseline = unmix(cube, method="vca-fcls", n_endmembers=P, seed=0)
result = unmix(
    cube,
    method="egu-pw",
    n_endmembers=P,
    epochs=EPOCHS,
    seed=0,
    ensemble=K,
    callbacks=[progress_callback("EGU-Net-pw")],
)
print(baseline)
print(result)
print("largest per-pixel std across members:", round(float(np.nanmax(result.ds["abundances_std"].values)), 3))

# %% [markdown]
# ## 6. Inspect
#
# Without truth, the inspector shows the maps and, for any pixel you click, its spectrum against
# the reconstruction. For an ensemble it adds a **maps** toggle (mean / spread (std) / 90 %
# interval width) and, beside the bars, every member's abundances at the clicked pixel as points.
# Here it opens on the spread. The endmember-pair view compares EGU-Net's spectra with VCA's.

# %%
inspector = abundance_inspector(result, cube)
inspector["view"].show_layer("spread (std)")

# %%
pairs = endmember_pairs(result, cube, reference=baseline.endmembers.values, reference_label="VCA", align=True)

# %% [markdown]
# ### Curate the bundles, retrain
#
# EGU-Net learns from *bundles*: pixels of each material picked from the cube, labelled with
# pseudo-abundances. The curation view shows them per material (envelope and lines, a PCA
# projection coloured by label, their positions on the image). Select bundles (box or lasso in the
# projection, a tap on the image, or a whole material), reject or relabel them, and press
# **retrain**: the maps below the view change to those of a network trained on the curated set.
# The same steps in code: `view.select_material(0)`, `view.reject_selected()`, `view.retrain()`.

# %%
model = EGUNet("pw", P, epochs=EPOCHS, seed=0, progress=False).fit(cube)
curation = bundle_curation(cube, model)

# %% [markdown]
# ## 7. Save
#
# The result as netCDF (abundances, endmembers, training history, configuration; `UnmixingResult.open`
# reads it back identical), the figures as PNG, the abundance maps as an ENVI image for GIS tools and
# the endmember spectra as CSV.

# %%
result.to_netcdf(OUT / "result.nc")
again = UnmixingResult.open(OUT / "result.nc")
print("reopened identical:", again == result)

figures = save_figures(result, cube, OUT, prefix="egu-pw-")
maps = result.abundances.transpose("y", "x", "endmember").values.astype(np.float32)
envi.save_image(
    str(OUT / "abundances.hdr"),
    maps,
    force=True,
    ext=".img",
    metadata={"band names": [str(n) for n in result.abundances["endmember"].values]},
)
result.endmembers.to_pandas().T.to_csv(OUT / "endmembers.csv")
print("wrote:", sorted(p.name for p in OUT.iterdir() if p.is_file()))

# %% [markdown]
# ## 8. Only for the example: how good was it?
#
# The example's truth sits in `truth.mat`; opened together, `unmix` scores the result (Hungarian
# matching of estimated to true materials, abundance RMSE on the 0–1 scale, SAD in degrees).

# %%
scored_cube = open_cube(folder / "scene.mat", truth=folder / "truth.mat")
if scored_cube.n_true_endmembers == P:
    for method in ("vca-fcls", "egu-pw"):
        r = unmix(scored_cube, method=method, seed=0, **({"epochs": EPOCHS} if method == "egu-pw" else {}))
        print(f"{method:>9}: abundance RMSE {r.rmse:.4f}, mean SAD {r.sad:.2f} deg")
else:
    print(f"P={P} differs from the example's 4 materials; set P = 4 above to score against the truth.")
