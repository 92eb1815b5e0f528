"""What keeping freed memory in the process while training changes (``egu_widgets.engine.heap``).

    python benchmarks/bench_heap.py [--pairs 4] [--epochs 8] [--threads 2]

Each run is a fresh process (glibc's allocator policy depends on what a process has allocated
before, so the setting can only be compared between new processes) that fits EGU-Net-pw on
egu-synthetic (the paper's scene size) for ``--epochs`` epochs of 5 steps. Runs alternate between
``EGU_WIDGETS_RETAIN_HEAP=1`` (the engine's default) and ``=0`` so that both settings see the
machine in much the same state. Reported over the training window only (from the "start" to the
"end" event): seconds per step, user and system CPU seconds per step, and minor page faults per
step (pages the kernel had to hand out, zero-filled, again). Then the medians per setting and the
median of the paired ratios of seconds per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def child(epochs: int, threads: int) -> dict:
    from egu_widgets.cube import open_cube
    from egu_widgets.engine import EGUNet

    marks = {}

    def mark(event) -> None:
        if event.kind in ("start", "end"):
            marks[event.kind] = resource.getrusage(resource.RUSAGE_SELF)

    cube = open_cube("egu-synthetic").without_truth()  # no evaluations inside the window
    est = EGUNet("pw", 5, seed=0, progress=False, epochs=epochs, num_threads=threads).fit(cube, callbacks=[mark])
    a, b = marks["start"], marks["end"]
    steps = est.outcome_.steps_done
    return dict(steps=steps, seconds_per_step=est.outcome_.seconds / steps,
                user_per_step=(b.ru_utime - a.ru_utime) / steps, sys_per_step=(b.ru_stime - a.ru_stime) / steps,
                faults_per_step=(b.ru_minflt - a.ru_minflt) / steps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.epochs, args.threads)))
        return 0
    from _common import load_average

    print(f"pw on egu-synthetic, {args.epochs} epochs per run, {args.threads} torch thread(s), {load_average()}")
    print(f"{'pair':>4} {'heap':<9} {'s/step':>7} {'user s/step':>11} {'sys s/step':>10} {'faults/step':>11}")
    runs: dict[str, list[dict]] = {"kept": [], "returned": []}
    for pair in range(args.pairs):
        for name, value in (("kept", "1"), ("returned", "0")):
            env = dict(os.environ, EGU_WIDGETS_RETAIN_HEAP=value)
            out = subprocess.run([sys.executable, __file__, "--child", "--epochs", str(args.epochs),
                                  "--threads", str(args.threads)], env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(r)
            print(f"{pair:>4} {name:<9} {r['seconds_per_step']:>7.3f} {r['user_per_step']:>11.3f} "
                  f"{r['sys_per_step']:>10.4f} {r['faults_per_step']:>11.0f}", flush=True)
    print("\nmedians:")
    for name, rs in runs.items():
        print(f"     {name:<9} " + " ".join(f"{statistics.median(r[k] for r in rs):>{w}.{d}f}" for k, w, d in (
            ("seconds_per_step", 7, 3), ("user_per_step", 11, 3), ("sys_per_step", 10, 4), ("faults_per_step", 11, 0))))
    ratios = [k["seconds_per_step"] / r["seconds_per_step"] for k, r in zip(runs["kept"], runs["returned"])]
    print(f"kept / returned, seconds per step, per pair: {' '.join(f'{x:.3f}' for x in ratios)} "
          f"(median {statistics.median(ratios):.3f}; {load_average()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
