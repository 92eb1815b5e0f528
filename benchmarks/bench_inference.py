"""Inference speed: pixels per second for EGU-Net-pw/ss and FCLS, and what bfloat16 costs in accuracy.

    python benchmarks/bench_inference.py [--pixels 1000000] [--threads 2] [--epochs 30]

A pw and an ss model are trained briefly on egu-synthetic (200×200×224, P=5; the speed of a
forward pass does not depend on how long it trained), then timed on ``--pixels`` spectra drawn
from that scene (best of three runs):

- ``pw, PixelUnmixer float32``: :meth:`EGUNet.transform_array`, batch norms folded into the layers;
- ``pw, PixelUnmixer bfloat16``: the same with bfloat16 matrix products;
- ``pw, torch modules``: the encoder called as a ``torch.nn.Module`` in eval mode, chunk by chunk
  (what a plain PyTorch user would write);
- ``ss, endmember stream``: the API's ss abundances (the same pixel-wise encoder path);
- ``ss, unmixing stream``: ``transform(cube, stream="unmixing")``, the convolutional stream in
  256-pixel tiles on the 200×200 image (one tile here);
- ``fcls``: fully constrained least squares against the model's reference endmembers.

Accuracy rows give the largest and the root-mean-square difference of the bfloat16 and module
abundances from the float32 PixelUnmixer's on the scene's 40 000 pixels, and the achieved
fraction of the machine's float32 matrix-multiply throughput (measured here on one large product).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from _common import best_of, load_average, matmul_gflops  # noqa: E402
from egu_widgets.classic import fcls  # noqa: E402
from egu_widgets.cube import open_cube  # noqa: E402
from egu_widgets.engine import EGUNet  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pixels", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    cube = open_cube("egu-synthetic")
    rng = np.random.default_rng(0)
    pixels = cube.pixels[rng.integers(0, cube.n_pixels, args.pixels)].astype(np.float32)
    pw = EGUNet("pw", 5, epochs=args.epochs, seed=0, progress=False, num_threads=args.threads).fit(cube)
    ss = EGUNet("ss", 5, epochs=min(args.epochs, 5), seed=0, progress=False, num_threads=args.threads).fit(cube)
    n_bands = cube.n_bands
    widths = pw.hyperparameters_["encoder_widths"]
    flops_per_pixel = 2 * sum(a * b for a, b in zip([n_bands, *widths], [*widths, 5]))
    peak = matmul_gflops()

    encoder = pw.model_.encoder.eval()

    def modules():
        with torch.no_grad():
            for start in range(0, len(pixels), 65536):
                torch.softmax(encoder(torch.from_numpy(pixels[start:start + 65536])), dim=1)

    ref = pw.reference_

    def ss_unmixing():  # tiled convolutional stream with stored statistics, abundances only
        ss.transform(cube, stream="unmixing")

    fcls_pixels = pixels[:100_000]
    rows = [
        ("pw, PixelUnmixer float32", len(pixels), best_of(lambda: pw.transform_array(pixels))),
        ("pw, PixelUnmixer bfloat16", len(pixels), best_of(lambda: pw.transform_array(pixels, precision="bfloat16"))),
        ("pw, torch modules", len(pixels), best_of(modules)),
        ("ss, endmember stream", len(pixels), best_of(lambda: ss.transform_array(pixels))),
        ("ss, unmixing stream (transform)", cube.n_pixels, best_of(ss_unmixing)),
        ("fcls (reference endmembers)", len(fcls_pixels), best_of(lambda: fcls(fcls_pixels, ref), 1)),
    ]
    print(f"torch {torch.__version__}, {args.threads} thread(s), {load_average()}; "
          f"float32 matmul peak here {peak:.0f} GFLOP/s; pw encoder {flops_per_pixel / 1e3:.0f} kFLOP per pixel")
    print(f"{'path':<36} {'pixels':>9} {'seconds':>8} {'pixels/s':>12} {'matmul fraction':>16}")
    for name, n, seconds in rows:
        frac = f"{n * flops_per_pixel / seconds / 1e9 / peak:>15.0%}" if name.startswith(("pw", "ss, end")) else f"{'':>15}"
        print(f"{name:<36} {n:>9} {seconds:>8.3f} {n / seconds:>12,.0f} {frac}")

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

    print(f"RMSE against truth: float32 {metrics.score(exact, truth)['rmse']:.4f}, "
          f"bfloat16 {metrics.score(bf16, truth)['rmse']:.4f} ({args.epochs} epochs of training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
