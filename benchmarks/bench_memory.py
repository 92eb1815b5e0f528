"""Time and peak memory of unmixing runs at growing image sizes, each run in its own process.

For every method and size a child process builds a random-mixture cube (float32, P = 4 smooth
spectra, Dirichlet abundances, 30 dB noise) block by block, resets its peak-RSS counter, runs
``unmix`` and exits; the parent reads the child's peak resident memory from ``os.wait4``
(``ru_maxrss``). The table gives seconds, peak RSS, the RSS before the run (interpreter, imports
and the cube), the registry's estimate (:mod:`egu_widgets.memory`) and peak / cube float32 size
("added" is peak less before: what the run itself allocated). Sizes whose estimate does not
fit the available memory are skipped and say so.

    python benchmarks/bench_memory.py                      # all methods, 200² 500² 1000² 1500²
    python benchmarks/bench_memory.py --methods vca-fcls --sizes 500
    python benchmarks/bench_memory.py --methods egu-pw --sizes 500 --phases

``--phases`` (EGU-Net methods) also reports, for each phase of the fit (the usability check, the
bundle search and its reference, training, the calibration, the abundances, the result), the
resident memory at its end and its peak, both less the RSS before the run and in cube float32
sizes (S): a thread samples VmRSS every 2 ms and the phases are the engine's functions, wrapped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = (200, 500, 1000, 1500)
METHODS = ("vca-fcls", "nfindr-fcls", "egu-pw")
BANDS = 224
P = 4


def _rss_kib(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _make_cube(side: int, seed: int = 0):
    """A side x side x 224 float32 cube of random mixtures, built a block of rows at a time."""
    from egu_widgets.cube import HyperCube
    from egu_widgets.cube.synthetic import demo_endmembers

    rng = np.random.default_rng(seed)
    wavelengths = np.linspace(400.0, 2500.0, BANDS)
    em = demo_endmembers(BANDS, P, wavelengths)
    image = np.empty((side, side, BANDS), dtype=np.float32)
    abundances = np.empty((P, side, side))
    sigma = float(np.sqrt(np.mean(em**2)) / 10 ** (30 / 20))
    for start in range(0, side, 64):
        rows = slice(start, min(start + 64, side))
        n = (rows.stop - rows.start) * side
        ab = rng.dirichlet(np.full(P, 0.5), n)
        block = ab @ em + sigma * rng.standard_normal((n, BANDS))
        image[rows] = np.clip(block, 0.0, None).reshape(-1, side, BANDS)
        abundances[:, rows] = ab.T.reshape(P, -1, side)
    return HyperCube.from_array(image, wavelengths=wavelengths, endmembers=em, abundances=abundances)


#: (module, object, attribute) of the functions ``--phases`` times, in the order a fit calls them.
_PHASES = (
    ("egu_widgets.unmixing", None, "check_usable"),
    ("egu_widgets.engine.bundles", None, "_candidates"),
    ("egu_widgets.engine.bundles", None, "reference_endmembers"),
    ("egu_widgets.engine.bundles", None, "sum_to_one_statistic"),
    ("egu_widgets.engine.estimator", "EGUNet", "_bundles_for"),
    ("egu_widgets.engine.estimator", None, "train"),
    ("egu_widgets.engine.estimator", "EGUNet", "_calibrate"),
    ("egu_widgets.engine.estimator", "EGUNet", "transform"),
    ("egu_widgets.results", "UnmixingResult", "from_arrays"),
)


def _track_phases(cube_bytes: int) -> list:
    """Wrap the phase functions; returns the list that collects (name, end RSS, peak RSS) in bytes."""
    import importlib
    import threading

    records: list = []
    state = {"peak": 0}

    def sample() -> None:
        while True:
            state["peak"] = max(state["peak"], _rss_kib() * 1024)
            time.sleep(0.002)

    threading.Thread(target=sample, daemon=True).start()
    for module_name, owner, name in _PHASES:
        module = importlib.import_module(module_name)
        holder = getattr(module, owner) if owner else module
        if not hasattr(holder, name):
            continue
        original = getattr(holder, name)

        def wrapped(*args, _original=original, _name=name, **kwargs):
            outer = state["peak"]
            state["peak"] = _rss_kib() * 1024
            try:
                return _original(*args, **kwargs)
            finally:
                time.sleep(0.005)  # one more sample
                records.append((_name, _rss_kib() * 1024, state["peak"]))
                state["peak"] = max(outer, state["peak"])

        setattr(holder, name, staticmethod(wrapped) if owner and isinstance(original, staticmethod) else wrapped)
    return records


def _child(method: str, side: int, epochs: int, phases: bool = False) -> None:
    """Build the cube, reset the peak counter, run ``method``, print one JSON line."""
    from egu_widgets import unmix

    trains = method.startswith("egu") or method == "ae"
    if trains:  # torch only where it is used: its import alone is a few hundred MiB of RSS
        import torch

        torch.set_num_threads(1)
    cube = _make_cube(side)
    records = _track_phases(side * side * BANDS * 4) if phases else None
    before = _rss_kib()
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # resets VmHWM and ru_maxrss to the current RSS
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    options = {"epochs": epochs} if trains else {}
    start = time.perf_counter()
    result = unmix(cube, method, seed=0, **options)
    seconds = time.perf_counter() - start
    if records is not None:
        cube_f32 = side * side * BANDS * 4
        print(f"  phases of {method} at {side}x{side} (RSS less the RSS before the run, in cube sizes S):")
        for name, end, peak in records:
            print(
                f"    {name:<22} peak {(peak - before * 1024) / cube_f32:5.2f} S   end {(end - before * 1024) / cube_f32:5.2f} S"
            )
    print(json.dumps({"seconds": seconds, "rss_before_kib": before, "reset": reset, "rmse": result.rmse}))


def _estimate(method: str, side: int) -> int:
    """The registry's estimate for ``method`` on a side x side x 224 cube (no cube is built)."""
    from egu_widgets.methods import get_method

    class _Shape:  # what the estimates read: shape, valid mask, reflectance chunks
        shape = (side, side, BANDS)
        valid_mask = np.ones((side, side), dtype=bool)
        reflectance = None

    spec = get_method(method)
    estimate = getattr(spec, "estimate_memory", None)  # absent before the estimates existed
    return int(estimate(_Shape(), P, {}) or 0) if estimate else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--phases", action="store_true", help="EGU-Net: the peak and end RSS of each phase")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), args.epochs, args.phases)
        return

    from egu_widgets.memory import available_bytes, format_bytes

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit or '?'}; {BANDS} bands, P = {P}, egu epochs {args.epochs}, one torch thread")
    header = (
        f"{'method':<12} {'pixels':>11} {'cube f32':>9} {'seconds':>8} {'peak RSS':>9} {'before':>9} "
        f"{'added':>9} {'estimate':>9} {'peak/cube':>9}"
    )
    print(header)
    print("-" * len(header))
    for method in args.methods:
        for side in args.sizes:
            cube = side * side * BANDS * 4
            estimate = _estimate(method, side)
            available = available_bytes()
            label = f"{method:<12} {f'{side}x{side}':>11} {format_bytes(cube):>9}"
            # The child holds the cube (twice while building it) plus the run.
            if available is not None and estimate + 2 * cube > available:
                print(
                    f"{label}  skipped: needs ~{format_bytes(estimate + 2 * cube)}, {format_bytes(available)} available"
                )
                continue
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
            cmd = [sys.executable, __file__, "--child", method, str(side), "--epochs", str(args.epochs)]
            if args.phases:
                cmd.append("--phases")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            for line in out.strip().splitlines()[:-1]:  # the phases, when asked for
                print(line)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                print(f"{label}  failed (exit {proc.returncode})")
                continue
            info = json.loads(out.strip().splitlines()[-1])
            peak = usage.ru_maxrss * 1024
            print(
                f"{label} {info['seconds']:>8.1f} {format_bytes(peak):>9} "
                f"{format_bytes(info['rss_before_kib'] * 1024):>9} {format_bytes(peak - info['rss_before_kib'] * 1024):>9} "
                f"{format_bytes(estimate):>9} {peak / cube:>8.2f}x"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
