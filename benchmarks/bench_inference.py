"""Inference speed: pixels per second for EGU-Net-pw/ss and FCLS, and what bfloat16 costs in accuracy.

    python benchmarks/bench_inference.py [--pixels 1000000] [--threads 2] [--epochs 30] [--rounds 3] [--cpu-time]

A pw and an ss model are trained briefly on egu-synthetic (200×200×224, P=5; the speed of a
forward pass does not depend on how long it trained), then timed on ``--pixels`` spectra drawn
from that scene:

- ``pw, PixelUnmixer float32``: :meth:`EGUNet.transform_array` on float32 pixels, batch norms
  folded into the layers, cache-sized blocks (``BLOCK_SIZE``);
- ``pw, same, float64 input``: the same pixels as float64 (converted block by block);
- ``pw, float32 in whole chunks``: one pass per 65 536-pixel chunk (``block_size=65536``), how it
  ran before blocks, measured alongside;
- ``pw, encoder products alone``: only the four matrix products of the same blocks, no bias,
  activation, softmax or copy: the ceiling for the encoder's layer shapes;
- ``pw, PixelUnmixer bfloat16``: bfloat16 matrix products (opt-in; left out where the CPU has no
  bfloat16 hardware, since PixelUnmixer refuses it there);
- ``pw, torch modules``: the encoder called as a ``torch.nn.Module`` in eval mode, chunk by chunk
  (what a plain PyTorch user would write);
- ``ss, endmember stream``: the API's ss abundances (the same pixel-wise encoder path);
- ``ss, unmixing stream``: ``transform(cube, stream="unmixing")``, the convolutional stream in
  256-pixel tiles on the 200×200 image (one tile here);
- ``fcls``: fully constrained least squares against the model's reference endmembers.

Every path runs once per round, ``--rounds`` rounds, in turn (so that a change in the machine's
load hits all paths alike). Each run is bracketed by the float32 matrix-multiply rate on 2048²
products (with torch's threads), and the row's fraction is the run's FLOP rate (2·Σ in·out per
pixel, the encoder's four products) over the mean of the two: the table gives the median fraction
over the rounds with its range, and the fastest run's seconds and pixels per second.
``--cpu-time`` times by the process's CPU time instead of the wall clock: on a machine shared
with other work it counts only the cycles this process got, so the fractions are steadier where
wall times are not (with one thread; with several, threads waiting for each other count too).

``--bf16-products`` only times the first layer's product (2048 × 224 by 224 × 256) in bfloat16
and float32 and says whether PixelUnmixer would accept bfloat16: run it with
``ONEDNN_MAX_CPU_ISA=AVX512_CORE`` or ``=AVX2`` to see what a CPU without bfloat16 hardware pays.

The last lines give the largest and the root-mean-square difference of the bfloat16 and module
abundances from the float32 PixelUnmixer's on the scene's 40 000 pixels and their RMSE.
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
from egu_widgets.engine.inference import BLOCK_SIZE, PixelUnmixer, native_bfloat16


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
    return 2 * 2048**3 / (best_of(lambda: [a @ b for _ in range(2)], 3, clock) / 2) / 1e9


def products_alone(unmixer: PixelUnmixer, pixels: np.ndarray, block: int):
    """A function doing only ``unmixer``'s four float32 matrix products, block by block, into
    reused outputs: what the encoder's layer shapes allow at the matrix-multiply rate."""
    w1, w2, w3, w4t = unmixer._weights
    x = torch.from_numpy(pixels)
    outs = [torch.empty(block, int(w.shape[1])) for w in (w1, w2, w3)] + [torch.empty(int(w4t.shape[0]), block)]

    def run():
        with torch.inference_mode():
            for start in range(0, len(x) - block + 1, block):
                h = torch.mm(x[start : start + block], w1, out=outs[0])
                h = torch.mm(h, w2, out=outs[1])
                h = torch.mm(h, w3, out=outs[2])
                torch.mm(w4t, h.t(), out=outs[3])

    return run, len(x) // block * block


