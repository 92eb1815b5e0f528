"""Benchmark of the spectral-bundle options: extraction time and the accuracy they give EGU-Net-pw.

    python benchmarks/bench_bundles.py                          # all settings, Samson and Jasper Ridge, seeds 0-2
    python benchmarks/bench_bundles.py --settings faithful overlap --seeds 0
    python benchmarks/bench_bundles.py --timing-only            # extraction time on the paper's scene
    python benchmarks/bench_bundles.py --labeller-bound         # each labeller applied to every pixel
    python benchmarks/bench_bundles.py --refinement --seeds 0   # what the reference refinement's guards saw
    python benchmarks/bench_bundles.py --purest --seeds 0       # reference_purest's fractions, labeller bound
    python benchmarks/bench_bundles.py --reference-choice       # reference="auto": N-FINDR's or VCA's

Each setting is a dict of :func:`egu_widgets.engine.extract_bundles` options (below). For every
dataset × setting × seed it trains EGU-Net-pw with the default network settings on those bundles
and prints the abundance RMSE after alignment, the pseudo-labels' own quality (RMSE of each bundle
spectrum's label against the true abundances of the pixel it came from, where it is one pixel),
and seconds; then the median over seeds. The timing table is extraction seconds on egu-synthetic
(200×200×224, P=5: the paper's scene size) for each setting.

``--refinement`` trains nothing either: per scene and seed it prints what the default mode's
reference refinement (``reference_rounds``) saw: the picks' sum-to-one statistic, the labelling
rule, the fitted set's residual over the picks' (guard 1), the statistic against it (guard 2),
the fitted set's sum-to-one residual over the picks' brightness-free one (guard 3), whether it
was taken, and the mean SAD to the truth of the picks and of the spectra used.

``--purest [FRACTION ...]`` trains nothing: on the scenes whose labels are NNLS it prints the
labeller bound (NNLS labels of every pixel on the scale ``label_scale="auto"`` resolves to
for the scene, RMSE after alignment) and the mean SAD of
the N-FINDR picks, of :func:`~egu_widgets.engine.bundles.purest_reference` at each fraction
(default 0.5 %, 1 %, 2 % and ``auto``, the default mode's choice, with the fraction it chose)
and of the true endmembers.

``--reference-choice`` trains nothing: per scene it prints, for each seed, how much lower the
residual of VCA's prepared reference is than N-FINDR's (the gain ``reference="auto"`` compares
with ``MIN_GAIN``), the labeller bound with each, and the kind taken.

``--labeller-bound`` trains nothing: on the robustness suite and the three datasets it applies
each way of labelling (against the whole-image N-FINDR reference of the seed) to every pixel and
prints the abundance RMSE after alignment, i.e. what a network that learnt its labeller exactly
would reach, with FCLS on the true endmembers as the oracle line, and the image's
:func:`~egu_widgets.engine.bundles.sum_to_one_statistic` with the labeller ``"auto"`` picks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import load_average

from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet, extract_bundles

SETTINGS: dict[str, dict] = {
    "default": {"mode": "default"},  # faithful bundles, N-FINDR reference, labels on the max scale
    "faithful": {"mode": "faithful"},
    "faithful+nfindr": {"mode": "faithful", "reference": "nfindr"},
    # Overlapping patches, duplicates removed, observed pixels as candidates.
    "overlap": {"mode": "faithful", "stride": 2, "dedup": True, "project": False},
    "faithful+max-scale": {"mode": "faithful", "label_scale": "max"},
    # The library case: labels against the dataset's own reference endmembers (uses the truth's
    # spectra, never its abundances), to show how much the reference bounds the result.
    "faithful+truth-reference": {"mode": "faithful", "reference": "truth"},
    # The same with the default mode's labels (bundles, labeller): what the default pipeline reaches
    # when its reference is exact.
    "default+truth-reference": {"mode": "default", "reference": "truth"},
}


def label_rmse(cube, bundles) -> float:
    """RMSE of the bundles' pseudo-labels against the truth at their pixels (aligned by reference)."""
    from egu_widgets import metrics

    idx = bundles.pixel_index
    keep = idx >= 0
    if not keep.any() or cube.true_abundances is None:
        return float("nan")
    truth = cube.true_abundance_pixels[idx[keep]]
    order = metrics.align(bundles.reference, cube.true_endmembers)
    return float(np.sqrt(np.mean((bundles.labels[keep][:, order] - truth) ** 2)))


