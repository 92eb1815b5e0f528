"""Benchmark of the EGU-Net engine: accuracy on the three scenes and paper-scale training time.

    python benchmarks/bench_engine.py                      # everything (long: tens of minutes on 2 cores)
    python benchmarks/bench_engine.py --datasets samson --methods egu-pw ae --seeds 0 1 2
    python benchmarks/bench_engine.py --timing-only        # paper-scale pw training time only
    python benchmarks/bench_engine.py --timing-only --naive  # and the same 1 000 steps in naive PyTorch
    python benchmarks/bench_engine.py --streams            # also score ss's unmixing stream

Prints one row per dataset × method × seed (abundance RMSE after alignment, per-material RMSE,
mean SAD of the returned endmembers, seconds), then the median over seeds, then the timing row:
pw training on the paper's scene size (200×200×224, 8 000 bundles, batch 8 000, 200 epochs =
1 000 steps) with the chosen preset; ``--naive`` adds the same number of steps of the plain
PyTorch loop of ``bench_training.py`` (the reference the engine's speed is judged against), run
just before, so both see the machine in much the same state. ``vca-fcls`` rows are the
classical baseline the targets refer to. ``--json FILE`` also writes every row. Timings depend on what else runs on the machine;
the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import load_average

from egu_widgets import metrics
from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet
from egu_widgets.engine.estimator import METHOD_VARIANTS

DATASETS = ("egu-synthetic", "jasper-ridge", "samson")
METHODS = ("vca-fcls", "egu-pw", "egu-ss", "ae")


def run_one(cube, method: str, seed: int, args) -> dict:
    p = cube.n_true_endmembers
    start = time.perf_counter()
    extra = {}
    if method == "vca-fcls":
        from egu_widgets.classic import fcls, vca

        em, _ = vca(cube.pixels, p, seed=seed)
        ab = fcls(cube.pixels, em)
        seconds = time.perf_counter() - start
        sc = metrics.score(ab, cube.true_abundance_pixels, em, cube.true_endmembers)
    else:
        hp = {}
        if args.epochs is not None:
            hp["epochs"] = args.epochs
        if args.threads:
            hp["num_threads"] = args.threads
        est = EGUNet(METHOD_VARIANTS[method], p, seed=seed, preset=args.preset, progress=False, **hp).fit(cube)
        seconds = time.perf_counter() - start
        sc = est.result_.scores
        sc["sad"] = est.result_.sad if est.result_.sad is not None else float("nan")
        sc["rmse"] = est.result_.rmse
        if args.streams and method == "egu-ss":
            extra["rmse_unmixing_stream"] = metrics.score(
                est.transform(cube, stream="unmixing"), cube.true_abundance_pixels
            )["rmse"]
    return dict(
        dataset=cube.name,
        method=method,
        seed=seed,
        rmse=float(sc["rmse"]),
        rmse_per_endmember=[float(v) for v in sc["rmse_per_endmember"]],
        sad=float(sc["sad"]),
        seconds=float(seconds),
        **extra,
    )


def timing(args, monitored: bool = True) -> dict:
    """Paper-scale pw training: the egu-synthetic scene (200×200×224, P=5), 200 epochs.

    ``monitored``: the cube keeps its truth, so the RMSE is evaluated every 8 epochs during
    training (25 full-image forward passes, included in the training seconds); otherwise the
    truth is removed for the fit, as for a real scene without one, and the result is scored after.
    """
    from egu_widgets import metrics

    cube = open_cube("egu-synthetic")
    hp = {"num_threads": args.threads} if args.threads else {}
    est = EGUNet("pw", 5, seed=0, preset=args.preset, progress=False, epochs=200, **hp)
    import torch

    threads = args.threads or torch.get_num_threads()
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(cube if monitored else cube.without_truth())
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = est.outcome_
    rmse = metrics.score(est.transform(cube), cube.true_abundance_pixels, est.endmembers_, cube.true_endmembers)["rmse"]
    # CPU seconds are what the run itself consumed; with one thread they are close to the wall
    # time the run would take on an idle core, whatever else the machine is doing.
    return dict(
        preset=args.preset,
        n_bundles=est.bundles_.n_bundles,
        steps=out.steps_done,
        threads=threads,
        monitored=monitored,
        training_seconds=out.seconds,
        total_seconds=total,
        cpu_seconds=cpu,
        rmse=float(rmse),
        load=load_average(),
    )


def naive_timing(args, steps: int = 1000) -> dict:
    """The same work as the timing row (8 000 pixels + 8 000 bundles per step), written naively."""
    import torch
    from bench_training import naive_steps

    from egu_widgets.engine import extract_bundles

    if args.threads:
        torch.set_num_threads(args.threads)
    cube = open_cube("egu-synthetic")
    b = extract_bundles(cube, 5, seed=0)
    pixels = torch.from_numpy(cube.pixels.astype(np.float32))
    times = naive_steps("pw", pixels, None, torch.from_numpy(b.spectra), torch.from_numpy(b.labels), steps).times
    return dict(steps=steps, seconds=float(sum(times)), threads=torch.get_num_threads(), load=load_average())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, help="override the preset's epochs")
    ap.add_argument("--preset", default="default", choices=("default", "paper"))
    ap.add_argument("--threads", type=int, help="torch threads while training (default: torch's)")
    ap.add_argument("--streams", action="store_true", help="also score the ss unmixing stream")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--naive", action="store_true", help="also time 1 000 steps of naive PyTorch (about 3 minutes)")
    ap.add_argument("--json", help="write all rows to this JSON file")
    args = ap.parse_args(argv)

    rows: list[dict] = []
    if not args.timing_only:
        print(f"preset={args.preset} seeds={args.seeds} ({load_average()})")
        print(
            f"{'dataset':<14} {'method':<9} {'seed':>4} {'RMSE':>7} {'mean SAD':>9} {'seconds':>8}  per-material RMSE"
        )
        for name in args.datasets:
            cube = open_cube(name)
            for method in args.methods:
                for seed in args.seeds:
                    r = run_one(cube, method, seed, args)
                    rows.append(r)
                    per = " ".join(f"{v:.3f}" for v in r["rmse_per_endmember"])
                    extra = (
                        f"  (ss unmixing stream {r['rmse_unmixing_stream']:.4f})" if "rmse_unmixing_stream" in r else ""
                    )
                    print(
                        f"{r['dataset']:<14} {method:<9} {seed:>4} {r['rmse']:>7.4f} {r['sad']:>9.2f} "
                        f"{r['seconds']:>8.1f}  {per}{extra}",
                        flush=True,
                    )
        print(f"\nmedian over seeds {args.seeds}:")
        print(
            f"{'dataset':<14} {'method':<9} {'RMSE':>7} {'best':>7} {'mean SAD':>9} {'seconds':>8}  per-material RMSE"
        )
        for name in args.datasets:
            for method in args.methods:
                sel = [r for r in rows if r["dataset"] == name and r["method"] == method]
                if not sel:
                    continue
                per = np.median([r["rmse_per_endmember"] for r in sel], axis=0)
                print(
                    f"{name:<14} {method:<9} {np.median([r['rmse'] for r in sel]):>7.4f} "
                    f"{min(r['rmse'] for r in sel):>7.4f} {np.median([r['sad'] for r in sel]):>9.2f} "
                    f"{np.median([r['seconds'] for r in sel]):>8.1f}  " + " ".join(f"{v:.3f}" for v in per)
                )
    if not args.no_timing:
        print()
        if args.naive:
            n = naive_timing(args)
            rows.append(dict(timing_naive=n))
            print(
                f"paper-scale pw, naive PyTorch (bench_training.py's loop, {n['threads']} thread(s)): {n['steps']} steps in "
                f"{n['seconds']:.1f} s ({n['load']})",
                flush=True,
            )
        for monitored in (True, False):
            t = timing(args, monitored)
            rows.append(dict(timing=t))
            how = "RMSE monitored every 8 epochs" if monitored else "no truth during the fit"
            print(
                f"paper-scale pw ({t['preset']} preset, {t['threads']} thread(s), {how}): 200x200x224, "
                f"{t['n_bundles']} bundles, {t['steps']} steps: training {t['training_seconds']:.1f} s, total with "
                f"bundles and inference {t['total_seconds']:.1f} s ({t['cpu_seconds']:.1f} CPU s), "
                f"RMSE {t['rmse']:.4f} ({t['load']})",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
