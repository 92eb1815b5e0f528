"""The robustness suite: every method on scenes no default was tuned on (robustness_scenes.py).

    python benchmarks/bench_robustness.py [--scenes ...] [--methods ...] [--seeds 0 1 2]
                                          [--epochs N] [--threads 1] [--csv out.csv]
                                          [--bundles '{"labeller": "nnls"}'] [--params '{"lr": 0.05}']
    python benchmarks/bench_robustness.py --compare before.csv after.csv [--methods egu-pw]
    python benchmarks/bench_robustness.py --report runs.csv[,more.csv]

Prints one table of abundance RMSE (0-1 scale; x100 in parentheses) and one of mean SAD (degrees),
scene x method, each cell the median over the seeds, then each method's median over the scenes.
``fcls`` uses the true endmembers: the oracle bound; ``sunsal`` runs on VCA's endmembers. The EGU-Net methods run with their default
settings unless ``--epochs`` is given (the table header says so); no ground truth is used in any
fit. A default change is kept only if it improves the suite's median and worsens no scene by more
than 0.005 (issue 17's rule), so run it before and after a change, on the same seeds.
``--bundles`` passes bundle options (JSON) to egu-pw and egu-ss, e.g. ``'{"labeller": "nnls"}'``
for the labels before issue 17's sum-to-one test; each run's line says which labeller was used.
``--params`` passes estimator hyperparameters (JSON) to ae, egu-pw and egu-ss, to measure a
candidate default against the current one.
``--csv`` rows are written as the runs finish. ``--compare`` reads two such files (several runs
each may be merged: give ``before.csv,more.csv``) and prints, per scene, the median RMSE over the
seeds both files have, the difference, the rule's verdict and the seed spreads. ``--report`` prints the two tables
of such files (e.g. two halves of the suite run side by side) without running anything.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time

from robustness_scenes import RECIPES, make_scene

from egu_widgets import unmix
from egu_widgets.cube import open_cube

METHODS = ("vca-fcls", "nfindr-fcls", "sunsal", "fcls", "ae", "egu-pw", "egu-ss")
#: the package's own datasets, accepted by --scenes beside the suite (never in the suite's median)
DATASETS = ("samson", "jasper-ridge", "egu-synthetic")
#: methods whose result does not depend on the seed (run once)
DETERMINISTIC = {"fcls", "nfindr-fcls"}


def run(scene_name: str, method: str, seed: int, epochs: int | None, threads: int | None, bundles=None, params=None):
    # the scene is fixed; the seed is the method's
    cube = open_cube(scene_name) if scene_name in DATASETS else make_scene(scene_name, seed=0)
    options = {}
    if method in ("ae", "egu-pw", "egu-ss"):
        if epochs is not None:
            options["epochs"] = epochs
        if threads is not None:
            options["num_threads"] = threads
        options.update(params or {})
    if bundles and method in ("egu-pw", "egu-ss"):
        options["bundles"] = dict(bundles)
    start = time.perf_counter()
    if method == "sunsal":  # on VCA's endmembers, as in the reproduce table (with truth it would be an oracle)
        options["endmembers"] = unmix(cube, method="vca-fcls", seed=seed).endmembers.values
    result = unmix(cube, method=method, seed=seed, **options)
    labels = (result.config.get("bundles") or {}) if method in ("egu-pw", "egu-ss") else {}
    how = f"{labels.get('labeller', '?')}/{labels.get('label_scale', '?')}" if labels else ""
    return result.rmse, result.sad, time.perf_counter() - start, how


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=list(RECIPES), choices=[*RECIPES, *DATASETS])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="EGU-Net/ae epochs (default: the methods' own)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the trained methods")
    parser.add_argument("--csv", help="also write every run to this CSV file")
    parser.add_argument("--bundles", type=json.loads, help="bundle options for egu-pw/egu-ss, as JSON")
    parser.add_argument("--params", type=json.loads, help="estimator hyperparameters for ae/egu-pw/egu-ss, as JSON")
    parser.add_argument(
        "--report", metavar="CSV", help="print the tables of --csv files (comma-separated), run nothing"
    )
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two --csv files")
    args = parser.parse_args(argv)
    if args.report:
        report(args.report)
        return
    if args.compare:
        methods = args.methods if args.methods != list(METHODS) else ["egu-pw"]
        compare(*args.compare, methods=methods)
        return
    writer = None
    if args.csv:
        fh = open(args.csv, "w", newline="")  # noqa: SIM115 (kept open while the runs go)
        fields = ["scene", "method", "seed", "rmse", "sad", "seconds", "labels"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()

    rows = []
    cells: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for scene in args.scenes:
        for method in args.methods:
            seeds = args.seeds[:1] if method in DETERMINISTIC else args.seeds
            for seed in seeds:
                rmse, sad, seconds, how = run(scene, method, seed, args.epochs, args.threads, args.bundles, args.params)
                cells.setdefault((scene, method), []).append((rmse, sad, seconds))
                rows.append(
                    dict(scene=scene, method=method, seed=seed, rmse=rmse, sad=sad, seconds=seconds, labels=how)
                )
                if writer is not None:
                    writer.writerow(rows[-1])
                    fh.flush()
                labelled = f", labels {how}" if how else ""
                print(
                    f"# {scene} {method} seed {seed}: RMSE {rmse:.4f} SAD {sad:.2f} ({seconds:.1f} s{labelled})",
                    flush=True,
                )

    epochs = f"{args.epochs} epochs" if args.epochs else "default epochs"
    bundles = f", bundles {json.dumps(args.bundles)}" if args.bundles else ""
    bundles += f", params {json.dumps(args.params)}" if args.params else ""
    print(f"\nseeds {args.seeds}, {epochs}, {args.threads} torch thread(s){bundles}; median over seeds\n")
    print_tables(cells, args.scenes, args.methods)
    total = sum(r["seconds"] for r in rows)
    print(f"{len(rows)} runs, {total:.0f} s of fitting")
    if writer is not None:
        fh.close()


def print_tables(cells: dict[tuple[str, str], list[tuple[float, float, float]]], scenes, methods) -> None:
    """The RMSE and SAD tables, scene x method, each cell the median over its runs' seeds."""

    def med(scene, method, k):
        runs = cells.get((scene, method))
        return statistics.median(v[k] for v in runs) if runs else math.nan

    def over_scenes(values):  # a median over scenes with a missing cell would misstate the suite: none
        return math.nan if any(math.isnan(v) for v in values) else statistics.median(values)

    for title, k, cell in (
        ("abundance RMSE, 0-1 scale (x100)", 0, lambda v: f"{v:.4f} ({100 * v:.2f})"),
        ("mean SAD, degrees", 1, lambda v: f"{v:.2f}"),
    ):

        def fmt(v, cell=cell):  # a cell without runs reads "–"
            return "–" if math.isnan(v) else cell(v)

        print(f"{title}\n")
        print("| scene | " + " | ".join(methods) + " |")
        print("|---|" + "---:|" * len(methods))
        for scene in scenes:
            print(f"| {scene} | " + " | ".join(fmt(med(scene, m, k)) for m in methods) + " |")
        suite = [s for s in scenes if s in RECIPES] or scenes  # datasets stay out of the median
        overall = [over_scenes([med(s, m, k) for s in suite]) for m in methods]
        print("| **median over scenes** | " + " | ".join(f"**{fmt(v)}**" for v in overall) + " |\n")


