"""Inference speed: pixels per second for EGU-Net-pw/ss and FCLS, and what bfloat16 costs in accuracy.

    python benchmarks/bench_inference.py [--pixels 1000000] [--threads 2] [--epochs 30] [--cpu-time]

A pw and an ss model are trained briefly on egu-synthetic (200×200×224, P=5; the speed of a
forward pass does not depend on how long it trained), then timed on ``--pixels`` spectra drawn
from that scene (best of three runs):

- ``pw, PixelUnmixer float32``: :meth:`EGUNet.transform_array`, batch norms folded into the layers,
  cache-sized blocks (``BLOCK_SIZE``);
- ``pw, float32 in whole chunks``: the same with one pass per 65 536-pixel chunk
  (``block_size=65536``), how it ran before blocks: the before/after ratio, measured alongside;
- ``pw, PixelUnmixer bfloat16``: the same with bfloat16 matrix products (opt-in; AMX on CPUs that have it);
- ``pw, torch modules``: the encoder called as a ``torch.nn.Module`` in eval mode, chunk by chunk
  (what a plain PyTorch user would write);
- ``ss, endmember stream``: the API's ss abundances (the same pixel-wise encoder path);
- ``ss, unmixing stream``: ``transform(cube, stream="unmixing")``, the convolutional stream in
  256-pixel tiles on the 200×200 image (one tile here);
- ``fcls``: fully constrained least squares against the model's reference endmembers.

Accuracy rows give the largest and the root-mean-square difference of the bfloat16 and module
abundances from the float32 PixelUnmixer's on the scene's 40 000 pixels, and the achieved
fraction of the machine's float32 matrix-multiply throughput, measured on 2048² products right
before and after each row (their mean is the row's rate). ``--cpu-time`` times by the process's
CPU time instead of the wall clock: on a machine shared with other work it counts only the
cycles this process got, so the fractions are stable where wall times are not (with one thread;
with several, threads waiting for each other count too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from _common import load_average

from egu_widgets.classic import fcls
from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet
from egu_widgets.engine.inference import PixelUnmixer


def best_of(fn, repeat: int, clock) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn`` by ``clock``."""
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def matmul_gflops(clock) -> float:
    """float32 matrix-multiply rate now (2048² products, torch's current threads), timed by ``clock``."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    return 2 * 2048**3 / (best_of(lambda: [a @ b for _ in range(5)], 3, clock) / 5) / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixels", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--cpu-time", action="store_true", help="time by process CPU time, not the wall clock")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter

    cube = open_cube("egu-synthetic")
    rng = np.random.default_rng(0)
    pixels = cube.pixels[rng.integers(0, cube.n_pixels, args.pixels)].astype(np.float32)
    pw = EGUNet("pw", 5, epochs=args.epochs, seed=0, progress=False, num_threads=args.threads).fit(cube)
    ss = EGUNet("ss", 5, epochs=min(args.epochs, 5), seed=0, progress=False, num_threads=args.threads).fit(cube)
    n_bands = cube.n_bands
    widths = pw.hyperparameters_["encoder_widths"]
    flops_per_pixel = 2 * sum(a * b for a, b in zip([n_bands, *widths], [*widths, 5]))

    encoder = pw.model_.encoder.eval()

    def modules():
        with torch.no_grad():
            for start in range(0, len(pixels), 65536):
                torch.softmax(encoder(torch.from_numpy(pixels[start : start + 65536])), dim=1)

    ref = pw.reference_

    def ss_unmixing():  # tiled convolutional stream with stored statistics, abundances only
        ss.transform(cube, stream="unmixing")

    whole_chunks = PixelUnmixer.from_encoder(encoder, chunk_size=65536, block_size=65536)
    fcls_pixels = pixels[:100_000]
    paths = [
        ("pw, PixelUnmixer float32", len(pixels), lambda: pw.transform_array(pixels), 3),
        ("pw, float32 in whole chunks", len(pixels), lambda: whole_chunks(pixels), 3),
        ("pw, PixelUnmixer bfloat16", len(pixels), lambda: pw.transform_array(pixels, precision="bfloat16"), 3),
        ("pw, torch modules", len(pixels), modules, 3),
        ("ss, endmember stream", len(pixels), lambda: ss.transform_array(pixels), 3),
        ("ss, unmixing stream (transform)", cube.n_pixels, ss_unmixing, 3),
        ("fcls (reference endmembers)", len(fcls_pixels), lambda: fcls(fcls_pixels, ref), 1),
    ]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {load_average()}, "
        f"{'process CPU time' if args.cpu_time else 'wall clock'}; pw encoder {flops_per_pixel / 1e3:.0f} kFLOP per pixel"
    )
    print(f"{'path':<36} {'pixels':>9} {'seconds':>8} {'pixels/s':>12} {'matmul GFLOP/s':>15} {'matmul fraction':>16}")
    for name, n, fn, repeat in paths:
        before = matmul_gflops(clock)
        seconds = best_of(fn, repeat, clock)
        peak = (before + matmul_gflops(clock)) / 2
        frac = f"{n * flops_per_pixel / seconds / 1e9 / peak:>15.0%}" if name.startswith(("pw", "ss, end")) else ""
        print(f"{name:<36} {n:>9} {seconds:>8.3f} {n / seconds:>12,.0f} {peak:>15.0f} {frac:>16}", flush=True)

    full = cube.pixels.astype(np.float32)
    exact = pw.transform_array(full)
    bf16 = pw.transform_array(full, precision="bfloat16")
    with torch.no_grad():
        mod = torch.softmax(encoder(torch.from_numpy(full)), dim=1).numpy()
    print("\nabundance differences from PixelUnmixer float32 on egu-synthetic's 40 000 pixels:")
    for name, other in (("bfloat16", bf16), ("torch modules (float32)", mod)):
        d = other - exact
        print(f"{name:<24} max {np.abs(d).max():.2e}  rms {np.sqrt(np.mean(d * d)):.2e}")
    truth = cube.true_abundance_pixels
    from egu_widgets import metrics

    print(
        f"RMSE against truth: float32 {metrics.score(exact, truth)['rmse']:.4f}, "
        f"bfloat16 {metrics.score(bf16, truth)['rmse']:.4f} ({args.epochs} epochs of training)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
