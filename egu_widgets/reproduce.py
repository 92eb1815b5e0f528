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

Everything is written into a hidden staging folder beside ``out_dir`` that is renamed to
``out_dir`` only when the run has finished, so an interrupted or failed run leaves no half-written
table (and an earlier complete run in ``out_dir`` stays as it was until the new one is complete).

``fast=True`` is a smoke test for CI (cropped scenes, few epochs, two seeds; the table header
says so); its numbers are not the paper's. The full mode uses whole scenes, three seeds and
every method's default settings (200 epochs; the default ss preset's lighter convolutional
stream takes about 2 s per epoch on the 200×200×224 scene on two CPU cores), so its table is the
engine's accuracy benchmark; ``epochs=`` and ``ss_epochs=`` change that, and the table header
always states what was run.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .cube.hypercube import HyperCube
from .errors import DataFileError, InputError
from .results import UnmixingResult

__all__ = [
    "DATASETS",
    "METHODS",
    "METHOD_LABELS",
    "Plan",
    "ReproduceReport",
    "plan_for",
    "reproduce",
    "network_graph",
    "network_figure",
]

DATASETS = ("egu-synthetic", "samson", "jasper-ridge")
METHODS = ("vca-fcls", "sunsal", "ae", "egu-pw", "egu-ss")
ENGINE_METHODS = ("ae", "egu-pw", "egu-ss")
METHOD_LABELS = {
    "vca-fcls": "FCLS (VCA endmembers)",
    "sunsal": "SUnSAL (VCA endmembers)",
    "ae": "AE ablation (no bundles)",
    "egu-pw": "EGU-Net-pw",
    "egu-ss": "EGU-Net-ss",
}
_MARKER = "manifest.json"
_KIND = "egu_widgets.reproduce"


# ============================================================================================ plan
@dataclass(frozen=True)
class Plan:
    """What a reproduction runs. ``crop`` is the side of a square window (None: whole scene),
    ``epochs`` the training epochs of the engine methods (None: the engine's default) and
    ``ss_epochs``, when given, those of ``egu-ss`` instead."""

    mode: str
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    crop: int | None = None
    epochs: int | None = None
    device: str = "cpu"
    threads: int | None = None  # torch threads while training (None: torch's default)
    ss_epochs: int | None = None

    def epochs_for(self, method: str) -> int | None:
        return self.ss_epochs if method == "egu-ss" and self.ss_epochs is not None else self.epochs

    def describe(self) -> str:
        crop = "whole scenes" if self.crop is None else f"{self.crop}×{self.crop} crops"
        engine = [m for m in self.methods if m in ENGINE_METHODS]
        groups: dict = {}
        for m in engine:
            groups.setdefault(self.epochs_for(m), []).append(m)
        parts = []
        for n, ms in groups.items():
            count = f"the engine's default epochs ({_default_epochs()})" if n is None else f"{n} epochs"
            parts.append(count + ("" if len(groups) == 1 else f" for {', '.join(ms)}"))
        epochs = "; ".join(parts) if parts else "no training"
        threads = "" if self.threads is None else f", {self.threads} torch thread{'s' if self.threads > 1 else ''}"
        return f"{crop}, {epochs}, seeds {', '.join(map(str, self.seeds))}, device {self.device}{threads}"


def _default_epochs() -> int:
    from .engine import PRESETS

    return int(PRESETS["default"]["epochs"])


def plan_for(
    fast: bool,
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    crop: int | None | str = "mode",
    epochs: int | None | str = "mode",
    device: str = "cpu",
    threads: int | None | str = "mode",
    ss_epochs: int | None | str = "mode",
) -> Plan:
    """The plan of a fast or full run; keyword arguments override single settings."""
    # Fast mode trains small networks on small crops: one thread is as quick as two there and
    # does not collapse when other processes share the CPU (as in CI).
    # Full mode: the methods' own defaults, so that the table is the accuracy benchmark.
    base = Plan("fast", seeds=(0, 1), crop=32, epochs=20, threads=1) if fast else Plan("full")
    datasets = tuple(datasets) if datasets is not None else base.datasets
    methods = tuple(methods) if methods is not None else base.methods
    bad = [d for d in datasets if d not in DATASETS]
    if bad or not datasets:
        raise InputError(f"unknown or no dataset(s) {bad}; choose from {', '.join(DATASETS)}")
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InputError(f"unknown or no method(s) {bad}; choose from {', '.join(METHODS)}")
    seeds = tuple(int(s) for s in (seeds if seeds is not None else base.seeds))
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"seeds must be distinct whole numbers >= 0; got {seeds}")
    crop = base.crop if crop == "mode" else crop
    if crop is not None and (int(crop) != crop or crop < 8):
        raise InputError(f"crop must be a side of at least 8 pixels, or None for whole scenes; got {crop!r}")
    epochs = base.epochs if epochs == "mode" else epochs
    if epochs is not None and (int(epochs) != epochs or epochs < 1):
        raise InputError(f"epochs must be a whole number >= 1, or None for the engine's default; got {epochs!r}")
    # keep the table's order whatever order was asked for
    ss_epochs = base.ss_epochs if ss_epochs == "mode" else ss_epochs
    if ss_epochs is not None and (int(ss_epochs) != ss_epochs or ss_epochs < 1):
        raise InputError(f"ss_epochs must be a whole number >= 1, or None to use epochs; got {ss_epochs!r}")
    threads = base.threads if threads == "mode" else threads
    if threads is not None and (int(threads) != threads or threads < 1):
        raise InputError(f"threads must be a whole number >= 1, or None for torch's default; got {threads!r}")
    datasets = tuple(d for d in DATASETS if d in datasets)
    methods = tuple(m for m in METHODS if m in methods)
    return Plan(base.mode, datasets, methods, seeds, None if crop is None else int(crop),
                None if epochs is None else int(epochs), str(device), None if threads is None else int(threads),
                None if ss_epochs is None else int(ss_epochs))


