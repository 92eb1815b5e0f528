"""Reproduce the EGU-Net paper's comparison: a table of scores and the figures, from scratch.

``reproduce(out_dir, fast=False)`` (command line: ``egu-widgets reproduce --out DIR [--fast]``)
unmixes the three scenes of the comparison -- ``egu-synthetic`` (the paper's 200×200 abundance
maps mixed with five USGS spectra, 30 dB), ``samson`` (P=3) and ``jasper-ridge`` (P=4) -- with

- ``vca-fcls``: FCLS abundances on VCA endmembers;
- ``sunsal``: SUnSAL (non-negative least squares, λ=0, then each pixel divided by its sum) on the
  *same* VCA endmembers, so that the two classical rows differ only in the abundance estimator;
- ``ae``: the autoencoder ablation (EGU-Net's unmixing stream alone, no spectral bundles);
- ``egu-pw`` and ``egu-ss``: EGU-Net pixel-wise and spatial-spectral, default settings;

over several seeds, and writes into ``out_dir``:

- ``table.md`` and ``table.csv``: abundance RMSE (overall and per material, 0–1 scale) and mean
  spectral angle (SAD, degrees) after Hungarian alignment to the truth, as the median and the
  range (min–max) over seeds, with run times; the Markdown header states the mode, crops, epochs,
  seeds, the date, the machine and the total run time;
- figures (PNG): ``abundances-<scene>.png`` (the truth beside every method, one row per
  material), ``endmembers-<scene>.png`` (every method's spectra against the reference),
  ``training-<scene>.png`` (loss and RMSE per epoch from ``result.history``), ``summary.png``
  (RMSE per method and scene, with the seed range) and ``network-egu-pw.png`` /
  ``network-egu-ss.png`` (the two-stream network, drawn by tracing the engine's torch model);
- ``results/<scene>/<method>-seed<k>.nc``: every result (``UnmixingResult.open`` reads them);
- ``manifest.json``: the plan, versions, timings and file list.

``fast=True`` is a smoke test for CI (cropped scenes, few epochs, two seeds; the table header
says so); its numbers are not the paper's. The full mode uses whole scenes, three seeds and
every method's default settings, so its table is the engine's accuracy benchmark; ``epochs=``
and ``ss_epochs=`` change that, and the table header always states what was run.

One module per job: :mod:`.plan` (what runs), :mod:`.scenes` (datasets and crops), :mod:`.run`
(the runs and the driver), :mod:`.table` (CSV and Markdown), :mod:`.figures` (which comparison
figures, drawn by :mod:`egu_widgets.plotting`), :mod:`.diagram` (the network diagrams) and
:mod:`.publish` (the atomic output folder and reading it back).
"""

from __future__ import annotations

from .diagram import engine_model, network_figures
from .plan import DATASETS, ENGINE_METHODS, METHOD_LABELS, METHODS, Plan, Run, plan_for
from .publish import ReproduceReport
from .run import reproduce
from .scenes import Scene, best_window, load_scene
from .table import markdown_table, table_rows, write_csv

__all__ = [
    "DATASETS",
    "ENGINE_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "Plan",
    "ReproduceReport",
    "Run",
    "Scene",
    "best_window",
    "engine_model",
    "load_scene",
    "markdown_table",
    "network_figures",
    "plan_for",
    "reproduce",
    "table_rows",
    "write_csv",
]
