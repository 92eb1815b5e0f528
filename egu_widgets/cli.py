"""The ``egu-widgets`` command line: headless unmixing runs.

    egu-widgets unmix SOURCE [--truth TRUTH] --endmembers P --method METHOD [--seed S]
                     [--epochs N] [--device cpu|cuda] --out RESULT.nc
    egu-widgets demo [--out DIR] [--method METHOD] [--epochs N]
    egu-widgets datasets
    egu-widgets reproduce --out DIR [--fast]

Any problem with the input ends the run with one line on stderr (``error: ...``), exit status 2,
and no result file. An interrupted run (Ctrl-C) writes nothing and exits 130.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .errors import EguError, InputError

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "main"]

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes KEY=VALUE; got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def _version() -> str:
    """The installed package's version (the package itself sits above the command line)."""
    try:
        return version("egu_widgets")
    except PackageNotFoundError:
        return "0+unknown"


def _method_help() -> str:
    """The ``--method`` help: every registered method with its label, and the default."""
    from .methods import DEFAULT_METHOD, describe_methods

    listed = "; ".join(f"{row['name']}: {row['label']}" for row in describe_methods(options=False))
    return f"unmixing method (default: {DEFAULT_METHOD}). {listed}"


def _build_parser() -> argparse.ArgumentParser:
    from .cube import dataset_names
    from .cube.datasets import paper_datasets
    from .methods import DEFAULT_METHOD, method_names

    methods = method_names()
    method_help = _method_help()
    parser = argparse.ArgumentParser(prog="egu-widgets", description="EGU-Net hyperspectral unmixing, headless.")
    parser.add_argument("--version", action="version", version=f"egu-widgets {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    un = sub.add_parser("unmix", help="unmix a cube and write the result as netCDF")
    un.add_argument("source", help=f"dataset name ({', '.join(dataset_names())}) or a file (.mat, ENVI .hdr, .nc)")
    un.add_argument("--truth", help=".mat file with truth 'A' and/or 'M' (for scoring, and for --method fcls)")
    un.add_argument(
        "--endmembers", "-p", type=int, dest="n_endmembers", help="number of endmembers P (default: the truth's)"
    )
    un.add_argument("--method", "-m", default=DEFAULT_METHOD, choices=methods, metavar="METHOD", help=method_help)
    un.add_argument(
        "--endmembers-from", help="file with endmembers for fcls/sunsal: .mat with 'M' (bands x P) or a result .nc"
    )
    un.add_argument("--seed", type=int, default=0, help="random seed, a whole number >= 0 (default: 0)")
    un.add_argument("--epochs", type=int, help="training epochs (EGU-Net methods)")
    un.add_argument("--device", default="cpu", help="cpu or cuda (EGU-Net methods)")
    un.add_argument("--lam", type=float, help="sparsity weight for sunsal (default: 0)")
    un.add_argument("--rows", type=int, help="image rows, when a .mat file does not store them")
    un.add_argument("--cols", type=int, help="image columns, when a .mat file does not store them")
    un.add_argument("--scale", type=float, help="divide the data by this (raw integer data)")
    un.add_argument(
        "--invalid", choices=("raise", "mask", "fill"), default="raise", help="what to do with NaN/Inf pixels"
    )
    un.add_argument("--negative", choices=("raise", "clip"), default="raise", help="what to do with negative values")
    un.add_argument(
        "--option",
        "-o",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="method option, e.g. -o patch_size=5 -o bundle_mode=faithful (repeatable)",
    )
    un.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    un.add_argument("--out", required=True, help="result file to write (.nc)")

    demo = sub.add_parser("demo", help="unmix the built-in demo scene; write its result and figures")
    demo.add_argument(
        "--out", default="egu-demo", help="folder for result.nc and the PNG figures (default: ./egu-demo)"
    )
    demo.add_argument("--method", default=DEFAULT_METHOD, choices=methods, metavar="METHOD", help=method_help)
    demo.add_argument("--epochs", type=int, help="training epochs (EGU-Net methods)")
    demo.add_argument("--seed", type=int, default=0, help="random seed, a whole number >= 0 (default: 0)")

    sub.add_parser("datasets", help="list the datasets known by name and where their files are looked for")

    rep = sub.add_parser(
        "reproduce", help="rerun the EGU-Net paper's comparison: table, figures and results in a folder"
    )
    rep.add_argument(
        "--out",
        required=True,
        help="folder to write (created; an earlier reproduction there is replaced when the new one is complete)",
    )
    rep.add_argument(
        "--fast", action="store_true", help="small smoke-test version for CI (cropped scenes, few epochs, two seeds)"
    )
    rep.add_argument(
        "--datasets",
        type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
        help=f"comma-separated subset of {','.join(paper_datasets())}",
    )
    rep.add_argument(
        "--methods",
        type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
        help="comma-separated subset of vca-fcls,sunsal,ae,egu-pw,egu-ss",
    )
    rep.add_argument(
        "--seeds", type=lambda t: [int(x) for x in t.split(",") if x.strip()], help="comma-separated seeds"
    )
    rep.add_argument("--epochs", type=int, help="training epochs of the EGU-Net methods (default: the mode's)")
    rep.add_argument("--ss-epochs", type=int, help="training epochs of egu-ss alone (default: the mode's)")
    rep.add_argument("--crop", type=int, help="crop the scenes to this square side (default: the mode's)")
    rep.add_argument("--threads", type=int, help="torch threads while training (default: the mode's)")
    rep.add_argument("--device", default="cpu", help="cpu or cuda")
    rep.add_argument("--quiet", "-q", action="store_true", help="print only the final table")
    return parser


def _load_endmembers(path: str):
    import numpy as np

    p = Path(path)
    if p.suffix.lower() == ".nc":
        from .results import UnmixingResult

        res = UnmixingResult.open(p)
        if res.endmembers is None:
            raise InputError(f"{path!r} holds no endmembers")
        return res.endmembers.values
    from .cube.formats.mat import read_mat_truth

    truth = read_mat_truth(p)
    if truth.endmembers is None:
        raise InputError(f"{path!r} has no 'M' (bands x P) endmember matrix")
    return np.asarray(truth.endmembers)


def _cmd_unmix(args) -> int:
    from ._atomic import check_writable
    from .cube import open_cube
    from .methods import get_method
    from .unmixing import unmix
    from .validation import check_seed

    check_seed(args.seed)
    out = check_writable(args.out)  # fail before any work, not after a long training
    cube = open_cube(
        args.source,
        args.truth,
        rows=args.rows,
        cols=args.cols,
        scale=args.scale,
        invalid=args.invalid,
        negative=args.negative,
    )
    endmembers = _load_endmembers(args.endmembers_from) if args.endmembers_from else None
    options = dict(args.option)
    if get_method(args.method).trains:
        options.update(epochs=args.epochs, device=args.device, progress=not args.quiet)
    if endmembers is not None:
        options["endmembers"] = endmembers
    if args.lam is not None:
        options["lam"] = args.lam
    result = unmix(cube, method=args.method, n_endmembers=args.n_endmembers, seed=args.seed, **options)
    result.to_netcdf(out)
    print(
        f"{args.method} on {cube.name} ({cube.height}x{cube.width}x{cube.n_bands}, P={result.n_endmembers}): "
        f"{float(result.ds.attrs['seconds']):.2f} s"
        + (" [partial: " + result.ds.attrs.get("stop_reason", "") + "]" if result.partial else "")
    )
    if result.rmse is not None:
        sad = f", mean SAD {result.sad:.2f} deg" if result.sad is not None else ""
        print(f"abundance RMSE {result.rmse:.4f}{sad} (aligned to truth; 0-1 scale)")
    print(f"wrote {out}")
    return 0


def _cmd_demo(args) -> int:
    from ._atomic import check_writable
    from .cube import make_demo
    from .methods import get_method
    from .unmixing import unmix
    from .validation import check_seed

    check_seed(args.seed)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    result_path = check_writable(folder / "result.nc")
    cube = make_demo(seed=args.seed)
    print(
        f"demo scene: {cube.height}x{cube.width} pixels, {cube.n_bands} bands, {cube.n_true_endmembers} materials, 30 dB noise"
    )
    rows = []
    baseline = unmix(cube, method="vca-fcls", seed=args.seed)
    rows.append(baseline)
    options = {"epochs": args.epochs} if get_method(args.method).trains else {}
    start = time.perf_counter()
    result = unmix(cube, method=args.method, seed=args.seed, **options) if args.method != "vca-fcls" else baseline
    if result is not baseline:
        rows.append(result)
    for r in rows:
        print(
            f"  {r.method:<11} abundance RMSE {r.rmse:.4f}  mean SAD {r.sad if r.sad is not None else float('nan'):.2f} deg  "
            f"{float(r.ds.attrs['seconds']):.2f} s"
        )
    result.to_netcdf(result_path)
    print(f"wrote {result_path}")
    from .plotting import save_figures

    for fig_path in save_figures(result, cube, folder):
        print(f"wrote {fig_path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _cmd_datasets(args) -> int:
    from .cube import dataset_names
    from .cube.download import search_path

    print("datasets: " + ", ".join(dataset_names()))
    print("files are looked for in: " + ", ".join(str(p) for p in search_path()))
    return 0


def _cmd_reproduce(args) -> int:
    from .reproduce import reproduce

    overrides = {
        k: getattr(args, k)
        for k in ("datasets", "methods", "seeds", "epochs", "ss_epochs", "crop", "threads")
        if getattr(args, k) is not None
    }
    report = reproduce(args.out, fast=args.fast, device=args.device, log=None if args.quiet else print, **overrides)
    print()
    print(report.table_markdown)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    commands = {"unmix": _cmd_unmix, "demo": _cmd_demo, "datasets": _cmd_datasets, "reproduce": _cmd_reproduce}
    try:
        return commands[args.command](args)
    except EguError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