# ============================================================================================ scenes
def best_window(cube: HyperCube, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``×``size`` window that best represents every material.

    Candidate windows lie on a grid with a stride of ``size // 4``; the chosen one maximises the
    smallest, over materials, of the material's mean abundance in the window (so that no material
    is missing from a crop), ties broken by position. Deterministic.
    """
    ab = cube.true_abundances
    h, w = cube.height, cube.width
    if size >= h and size >= w or ab is None:
        return 0, 0
    step = max(1, size // 4)
    ys = sorted(set(list(range(0, max(h - size, 0) + 1, step)) + [max(h - size, 0)]))
    xs = sorted(set(list(range(0, max(w - size, 0) + 1, step)) + [max(w - size, 0)]))
    # Window means from a summed-area table: one pass, whatever the number of windows.
    sat = np.pad(ab, ((0, 0), (1, 0), (1, 0))).cumsum(axis=1).cumsum(axis=2)
    best, corner = -np.inf, (0, 0)
    for y in ys:
        for x in xs:
            y1, x1 = min(y + size, h), min(x + size, w)
            total = sat[:, y1, x1] - sat[:, y, x1] - sat[:, y1, x] + sat[:, y, x]
            score = float((total / ((y1 - y) * (x1 - x))).min())
            if score > best + 1e-12:
                best, corner = score, (y, x)
    return corner


@dataclass
class Scene:
    name: str
    cube: HyperCube
    window: tuple[int, int, int, int] | None  # y0, x0, height, width of the crop, None: whole
    full_shape: tuple[int, int, int]

    def describe(self) -> str:
        h, w, b = self.cube.shape
        p = self.cube.n_true_endmembers
        where = "" if self.window is None else f" crop of {self.full_shape[0]}×{self.full_shape[1]} at row {self.window[0]}, col {self.window[1]}"
        return f"{h}×{w} pixels{where}, {b} bands, P={p}"


def load_scene(name: str, crop: int | None) -> Scene:
    from .cube.readers import open_cube

    cube = open_cube(name)
    full = cube.shape
    if crop is None or (crop >= cube.height and crop >= cube.width):
        return Scene(name, cube, None, full)
    y0, x0 = best_window(cube, crop)
    hh, ww = min(crop, cube.height), min(crop, cube.width)
    return Scene(name, cube.isel(y=slice(y0, y0 + hh), x=slice(x0, x0 + ww)), (y0, x0, hh, ww), full)


# ============================================================================================ runs
@dataclass
class Run:
    dataset: str
    method: str
    seed: int
    rmse: float
    rmse_per_material: list[float]
    sad: float
    seconds: float
    path: str  # relative to out_dir
    note: str = ""
    rmse_abundance_matched: float = float("nan")  # materials matched by abundances, not spectra


class _Interrupted(KeyboardInterrupt):
    pass


def _run_one(scene: Scene, method: str, seed: int, plan: Plan) -> UnmixingResult:
    from .unmixing import unmix

    cube = scene.cube
    if method == "vca-fcls":
        return unmix(cube, method="vca-fcls", seed=seed)
    if method == "sunsal":
        # The same VCA endmembers as vca-fcls with this seed (vca is deterministic for a seed);
        # the run's time counts VCA as well as SUnSAL.
        from .classic import vca

        start = time.perf_counter()
        endmembers, _ = vca(cube.pixels[cube.valid_mask.ravel()], cube.n_true_endmembers, seed=seed)
        vca_seconds = time.perf_counter() - start
        res = unmix(cube, method="sunsal", seed=seed, endmembers=endmembers)
        res.ds.attrs["seconds"] = float(res.ds.attrs["seconds"]) + vca_seconds
        return res
    options = {} if plan.threads is None else {"num_threads": plan.threads}
    result = unmix(cube, method=method, seed=seed, epochs=plan.epochs_for(method), device=plan.device, progress=False,
                   **options)
    if result.partial and "interrupted" in str(result.ds.attrs.get("stop_reason", "")):
        # The engine turns Ctrl-C into a partial result; a reproduction must not tabulate it.
        raise _Interrupted(result.ds.attrs["stop_reason"])
    return result


def _summary(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n_seeds": 0}
    return {"median": float(np.median(finite)), "min": float(finite.min()), "max": float(finite.max()), "n_seeds": int(finite.size)}


def _representative(runs: Sequence[Run]) -> Run:
    """The run whose RMSE is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: (r.rmse, r.seed))
    return ordered[(len(ordered) - 1) // 2]


# ============================================================================================ tables
def _fmt(s: dict, digits: int) -> str:
    if s["n_seeds"] == 0:
        return "n/a"
    lo, hi = f"{s['min']:.{digits}f}", f"{s['max']:.{digits}f}"
    if s["n_seeds"] == 1 or lo == hi:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} [{lo}–{hi}]"


