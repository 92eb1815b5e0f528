"""The ``egu-widgets`` command line: headless unmixing runs::

    egu-widgets unmix SOURCE [--truth TRUTH] [--endmembers P|auto] [--method METHOD] [--seed S]
                     [--epochs N] [--device cpu|cuda] [-o KEY=VALUE ...] [--keep-partial]
                     [--chunks N [--scheduler threads|local|tcp://host:8786] [--workers N]] --out RESULT.nc
    egu-widgets demo [--out DIR] [--method METHOD] [--epochs N]
    egu-widgets datasets
    egu-widgets reproduce --out DIR [--fast]

Any problem with the input ends the run with one line on stderr (``error: ...``), exit status 2,
and no result file; warnings from the libraries underneath are shown only when the run succeeds,
so they never add lines to that error. An interrupted run (Ctrl-C) exits 130 and writes nothing,
unless ``--keep-partial`` asks for the model trained so far.

Method options have one path: a flag (``--epochs 3``) and ``-o epochs=3`` are the same option;
given both ways with different values they are refused rather than one silently winning.

``--chunks N`` opens a netCDF or Zarr source lazily in N x N pixel chunks: the model is fitted on
a stratified sample of the scene (:mod:`egu_widgets.engine.lazy_fit`) and the maps are computed
and written chunk by chunk, on the dask scheduler ``--scheduler`` names.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from .errors import EguError, InputError
from .validation import check_int

__all__ = ["EXIT_INPUT", "EXIT_INTERRUPTED", "main"]

#: exit status of a run refused for its input (one ``error:`` line on stderr)
EXIT_INPUT = 2
#: exit status of a run interrupted by Ctrl-C (SIGINT)
EXIT_INTERRUPTED = 130

#: ``-o`` names the command line sets itself or that no text can express, with what to use instead.
RESERVED_OPTIONS = {
    "seed": "use --seed",
    "callbacks": "callbacks are Python objects; use the Python API (unmix(..., callbacks=...))",
    "control": "a TrainingControl is a Python object; use the Python API, or Ctrl-C to stop",
    "progress": "progress is shown unless --quiet",
    "n_endmembers": "use --endmembers",
    "method": "use --method",
    "cube": "give the cube as SOURCE",
}
#: Method options that also have a flag: option name -> flag.
FLAG_OPTIONS = {"epochs": "--epochs", "device": "--device", "lam": "--lam", "ensemble": "--ensemble"}
#: Result formats by suffix: what writes them (an UnmixingResult method) and the module it needs.
OUTPUT_FORMATS = {
    ".nc": ("to_netcdf", None),
    ".tif": ("to_geotiff", "rasterio"),
    ".tiff": ("to_geotiff", "rasterio"),
    ".zarr": ("to_zarr", "zarr"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with the command line's error contract: one ``error:`` line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {message} (see {self.prog} --help)\n")


def _option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes KEY=VALUE; got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def _whole(name: str, minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``, refused with the validation's message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number >= {minimum}; got {text!r}") from None
        try:
            return check_int(name, value, minimum)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _n_endmembers(text: str) -> int | str:
    """``--endmembers``: a whole number (checked against the cube later) or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--endmembers takes a whole number or 'auto'; got {text!r}") from None


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
    from .classic.subspace import CRITERIA
    from .cube import dataset_names
    from .cube.datasets import paper_datasets
    from .cube.formats.layout import LAYOUTS
    from .methods import DEFAULT_METHOD, method_names

    methods = method_names()
    method_help = _method_help()
    parser = _Parser(prog="egu-widgets", description="EGU-Net hyperspectral unmixing, headless.")
    parser.add_argument("--version", action="version", version=f"egu-widgets {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    un = sub.add_parser("unmix", help="unmix a cube and write the result (.nc, or .tif where GeoTIFF is available)")
    un.add_argument(
        "source", help=f"dataset name ({', '.join(dataset_names())}) or a file (.mat, ENVI .hdr, .nc, .zarr)"
    )
    un.add_argument("--truth", help=".mat file with truth 'A' and/or 'M' (for scoring, and for --method fcls)")
    un.add_argument(
        "--endmembers",
        "-p",
        type=_n_endmembers,
        dest="n_endmembers",
        metavar="P|auto",
        help="number of endmembers P, or 'auto' to estimate it (see --endmembers-criterion); default: the truth's",
    )
    un.add_argument(
        "--endmembers-criterion",
        choices=CRITERIA,
        default="rmt",
        help="how --endmembers auto counts the materials (default: rmt; all criteria are printed)",
    )
    un.add_argument("--method", "-m", default=DEFAULT_METHOD, choices=methods, metavar="METHOD", help=method_help)
    un.add_argument(
        "--endmembers-from", help="file with endmembers for fcls/sunsal: .mat with 'M' (bands x P) or a result .nc"
    )
    un.add_argument("--seed", type=int, default=0, help="random seed, a whole number >= 0 (default: 0)")
    un.add_argument("--epochs", type=int, help="training epochs (EGU-Net methods; default: the method's)")
    un.add_argument("--device", help="cpu or cuda (EGU-Net methods; default: cpu)")
    un.add_argument("--lam", type=float, help="sparsity weight for sunsal (default: 0)")
    un.add_argument(
        "--ensemble",
        type=_whole("--ensemble", 2),
        help="train K EGU-Net members and add per-pixel spread maps (std, 5 and 95 %% quantiles) to the result",
    )
    un.add_argument("--rows", type=_whole("--rows", 1), help="image rows, when a .mat file does not store them")
    un.add_argument("--cols", type=_whole("--cols", 1), help="image columns, when a .mat file does not store them")
    un.add_argument(
        "--layout",
        help=f"axis order of the stored array when the file does not state it: {', '.join(LAYOUTS)}",
    )
    un.add_argument("--variable", help="the array to read: a .mat key or a netCDF variable")
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
        help="method option, e.g. -o patch_size=5 -o bundle_mode=faithful (repeatable); "
        "the same as its flag where one exists (-o epochs=3 is --epochs 3)",
    )
    un.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    un.add_argument(
        "--keep-partial",
        action="store_true",
        help="on Ctrl-C, write the model trained so far (marked partial) instead of nothing; exit status 130 either way",
    )
    un.add_argument(
        "--chunks",
        type=_whole("--chunks", 1),
        metavar="N",
        help="open a .nc or .zarr source lazily in N x N pixel chunks: fit on a sample, write the maps chunk by chunk",
    )
    un.add_argument(
        "--scheduler",
        default="threads",
        metavar="threads|local|ADDRESS",
        help="dask scheduler for --chunks: threads (default), local (a LocalCluster of --workers processes) "
        "or an existing cluster's address, e.g. tcp://host:8786",
    )
    un.add_argument(
        "--workers", type=_whole("--workers", 1), help="threads, or LocalCluster processes, for --scheduler"
    )
    un.add_argument(
        "--out",
        required=True,
        help="result file to write: .nc (netCDF), .tif/.tiff (GeoTIFF maps) or .zarr (Zarr store)",
    )

    demo = sub.add_parser("demo", help="unmix the built-in demo scene; write its result and figures")
    demo.add_argument(
        "--out", default="egu-demo", help="folder for result.nc and the PNG figures (default: ./egu-demo)"
    )
    demo.add_argument("--method", default=DEFAULT_METHOD, choices=methods, metavar="METHOD", help=method_help)
    demo.add_argument("--epochs", type=int, help="training epochs (EGU-Net methods)")
    demo.add_argument("--seed", type=int, default=0, help="random seed, a whole number >= 0 (default: 0)")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    sub.add_parser("datasets", help="list the datasets known by name: present, downloadable or missing, and where")

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
        help="comma-separated subset of vca-fcls,nfindr-fcls,sunsal,ae,egu-pw,egu-ss",
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