def report(paths: str) -> None:
    """The tables of one or more --csv files (comma-separated; later rows win), without running anything."""
    rows = _read_rows(paths)
    cells: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    scenes: list[str] = []
    for (scene, method, _seed), row in rows.items():
        cells.setdefault((scene, method), []).append((float(row["rmse"]), float(row["sad"]), float(row["seconds"])))
        scenes += [] if scene in scenes else [scene]
    scenes.sort(key=lambda s: s not in RECIPES)  # the suite's scenes first, then the datasets
    present = {m for _, m in cells}
    methods = [m for m in METHODS if m in present] + sorted(present - set(METHODS))
    seeds = sorted({seed for _, _, seed in rows})
    print(f"{len(rows)} runs from {paths}; seeds {seeds}; median over each cell's seeds\n")
    print_tables(cells, scenes, methods)


def _read_rows(paths: str) -> dict[tuple[str, str, int], dict]:
    """Rows of one or more --csv files (comma-separated paths), by (scene, method, seed); later wins."""
    out = {}
    for path in paths.split(","):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                out[(row["scene"], row["method"], int(row["seed"]))] = row
    return out


def compare(before: str, after: str, methods: list[str]) -> None:
    """Per scene: median RMSE over the seeds both files have, after − before, and the verdict."""
    a, b = _read_rows(before), _read_rows(after)
    for method in methods:
        print(f"\n{method}: abundance RMSE, 0-1 scale (x100 in parentheses), median over the seeds run in both\n")
        print("| scene | seeds | before | after | after − before | labels after |")
        print("|---|---|---:|---:|---:|---|")
        meds_a, meds_b, worst = [], [], 0.0
        spreads = []  # (before, after): max - min over the shared seeds, per suite scene
        for scene in [*RECIPES, *DATASETS]:
            seeds = sorted(k[2] for k in a if k[:2] == (scene, method) and (scene, method, k[2]) in b)
            if not seeds:
                continue
            ra = statistics.median(float(a[(scene, method, s)]["rmse"]) for s in seeds)
            rb = statistics.median(float(b[(scene, method, s)]["rmse"]) for s in seeds)
            how = ", ".join(sorted({b[(scene, method, s)].get("labels", "") for s in seeds}))
            if scene in RECIPES:  # the datasets are reported, not part of the suite's median and rule
                meds_a.append(ra)
                meds_b.append(rb)
                worst = max(worst, rb - ra)
                spreads.append(tuple(_spread(rows, scene, method, seeds) for rows in (a, b)))
            print(
                f"| {scene} | {' '.join(map(str, seeds))} | {ra:.4f} ({100 * ra:.2f}) | {rb:.4f} ({100 * rb:.2f}) "
                f"| {rb - ra:+.4f} | {how} |"
            )
        if not meds_a:
            print("(no scene has runs in both files)")
            continue
        ma, mb = statistics.median(meds_a), statistics.median(meds_b)
        print(
            f"| **median over {len(meds_a)} scenes** | | **{ma:.4f} ({100 * ma:.2f})** | **{mb:.4f} ({100 * mb:.2f})** | {mb - ma:+.4f} | |"
        )
        kept = mb < ma and worst <= 0.005
        print(
            f"\nrule (median improves, no scene worse by more than 0.005): {'met' if kept else 'NOT met'}; worst change {worst:+.4f}"
        )
        # A change confined to scenes on one side of the median leaves it where it was: the mean
        # and the count of scenes moved say what it did there.
        changes = [b - a for a, b in zip(meds_a, meds_b)]
        better, worse = sum(c < -5e-5 for c in changes), sum(c > 5e-5 for c in changes)
        print(
            f"mean over the {len(meds_a)} scenes {statistics.fmean(meds_a):.4f} -> {statistics.fmean(meds_b):.4f}; "
            f"scenes better / worse / within 0.0001: {better} / {worse} / {len(changes) - better - worse}"
        )
        sa, sb = [x for x, _ in spreads], [y for _, y in spreads]
        narrower = sum(y < x - 5e-5 for x, y in spreads)
        wider = sum(y > x + 5e-5 for x, y in spreads)
        print(
            f"seed spread (max - min over the seeds) over the {len(spreads)} scenes: median "
            f"{statistics.median(sa):.4f} -> {statistics.median(sb):.4f}, mean {statistics.fmean(sa):.4f} -> "
            f"{statistics.fmean(sb):.4f}; narrower / wider / within 0.0001: {narrower} / {wider} / "
            f"{len(spreads) - narrower - wider}"
        )


def _spread(rows: dict, scene: str, method: str, seeds: list[int]) -> float:
    """Max - min of the RMSE over ``seeds`` (0 for one seed)."""
    values = [float(rows[(scene, method, s)]["rmse"]) for s in seeds]
    return max(values) - min(values)


if __name__ == "__main__":
    main()