def table_rows(runs: Sequence[Run], scenes: Mapping[str, Scene], plan: Plan) -> list[dict]:
    """Long-format rows: one per dataset × method × metric × material (``all`` for overall)."""
    rows = []
    for ds in plan.datasets:
        names = scenes[ds].cube.endmember_names
        for method in plan.methods:
            rs = [r for r in runs if r.dataset == ds and r.method == method]
            if not rs:
                continue
            entries = [("rmse", "all", [r.rmse for r in rs])]
            entries += [("rmse", name, [r.rmse_per_material[i] for r in rs]) for i, name in enumerate(names)]
            entries += [("sad_deg", "all", [r.sad for r in rs]), ("seconds", "all", [r.seconds for r in rs]),
                        ("rmse_abundance_matched", "all", [r.rmse_abundance_matched for r in rs])]
            for metric, material, values in entries:
                s = _summary(values)
                rows.append({
                    "dataset": ds, "method": method, "metric": metric, "material": material,
                    "median": s["median"], "min": s["min"], "max": s["max"], "n_seeds": s["n_seeds"],
                    "seeds": ";".join(str(r.seed) for r in rs),
                    "values": ";".join(f"{v:.6g}" for v in values),
                })
    return rows


def write_csv(rows: Sequence[dict], path: Path) -> None:
    columns = ["dataset", "method", "metric", "material", "median", "min", "max", "n_seeds", "seeds", "values"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in columns})


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def markdown_table(runs: Sequence[Run], scenes: Mapping[str, Scene], plan: Plan, info: Mapping[str, Any]) -> str:
    rows = table_rows(runs, scenes, plan)
    lookup = {(r["dataset"], r["method"], r["metric"], r["material"]): r for r in rows}
    out = io.StringIO()
    if plan.mode == "fast":
        out.write("# EGU-Net comparison — FAST MODE (smoke test, not the paper's numbers)\n\n")
        out.write(f"**Fast mode:** {plan.describe()}. Scenes are cropped and training is short, so these "
                  "figures only show that every step runs; run `egu-widgets reproduce --out DIR` (full mode) "
                  "for the comparison.\n\n")
    else:
        out.write("# EGU-Net comparison — full mode\n\n")
        out.write(f"**Full mode:** {plan.describe()}.")
        if "egu-ss" in plan.methods and plan.ss_epochs is not None and plan.ss_epochs != (plan.epochs or _default_epochs()):
            out.write(f" EGU-Net-ss is trained for {plan.ss_epochs} epochs instead of {plan.epochs or _default_epochs()} "
                      "so that the run fits in about an hour on two CPU cores (its convolutional stream makes each epoch "
                      "far costlier than EGU-Net-pw's); its row is not the paper's setting.")
        out.write("\n\n")
    out.write(f"Run on {info['date']} in **{info['total_seconds']:.0f} s** on {info['machine']}; "
              f"egu_widgets {info['versions']['egu_widgets']}, torch {info['versions']['torch']}, "
              f"numpy {info['versions']['numpy']}.\n\n")
    out.write("Each cell: median over seeds, [min–max] in brackets. Abundance RMSE on the 0–1 scale and SAD in "
              "degrees, both after Hungarian alignment of the estimate to the truth (lower is better). "
              "SUnSAL uses the same VCA endmembers as FCLS, so their SAD is the same. "
              "*Abundance RMSE* and the per-material columns pair each estimated material with a true one by "
              "their spectra (the package's standard scoring); *RMSE, matched by maps* pairs them by their "
              "abundance maps instead, which differs when a method's spectra are far from the references "
              "(the `ae` ablation's decoded spectra, for example). EGU-Net's endmembers are the reference spectra "
              "its bundle labels refer to (a whole-image N-FINDR). Time: seconds per run (training included).\n")
    for ds in plan.datasets:
        scene = scenes[ds]
        names = scene.cube.endmember_names
        out.write(f"\n## {ds} ({scene.describe()})\n\n")
        header = ["method", "abundance RMSE"] + [f"RMSE {n}" for n in names] + ["RMSE, matched by maps", "mean SAD (deg)", "time (s)"]
        out.write("| " + " | ".join(header) + " |\n")
        out.write("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|\n")
        for method in plan.methods:
            if (ds, method, "rmse", "all") not in lookup:
                continue
            cells = [METHOD_LABELS[method], _fmt(lookup[(ds, method, "rmse", "all")], 4)]
            cells += [_fmt(lookup[(ds, method, "rmse", n)], 4) for n in names]
            cells += [_fmt(lookup[(ds, method, "rmse_abundance_matched", "all")], 4),
                      _fmt(lookup[(ds, method, "sad_deg", "all")], 2), _fmt(lookup[(ds, method, "seconds", "all")], 1)]
            notes = sorted({r.note for r in runs if r.dataset == ds and r.method == method and r.note})
            if notes:
                cells[0] += " †"
            out.write("| " + " | ".join(cells) + " |\n")
        notes = sorted({f"{r.method} seed {r.seed}: {r.note}" for r in runs if r.dataset == ds and r.note})
        for note in notes:
            out.write(f"\n† {note}\n")
    return out.getvalue()


# ============================================================================================ figures
def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _short(method: str) -> str:
    return METHOD_LABELS[method].split(" (")[0]


