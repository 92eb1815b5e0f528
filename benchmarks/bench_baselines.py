"""Classical baselines on the real datasets: a table of accuracy and time.

    python benchmarks/bench_baselines.py [--datasets samson jasper-ridge egu-synthetic] [--seeds 5]

Rows: vca-fcls once per seed (VCA is random), fcls with the truth endmembers, sunsal (non-negative
least squares against the truth endmembers, then normalised to sum to one). RMSE and SAD are after
Hungarian alignment to the truth, on the 0-1 abundance scale and in degrees.
"""

from __future__ import annotations

import argparse
import statistics

from egu_widgets import open_cube, unmix


def rows_for(name: str, seeds: int):
    cube = open_cube(name)
    runs = [("vca-fcls", dict(seed=s)) for s in range(seeds)] + [("fcls", {}), ("sunsal", {})]
    results = []
    for method, kw in runs:
        res = unmix(cube, method=method, **kw)
        results.append((method, kw.get("seed", "-"), res))
    return cube, results


def fmt_row(cells, widths):
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["samson", "jasper-ridge", "egu-synthetic"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    header = ["dataset", "method", "seed", "RMSE", "RMSE per material", "mean SAD (deg)", "seconds"]
    widths = [13, 9, 4, 6, 36, 14, 7]
    print(fmt_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for name in args.datasets:
        cube, results = rows_for(name, args.seeds)
        for method, seed, res in results:
            per = res.scores["rmse_per_endmember"]
            per_text = " ".join(f"{n[:5]}={v:.3f}" for n, v in zip(cube.endmember_names, per))
            sad = f"{res.sad:.2f}" if res.sad is not None else "n/a"
            print(
                fmt_row(
                    [name, method, seed, f"{res.rmse:.4f}", per_text, sad, f"{float(res.ds.attrs['seconds']):.2f}"],
                    widths,
                )
            )
        vca = [r.rmse for m, _, r in results if m == "vca-fcls"]
        print(
            fmt_row(
                [name, "vca-fcls", "all", f"best {min(vca):.4f} median {statistics.median(vca):.4f}", "", "", ""],
                widths,
            )
        )


if __name__ == "__main__":
    main()
