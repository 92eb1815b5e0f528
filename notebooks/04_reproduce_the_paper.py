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
# # 4 · Reproduce the paper's comparison
#
# `reproduce()` (or `egu-widgets reproduce --out DIR` in a terminal) unmixes the three scenes of
# the EGU-Net paper's comparison — the synthetic scene (the paper's 200 × 200 abundance maps mixed
# with five USGS spectra at 30 dB), Samson and Jasper Ridge — with FCLS and SUnSAL on VCA
# endmembers, FCLS on N-FINDR endmembers, the `ae` ablation, EGU-Net-pw and EGU-Net-ss, over
# several seeds, and writes a table
# (median and range over seeds), the figures and every result.
#
# * **Fast mode** (`EGU_FAST=1`, or `FAST = True` below): cropped scenes, 20 epochs, 2 seeds —
#   a few minutes; it shows that everything runs, not the paper's numbers.
# * **Full mode**: whole scenes, 3 seeds, every method's default settings (EGU-Net stops when it has
#   converged, after at most 200 epochs) — about half an hour on two CPU cores; the table header records what ran and how long it took. A finished full run is reused when you open this notebook again; set `RERUN = True` to
#   redo it.
#
# The datasets are read from the data folder or downloaded once (see the README).

# %%
import os

# EGU_FAST=1 (set by the test-suite and CI) runs a small version of every step; leave it unset
# for the full version.
FAST = os.environ.get("EGU_FAST", "0").strip().lower() not in ("", "0", "false", "no")
print("fast mode" if FAST else "full mode")

# %%
# FAST = True   # <- uncomment for the quick version
RERUN = False

from pathlib import Path

from IPython.display import Image, Markdown, display

from egu_widgets import EguError
from egu_widgets.reproduce import ReproduceReport, reproduce

OUT = Path(os.environ.get("EGU_OUTPUT", "egu-reproduce-output")).absolute() / ("fast" if FAST else "full")
print("results go to", OUT)

# %%
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

# %% [markdown]
# ## The table

# %%
if report is not None:
    display(Markdown(report.table_markdown))


# %% [markdown]
# ## Summary and abundance maps
#
# Every map is from the seed whose RMSE is the median of its method; all maps share one 0–1 colour
# scale.


# %%
def show(name):
    path = report.out_dir / name
    if path.exists():
        display(Markdown(f"**{name}**"))
        display(Image(filename=str(path), width=1000))


if report is not None:
    show("summary.png")
    for ds in report.plan.datasets:
        show(f"abundances-{ds}.png")

# %% [markdown]
# ## Endmembers and training curves

# %%
if report is not None:
    for ds in report.plan.datasets:
        show(f"endmembers-{ds}.png")
        show(f"training-{ds}.png")

# %% [markdown]
# ## The network, traced from the model

# %%
if report is not None:
    show("network-egu-pw.png")
    show("network-egu-ss.png")

# %% [markdown]
# ## Every result is saved
#
# Each run is a netCDF file under `results/`; open any of them to look closer, for example with
# the views of notebook 2.

# %%
if report is not None:
    saved = sorted(str(p.relative_to(report.out_dir)) for p in (report.out_dir / "results").rglob("*.nc"))
    print(len(saved), "result files, e.g.", saved[:3])
    first = report.runs[0]
    print(report.result(first.dataset, first.method, first.seed))