def abundance_comparison_figure(scene: Scene, results: Mapping[str, UnmixingResult]):
    """Rows: materials; columns: the truth, then each method's abundance map (one 0–1 scale)."""
    cube = scene.cube
    names = cube.endmember_names
    truth = cube.true_abundances
    cols = [("truth", None)] + list(results.items())
    n_rows, n_cols = len(names), len(cols)
    side = 1.55 if n_cols > 4 else 1.9
    fig = _figure(side * n_cols + 0.8, side * n_rows + 0.6)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for c, (method, res) in enumerate(cols):
        maps = truth if res is None else res.abundances.sel(endmember=names).values
        for r in range(n_rows):
            ax = axes[r, c]
            image = ax.imshow(maps[r], vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                title = "ground truth" if res is None else f"{_short(method)}\nRMSE {res.rmse:.4f}"
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(names[r], fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="abundance")
    fig.suptitle(f"{scene.name}: abundance maps (median-RMSE seed of each method)", fontsize=10)
    return fig


def endmember_comparison_figure(scene: Scene, results: Mapping[str, UnmixingResult]):
    """One panel per material: the reference spectrum and each method's estimate.

    Estimates are scaled onto the reference by least squares (the spectral angle ignores scale,
    and the networks' decoded spectra have no physical scale of their own).
    """
    cube = scene.cube
    names = cube.endmember_names
    ref = cube.true_endmembers
    wl = cube.wavelengths
    x = wl if wl is not None else np.arange(cube.n_bands)
    n = len(names)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = _figure(3.6 * cols, 2.7 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for p, name in enumerate(names):
        ax = axes[p]
        ax.plot(x, ref[p], color="black", linewidth=2.0, label="reference")
        drawn: list[tuple[np.ndarray, list[str], float, str, int]] = []  # methods sharing spectra share a line
        for k, (method, res) in enumerate(results.items()):
            if res.endmembers is None:
                continue
            est = res.endmembers.sel(endmember=name).values
            sad = res.scores.get("sad_per_endmember", [float("nan")] * n)[p]
            for spectrum, labels, *_ in drawn:
                if spectrum.shape == est.shape and np.allclose(spectrum, est):
                    labels.append(_short(method))
                    break
            else:
                drawn.append((est, [_short(method)], sad, method, k))
        for est, labels, sad, method, k in drawn:
            denom = float(est @ est)
            scale = float(est @ ref[p]) / denom if denom > 0 else 1.0
            ax.plot(x, scale * est, linewidth=1.1, linestyle="--" if method in ENGINE_METHODS else "-",
                    color=f"C{k}", label=f"{' = '.join(labels)} ({sad:.1f}°)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("wavelength (nm)" if wl is not None else "band", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{scene.name}: endmembers vs reference (SAD in the legend; estimates scaled by least squares)", fontsize=10)
    return fig


def training_comparison_figure(scene_name: str, histories: Mapping[str, Sequence[tuple[int, Mapping[str, np.ndarray]]]]):
    """Per engine method: loss terms per epoch (representative seed) and RMSE per epoch (all seeds)."""
    methods = [m for m in histories if histories[m]]
    fig = _figure(3.7 * max(len(methods), 1), 5.4)
    axes = fig.subplots(2, max(len(methods), 1), squeeze=False)
    for c, method in enumerate(methods):
        runs = histories[method]
        seed0, hist0 = runs[0]
        ax = axes[0, c]
        for key, style in (("loss_total", "-"), ("loss_reconstruction", "--"), ("loss_bundle", ":")):
            v = np.asarray(hist0.get(key, []), dtype=np.float64)
            if v.size and np.isfinite(v).any() and np.nanmax(np.abs(v)) > 0:
                ax.plot(np.arange(1, v.size + 1), v, style, linewidth=1.2, label=key[len("loss_"):])
        ax.set_yscale("log")
        ax.set_title(f"{METHOD_LABELS[method]}: losses (seed {seed0})", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[1, c]
        for seed, hist in sorted(runs, key=lambda t: t[0]):
            v = np.asarray(hist.get("rmse", []), dtype=np.float64)
            epochs = np.arange(1, v.size + 1)
            ok = np.isfinite(v)
            if ok.any():
                ax.plot(epochs[ok], v[ok], marker=".", markersize=3, linewidth=1.0, label=f"seed {seed}")
        ax.set_title("abundance RMSE during training", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel():
        ax.tick_params(which="both", labelsize=7)
    fig.suptitle(f"{scene_name}: training curves (result.history)", fontsize=10)
    return fig


def summary_figure(runs: Sequence[Run], plan: Plan):
    """Abundance RMSE per method (bars: median over seeds; whiskers: min–max), one panel per scene."""
    fig = _figure(3.4 * len(plan.datasets), 3.4)
    axes = fig.subplots(1, len(plan.datasets), squeeze=False)[0]
    for ax, ds in zip(axes, plan.datasets):
        meds, lo, hi, labels = [], [], [], []
        for m in plan.methods:
            vals = [r.rmse for r in runs if r.dataset == ds and r.method == m]
            if not vals:
                continue
            s = _summary(vals)
            meds.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
            labels.append(METHOD_LABELS[m].split(" (")[0])
        pos = np.arange(len(meds))
        ax.bar(pos, meds, yerr=[lo, hi], color=[f"C{i}" for i in range(len(meds))], capsize=3)
        ax.set_xticks(pos, labels, rotation=35, ha="right", fontsize=7)
        ax.set_title(ds, fontsize=9)
        ax.set_ylabel("abundance RMSE", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"abundance RMSE, median and range over seeds ({plan.mode} mode)", fontsize=10)
    return fig


# ============================================================================================ network diagram
@dataclass
class NetBox:
    """One layer of the traced network: modules called (or parameters used) together."""

    key: str  # the first module's qualified name, e.g. "encoder.fc1"
    modules: list[str]
    lines: list[str]  # label lines: layer, what follows it, notes, modules and parameter count
    streams: set = field(default_factory=set)  # {"endmember", "unmixing"}
    n_params: int = 0
    title: str = ""
    parts: list = field(default_factory=list)
    ops: dict = field(default_factory=dict)  # module -> activations after it (first stream)
    notes: list = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return len(self.streams) == 2


@dataclass
class NetGraph:
    variant: str
    boxes: dict[str, NetBox]
    order: dict[str, list[str]]  # stream -> box keys, input to output
    inputs: dict[str, str]
    outputs: dict[str, str]
    n_params: int
    n_shared_params: int


_OP_NAMES = {
    "TanhBackward0": "tanh",
    "SigmoidBackward0": "sigmoid",
    "ReluBackward0": "ReLU",
    "SoftmaxBackward0": "softmax",
    "AvgPool2DBackward0": "avg-pool 2×2",
}


def _describe_module(module) -> tuple[str, str]:
    """(kind, text) of a leaf module, read from its attributes."""
    from torch import nn

    name = type(module).__name__
    if isinstance(module, nn.Linear):
        return "layer", f"linear {module.in_features}→{module.out_features}"
    if isinstance(module, nn.ConvTranspose2d):
        k = module.kernel_size[0]
        return "layer", f"transposed conv {k}×{k}/{module.stride[0]}, {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return "layer", f"conv {k}×{k}, {module.in_channels}→{module.out_channels}"
    if name == "Norm" or isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "post", "batch norm"
    if hasattr(module, "p") and "dropout" in name.lower():
        return "post", f"dropout {module.p:g}"
    return "layer", name


def _graph_nodes(roots: Iterable) -> tuple[set, dict]:
    """All autograd nodes reachable from ``roots`` and, for each, the nodes consuming it."""
    seen: set = set()
    consumers: dict = {}
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is not None:
                consumers.setdefault(child, []).append(node)
                stack.append(child)
    return seen, consumers


def _depths(roots: Sequence, nodes: set) -> dict:
    """Longest distance of every node from the outputs (inputs are deepest): a topological rank."""
    depth = {r: 0 for r in roots if r is not None}
    changed = True
    while changed:  # the graphs have a few hundred nodes; relaxation is quick
        changed = False
        for node in list(depth):
            for child, _ in node.next_functions:
                if child is not None and depth.get(child, -1) < depth[node] + 1:
                    depth[child] = depth[node] + 1
                    changed = True
    return depth


def network_graph(model, *, n_bundles: int = 16, image_side: int = 16) -> NetGraph:
    """Trace the engine's two-stream model: which layers each stream runs, in order, and which are shared.

    The endmember stream is ``model.bundle_logits`` on a batch of random spectra, the unmixing
    stream ``model(...)`` (pixels for ``pw``/``ae``, a random image for ``ss``). Forward hooks on the
    leaf modules record which modules each stream calls; the autograd graph of each stream adds
    parameters used without calling their module (``ss`` uses the encoder's third weight as a 1×1
    convolution), the order from input to output, and the activations between layers. Works on a
    copy; the model is not changed.
    """
    import copy

    import torch

    model = copy.deepcopy(model)
    model.train()  # batch statistics and live dropout, as in training
    gen = torch.Generator().manual_seed(0)
    if hasattr(model, "set_generator"):
        model.set_generator(gen)
    variant = str(getattr(model, "variant", "pw"))
    n_bands = int(model.n_bands)
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    param_owner = {}
    for name, m in leaves.items():
        for pname, prm in m.named_parameters(recurse=False):
            param_owner[prm] = name

    calls: list[tuple[str, str, Any]] = []  # (stream, module, output grad node)
    current = {"stream": ""}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, _n=name: calls.append((current["stream"], _n, getattr(out, "grad_fn", None))))
        for name, m in leaves.items()
    ]
    streams: dict[str, tuple] = {}
    try:
        current["stream"] = "endmember"
        bundles = torch.rand(n_bundles, n_bands, generator=gen)
        logits = model.bundle_logits(bundles)
        streams["endmember"] = (torch.softmax(logits, dim=1),)
        current["stream"] = "unmixing"
        if variant == "ss":
            image = torch.rand(1, n_bands, image_side, image_side, generator=gen)
            streams["unmixing"] = tuple(model(image))
            inputs = {"endmember": f"bundle spectra (K × {n_bands})", "unmixing": f"image (1 × {n_bands} × H × W)"}
        else:
            pixels = torch.rand(n_bundles, n_bands, generator=gen)
            streams["unmixing"] = tuple(model(pixels))
            inputs = {"endmember": f"bundle spectra (K × {n_bands})", "unmixing": f"pixels (N × {n_bands})"}
    finally:
        for h in handles:
            h.remove()

    boxes: dict[str, NetBox] = {}
    order: dict[str, list[str]] = {}
    owner_box: dict[str, str] = {}  # module -> key of the box that shows it
    for stream, outputs in streams.items():
        roots = [t.grad_fn for t in outputs]
        nodes, consumers = _graph_nodes(roots)
        depth = _depths(roots, nodes)
        stream_calls = [(name, node) for s, name, node in calls if s == stream]
        called = {name for name, _ in stream_calls}
        module_nodes = {node: name for name, node in stream_calls if node is not None}
        items: list[tuple[int, str, Any]] = []  # (depth, module, output node)
        for name, node in stream_calls:
            items.append((depth.get(node, -1), name, node))
        # Parameters this stream uses without calling their module: find the op that consumes them.
        for node in nodes:
            if type(node).__name__ != "AccumulateGrad":
                continue
            owner = param_owner.get(node.variable)
            if owner is None or owner in called:
                continue
            user = node
            while True:  # skip views (unsqueeze, alias...) of the parameter
                nxt = consumers.get(user, [])
                if not nxt:
                    break
                user = nxt[0]
                if type(user).__name__ not in ("UnsqueezeBackward0", "AliasBackward0", "ViewBackward0", "TBackward0",
                                               "SliceBackward0", "SelectBackward0", "ExpandBackward0"):
                    break
            items.append((depth.get(user, -1), owner, user))
            module_nodes[user] = owner
            called.add(owner)
        items.sort(key=lambda t: -t[0])  # deepest (nearest the input) first
        keys: list[str] = []
        names_called = {n for n, _ in stream_calls}
        for _, name, node in items:
            kind, text = _describe_module(leaves[name])
            functional = name not in names_called
            # activations applied to this module's output before the next module
            ops = []
            cur = node
            for _ in range(6):
                nxt = [c for c in consumers.get(cur, []) if c not in module_nodes]
                if len(nxt) != 1:
                    break
                cur = nxt[0]
                if type(cur).__name__ in _OP_NAMES:
                    ops.append(_OP_NAMES[type(cur).__name__])
            if name in owner_box:  # already drawn for the other stream: the same module, shared
                box = boxes[owner_box[name]]
                box.streams.add(stream)
                if functional:
                    box.notes.append(f"{stream} stream: the same weight as a 1×1 convolution")
                first_ops = box.ops.get(name, [])
                if ops != first_ops:
                    box.notes.append(f"{stream} stream: " + " · ".join(["batch norm" if kind == "post" else text] + ops))
                if box.key not in keys:
                    keys.append(box.key)
                continue
            if kind == "post" and keys:  # batch norm / dropout join the layer they follow
                box = boxes[keys[-1]]
                box.modules.append(name)
                box.parts.append(text)
                box.ops[name] = ops
                box.parts.extend(ops)
                box.streams.add(stream)
                owner_box[name] = box.key
                continue
            box = NetBox(key=name, modules=[name], lines=[], streams={stream})
            box.title = text
            box.ops[name] = ops
            box.parts.extend(ops)
            boxes[name] = box
            owner_box[name] = name
            keys.append(name)
        order[stream] = keys
    for box in boxes.values():
        box.n_params = int(sum(prm.numel() for n in box.modules for prm in leaves[n].parameters(recurse=False)))
        box.lines = [box.title, " · ".join(box.parts)] + box.notes + [", ".join(box.modules) + f"  ({box.n_params:,} parameters)"]
    n_params = int(sum(prm.numel() for prm in model.parameters()))
    n_shared = int(sum(b.n_params for b in boxes.values() if b.shared))
    outputs = {"endmember": "abundances of the bundles → cross-entropy vs pseudo-abundances",
               "unmixing": "reconstruction → mean squared error vs input"}
    return NetGraph(variant, boxes, order, inputs, outputs, n_params, n_shared)


def _rows(order: Mapping[str, list[str]], boxes: Mapping[str, NetBox]) -> dict[str, int]:
    """Row of every box: each stream's boxes descend, shared boxes sit on one row for both."""
    left, right = order.get("endmember", []), order.get("unmixing", [])
    rows: dict[str, int] = {}
    i = j = row = 0
    while i < len(left) or j < len(right):
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if a is not None and a == b:
            rows[a] = row
            i, j = i + 1, j + 1
        else:
            moved = False
            if a is not None and not boxes[a].shared:
                rows[a] = row
                i += 1
                moved = True
            if b is not None and not boxes[b].shared:
                rows[b] = row
                j += 1
                moved = True
            if not moved:  # both next boxes are shared but differ: take the left one first
                rows.setdefault(a, row)
                i += 1
                if b == a:
                    j += 1
        row += 1
    return rows


def network_figure(model, title: str | None = None, **trace_options):
    """Draw :func:`network_graph` of ``model``: the endmember stream on the left, the unmixing
    stream on the right, shared layers (the same module objects) in the middle."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    g = network_graph(model, **trace_options)
    rows = _rows(g.order, g.boxes)
    n_rows = max(rows.values()) + 1 if rows else 1
    col_x = {"endmember": 0.0, "shared": 1.0, "unmixing": 2.0}
    colours = {"endmember": "#dbe9f6", "shared": "#fde2c4", "unmixing": "#dff2dd"}
    row_h = 0.9
    fig = _figure(11.5, 1.0 + row_h * (n_rows + 2) * 0.95)
    ax = fig.add_subplot()
    ax.set_xlim(-0.62, 2.62)
    ax.set_ylim(-(n_rows + 1.6) * row_h, 1.0 * row_h)
    ax.axis("off")
    box_w, box_h = 1.0, 0.7 * row_h

    def where(key: str) -> tuple[float, float]:
        box = g.boxes[key]
        col = "shared" if box.shared else next(iter(box.streams))
        return col_x[col], -(rows[key] + 1) * row_h

    def draw_box(x, y, lines, colour, bold=False):
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02,rounding_size=0.05",
                                    fc=colour, ec="#444", lw=1.0))
        lines = [ln for ln in lines if ln]
        step = box_h / (len(lines) + 0.6)
        for i, text in enumerate(lines):
            yy = y + box_h / 2 - step * (i + 0.8)
            if i == 0:
                ax.text(x, yy, text, ha="center", va="center", fontsize=8, weight="bold" if bold else "normal")
            elif i == len(lines) - 1 and not bold:
                ax.text(x, yy, text, ha="center", va="center", fontsize=5.5, color="#555")
            elif text.endswith(("convolution",)) or " stream: " in text:
                ax.text(x, yy, text, ha="center", va="center", fontsize=6.5, style="italic", color="#7b341e")
            else:
                ax.text(x, yy, text, ha="center", va="center", fontsize=7)

    def arrow(p0, p1, colour):
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=9, color=colour, lw=1.0,
                                     shrinkA=0, shrinkB=0))

    stream_colour = {"endmember": "#2b6cb0", "unmixing": "#2f855a"}
    for stream in ("endmember", "unmixing"):
        keys = g.order.get(stream, [])
        if not keys:
            continue
        x_in = col_x[stream]
        top = (x_in, 0.0)
        draw_box(*top, [g.inputs[stream], f"{stream} stream input"], colours[stream], bold=True)
        prev = (top[0], top[1] - box_h / 2)
        for key in keys:
            x, y = where(key)
            arrow(prev, (x + (0.12 if stream == "unmixing" and g.boxes[key].shared else -0.12 if g.boxes[key].shared else 0), y + box_h / 2), stream_colour[stream])
            prev = (x + (0.12 if stream == "unmixing" and g.boxes[key].shared else -0.12 if g.boxes[key].shared else 0), y - box_h / 2)
        bottom = (x_in, -(n_rows + 1) * row_h)
        arrow(prev, (bottom[0], bottom[1] + box_h / 2), stream_colour[stream])
        draw_box(*bottom, [g.outputs[stream].split(" → ")[0], "→ " + g.outputs[stream].split(" → ")[1]], colours[stream], bold=True)
    for key, box in g.boxes.items():
        x, y = where(key)
        colour = colours["shared" if box.shared else next(iter(box.streams))]
        draw_box(x, y, box.lines, colour)
    ax.text(col_x["endmember"], 0.62 * row_h, "endmember stream", ha="center", fontsize=10, color=stream_colour["endmember"], weight="bold")
    ax.text(col_x["shared"], 0.62 * row_h, "shared (same modules)", ha="center", fontsize=10, color="#b7791f", weight="bold")
    ax.text(col_x["unmixing"], 0.62 * row_h, "unmixing stream", ha="center", fontsize=10, color=stream_colour["unmixing"], weight="bold")
    heading = title or f"EGU-Net-{g.variant}"
    fig.suptitle(f"{heading}: {g.n_params:,} parameters, {g.n_shared_params:,} in layers shared by both streams "
                 f"(traced from the torch model)", fontsize=10)
    return fig


def engine_model(variant: str, n_bands: int, n_endmembers: int):
    """A freshly initialised engine network with the engine's default hyperparameters."""
    from .engine import EGUNet
    from .engine.networks import build_model

    hp = EGUNet(variant, n_endmembers, progress=False).hyperparameters
    return build_model(variant, n_bands, n_endmembers, hp)


# ============================================================================================ driver
@dataclass
class ReproduceReport:
    out_dir: Path
    plan: Plan
    runs: list[Run]
    table_markdown: str
    seconds: float
    files: list[str]

    @property
    def table_path(self) -> Path:
        return self.out_dir / "table.md"

    @property
    def csv_path(self) -> Path:
        return self.out_dir / "table.csv"

    @property
    def figures(self) -> list[Path]:
        return [self.out_dir / f for f in self.files if f.endswith(".png")]

    def result(self, dataset: str, method: str, seed: int) -> UnmixingResult:
        """One of the saved results (``results/<dataset>/<method>-seed<seed>.nc``)."""
        return UnmixingResult.open(self.out_dir / "results" / dataset / f"{method}-seed{seed}.nc")

    @classmethod
    def open(cls, out_dir: str | os.PathLike) -> "ReproduceReport":
        """Read a finished reproduction back from its folder (without rerunning anything)."""
        out_dir = Path(out_dir).expanduser().absolute()
        marker = out_dir / _MARKER
        try:
            manifest = json.loads(marker.read_text())
            table = (out_dir / "table.md").read_text()
        except (OSError, ValueError) as exc:
            raise DataFileError(f"{str(out_dir)!r} holds no finished reproduction ({exc}); run reproduce() first") from exc
        if manifest.get("kind") != _KIND:
            raise DataFileError(f"{str(out_dir)!r} holds no finished reproduction (its manifest is not one)")
        plan = manifest["plan"]
        plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan.items()})
        runs = [Run(**r) for r in manifest["runs"]]
        return cls(out_dir, plan, runs, table, float(manifest["info"]["total_seconds"]), list(manifest["files"]))

    def __repr__(self) -> str:
        return f"<ReproduceReport {self.plan.mode}: {len(self.runs)} runs in {self.seconds:.0f} s -> {self.out_dir}>"


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(f"{str(out_dir)!r} is a file; give a folder for the reproduction")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        marker = out_dir / _MARKER
        ok = False
        if marker.is_file():
            with contextlib.suppress(OSError, ValueError):
                ok = json.loads(marker.read_text()).get("kind") == _KIND
        if not ok:
            raise DataFileError(
                f"{str(out_dir)!r} exists and holds files that are not an earlier reproduction; "
                "choose a new or empty folder (an earlier reproduction there would be replaced)"
            )
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(f"cannot create the folder {str(parent)!r} for {str(out_dir)!r} ({exc.strerror or exc})") from exc
    if not os.access(parent, os.W_OK):
        raise DataFileError(f"cannot write {str(out_dir)!r}: folder {str(parent)!r} is not writable")