def bf16_products(clock) -> None:
    """bfloat16 against float32 seconds of the first layer's product, five runs in turn."""
    a, b = torch.randn(2048, 224), torch.randn(224, 256)
    pairs = {"float32": (a, b), "bfloat16": (a.bfloat16(), b.bfloat16())}
    times = {k: [] for k in pairs}
    for _ in range(5):
        for k, (x, w) in pairs.items():
            times[k].append(best_of(lambda x=x, w=w: torch.mm(x, w), 3, clock))
    f32, b16 = min(times["float32"]), min(times["bfloat16"])
    print(
        f"2048x224 @ 224x256: float32 {f32 * 1e6:.0f} us, bfloat16 {b16 * 1e6:.0f} us ({b16 / f32:.2f}x float32's time); "
        f"bfloat16 hardware as PixelUnmixer sees it: {native_bfloat16(torch.device('cpu'))}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixels", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3, help="runs of every path, in turn")
    ap.add_argument("--cpu-time", action="store_true", help="time by process CPU time, not the wall clock")
    ap.add_argument("--bf16-products", action="store_true", help="only time one product in bfloat16 and float32")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    if args.bf16_products:
        bf16_products(clock)
        return 0

    cube = open_cube("egu-synthetic")
    rng = np.random.default_rng(0)
    pixels = cube.pixels[rng.integers(0, cube.n_pixels, args.pixels)].astype(np.float32)
    pixels64 = pixels.astype(np.float64)
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

    unmixer = pw.pixel_unmixer()
    block = unmixer.block_size or (BLOCK_SIZE if args.threads == 1 else unmixer.chunk_size)
    whole_chunks = PixelUnmixer.from_encoder(encoder, chunk_size=65536, block_size=65536)
    products, n_products = products_alone(unmixer, pixels, min(block, len(pixels)))
    bf16 = native_bfloat16(torch.device("cpu"))
    fcls_pixels = pixels[:100_000]
    paths = [
        ("pw, PixelUnmixer float32", len(pixels), lambda: pw.transform_array(pixels)),
        ("pw, same, float64 input", len(pixels), lambda: pw.transform_array(pixels64)),
        ("pw, float32 in whole chunks", len(pixels), lambda: whole_chunks(pixels)),
        ("pw, encoder products alone", n_products, products),
        *(
            [("pw, PixelUnmixer bfloat16", len(pixels), lambda: pw.transform_array(pixels, precision="bfloat16"))]
            if bf16
            else []
        ),
        ("pw, torch modules", len(pixels), modules),
        ("ss, endmember stream", len(pixels), lambda: ss.transform_array(pixels)),
        ("ss, unmixing stream (transform)", cube.n_pixels, ss_unmixing),
        ("fcls (reference endmembers)", len(fcls_pixels), lambda: fcls(fcls_pixels, ref)),
    ]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {load_average()}, "
        f"{'process CPU time' if args.cpu_time else 'wall clock'}, {args.rounds} round(s); "
        f"pw encoder {flops_per_pixel / 1e3:.1f} kFLOP per pixel; blocks of {block} pixels"
        + ("" if bf16 else "; no bfloat16 hardware: the bfloat16 row is left out")
    )
    seconds = {name: [] for name, *_ in paths}
    fractions = {name: [] for name, *_ in paths}
    rates = {name: [] for name, *_ in paths}
    for round_ in range(args.rounds):
        for name, n, fn in paths:
            before = matmul_gflops(clock)
            start = clock()
            fn()
            spent = clock() - start
            peak = (before + matmul_gflops(clock)) / 2
            seconds[name].append(spent)
            rates[name].append(peak)
            fractions[name].append(n * flops_per_pixel / spent / 1e9 / peak)
        done = ", ".join(f"{name} {f[-1]:.0%}" for name, f in fractions.items() if name.startswith(("pw", "ss, end")))
        print(f"round {round_ + 1}: {done}", flush=True)
    print(
        f"\n{'path':<36} {'pixels':>9} {'seconds':>8} {'pixels/s':>12} {'matmul GFLOP/s':>15} {'matmul fraction':>22}"
    )
    for name, n, _ in paths:
        best = min(seconds[name])
        if name.startswith(("pw", "ss, end")):
            f = np.array(fractions[name])
            frac = f"{np.median(f):.0%} ({f.min():.0%}–{f.max():.0%})"
        else:
            frac = ""
        print(f"{name:<36} {n:>9} {best:>8.3f} {n / best:>12,.0f} {np.median(rates[name]):>15.0f} {frac:>22}")

    full = cube.pixels.astype(np.float32)
    exact = pw.transform_array(full)
    with torch.no_grad():
        mod = torch.softmax(encoder(torch.from_numpy(full)), dim=1).numpy()
    others = [("torch modules (float32)", mod)]
    if bf16:
        others.insert(0, ("bfloat16", pw.transform_array(full, precision="bfloat16")))
    print("\nabundance differences from PixelUnmixer float32 on egu-synthetic's 40 000 pixels:")
    for name, other in others:
        d = other - exact
        print(f"{name:<24} max {np.abs(d).max():.2e}  rms {np.sqrt(np.mean(d * d)):.2e}")
    truth = cube.true_abundance_pixels
    from egu_widgets import metrics

    scores = ", ".join(
        f"{name} {metrics.score(a, truth)['rmse']:.4f}" for name, a in [("float32", exact), *others[:-1]]
    )
    print(f"RMSE against truth: {scores} ({args.epochs} epochs of training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
