"""Auto-stopped, averaged training against the fixed 200-epoch run and naive PyTorch.

    python benchmarks/bench_convergence.py [--scenes egu-synthetic samson jasper-ridge]
                                           [--variant pw] [--seeds 0 1 2] [--threads 1]
                                           [--naive-steps 10] [--precision float32 bf16]
                                           [--preset default] [--epochs N] [--tol T]
                                           [--eval-every N] [--trajectory]

For each scene and seed: one ``EGUNet`` fit with the chosen preset (default: the default preset,
``epochs="auto"``), the abundance RMSE monitored every ``--eval-every`` epochs (default: the
fit's own spacing; monitoring more often costs a full-image pass each time and is counted in the
time), and the wall time of the fit (bundles, training, calibration and the final inference).
Right after each fit, in the same process, the naive PyTorch step of ``bench_training.py`` on
that scene's pixels and bundles is timed (median of ``--naive-steps`` steps) and multiplied by
the steps of the authors' 200 epochs: the "naive 200-epoch loop" the time ratio is taken
against, measured under the same load as the fit. Columns: epochs run and why the run ended, seconds, ratio to naive, final RMSE,
the swing of the monitored RMSE over the last quarter of the run (max - min), then per scene the
median and the spread (max - min) over seeds. ``--precision`` runs each fit once per precision.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from _common import load_average
from bench_training import naive_steps

from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet


def naive_step_seconds(cube, bundles, n_steps: int) -> float:
    """Median seconds of one naive PyTorch pw step on this scene (its pixels, its bundles)."""
    pixels = torch.from_numpy(cube.pixels[cube.valid_mask.ravel()].astype(np.float32))
    spectra, labels = torch.from_numpy(bundles.spectra), torch.from_numpy(bundles.labels)
    return statistics.median(naive_steps("pw", pixels, None, spectra, labels, n_steps).times)


def swing(history: dict, epochs_done: int) -> float:
    """max - min of the monitored RMSE over the last quarter of the run's epochs."""
    rmse = np.asarray(history.get("rmse", []), dtype=float)
    if rmse.size == 0:
        return float("nan")
    epochs = np.asarray(history.get("epoch", np.arange(1, rmse.size + 1)), dtype=float)
    last = rmse[(epochs > 0.75 * epochs_done) & np.isfinite(rmse)]
    return float(last.max() - last.min()) if last.size else float("nan")


def trajectory(history: dict) -> str:
    """'epoch:rmse/change' at every epoch where either was recorded."""
    rmse = history.get("rmse", [])
    change = history.get("change", [float("nan")] * len(rmse))
    cells = [f"{i + 1}:{r:.4f}/{c:.4f}" for i, (r, c) in enumerate(zip(rmse, change)) if r == r or c == c]
    return " ".join(cells)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["egu-synthetic", "samson", "jasper-ridge"])
    ap.add_argument("--variant", default="pw", choices=["pw", "ss"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--naive-steps", type=int, default=10)
    ap.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bf16"])
    ap.add_argument("--preset", default="default", choices=["default", "paper"])
    ap.add_argument("--epochs", type=int, help="an epoch bound instead of the preset's")
    ap.add_argument(
        "--eval-every", type=int, help="epochs between RMSE evaluations, for the swing (default: the fit's own)"
    )
    ap.add_argument("--tol", type=float, help="the stopping rule's tolerance (0: run to the bound)")
    ap.add_argument("--trajectory", action="store_true", help="also print each run's RMSE and change per check")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.variant}, preset {args.preset}, {load_average()}"
    )
    print(
        "| scene | precision | seed | epochs | stop | seconds | naive 200 ep. (s) | ratio | RMSE | swing last 1/4 |\n"
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"
    )
    summary = []
    for scene in args.scenes:
        cube = open_cube(scene)
        for precision in args.precision:
            rmses, ratios = [], []
            for seed in args.seeds:
                est = EGUNet(
                    args.variant,
                    seed=seed,
                    preset=args.preset,
                    epochs=args.epochs,
                    progress=False,
                    num_threads=args.threads,
                    precision=precision,
                    eval_every=args.eval_every,
                    tol=args.tol,
                )
                start = time.perf_counter()
                est.fit(cube)
                seconds = time.perf_counter() - start
                per_step = naive_step_seconds(cube, est.bundles_, args.naive_steps)
                steps_per_epoch = est.outcome_.steps_done / max(est.outcome_.epochs_done, 1)
                naive = per_step * round(steps_per_epoch) * 200
                ratio = seconds / naive
                rmse = est.result_.rmse
                rmses.append(rmse)
                ratios.append(ratio)
                out = est.outcome_
                print(
                    f"| {scene} | {precision} | {seed} | {out.epochs_done} | {out.stop} | {seconds:.1f} | "
                    f"{naive:.1f} | {ratio:.3f} | {rmse:.4f} | {swing(est.history_, out.epochs_done):.4f} |",
                    flush=True,
                )
                if args.trajectory:
                    print("  epoch: RMSE / change  " + trajectory(est.history_))
            summary.append(
                (scene, precision, statistics.median(rmses), max(rmses) - min(rmses), statistics.median(ratios))
            )
    print("\n| scene | precision | median RMSE | spread over seeds | median time ratio |\n|---|---|---:|---:|---:|")
    for scene, precision, med, spread, ratio in summary:
        print(f"| {scene} | {precision} | {med:.4f} | {spread:.4f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