def _publish(staging: Path, out_dir: Path) -> None:
    """Swap the finished staging folder in for ``out_dir`` (renames within one folder)."""
    # Temporary folders and files are created private (0700/0600); give the published ones the
    # permissions ordinary new files get under the user's umask.
    umask = os.umask(0)
    os.umask(umask)
    for folder, _dirs, names in os.walk(staging):
        os.chmod(folder, 0o777 & ~umask)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _versions() -> dict:
    import matplotlib
    import torch
    import xarray

    from . import __version__

    return {"egu_widgets": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "xarray": xarray.__version__, "matplotlib": matplotlib.__version__}


def reproduce(
    out_dir: str | os.PathLike,
    fast: bool = False,
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    crop: int | None | str = "mode",
    epochs: int | None | str = "mode",
    device: str = "cpu",
    threads: int | None | str = "mode",
    ss_epochs: int | None | str = "mode",
    log: Callable[[str], None] | None = print,
) -> ReproduceReport:
    """Run the comparison and write table, figures and results into ``out_dir`` (see the module doc).

    ``fast``: the CI smoke test (32×32 crops, 20 epochs, seeds 0 and 1, one torch thread)
    instead of the full run (whole scenes, the engine's default epochs but 20 for egu-ss, seeds
    0, 1, 2, torch's default threads). ``datasets``, ``methods``, ``seeds``, ``crop`` (a side in
    pixels, or None for whole scenes), ``epochs`` (None: the engine's default), ``ss_epochs``
    (egu-ss only; None: as ``epochs``) and ``threads`` (None: torch's default) override single
    settings of the mode. ``log`` receives one line per step
    (None: silent). Returns a :class:`ReproduceReport`; ``out_dir`` is replaced only at the end.
    """
    plan = plan_for(fast, datasets=datasets, methods=methods, seeds=seeds, crop=crop, epochs=epochs, device=device,
                    threads=threads, ss_epochs=ss_epochs)
    out_dir = Path(out_dir).expanduser().absolute()
    _check_target(out_dir)
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        report = _reproduce_into(staging, out_dir, plan, started, date, say)
        _publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"wrote {out_dir} ({len(report.files)} files) in {report.seconds:.0f} s")
    return report