# ------------------------------------------------------------------ option path


def merge_options(flags: dict[str, Any], pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """Method options from the flags (None: not given) and the ``-o KEY=VALUE`` pairs, in one dict.

    A value given once, either way, is used; the same value given twice is fine; two different
    values for one option (``--epochs 3 -o epochs=4``, or ``-o lr=0.1 -o lr=0.2``) are refused, as
    are the names the command line sets itself (:data:`RESERVED_OPTIONS`).
    """
    options: dict[str, Any] = {}
    for key, value in pairs:
        if key in RESERVED_OPTIONS:
            raise InputError(f"-o {key}=... is not a method option here: {RESERVED_OPTIONS[key]}")
        if key in options and options[key] != value:
            raise InputError(
                f"-o {key} is given twice with different values ({options[key]!r} and {value!r}); give it once"
            )
        options[key] = value
    for key, value in flags.items():
        if value is None:
            continue
        if key in options and options[key] != value:
            raise InputError(
                f"{FLAG_OPTIONS.get(key, key)} {value!r} and -o {key}={options[key]!r} disagree; give the option once"
            )
        options[key] = value
    return options


def _check_method_options(method: str, options: dict[str, Any]) -> None:
    """Refuse, before any work, what the method cannot take (names from the registry)."""
    from .methods import TRAINING_SETTINGS, get_method

    spec = get_method(method)
    spec.check_options([k for k in options if k not in TRAINING_SETTINGS])
    if spec.trains and "batch_size" in options:
        # Batch normalisation needs two pixels per batch; one pixel fails deep inside torch.
        check_int("batch_size", options["batch_size"], 2)


# ------------------------------------------------------------------ output


def _output_writer(path: str) -> tuple[Path, str]:
    """The output path and the result method that writes it; refused early for unknown suffixes."""
    import importlib.util

    from ._atomic import check_writable
    from .results import UnmixingResult

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InputError(
            f"--out {path!r}: {suffix or 'no suffix'} is not a result format; use .nc (netCDF), .tif (GeoTIFF) or .zarr"
        )
    writer, needs = OUTPUT_FORMATS[suffix]
    if not callable(getattr(UnmixingResult, writer, None)):
        raise InputError(f"--out {path!r}: this version cannot write {suffix} results; use .nc")
    if needs is not None and importlib.util.find_spec(needs) is None:
        raise InputError(f"--out {path!r}: writing {suffix} needs {needs} (pip install {needs}); or use .nc")
    return check_writable(out), writer


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _refuse_output_over_inputs(out: Path, inputs: dict[str, str | None]) -> None:
    """Refuse an output that is one of the input files (after links and relative paths)."""
    for what, given in inputs.items():
        if given is None or not Path(given).is_file():
            continue  # a dataset name, or a file the reader will report missing
        if _same_file(out, Path(given)):
            raise InputError(
                f"--out {str(out)!r} is the {what} file {given!r}; writing would destroy it; choose another path"
            )


# ------------------------------------------------------------------ warnings and interrupts


class _Warnings:
    """Warnings during a command: the package's own shown at once, the libraries' held until success.

    A library's warning (numpy's RuntimeWarning, spectral's header remarks) on the way to an error
    says nothing the error line does not, and would break the one-line contract; on a run that
    succeeds it is shown, one line each, after the run.
    """

    def __init__(self) -> None:
        self.held: list[str] = []
        self._package = str(Path(__file__).resolve().parent)

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = f"warning: {' '.join(str(message).split())}"
        if str(Path(filename).resolve()).startswith(self._package):
            print(text, file=sys.stderr)
        elif text not in self.held:
            self.held.append(text)

    def flush(self) -> None:
        for text in self.held:
            print(text, file=sys.stderr)
        self.held.clear()


class _InterruptWatch:
    """Counts Ctrl-C while a command runs (it still raises KeyboardInterrupt as Python's own does).

    The trainer turns a KeyboardInterrupt into a partial result, so the command line needs to
    know that one came: it then writes nothing unless ``--keep-partial``, and exits 130.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum, frame) -> None:
        self.count += 1
        raise KeyboardInterrupt

    @property
    def interrupted(self) -> bool:
        return self.count > 0


@contextlib.contextmanager
def _watch_interrupts() -> Iterator[_InterruptWatch]:
    watch = _InterruptWatch()
    # Only where Python's own handler is in place: an ignored SIGINT (a background job) stays
    # ignored, a caller's handler stays theirs, and signals can be set in the main thread alone.
    installed = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if installed:
        signal.signal(signal.SIGINT, watch)
    try:
        yield watch
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


# ------------------------------------------------------------------ commands


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


def _endmember_matrix(value: Any):
    """``-o endmembers=[[...], ...]``: a JSON matrix of numbers, P rows of one value per band."""
    import numpy as np

    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.ndim != 2:
        raise InputError(
            f"-o endmembers takes a JSON matrix of numbers (P rows of one value per band); got {value!r}; "
            "or give a file with --endmembers-from"
        )
    return matrix


def _auto_endmembers(cube, criterion: str, sample: int | None = None, seed: int = 0) -> int:
    """P by ``criterion``; prints it with what every criterion says.

    With ``sample`` (a ``--chunks`` run) the criteria judge that many valid pixels spread over the
    scene, read window by window, so that counting the materials never loads a lazy cube.
    """
    from .classic.subspace import CRITERIA, estimate_n_endmembers

    data = cube
    if sample is not None:
        from .cube.sampling import sample_pixels

        data = sample_pixels(cube, sample, seed=seed)[0]
    said = {}
    for name in CRITERIA:
        try:
            said[name] = estimate_n_endmembers(data, name).n_endmembers
        except EguError:
            if name == criterion:
                raise
            said[name] = "n/a"
    others = ", ".join(f"{name} {count}" for name, count in said.items())
    print(f"endmembers: P = {said[criterion]} by {criterion} ({others})")
    return int(said[criterion])


@contextlib.contextmanager
def _scheduler(scheduler: str, workers: int | None) -> Iterator[None]:
    """The dask scheduler of a ``--chunks`` run (:func:`egu_widgets.chunked.use_scheduler`)."""
    if scheduler == "threads" and workers is None:
        yield
        return
    if scheduler not in ("threads", "local") and "://" not in scheduler:
        raise InputError(
            f"--scheduler {scheduler!r}: use threads, local, or a scheduler address such as tcp://host:8786"
        )
    from .chunked import use_scheduler

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(use_scheduler(scheduler, workers=workers))
        except OSError as exc:  # no scheduler listening there, or the cluster cannot start
            raise InputError(f"--scheduler {scheduler!r}: could not reach or start the dask scheduler ({exc})") from exc
        yield


def _cmd_unmix(args, watch: _InterruptWatch) -> int:
    from .cube import open_cube
    from .unmixing import unmix
    from .validation import check_seed

    seed = check_seed(args.seed)
    out, writer = _output_writer(args.out)  # fail before any work, not after a long training
    _refuse_output_over_inputs(out, {"source": args.source, "truth": args.truth, "endmembers": args.endmembers_from})
    options = merge_options(
        {"epochs": args.epochs, "device": args.device, "lam": args.lam, "ensemble": args.ensemble}, args.option
    )
    if args.endmembers_from:
        if "endmembers" in options:
            raise InputError("--endmembers-from and -o endmembers=... are both given; give the endmembers once")
        options["endmembers"] = _load_endmembers(args.endmembers_from)
    elif "endmembers" in options:
        options["endmembers"] = _endmember_matrix(options["endmembers"])
    _check_method_options(args.method, options)
    if args.chunks is None and (args.scheduler != "threads" or args.workers is not None):
        raise InputError("--scheduler and --workers run the chunk-by-chunk path; give --chunks N too")
    if args.chunks is not None and args.truth:
        raise InputError(
            "--truth needs the cube in memory and --chunks keeps it on disk; drop --truth to fit and write the"
            " maps chunk by chunk (score them afterwards on a crop that fits in memory), or drop --chunks"
        )
    with _scheduler(args.scheduler, args.workers):
        cube = open_cube(
            args.source,
            args.truth,
            rows=args.rows,
            cols=args.cols,
            scale=args.scale,
            invalid=args.invalid,
            negative=args.negative,
            layout=args.layout,
            variable=args.variable,
            **({} if args.chunks is None else {"chunks": {"y": args.chunks, "x": args.chunks}}),
        )
        n_endmembers = args.n_endmembers
        if n_endmembers == "auto":
            sample = None
            if args.chunks is not None:
                from .engine import resolve_hyperparameters

                sample = resolve_hyperparameters(sample_pixels=options.get("sample_pixels"))["sample_pixels"]
            n_endmembers = _auto_endmembers(cube, args.endmembers_criterion, sample, seed)
        result = unmix(
            cube, method=args.method, n_endmembers=n_endmembers, seed=seed, progress=not args.quiet, **options
        )
        if watch.interrupted and not args.keep_partial:
            reason = result.ds.attrs.get("stop_reason") or "interrupted"
            print(
                f"interrupted: nothing was written ({reason}); --keep-partial keeps the partial result", file=sys.stderr
            )
            return EXIT_INTERRUPTED
        getattr(result, writer)(out)  # a lazy result: computed and written chunk by chunk
    print(
        f"{args.method} on {cube.name} ({cube.height}x{cube.width}x{cube.n_bands}, P={result.n_endmembers}): "
        f"{float(result.ds.attrs['seconds']):.2f} s"
        + (" [partial: " + result.ds.attrs.get("stop_reason", "") + "]" if result.partial else "")
    )
    if result.rmse is not None:
        sad = f", mean SAD {result.sad:.2f} deg" if result.sad is not None else ""
        print(f"abundance RMSE {result.rmse:.4f}{sad} (aligned to truth; 0-1 scale)")
    print(f"wrote {out}")
    if watch.interrupted:
        reason = result.ds.attrs.get("stop_reason") or "interrupted"
        print(f"interrupted: kept the partial result in {out} ({reason})", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _cmd_demo(args, watch: _InterruptWatch) -> int:
    from ._atomic import check_writable
    from .cube import make_demo
    from .methods import get_method
    from .unmixing import unmix
    from .validation import check_seed

    seed = check_seed(args.seed)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    result_path = check_writable(folder / "result.nc")
    cube = make_demo(seed=seed)
    print(
        f"demo scene: {cube.height}x{cube.width} pixels, {cube.n_bands} bands, {cube.n_true_endmembers} materials, 30 dB noise"
    )
    rows = []
    baseline = unmix(cube, method="vca-fcls", seed=seed)
    rows.append(baseline)
    options = {"epochs": args.epochs, "progress": not args.quiet} if get_method(args.method).trains else {}
    start = time.perf_counter()
    result = unmix(cube, method=args.method, seed=seed, **options) if args.method != "vca-fcls" else baseline
    if watch.interrupted:
        print("interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
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


def dataset_status(entry) -> tuple[str, str]:
    """Where a named dataset stands here: ``(status, where)``.

    ``built in`` (generated, no files), ``present`` (every file found; where: their folder),
    ``downloadable`` (a file not found but registered with a public address; where: the folder it
    would be downloaded to) or ``missing`` (a file found nowhere and with no address).
    """
    from .cube.download import FILES, download_dir, locate

    if not entry.files:
        return "built in", "(generated, no files)"
    found = {rel: locate(rel) for rel in entry.files}
    if all(found.values()):
        folders = sorted({str(path.parent) for path in found.values()})
        return "present", ", ".join(folders)
    absent = [rel for rel, path in found.items() if path is None]
    if all(rel in FILES for rel in absent):
        folders = sorted({str(download_dir() / Path(rel).parent) for rel in absent})
        return "downloadable", "to " + ", ".join(folders)
    return "missing", "not found: " + ", ".join(absent)


def _cmd_datasets(args, watch: _InterruptWatch) -> int:
    from .cube.datasets import DATASETS
    from .cube.download import search_path

    rows = [(name, *dataset_status(entry)) for name, entry in DATASETS.items()]
    width = max(len(name) for name, _, _ in rows)
    for name, status, where in rows:
        print(f"{name:<{width}}  {status:<12}  {where}")
    print("files are looked for in: " + ", ".join(str(p) for p in search_path()))
    return 0


def _cmd_reproduce(args, watch: _InterruptWatch) -> int:
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


#: Reader keywords whose command-line flag takes the same values (``invalid='mask'`` is ``--invalid mask``).
_FLAG_KEYWORDS = ("invalid", "negative", "layout")
_KEYWORD_VALUE = re.compile(r"\b(" + "|".join(_FLAG_KEYWORDS) + r")=(['\"])([\w,-]+)\2")


def _in_flag_words(message: str) -> str:
    """``message`` with the library's ``invalid='mask'`` hints written as the flags the CLI user types."""
    return _KEYWORD_VALUE.sub(lambda m: f"--{m.group(1)} {m.group(3)}", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    commands = {"unmix": _cmd_unmix, "demo": _cmd_demo, "datasets": _cmd_datasets, "reproduce": _cmd_reproduce}
    held = _Warnings()
    with warnings.catch_warnings(), _watch_interrupts() as watch:
        warnings.showwarning = held.show
        try:
            code = commands[args.command](args, watch)
        except EguError as exc:
            print(f"error: {_in_flag_words(' '.join(str(exc).split()))}", file=sys.stderr)
            return EXIT_INPUT
        except KeyboardInterrupt:
            print("interrupted: nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED
    held.flush()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
