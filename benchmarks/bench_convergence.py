"""Auto-stopped, averaged training against the fixed 200-epoch run and naive PyTorch.

    python benchmarks/bench_convergence.py [--scenes egu-synthetic samson jasper-ridge]
                                           [--variant pw] [--seeds 0 1 2] [--threads 1]
                                           [--naive-steps 10] [--precision float32 bf16]
                                           [--preset default] [--epochs N] [--tol T] [--lr LR]
                                           [--eval-every N] [--trajectory] [--breakdown]
                                           [--bundle-seed S]

For each scene and seed: one ``EGUNet`` fit with the chosen preset (default: the default preset,
``epochs="auto"``), the abundance RMSE monitored at the fit's own spacing unless
``--eval-every`` says otherwise (monitoring more often costs a full-image pass each time and is
counted in the time), and the wall and CPU time of the fit (bundles, training, calibration and
the final inference). Around each fit, in the same process, the naive PyTorch step of
``bench_training.py`` on that scene's pixels and bundles is timed, half of ``--naive-steps``
right before the fit and half right after (median of all), and multiplied by the steps of the
authors' 200 epochs: the "naive 200-epoch loop" the time ratio is taken against. Two ratios:
wall time over wall time, and process CPU time over process CPU time. With one torch thread
(and ``OMP_NUM_THREADS=1``) the CPU-time ratio hardly moves with the machine's load, while the
wall ratio moves whenever the load differs between the fit and the naive steps.

Columns: epochs run and why the run ended, seconds, the two ratios, final RMSE, the swing of
the monitored RMSE over the last quarter of the run (max - min), then per scene the median and
the spread (max - min) over seeds. ``--bundle-seed S`` trains every seed on the bundles
extracted with seed S, so that what remains of the spread comes from training (initial
weights, dropout, batches). ``--breakdown`` adds, per run, where the fit's wall time
went: bundle extraction, the optimiser steps, the stopping rule's probe checks, the RMSE
monitor's passes, calibration of the batch norms, the final transform, and the rest (model
set-up, the result). ``--precision`` runs each fit once per precision.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from _common import load_average
from bench_training import naive_step

from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet, extract_bundles
from egu_widgets.engine import estimator as _estimator


class NaiveClock:
    """The naive PyTorch pw step on one scene (its pixels, its bundles), timed in bursts.

    Two warm-up steps when made; each ``burst(k)`` times k more steps (wall and process CPU
    seconds each), so that steps taken before and after a fit share one model and warm-up.
    """

    def __init__(self, cube, bundles):
        pixels = torch.from_numpy(cube.pixels[cube.valid_mask.ravel()].astype(np.float32))
        spectra, labels = torch.from_numpy(bundles.spectra), torch.from_numpy(bundles.labels)
        self.step = naive_step("pw", pixels, None, spectra, labels)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.count = 0
        for _ in range(2):
            self._one(record=False)

    def _one(self, record: bool = True) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.step(self.count)
        self.count += 1
        if record:
            self.wall.append(time.perf_counter() - w)
            self.cpu.append(time.process_time() - c)

    def burst(self, k: int) -> None:
        for _ in range(k):
            self._one()


class Breakdown:
    """Wall seconds of a fit's parts, from timers around the probe, the monitor, calibration and
    transform, and the training events (installed on one estimator for one fit)."""

    PARTS = ("bundles", "steps", "probe", "monitor", "calibrate", "transform", "rest")

    def __init__(self):
        self.seconds = dict.fromkeys(self.PARTS, 0.0)
        self.train_start = self.train_end = 0.0
        self.bundle_seconds = 0.0

    def timed(self, part: str, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[part] += time.perf_counter() - t

        return wrapper

    def __call__(self, event) -> None:  # a training callback
        if event.kind == "start":
            self.train_start = time.perf_counter()
            self.bundle_seconds = float(event.info.get("bundle_seconds", 0.0))
        elif event.kind in ("end", "stop", "fail"):
            self.train_end = time.perf_counter()

    def install(self, est: EGUNet) -> None:
        probe, monitor = _estimator.EGUNet._probe, _estimator.EGUNet._monitor
        est._probe = lambda *a: self.timed("probe", probe(est, *a))
        est._monitor = lambda *a: self.timed("monitor", monitor(est, *a))
        est._calibrate = self.timed("calibrate", est._calibrate)
        est.transform = self.timed("transform", est.transform)

    def finish(self, total: float) -> dict:
        s = self.seconds
        s["bundles"] = self.bundle_seconds
        s["steps"] = (self.train_end - self.train_start) - s["probe"] - s["monitor"]
        s["rest"] = total - sum(v for k, v in s.items() if k != "rest")
        return s


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
    ap.add_argument("--naive-steps", type=int, default=10, help="naive steps timed per run, half before the fit")
    ap.add_argument("--precision", nargs="+", default=["float32"], choices=["float32", "bf16"])
    ap.add_argument("--preset", default="default", choices=["default", "paper"])
    ap.add_argument("--epochs", type=int, help="an epoch bound instead of the preset's")
    ap.add_argument(
        "--eval-every", type=int, help="epochs between RMSE evaluations, for the swing (default: the fit's own)"
    )
    ap.add_argument("--tol", type=float, help="the stopping rule's tolerance (0: run to the bound)")
    ap.add_argument("--lr", type=float, help="the learning rate instead of the preset's")
    ap.add_argument("--params", type=json.loads, default={}, help="other EGUNet hyperparameters, as JSON")
    ap.add_argument("--trajectory", action="store_true", help="also print each run's RMSE and change per check")
    ap.add_argument("--breakdown", action="store_true", help="also print where each fit's wall time went")
    ap.add_argument(
        "--bundle-seed",
        type=int,
        help="train every seed on the bundles of this seed (separates the bundles' randomness from training's)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.variant}, preset {args.preset}, {load_average()}"
    )
    print(
        "| scene | precision | seed | epochs | stop | seconds | naive 200 ep. (s) | ratio | CPU ratio | RMSE "
        "| swing last 1/4 |\n|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    summary, breakdowns = [], []
    before = args.naive_steps // 2
    for scene in args.scenes:
        cube = open_cube(scene)
        for precision in args.precision:
            rmses, ratios, cpu_ratios = [], [], []
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
                    lr=args.lr,
                    **args.params,
                )
                bundle_seed = seed if args.bundle_seed is None else args.bundle_seed
                bundles = extract_bundles(cube, cube.n_true_endmembers, seed=bundle_seed)
                clock = NaiveClock(cube, bundles)
                clock.burst(before)
                parts = Breakdown()
                callbacks = []
                if args.breakdown:
                    parts.install(est)
                    callbacks = [parts]
                start, cpu_start = time.perf_counter(), time.process_time()
                est.fit(cube, bundles=None if args.bundle_seed is None else bundles, callbacks=callbacks)
                seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
                clock.burst(args.naive_steps - before)
                out = est.outcome_
                steps_per_epoch = round(out.steps_done / max(out.epochs_done, 1))
                # --naive-steps 0: no naive loop (its step is pw's; an ss fit is read by its seconds)
                naive = statistics.median(clock.wall or [math.nan]) * steps_per_epoch * 200
                naive_cpu = statistics.median(clock.cpu or [math.nan]) * steps_per_epoch * 200
                ratio, cpu_ratio = seconds / naive, cpu_seconds / naive_cpu
                rmse = est.result_.rmse
                rmses.append(rmse)
                ratios.append(ratio)
                cpu_ratios.append(cpu_ratio)
                print(
                    f"| {scene} | {precision} | {seed} | {out.epochs_done} | {out.stop} | {seconds:.1f} | "
                    f"{naive:.1f} | {ratio:.3f} | {cpu_ratio:.3f} | {rmse:.4f} | "
                    f"{swing(est.history_, out.epochs_done):.4f} |",
                    flush=True,
                )
                if args.trajectory:
                    print("  epoch: RMSE / change  " + trajectory(est.history_))
                if args.breakdown:
                    breakdowns.append((scene, seed, out.steps_done, seconds, parts.finish(seconds)))
            summary.append(
                (
                    scene,
                    precision,
                    statistics.median(rmses),
                    max(rmses) - min(rmses),
                    statistics.median(ratios),
                    statistics.median(cpu_ratios),
                )
            )
    print(
        "\n| scene | precision | median RMSE | spread over seeds | median time ratio | median CPU ratio |\n"
        "|---|---|---:|---:|---:|---:|"
    )
    for scene, precision, med, spread, ratio, cpu_ratio in summary:
        print(f"| {scene} | {precision} | {med:.4f} | {spread:.4f} | {ratio:.3f} | {cpu_ratio:.3f} |")
    if breakdowns:
        names = Breakdown.PARTS
        print(
            "\nWhere the wall time went (seconds; steps = training minus probe and monitor)\n"
            "| scene | seed | n steps | total | "
            + " | ".join(names)
            + " |\n|---|---:|---:|---:|"
            + "---:|" * len(names)
        )
        for scene, seed, steps, total, part in breakdowns:
            cells = " | ".join(f"{part[n]:.1f}" for n in names)
            print(f"| {scene} | {seed} | {steps} | {total:.1f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
