"""The thread policy on a loaded machine: torch's default thread count against the engine's choice.

    python benchmarks/bench_threads.py                   # 2 CPU-bound processes alongside, 3 rounds
    python benchmarks/bench_threads.py --hogs 0 --warmup 0   # the machine as it is
    python benchmarks/bench_threads.py --epochs 20 --rounds 3 --warmup 60

Starts ``--hogs`` CPU-bound processes (``while True: pass``), waits ``--warmup`` seconds so that
the one-minute load average sees them, then trains the demo's egu-pw
(``unmix(make_demo(), "egu-pw", epochs=...)``) alternately with

- A, the old default: ``num_threads`` = torch's default thread count (one per CPU it sees);
- B, the new default: no ``num_threads``, so :func:`egu_widgets.engine.threads.choose_num_threads`
  picks the count from the affinity mask, the cgroup quota and the load,

and prints one row per run (the threads it trained with, its seconds, the load average when it
started) and the median of each. The processes it started are stopped at the end. Timings depend
on whatever else runs on the machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import load_average


def _one_run(cube, epochs: int, num_threads: int | None) -> tuple[int, float]:
    """Train egu-pw once; the threads it trained with and its seconds."""
    import torch

    from egu_widgets import unmix

    seen: list[int] = []
    start = time.perf_counter()
    unmix(
        cube,
        "egu-pw",
        epochs=epochs,
        seed=0,
        num_threads=num_threads,
        callbacks=[lambda event: seen.append(torch.get_num_threads()) if event.kind == "start" else None],
    )
    return seen[0], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes started alongside (default 2)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds between starting them and the first run")
    parser.add_argument("--epochs", type=int, default=20, help="egu-pw epochs per run (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs (default 3)")
    args = parser.parse_args()

    import torch

    from egu_widgets.cube import make_demo
    from egu_widgets.engine.threads import read_cpu_budget

    torch_default = torch.get_num_threads()
    cube = make_demo()
    budget = read_cpu_budget()
    print(
        f"machine: {budget.online} CPUs, affinity {budget.affinity}, cgroup quota {budget.quota}, "
        f"torch default {torch_default} threads; {load_average()}"
    )
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    rows = []
    try:
        if hogs:
            print(
                f"started {len(hogs)} CPU-bound processes (pids {', '.join(str(h.pid) for h in hogs)}); "
                f"waiting {args.warmup:.0f} s for the load average"
            )
        time.sleep(args.warmup)
        for rnd in range(args.rounds):
            for label, threads in (("A torch default", torch_default), ("B policy", None)):
                load = os.getloadavg()[0]
                used, seconds = _one_run(cube, args.epochs, threads)
                rows.append((rnd + 1, label, used, seconds, load))
                print(f"  round {rnd + 1} {label:<16} {used} threads  {seconds:6.1f} s  (load {load:.2f} at start)")
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait()
    print()
    print(
        f"egu-pw, demo scene {cube.height}x{cube.width}x{cube.n_bands}, {args.epochs} epochs, "
        f"{args.hogs} CPU-bound processes alongside"
    )
    print()
    print("| round | default | threads | seconds | load average at start |")
    print("|---|---|---|---|---|")
    for rnd, label, used, seconds, load in rows:
        print(f"| {rnd} | {label} | {used} | {seconds:.1f} | {load:.2f} |")
    med = {
        label: statistics.median(s for _, lab, _, s, _ in rows if lab == label)
        for label in ("A torch default", "B policy")
    }
    print()
    print(
        f"median: A {med['A torch default']:.1f} s, B {med['B policy']:.1f} s "
        f"(A / B = {med['A torch default'] / med['B policy']:.1f}x)"
    )


if __name__ == "__main__":
    main()
