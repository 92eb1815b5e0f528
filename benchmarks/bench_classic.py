"""Timing of the classical baselines on synthetic data of realistic size.

    python benchmarks/bench_classic.py [--repeat 3] [--samson DIR]

Prints one row per case: method, problem size, best wall time over the repeats, pixels/s.
The data are synthetic (smooth positive spectra, Dirichlet abundances, 1 % Gaussian noise), so
the benchmark needs no files; ``--samson DIR`` (the folder holding samson_1.mat and end3.mat)
adds an accuracy sanity check of VCA + FCLS on the real Samson scene.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from egu_widgets.classic import fcls, nnls_unmix, sunsal, vca, vca_batch


def smooth_spectra(rng, p, b):
    grid = np.linspace(0.0, 1.0, b)
    out = np.full((p, b), 0.1)
    for row in out:
        for _ in range(4):
            centre, width, height = rng.uniform(0, 1), rng.uniform(0.03, 0.2), rng.uniform(0.1, 0.8)
            row += height * np.exp(-0.5 * ((grid - centre) / width) ** 2)
    return out


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repeats per case; the best is shown")
    parser.add_argument("--samson", type=Path, default=None, help="folder with samson_1.mat and end3.mat")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    p, b = 5, 224
    endmembers = smooth_spectra(rng, p, b)

    def scene(n):
        pixels = rng.dirichlet(np.full(p, 0.5), n) @ endmembers
        return pixels + 0.01 * pixels.mean() * rng.standard_normal(pixels.shape)

    big = scene(40_000)
    scene_10k = scene(10_000)
    patches = np.stack([scene(25) for _ in range(1600)])  # 1600 patches of 5x5 pixels

    rows = []

    def case(method, size, n_pixels, fn):
        seconds = best_time(fn, args.repeat)
        rows.append((method, size, seconds, n_pixels / seconds))

    case("fcls", "40000 px x 224 b, P=5", 40_000, lambda: fcls(big, endmembers))
    case("nnls_unmix", "40000 px x 224 b, P=5", 40_000, lambda: nnls_unmix(big, endmembers))
    case(
        "sunsal (lam=0, ANC+ASC)",
        "40000 px x 224 b, P=5",
        40_000,
        lambda: sunsal(big, endmembers, positivity=True, sum_to_one=True),
    )
    case("sunsal (lam=0, ANC)", "40000 px x 224 b, P=5", 40_000, lambda: sunsal(big, endmembers))
    case("vca", "10000 px x 224 b, P=5", 10_000, lambda: vca(scene_10k, p, seed=0))

    def loop():
        for k in range(len(patches)):
            vca(patches[k], p, seed=k)

    case("vca, loop over patches", "1600 x (25 px x 224 b), P=5", 1600 * 25, loop)
    case("vca_batch", "1600 x (25 px x 224 b), P=5", 1600 * 25, lambda: vca_batch(patches, p, seed=0))

    header = ("method", "problem size", "seconds", "pixels/s")
    widths = (26, 30, 9, 12)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for method, size, seconds, rate in rows:
        print(f"{method:<26}  {size:<30}  {seconds:>9.4f}  {rate:>12,.0f}")

    if args.samson is not None:
        from scipy.io import loadmat

        from egu_widgets.metrics import score

        pixels = loadmat(args.samson / "samson_1.mat")["V"].T
        truth = loadmat(args.samson / "end3.mat")
        print("\nSamson sanity check (VCA + FCLS, 5 seeds):")
        for seed in range(5):
            est_m, _ = vca(pixels, 3, seed=seed)
            result = score(fcls(pixels, est_m), truth["A"].T, est_m, truth["M"].T)
            print(f"  seed {seed}: abundance RMSE {result['rmse']:.4f}, mean SAD {result['sad']:.2f} deg")


if __name__ == "__main__":
    main()
