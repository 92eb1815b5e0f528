"""The comparison's table: long-format rows, a CSV file and a Markdown report with its header.

Each cell is the median over seeds with the [min–max] range; the header states the mode, what
was run, when, on which machine and with which versions, so a table always says where it came from.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plan import METHOD_LABELS, Plan, Run, default_epochs
from .scenes import Scene

__all__ = ["machine", "markdown_table", "summarise", "table_rows", "versions", "write_csv"]


def summarise(values: Sequence[float]) -> dict:
    """Median, min, max and count of the finite ``values`` (NaN and 0 when none is finite)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n_seeds": 0}
    return {
        "median": float(np.median(finite)),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "n_seeds": int(finite.size),
    }


def _fmt(s: dict, digits: int) -> str:
    """A table cell: the median, then the [min–max] range when the seeds differ."""
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
            entries += [
                ("sad_deg", "all", [r.sad for r in rs]),
                ("seconds", "all", [r.seconds for r in rs]),
                ("rmse_abundance_matched", "all", [r.rmse_abundance_matched for r in rs]),
            ]
            for metric, material, values in entries:
                s = summarise(values)
                rows.append(
                    {
                        "dataset": ds,
                        "method": method,
                        "metric": metric,
                        "material": material,
                        "median": s["median"],
                        "min": s["min"],
                        "max": s["max"],
                        "n_seeds": s["n_seeds"],
                        "seeds": ";".join(str(r.seed) for r in rs),
                        "values": ";".join(f"{v:.6g}" for v in values),
                    }
                )
    return rows


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """Write :func:`table_rows` to ``path`` as CSV, numbers with six significant digits."""
    columns = ["dataset", "method", "metric", "material", "median", "min", "max", "n_seeds", "seeds", "values"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in columns})


def machine() -> str:
    """The machine, in words: CPU cores and model, operating system, Python."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def markdown_table(runs: Sequence[Run], scenes: Mapping[str, Scene], plan: Plan, info: Mapping[str, Any]) -> str:
    """The Markdown table: a header stating the mode, the run and how to read it, one section per scene.

    ``info`` holds ``date``, ``total_seconds``, ``machine`` and ``versions`` (as in the manifest).
    """
    rows = table_rows(runs, scenes, plan)
    lookup = {(r["dataset"], r["method"], r["metric"], r["material"]): r for r in rows}
    out = io.StringIO()
    if plan.mode == "fast":
        out.write("# EGU-Net comparison — FAST MODE (smoke test, not the paper's numbers)\n\n")
        out.write(
            f"**Fast mode:** {plan.describe()}. Scenes are cropped and training is short, so these "
            "figures only show that every step runs; run `egu-widgets reproduce --out DIR` (full mode) "
            "for the comparison.\n\n"
        )
    else:
        out.write("# EGU-Net comparison — full mode\n\n")
        out.write(f"**Full mode:** {plan.describe()}.")
        if (
            "egu-ss" in plan.methods
            and plan.ss_epochs is not None
            and plan.ss_epochs != (plan.epochs or default_epochs())
        ):
            out.write(
                f" EGU-Net-ss is trained for {plan.ss_epochs} epochs instead of {plan.epochs or default_epochs()} "
                "so that the run fits in about an hour on two CPU cores (its convolutional stream makes each epoch "
                "far costlier than EGU-Net-pw's); its row is not the paper's setting."
            )
        out.write("\n\n")
    out.write(
        f"Run on {info['date']} in **{info['total_seconds']:.0f} s** on {info['machine']}; "
        f"egu_widgets {info['versions']['egu_widgets']}, torch {info['versions']['torch']}, "
        f"numpy {info['versions']['numpy']}.\n\n"
    )
    out.write(
        "Each cell: median over seeds, [min–max] in brackets. Abundance RMSE on the 0–1 scale and SAD in "
        "degrees, both after Hungarian alignment of the estimate to the truth (lower is better). "
        "SUnSAL uses the same VCA endmembers as FCLS, so their SAD is the same. "
        "*Abundance RMSE* and the per-material columns pair each estimated material with a true one by "
        "their spectra (the package's standard scoring); *RMSE, matched by maps* pairs them by their "
        "abundance maps instead, which differs when a method's spectra are far from the references "
        "(the `ae` ablation's decoded spectra, for example). EGU-Net's endmembers are the reference spectra "
        "its bundle labels refer to (a whole-image N-FINDR, or VCA where it explains the image clearly better; "
        "refined where the picks are mixtures and "
        "replaced by the means of its purest pixels where brightness varies). "
        "Time: seconds per run (training included).\n"
    )
    for ds in plan.datasets:
        scene = scenes[ds]
        names = scene.cube.endmember_names
        out.write(f"\n## {ds} ({scene.describe()})\n\n")
        header = (
            ["method", "abundance RMSE"]
            + [f"RMSE {n}" for n in names]
            + ["RMSE, matched by maps", "mean SAD (deg)", "time (s)"]
        )
        out.write("| " + " | ".join(header) + " |\n")
        out.write("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|\n")
        for method in plan.methods:
            if (ds, method, "rmse", "all") not in lookup:
                continue
            cells = [METHOD_LABELS[method], _fmt(lookup[(ds, method, "rmse", "all")], 4)]
            cells += [_fmt(lookup[(ds, method, "rmse", n)], 4) for n in names]
            cells += [
                _fmt(lookup[(ds, method, "rmse_abundance_matched", "all")], 4),
                _fmt(lookup[(ds, method, "sad_deg", "all")], 2),
                _fmt(lookup[(ds, method, "seconds", "all")], 1),
            ]
            notes = sorted({r.note for r in runs if r.dataset == ds and r.method == method and r.note})
            if notes:
                cells[0] += " †"
            out.write("| " + " | ".join(cells) + " |\n")
        notes = sorted({f"{r.method} seed {r.seed}: {r.note}" for r in runs if r.dataset == ds and r.note})
        for note in notes:
            out.write(f"\n† {note}\n")
    return out.getvalue()


def versions() -> dict:
    """Versions of the package and of the libraries that decide the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import matplotlib
    import torch
    import xarray

    try:  # what egu_widgets.__version__ says, read without importing the package's top level
        own = version("egu_widgets")
    except PackageNotFoundError:
        own = "0+unknown"
    return {
        "egu_widgets": own,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "xarray": xarray.__version__,
        "matplotlib": matplotlib.__version__,
    }
