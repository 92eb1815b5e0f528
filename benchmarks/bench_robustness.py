"""The robustness suite: every method on scenes no default was tuned on (robustness_scenes.py).

    python benchmarks/bench_robustness.py [--scenes ...] [--methods ...] [--seeds 0 1 2]
                                          [--epochs N] [--threads 1] [--csv out.csv]

Prints one table of abundance RMSE (0-1 scale; x100 in parentheses) and one of mean SAD (degrees),
scene x method, each cell the median over the seeds, then each method's median over the scenes.
``fcls`` uses the true endmembers: the oracle bound; ``sunsal`` runs on VCA's endmembers. The EGU-Net methods run with their default
settings unless ``--epochs`` is given (the table header says so); no ground truth is used in any
fit. A default change is kept only if it improves the suite's median and worsens no scene by more
than 0.005 (issue 17's rule), so run it before and after a change, on the same seeds.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time

from robustness_scenes import RECIPES, make_scene

from egu_widgets import unmix

METHODS = ("vca-fcls", "nfindr-fcls", "sunsal", "fcls", "ae", "egu-pw", "egu-ss")
#: methods whose result does not depend on the seed (run once)
DETERMINISTIC = {"fcls", "nfindr-fcls"}


def run(scene_name: str, method: str, seed: int, epochs: int | None, threads: int | None):
    cube = make_scene(scene_name, seed=0)  # the scene is fixed; the seed is the method's
    options = {}
    if method in ("ae", "egu-pw", "egu-ss"):
        if epochs is not None:
            options["epochs"] = epochs
        if threads is not None:
            options["num_threads"] = threads
    start = time.perf_counter()
    if method == "sunsal":  # on VCA's endmembers, as in the reproduce table (with truth it would be an oracle)
        options["endmembers"] = unmix(cube, method="vca-fcls", seed=seed).endmembers.values
    result = unmix(cube, method=method, seed=seed, **options)
    return result.rmse, result.sad, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="EGU-Net/ae epochs (default: the methods' own)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the trained methods")
    parser.add_argument("--csv", help="also write every run to this CSV file")
    args = parser.parse_args(argv)

    rows = []
    cells: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for scene in args.scenes:
        for method in args.methods:
            seeds = args.seeds[:1] if method in DETERMINISTIC else args.seeds
            for seed in seeds:
                rmse, sad, seconds = run(scene, method, seed, args.epochs, args.threads)
                cells.setdefault((scene, method), []).append((rmse, sad, seconds))
                rows.append(dict(scene=scene, method=method, seed=seed, rmse=rmse, sad=sad, seconds=seconds))
                print(f"# {scene} {method} seed {seed}: RMSE {rmse:.4f} SAD {sad:.2f} ({seconds:.1f} s)", flush=True)

    def med(scene, method, k):
        return statistics.median(v[k] for v in cells[(scene, method)])

    epochs = f"{args.epochs} epochs" if args.epochs else "default epochs"
    print(f"\nseeds {args.seeds}, {epochs}, {args.threads} torch thread(s); median over seeds\n")
    for title, k, fmt in (
        ("abundance RMSE, 0-1 scale (x100)", 0, lambda v: f"{v:.4f} ({100 * v:.2f})"),
        ("mean SAD, degrees", 1, lambda v: f"{v:.2f}"),
    ):
        print(f"{title}\n")
        print("| scene | " + " | ".join(args.methods) + " |")
        print("|---|" + "---:|" * len(args.methods))
        for scene in args.scenes:
            print(f"| {scene} | " + " | ".join(fmt(med(scene, m, k)) for m in args.methods) + " |")
        overall = [statistics.median(med(s, m, k) for s in args.scenes) for m in args.methods]
        print("| **median over scenes** | " + " | ".join(f"**{fmt(v)}**" for v in overall) + " |\n")
    total = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} runs, {total:.0f} s of fitting")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
