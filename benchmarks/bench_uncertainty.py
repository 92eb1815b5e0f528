"""Does an ensemble's spread say where EGU-Net is wrong? Scenes with truth, K members each.

    python benchmarks/bench_uncertainty.py [--scenes ...] [--members 5] [--epochs N] [--seed 0]
                                           [--jobs N] [--method egu-pw]

For every scene, ``unmix(cube, method, ensemble=K, seed=...)`` (one torch thread per member) and,
over the valid pixels and every material:

- ``rank corr.`` and ``corr.``: Spearman and Pearson correlation between the members' standard
  deviation ``abundances_std`` and the mean's absolute error |mean - truth|;
- ``coverage``: the fraction of (pixel, material) entries whose true abundance lies inside the
  members' 90 % interval [``abundances_q05``, ``abundances_q95``];
- the ensemble mean's abundance RMSE beside the median and the best of the members' RMSEs (each
  member read in the ensemble's material order, which is matched to the truth once, for the mean).

Prints one Markdown table; docs/uncertainty.md keeps it with the command that made it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import load_average
from robustness_scenes import make_scene
from scipy.stats import pearsonr, spearmanr

from egu_widgets import unmix
from egu_widgets.cube import open_cube
from egu_widgets.metrics import abundance_rmse

SCENES = ("egu-synthetic", "samson", "jasper-ridge", "p3-20db", "no-pure-p4-30db")


def scene(name: str):
    """A registered dataset by name, else a scene of robustness_scenes.py."""
    try:
        return make_scene(name)
    except KeyError:
        return open_cube(name)


def measure(result, cube) -> dict:
    """The spread-vs-error figures of an ensemble result on a cube with truth."""
    valid = cube.valid_mask
    truth = cube.true_abundances[:, valid]  # (P, N) in the truth's order, as the result is
    ds = result.ds
    mean = ds["abundances"].values[:, valid]
    std = ds["abundances_std"].values[:, valid]
    low, high = ds["abundances_q05"].values[:, valid], ds["abundances_q95"].values[:, valid]
    members = ds["abundances_members"].values[:, :, valid].astype(np.float64)
    error = np.abs(mean - truth).ravel()
    member_rmse = [abundance_rmse(m.T, truth.T) for m in members]
    return {
        "spearman": float(spearmanr(std.ravel(), error).statistic),
        "pearson": float(pearsonr(std.ravel(), error).statistic),
        "coverage": float(np.mean((truth >= low) & (truth <= high))),
        "mean_std": float(std.mean()),
        "rmse_mean": abundance_rmse(mean.T, truth.T),
        "rmse_median_member": float(statistics.median(member_rmse)),
        "rmse_best_member": float(min(member_rmse)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=list(SCENES))
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="epochs per member (default: the method's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, help="processes training members at once (default: free CPUs)")
    parser.add_argument("--method", default="egu-pw")
    args = parser.parse_args(argv)

    options = {"num_threads": 1}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    epochs = f"{args.epochs} epochs" if args.epochs is not None else "default epochs"
    print(
        f"{args.method}, K = {args.members} members, seed {args.seed}, {epochs}, one torch thread each; {load_average()}"
    )
    print()
    print(
        "| scene | P | rank corr. (std, abs. error) | corr. | 90 % coverage | mean std | RMSE of mean "
        "| median member | best member | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.scenes:
        cube = scene(name)
        start = time.perf_counter()
        if args.jobs is None:
            result = unmix(cube, method=args.method, seed=args.seed, ensemble=args.members, **options)
        else:
            from egu_widgets.engine import EGUNet
            from egu_widgets.engine.ensemble import fit_ensemble
            from egu_widgets.engine.estimator import METHOD_VARIANTS

            est = EGUNet(METHOD_VARIANTS[args.method], seed=args.seed, ensemble=args.members, progress=False, **options)
            fit_ensemble(est, cube, n_jobs=args.jobs)
            result = est.result_
        seconds = time.perf_counter() - start
        m = measure(result, cube)
        print(
            f"| {name} | {cube.n_true_endmembers} | {m['spearman']:.2f} | {m['pearson']:.2f} | {m['coverage']:.1%} "
            f"| {m['mean_std']:.4f} | {m['rmse_mean']:.4f} | {m['rmse_median_member']:.4f} "
            f"| {m['rmse_best_member']:.4f} | {seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