def labeller_bound(scenes, seeds) -> None:
    """Print the labeller-bound table (see the module doc)."""
    import statistics

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from robustness_scenes import RECIPES, make_scene

    from egu_widgets import metrics
    from egu_widgets.classic import fcls
    from egu_widgets.engine.bundles import (
        ASC_THRESHOLD,
        _constrained_abundances,
        _pseudo_abundances,
        reference_endmembers,
        resolve_label_scale,
        sum_to_one_statistic,
    )

    print(f"labels of every pixel against the seed's N-FINDR reference; median over seeds {seeds} ({load_average()})")
    print("abundance RMSE after alignment, 0-1 scale (x100 in parentheses)\n")
    cols = ["fcls, data units", "nnls, data units", "nnls, max-scaled", "auto", "statistic", "auto picks", "oracle"]
    print("| scene | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * (len(cols) - 2) + "---|---:|")
    for name in scenes:
        cube = make_scene(name, seed=0) if name in RECIPES else open_cube(name)
        p = cube.n_true_endmembers
        pixels = cube.pixels[cube.valid_mask.ravel()].astype(np.float64)
        truth = cube.true_abundance_pixels[cube.valid_mask.ravel()]
        em = np.asarray(cube.true_endmembers)
        scale = resolve_label_scale("auto", cube)  # the NNLS scale the default mode labels on
        runs = []
        for seed in seeds:
            ref, _ = reference_endmembers(cube, p, "nfindr", seed=seed)
            units = ref.max(axis=1, keepdims=True)
            stat = sum_to_one_statistic(pixels, ref)
            est = [
                _constrained_abundances(pixels, ref),
                _pseudo_abundances(pixels, ref)[0],
                _pseudo_abundances(pixels, ref / units)[0],
            ]
            est.append(est[0] if stat <= ASC_THRESHOLD else est[2 if scale == "max" else 1])
            runs.append([metrics.score(a, truth, ref, em)["rmse"] for a in est] + [stat, stat <= ASC_THRESHOLD])
        med = [statistics.median(r[k] for r in runs) for k in range(5)]
        picks = "/".join("fcls" if r[5] else f"nnls-{scale}" for r in runs)
        oracle = metrics.score(fcls(pixels, em), truth, em, em)["rmse"]
        cells = [f"{v:.4f} ({100 * v:.2f})" for v in med[:4]] + [f"{med[4]:.2f}", picks, f"{oracle:.4f}"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def refinement_table(scenes, seeds) -> None:
    """Print what ``reference_rounds``' guards saw on each scene (see the module doc)."""
    from robustness_scenes import RECIPES, make_scene

    from egu_widgets import metrics

    print(f"the default mode's reference refinement, seeds {seeds} ({load_average()})\n")
    cols = [
        "seed",
        "picks' statistic",
        "rule",
        "residual",
        "statistic after",
        "fit / free picks",
        "taken",
        "SAD picks",
        "SAD used",
    ]
    print("| scene | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name in scenes:
        cube = make_scene(name, seed=0) if name in RECIPES else open_cube(name)
        truth = np.asarray(cube.true_endmembers, dtype=np.float64)
        for seed in seeds:
            b = extract_bundles(cube, cube.n_true_endmembers, seed=seed)
            r = b.config["reference_refinement"]
            # The picks are recorded where the refinement or the purest-pixel means replaced them.
            replaced = r.get("initial_reference") or b.config.get("purest_reference", {}).get("initial_reference")
            picks = np.asarray(b.reference if replaced is None else replaced)
            after = r.get("sum_to_one_statistic_fitted")
            cells = [
                str(seed),
                f"{r['sum_to_one_statistic_initial']:.1f}",
                r["rule"],
                f"{r['residual_fitted'] / r['residual_before']:.3f}",
                "–" if after is None else f"{after:.1f}",
                f"{r['residual_fitted_fcls'] / r['residual_picks_nnls']:.3f}" if "residual_picks_nnls" in r else "–",
                "yes" if r["taken"] else "no",
                f"{np.mean(metrics.sad(picks[metrics.align(picks, truth)], truth)):.2f}",
                f"{np.mean(metrics.sad(b.reference[metrics.align(b.reference, truth)], truth)):.2f}",
            ]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def _scene_arrays(name: str):
    """A suite scene or dataset with what the no-training tables read: the cube, P, its valid
    pixels (float64), their true abundances and the true endmembers (float64)."""
    from robustness_scenes import RECIPES, make_scene

    cube = make_scene(name, seed=0) if name in RECIPES else open_cube(name)
    valid = cube.valid_mask.ravel()
    em = np.asarray(cube.true_endmembers, dtype=np.float64)
    return cube, cube.n_true_endmembers, cube.pixels[valid].astype(np.float64), cube.true_abundance_pixels[valid], em


def reference_choice_table(scenes, seeds) -> None:
    """Print what ``reference="auto"`` compares and takes per scene and seed (see the module doc)."""
    from egu_widgets import metrics
    from egu_widgets.engine.bundles import MIN_GAIN, label_spectra

    print(f"reference='auto': VCA's prepared reference against N-FINDR's, seeds {seeds} ({load_average()})")
    print(f"gain = 1 - VCA's residual / N-FINDR's (VCA taken where gain >= {MIN_GAIN}); labeller bound, 0-1 scale\n")
    seed_cols = " / ".join(str(s) for s in seeds)
    print(f"| scene | VCA's gain, seeds {seed_cols} | bound with N-FINDR's | bound with VCA's | taken |")
    print("|---|---:|---:|---:|---|")
    for name in scenes:
        cube, p, pixels, truth, em = _scene_arrays(name)
        gains, bounds, taken = [], {"nfindr": [], "vca": []}, []
        for seed in seeds:
            b = extract_bundles(cube, p, seed=seed, pixel_labels=0)
            choice = b.config["reference_choice"]
            residual = dict(zip(choice["candidates"], choice["residuals"], strict=True))
            gains.append(f"{1 - residual['vca'] / residual['nfindr']:+.3f}")
            taken.append(choice["taken"])
            for kind in ("nfindr", "vca"):
                one = (
                    b
                    if kind == choice["taken"]
                    else extract_bundles(cube, p, seed=seed, pixel_labels=0, reference=kind)
                )
                labels, _ = label_spectra(pixels, one.reference, one.config["labeller"], one.config["label_scale"])
                bounds[kind].append(f"{metrics.score(labels, truth, one.reference, em)['rmse']:.4f}")
        print(
            f"| {name} | {' / '.join(gains)} | {' / '.join(bounds['nfindr'])} | {' / '.join(bounds['vca'])} | "
            f"{' / '.join(taken)} |",
            flush=True,
        )


def _fraction_name(fraction) -> str:
    return "purest auto" if fraction == "auto" else f"purest {100 * fraction:g} %"


def _fraction(text: str):
    return text if text == "auto" else float(text)


def purest_table(scenes, fractions, seed: int) -> None:
    """Print what ``reference_purest`` gives per fraction where the labels are NNLS (see the module doc)."""
    from egu_widgets import metrics
    from egu_widgets.engine.bundles import label_spectra, purest_reference, resolve_label_scale, sum_to_one_statistic

    print(
        f"the reference where the labels are NNLS: N-FINDR picks of seed {seed} and purest-pixel means ({load_average()})"
    )
    print(
        "labeller bound (NNLS labels of every pixel, on the scale label_scale='auto' gives the scene), "
        "0-1 scale (x100), / mean SAD in degrees\n"
    )
    cols = ["scale", "statistic", "picks", *(_fraction_name(f) for f in fractions), "truth"]
    print("| scene | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for name in scenes:
        cube, p, pixels, truth, em = _scene_arrays(name)
        b = extract_bundles(cube, p, seed=seed, reference="nfindr", reference_purest=0.0)
        if b.config["labeller"] != "nnls":
            continue  # reference_purest applies only where the labels are NNLS
        picks = b.reference
        scale = resolve_label_scale("auto", cube)
        made = [
            (picks, ""),
            *((m, r) for m, r in (purest_reference(pixels, picks, f, scale) for f in fractions)),
            (em, ""),
        ]
        cells = [scale, f"{sum_to_one_statistic(pixels, picks):.1f}"]
        for ref, record in made:
            labels, _ = label_spectra(pixels, ref, "nnls", scale)
            rmse = metrics.score(labels, truth, ref, em)["rmse"]
            angle = np.mean(metrics.sad(ref[metrics.align(ref, em)], em))
            chose = f" [{100 * record['fraction']:g} %]" if record and "fraction_option" in record else ""
            cells.append(f"{rmse:.4f} ({100 * rmse:.2f}) / {angle:.2f}{chose}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets", nargs="+", default=["samson", "jasper-ridge"], choices=["samson", "jasper-ridge", "egu-synthetic"]
    )
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--labeller-bound", action="store_true", help="labellers on every pixel (no training)")
    ap.add_argument("--refinement", action="store_true", help="the reference refinement's guards per scene")
    ap.add_argument("--reference-choice", action="store_true", help="what reference='auto' compares and takes")
    ap.add_argument(
        "--purest",
        nargs="*",
        type=_fraction,
        metavar="FRACTION",
        help="reference_purest's labeller bound, per fraction or 'auto' (no training)",
    )
    ap.add_argument(
        "--scenes",
        nargs="+",
        help="--labeller-bound, --refinement, --purest, --reference-choice: scenes (default: suite and datasets)",
    )
    args = ap.parse_args(argv)
    if args.purest is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from robustness_scenes import RECIPES

        scenes = args.scenes or [*RECIPES, "samson", "jasper-ridge", "egu-synthetic"]
        purest_table(scenes, args.purest or [0.005, 0.01, 0.02, "auto"], args.seeds[0])
        return 0
    if args.reference_choice:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from robustness_scenes import RECIPES

        reference_choice_table(args.scenes or [*RECIPES, "samson", "jasper-ridge", "egu-synthetic"], args.seeds)
        return 0
    if args.refinement:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from robustness_scenes import RECIPES

        refinement_table(args.scenes or [*RECIPES, "samson", "jasper-ridge", "egu-synthetic"], args.seeds)
        return 0
    if args.labeller_bound:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from robustness_scenes import RECIPES

        labeller_bound(args.scenes or [*RECIPES, "samson", "jasper-ridge", "egu-synthetic"], args.seeds)
        return 0

    if not args.timing_only:
        print(f"EGU-Net-pw, default network settings, seeds {args.seeds} ({load_average()})")
        print(
            f"{'dataset':<13} {'setting':<24} {'seed':>4} {'bundles':>7} {'label RMSE':>10} {'RMSE':>7} {'seconds':>7}"
        )
        rows = []
        for name in args.datasets:
            cube = open_cube(name)
            p = cube.n_true_endmembers
            for setting in args.settings:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    b = extract_bundles(cube, p, seed=seed, **SETTINGS[setting])
                    est = EGUNet("pw", p, seed=seed, progress=False, num_threads=args.threads).fit(cube, bundles=b)
                    row = dict(
                        dataset=name,
                        setting=setting,
                        seed=seed,
                        n=b.n_bundles,
                        label=label_rmse(cube, b),
                        rmse=est.result_.rmse,
                        seconds=time.perf_counter() - t0,
                    )
                    rows.append(row)
                    print(
                        f"{name:<13} {setting:<24} {seed:>4} {row['n']:>7} {row['label']:>10.4f} {row['rmse']:>7.4f} "
                        f"{row['seconds']:>7.1f}",
                        flush=True,
                    )
        print("\nmedian over seeds (best seed in brackets):")
        print(f"{'dataset':<13} {'setting':<24} {'label RMSE':>10} {'RMSE':>7} {'best':>7}")
        for name in args.datasets:
            for setting in args.settings:
                sel = [r for r in rows if r["dataset"] == name and r["setting"] == setting]
                print(
                    f"{name:<13} {setting:<24} {np.median([r['label'] for r in sel]):>10.4f} "
                    f"{np.median([r['rmse'] for r in sel]):>7.4f} {min(r['rmse'] for r in sel):>7.4f}"
                )
    if not args.no_timing:
        cube = open_cube("egu-synthetic")
        print(f"\nbundle extraction on egu-synthetic (200x200x224, P=5), best of 3 ({load_average()}):")
        print(f"{'setting':<24} {'bundles':>7} {'seconds':>8}")
        for setting in args.settings:
            best, n = float("inf"), 0
            for _ in range(3):
                t0 = time.perf_counter()
                b = extract_bundles(cube, 5, seed=0, **SETTINGS[setting])
                best, n = min(best, time.perf_counter() - t0), b.n_bundles
            print(f"{setting:<24} {n:>7} {best:>8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
