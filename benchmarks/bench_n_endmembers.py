"""How often each criterion of ``estimate_n_endmembers`` finds the true number of materials.

    python benchmarks/bench_n_endmembers.py [--seeds 5] [--pixels 4900] [--real]

Synthetic scenes: P spectra drawn from the USGS library (pairwise at least 8 degrees apart), 224
bands, Dirichlet(1) abundances, white Gaussian noise at 20, 30 and 40 dB, for P = 3 to 8. Prints
one row per (P, SNR) with the hit count of each criterion over the seeds and the values it
found, then the totals; ``--real`` adds what each criterion says on Samson, Jasper Ridge and
egu-synthetic.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from robustness_scenes import _library, _pick_spectra

from egu_widgets.classic.subspace import CRITERIA, estimate_n_endmembers


def scene(p: int, snr_db: float, seed: int, n_pixels: int, spectra: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng([p, int(snr_db), seed])
    y = rng.dirichlet(np.ones(p), size=n_pixels) @ spectra[_pick_spectra(spectra, p, rng)]
    return y + rng.normal(0, np.sqrt(np.mean(y**2) / 10 ** (snr_db / 10)), y.shape)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pixels", type=int, default=4900)
    parser.add_argument("--real", action="store_true", help="also the real datasets (needs their files)")
    args = parser.parse_args(argv)
    spectra = _library().spectra
    totals = dict.fromkeys(CRITERIA, 0)
    runs = 0
    print("| P | SNR dB | " + " | ".join(f"{c} hits (found)" for c in CRITERIA) + " |")
    print("|---:|---:|" + "---|" * len(CRITERIA))
    start = time.perf_counter()
    for p in range(3, 9):
        for snr in (20, 30, 40):
            found = {c: [] for c in CRITERIA}
            for s in range(args.seeds):
                y = scene(p, snr, s, args.pixels, spectra)
                for c in CRITERIA:
                    found[c].append(estimate_n_endmembers(y, c).n_endmembers)
            runs += args.seeds
            cells = []
            for c in CRITERIA:
                hits = sum(v == p for v in found[c])
                totals[c] += hits
                cells.append(f"{hits}/{args.seeds} ({','.join(map(str, found[c]))})")
            print(f"| {p} | {snr} | " + " | ".join(cells) + " |")
    print("| all | | " + " | ".join(f"**{totals[c]}/{runs}** ({totals[c] / runs:.0%})" for c in CRITERIA) + " |")
    print(f"\n{runs} scenes, {args.pixels} pixels each, {time.perf_counter() - start:.1f} s")
    if args.real:
        from egu_widgets.cube import open_cube

        print("\n| scene | true P | " + " | ".join(CRITERIA) + " |")
        print("|---|---:|" + "---:|" * len(CRITERIA))
        for name in ("samson", "jasper-ridge", "egu-synthetic"):
            cube = open_cube(name)
            values = [estimate_n_endmembers(cube, c).n_endmembers for c in CRITERIA]
            print(f"| {name} | {cube.n_true_endmembers} | " + " | ".join(map(str, values)) + " |")


if __name__ == "__main__":
    main()
