"""Which endmembers go best with EGU-Net's abundances: reference, decoder, or a least-squares fit.

    python benchmarks/bench_endmembers.py [--scenes ...] [--methods egu-pw egu-ss] [--seeds 0 1 2]
                                          [--threads 1] [--epochs N] [--csv out.csv]
    python benchmarks/bench_endmembers.py --report out.csv [more.csv ...]   # tables from saved runs

Each scene × method × seed trains one EGU-Net with its default settings (no ground truth used in
fitting) and scores three sets of endmembers for the same model's abundances:

- ``reference``: the bundles' reference spectra, what ``endmembers_`` returned before (N-FINDR
  pixels by default);
- ``decoder``: ``decoder_endmembers_``, the decoder applied to one-hot abundances;
- ``fit``: :func:`~egu_widgets.classic.endmember_fit.fit_endmembers`, non-negative least squares
  of the image's valid pixels on the network's abundances.

Each set is aligned to the truth by spectral angle, as a result is, so a set that mislabels the
materials shows it in the RMSE printed beside the SAD. The ``nfindr-fcls`` and ``vca-fcls`` rows
are the classical baselines (their own endmembers and FCLS abundances). Scenes: samson,
jasper-ridge, egu-synthetic and the robustness suite of ``robustness_scenes.py``. Tables give the
median over seeds per scene, then the median over scenes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import load_average
from robustness_scenes import RECIPES, make_scene

from egu_widgets import metrics, unmix
from egu_widgets.classic.endmember_fit import fit_endmembers
from egu_widgets.cube import open_cube

DATASETS = ("samson", "jasper-ridge", "egu-synthetic")
SCENES = (*DATASETS, *RECIPES)
ESTIMATES = ("reference", "decoder", "fit")
BASELINES = ("nfindr-fcls", "vca-fcls")
FIELDS = ("scene", "method", "seed", "estimate", "sad", "rmse", "seconds")


def load(scene: str):
    return open_cube(scene) if scene in DATASETS else make_scene(scene, seed=0)


def _score(cube, abundances: np.ndarray, endmembers: np.ndarray) -> tuple[float, float]:
    valid = cube.valid_mask.ravel()
    sc = metrics.score(abundances[valid], cube.true_abundance_pixels[valid], endmembers, cube.true_endmembers)
    return float(sc["sad"]), float(sc["rmse"])


def run_egu(cube, method: str, seed: int, threads: int, epochs: int | None) -> list[dict]:
    """One fit, three estimates of its endmembers; rows for the CSV."""
    from egu_widgets.engine import EGUNet

    options = {} if epochs is None else {"epochs": epochs}
    start = time.perf_counter()
    est = EGUNet(
        method.removeprefix("egu-"), cube.n_true_endmembers, seed=seed, progress=False, num_threads=threads, **options
    ).fit(cube)
    seconds = time.perf_counter() - start
    abundances = est.transform(cube)
    sets = {
        "reference": est.reference_,
        "decoder": est.decoder_endmembers_,
        "fit": fit_endmembers(cube.pixels, abundances, mask=cube.valid_mask.ravel()),
    }
    return [
        dict(estimate=name, seconds=seconds, **dict(zip(("sad", "rmse"), _score(cube, abundances, em))))
        for name, em in sets.items()
    ]


def run_baseline(cube, method: str, seed: int) -> list[dict]:
    start = time.perf_counter()
    result = unmix(cube, method=method, seed=seed)
    return [dict(estimate="own", sad=result.sad, rmse=result.rmse, seconds=time.perf_counter() - start)]


def _median(values) -> float:
    """Median with NaN ranked last: a SAD is NaN when an estimate holds a zero spectrum (a failure)."""
    return statistics.median(v if np.isfinite(v) else np.inf for v in map(float, values))


def _cell(value: float, fmt: str, scaled: bool) -> str:
    if not np.isfinite(value):
        return "failed"
    return fmt.format(value) + (f" ({100 * value:.2f})" if scaled else "")


def report(rows: list[dict]) -> None:
    """Median-over-seeds tables (SAD, then RMSE under the same alignment), scene × estimate."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        column = row["method"] if row["estimate"] == "own" else f"{row['method']} {row['estimate']}"
        cells.setdefault((row["scene"], column), []).append(row)
    scenes = list(dict.fromkeys(row["scene"] for row in rows))
    columns = list(dict.fromkeys(column for _, column in cells))
    seeds = sorted({int(row["seed"]) for row in rows})
    print(f"\nseeds {seeds}; median over seeds (cells with fewer seeds: the count in brackets)\n")
    for title, key, fmt in (
        ("mean SAD to the truth, degrees", "sad", "{:.2f}"),
        ("abundance RMSE under that alignment, 0-1 scale (x100)", "rmse", "{:.4f}"),
    ):
        print(f"{title}\n")
        print("| scene | " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * len(columns))
        medians = {c: [] for c in columns}
        for scene in scenes:
            out = []
            for column in columns:
                got = [float(r[key]) for r in cells.get((scene, column), [])]
                if not got:
                    out.append("")
                    continue
                value = _median(got)
                medians[column].append(value)
                text = _cell(value, fmt, key == "rmse")
                failed = sum(not np.isfinite(v) for v in got)
                text += f" [{failed} failed]" if failed else ""
                out.append(text + (f" [{len(got)} seeds]" if len(got) < len(seeds) and "fcls" not in column else ""))
            print(f"| {scene} | " + " | ".join(out) + " |")
        overall = [_cell(_median(v), fmt, key == "rmse") if v else "" for v in medians.values()]
        print("| **median over scenes** | " + " | ".join(f"**{v}**" for v in overall) + " |\n")
    wins = {}
    for scene in scenes:
        for method in ("egu-pw", "egu-ss"):
            got = {e: cells.get((scene, f"{method} {e}")) for e in ESTIMATES}
            if all(got.values()):
                best = min(ESTIMATES, key=lambda e: _median(r["sad"] for r in got[e]))
                wins.setdefault(method, []).append(best)
    for method, best in wins.items():
        print(
            f"{method}: lowest median SAD per scene: "
            + ", ".join(f"{e} {best.count(e)}" for e in ESTIMATES)
            + f" of {len(best)} scenes"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    parser.add_argument("--methods", nargs="+", default=["egu-pw", "egu-ss"], choices=["egu-pw", "egu-ss"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads while fitting")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the method's own; for quick checks)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the nfindr-fcls and vca-fcls rows")
    parser.add_argument("--csv", help="append every row to this CSV file as it is measured")
    parser.add_argument("--report", nargs="+", metavar="CSV", help="print the tables of saved runs and exit")
    args = parser.parse_args(argv)

    if args.report:
        rows = []
        for path in args.report:
            with open(path, newline="") as fh:
                rows.extend(csv.DictReader(fh))
        report(rows)
        return 0

    epochs = f"{args.epochs} epochs" if args.epochs else "default settings"
    print(f"{epochs}, {args.threads} torch thread(s), {load_average()}", flush=True)
    fh = None
    if args.csv:
        new = not Path(args.csv).exists()
        fh = open(args.csv, "a", newline="")  # noqa: SIM115 (kept open while rows arrive)
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
    rows = []
    for scene in args.scenes:
        cube = load(scene)
        jobs = [(m, s) for m in (() if args.no_baselines else BASELINES) for s in args.seeds[:1]]
        jobs += [(m, s) for m in args.methods for s in args.seeds]
        for method, seed in jobs:
            found = (
                run_baseline(cube, method, seed)
                if method in BASELINES
                else run_egu(cube, method, seed, args.threads, args.epochs)
            )
            for row in found:
                row = dict(scene=scene, method=method, seed=seed, **row)
                rows.append(row)
                if fh:
                    writer.writerow(row)
                    fh.flush()
            print(
                f"# {scene} {method} seed {seed} ({found[0]['seconds']:.1f} s): "
                + ", ".join(f"{r['estimate']} SAD {r['sad']:.2f} RMSE {r['rmse']:.4f}" for r in found),
                flush=True,
            )
    if fh:
        fh.close()
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