def _reproduce_into(staging: Path, out_dir: Path, plan: Plan, started: float, date: str, say) -> ReproduceReport:
    from . import metrics

    files: list[str] = []
    runs: list[Run] = []
    scenes: dict[str, Scene] = {}
    reps: dict[str, dict[str, UnmixingResult]] = {}
    histories: dict[str, dict[str, list]] = {}
    total = len(plan.datasets) * len(plan.methods) * len(plan.seeds)
    say(f"reproduce ({plan.mode} mode): {plan.describe()}; {total} runs")
    k = 0
    for ds in plan.datasets:
        scene = load_scene(ds, plan.crop)
        scenes[ds] = scene
        say(f"{ds}: {scene.describe()}")
        (staging / "results" / ds).mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[int, UnmixingResult]] = {}
        for method in plan.methods:
            for seed in plan.seeds:
                k += 1
                t0 = time.perf_counter()
                res = _run_one(scene, method, seed, plan)
                wall = time.perf_counter() - t0
                rel = f"results/{ds}/{method}-seed{seed}.nc"
                res.to_netcdf(staging / rel)
                files.append(rel)
                scores = res.scores
                note = ""
                if res.partial:
                    note = str(res.ds.attrs.get("stop_reason", "ended early"))
                valid = scene.cube.valid_mask.ravel()
                by_abundance = metrics.score(res.abundance_pixels[valid], scene.cube.true_abundance_pixels[valid])["rmse"]
                run = Run(ds, method, seed, float(res.rmse), [float(v) for v in scores["rmse_per_endmember"]],
                          float(res.sad) if res.sad is not None else float("nan"),
                          float(res.ds.attrs.get("seconds", wall)), rel, note, float(by_abundance))
                runs.append(run)
                results.setdefault(method, {})[seed] = res
                say(f"[{k}/{total}] {ds} {method} seed {seed}: RMSE {run.rmse:.4f}, SAD {run.sad:.2f} deg, "
                    f"{run.seconds:.1f} s" + (f" ({note})" if note else ""))
        reps[ds] = {m: results[m][_representative([r for r in runs if r.dataset == ds and r.method == m]).seed]
                    for m in plan.methods}
        histories[ds] = {}
        for m in plan.methods:
            if m not in ENGINE_METHODS:
                continue
            rep_seed = _representative([r for r in runs if r.dataset == ds and r.method == m]).seed
            seeds = [rep_seed] + [s for s in plan.seeds if s != rep_seed]
            histories[ds][m] = [(s, results[m][s].history) for s in seeds if results[m][s].history]
        # figures of this scene
        figures = {f"abundances-{ds}.png": abundance_comparison_figure(scene, reps[ds]),
                   f"endmembers-{ds}.png": endmember_comparison_figure(scene, reps[ds])}
        if any(histories[ds].values()):
            figures[f"training-{ds}.png"] = training_comparison_figure(ds, histories[ds])
        for name, fig in figures.items():
            fig.savefig(staging / name, dpi=130)
            files.append(name)
    # the network, traced from the engine's model at the first scene's size
    first = scenes[plan.datasets[0]].cube
    for method in ("egu-pw", "egu-ss"):
        if method in plan.methods:
            model = engine_model(method.split("-")[1], first.n_bands, first.n_true_endmembers)
            fig = network_figure(model, title=f"{METHOD_LABELS[method]} ({first.n_bands} bands, P={first.n_true_endmembers})")
            name = f"network-{method}.png"
            fig.savefig(staging / name, dpi=130)
            files.append(name)
    summary_figure(runs, plan).savefig(staging / "summary.png", dpi=130)
    files.append("summary.png")

    seconds = time.perf_counter() - started
    info = {"date": date, "machine": _machine(), "versions": _versions(), "total_seconds": seconds}
    md = markdown_table(runs, scenes, plan, info)
    (staging / "table.md").write_text(md)
    write_csv(table_rows(runs, scenes, plan), staging / "table.csv")
    files += ["table.md", "table.csv"]
    manifest = {
        "kind": _KIND,
        "plan": asdict(plan),
        "info": info,
        "scenes": {ds: {"description": s.describe(), "window": s.window, "full_shape": s.full_shape} for ds, s in scenes.items()},
        "runs": [asdict(r) for r in runs],
        "files": sorted(files) + [_MARKER],
    }
    (staging / _MARKER).write_text(json.dumps(manifest, indent=1, default=str))
    files.append(_MARKER)
    return ReproduceReport(out_dir, plan, runs, md, seconds, sorted(files))
