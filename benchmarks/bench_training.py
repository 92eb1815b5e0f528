"""Training speed at the paper's scale, against plain PyTorch written the obvious way.

    python benchmarks/bench_training.py [--threads 2] [--skip-full] [--steps 20] [--compile]

Scene: egu-synthetic (200×200×224, P=5, 8 000 bundles: the paper's sizes). Tables:

1. **Per step, ours vs naive.** "naive" is the same layers written as a plain PyTorch user would
   (``nn.Sequential`` of ``nn.Linear``/``nn.Conv2d`` with biases, ``nn.BatchNorm``, ``nn.Dropout``,
   ``ExponentialLR``, a Python-side weight-decay sum, a shuffled ``DataLoader``-free index batch);
   it is not used anywhere else. pw: one step = 8 000 pixels + 8 000 bundles; ss: one step = the
   whole 200×200 image through the convolutional stream + the bundles through the pixel encoder.
   Each row is the median over ``--steps`` steps after two warm-up steps. "first BN not folded"
   is ours with the endmember stream's first batch norm computed the ordinary way (the fold is an
   exact rewrite; the row shows what it saves). The "bfloat16 autocast" row shows what bfloat16
   matrix products buy (the engine uses them only when asked, ``precision="bf16"``: they change
   the results; docs/convergence.md).
   ``--compile`` adds the naive pw step compiled by ``torch.compile``, with the seconds its first
   step takes to compile (the engine does not compile: see README).
2. **Full pw training** (the default preset through ``EGUNet.fit``: averaged weights, stopped by
   its rule within at most 200 epochs = 1 000 steps; ``bench_convergence.py`` compares it with
   the fixed 200-epoch run):
   training seconds, seconds per epoch, peak resident memory of the process, abundance RMSE, the
   time to reach RMSE ≤ 0.05 (RMSE evaluated every epoch for this, which adds one forward pass over
   the image per epoch), and the fraction of the machine's float32 matrix-multiply rate that the
   training achieves (counted matrix-multiply FLOPs / seconds / measured peak).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from _common import load_average, matmul_gflops
from torch import nn

from egu_widgets.cube import open_cube
from egu_widgets.engine import EGUNet, extract_bundles
from egu_widgets.engine.estimator import PRESETS, VARIANT_PRESETS
from egu_widgets.engine.networks import build_model
from egu_widgets.engine.trainer import Adam, ImageObjective, PixelObjective


class Steps(NamedTuple):
    first: float  # seconds of the first warm-up step
    times: list[float]  # seconds of each timed step


def run_steps(step: Callable[[int], None], n_steps: int) -> Steps:
    """Two warm-up steps, then ``n_steps`` timed ones."""
    times = []
    for i in range(n_steps + 2):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    return Steps(times[0], times[2:])


# ------------------------------------------------------------------ the naive baseline
def naive_encoder(bands: int, p: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(bands, 256),
        nn.BatchNorm1d(256, eps=1e-3),
        nn.Dropout(0.1),
        nn.Tanh(),
        nn.Linear(256, 128),
        nn.BatchNorm1d(128, eps=1e-3),
        nn.Tanh(),
        nn.Linear(128, 32),
        nn.BatchNorm1d(32, eps=1e-3),
        nn.ReLU(),
        nn.Linear(32, p),
    )


def naive_decoder(p: int, bands: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip([p, 32, 128, 256], [32, 128, 256, bands]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b, eps=1e-3), nn.Sigmoid()]
    return nn.Sequential(*layers)


class NaiveSS(nn.Module):
    def __init__(self, bands: int, p: int, width: int = 256, dec=(32, 128, 256)):
        super().__init__()
        self.encoder = naive_encoder(bands, p)  # endmember stream
        self.conv = nn.Sequential(
            nn.Conv2d(bands, width, 5, padding=2),
            nn.BatchNorm2d(width, eps=1e-3),
            nn.Dropout(0.1),
            nn.AvgPool2d(2),
            nn.Tanh(),
            nn.Conv2d(width, 128, 3, padding=1),
            nn.BatchNorm2d(128, eps=1e-3),
            nn.AvgPool2d(2),
            nn.Tanh(),
            nn.Conv2d(128, 32, 1),
            nn.BatchNorm2d(32, eps=1e-3),
            nn.AvgPool2d(2),
            nn.ReLU(),
            nn.ConvTranspose2d(32, p, 8, stride=8),
        )
        layers: list[nn.Module] = []
        for a, b, k in zip([p, *dec], [*dec, bands], [1, 1, 3, 5]):
            layers += [nn.Conv2d(a, b, k, padding=k // 2), nn.BatchNorm2d(b, eps=1e-3), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)


def naive_steps(variant: str, pixels, image, bundles, labels, n_steps: int, compile: bool = False) -> Steps:
    """The naive training step, timed; ``compile``: its loss (so its backward too) under
    ``torch.compile``, which fuses batch norm, activations and dropout into generated C++ loops
    (the first step, ``Steps.first``, is the one that compiles)."""
    return run_steps(naive_step(variant, pixels, image, bundles, labels, compile), n_steps)


def naive_step(variant: str, pixels, image, bundles, labels, compile: bool = False) -> Callable[[int], None]:
    """One naive training step as a function of the step index (a fresh model and optimiser),
    for benchmarks that time naive steps at several moments (bench_convergence.py)."""
    torch.manual_seed(0)
    bands, p = pixels.shape[1], labels.shape[1]
    if variant == "pw":
        enc, dec = naive_encoder(bands, p), naive_decoder(p, bands)
        params = list(enc.parameters()) + list(dec.parameters())
    else:
        model = NaiveSS(bands, p)
        enc = model.encoder
        params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, 0.99)

    def loss_of(batch):
        if variant == "pw":
            rec = dec(torch.softmax(enc(batch), dim=1))
            rec_loss = F.mse_loss(rec, batch)
        else:
            ab = torch.softmax(model.conv(image), dim=1)
            rec_loss = F.mse_loss(model.decoder(ab), image)
        loss = rec_loss + F.cross_entropy(enc(bundles), labels)
        return loss + 0.005 * sum(
            0.5 * (w**2).sum()
            for name, w in (enc.named_parameters() if variant == "pw" else model.named_parameters())
            if name.endswith("weight") and w.dim() > 1
        )

    loss_fn = torch.compile(loss_of) if compile else loss_of

    def step(_: int) -> None:
        loss = loss_fn(pixels[torch.randperm(len(pixels))[:8000]] if variant == "pw" else None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    return step


# ------------------------------------------------------------------ ours, step by step
def our_steps(
    variant: str, preset: str, pixels, image, bundles, labels, n_steps: int, bf16: bool = False, fold: bool = True
) -> Steps:
    hp = dict(PRESETS[preset])
    hp.update(VARIANT_PRESETS[preset].get(variant, {}))
    g = torch.Generator().manual_seed(0)
    model = build_model(variant, pixels.shape[1], labels.shape[1], hp, generator=g)
    model.train()
    model.set_generator(g, np.random.default_rng(0))
    weights = dict(bundle_weight=1.0, reconstruction_weight=1.0, weight_decay=hp["weight_decay"])
    if variant == "pw":
        objective = PixelObjective(model, pixels, bundles, labels, batch_size=8000, generator=g, **weights)
    else:
        objective = ImageObjective(model, image, bundles, labels, **weights)
    if not fold:  # the endmember stream's first batch norm computed the ordinary way
        objective.bundle_moments = None
    opt = Adam(list(model.parameters()), lr=hp["lr"])
    n = objective.begin_epoch()

    def step(i: int) -> None:
        if i % n == 0:
            objective.begin_epoch()
        # bf16: matrix products in bfloat16 through autocast (the engine's opt-in
        # precision="bf16"; it changes the numbers)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = objective.losses(i % n)
        opt.zero_grad()
        losses[0].backward()
        opt.step()

    return run_steps(step, n_steps)


def pw_step_flops(bands: int, p: int, batch: int = 8000, n_bundles: int = 8000) -> float:
    """Matrix-multiply FLOPs of one pw step (forward and backward, both streams, decoder)."""
    enc = [bands, 256, 128, 32, p]
    dec = [p, 32, 128, 256, bands]
    fwd_enc = sum(a * b for a, b in zip(enc[:-1], enc[1:]))
    fwd_dec = sum(a * b for a, b in zip(dec[:-1], dec[1:]))
    grad_in_enc = fwd_enc - enc[0] * enc[1]  # no gradient is needed for the input spectra
    per_sample_enc = fwd_enc + fwd_enc + grad_in_enc  # forward, weight gradients, input gradients
    per_sample_dec = 3 * fwd_dec
    return 2.0 * ((batch + n_bundles) * per_sample_enc + batch * per_sample_dec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per per-step row (pw; ss uses a quarter)")
    ap.add_argument("--skip-full", action="store_true", help="only the per-step table")
    ap.add_argument(
        "--compile", action="store_true", help="add a row: the naive pw step under torch.compile (needs a C++ compiler)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cube = open_cube("egu-synthetic")
    b = extract_bundles(cube, 5, seed=0)
    pixels = torch.from_numpy(cube.pixels.astype(np.float32))
    image = torch.from_numpy(np.ascontiguousarray(cube.image.transpose(2, 0, 1), dtype=np.float32))[None]
    bundles, labels = torch.from_numpy(b.spectra), torch.from_numpy(b.labels)
    peak = matmul_gflops()
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), float32 matmul peak {peak:.0f} GFLOP/s, {load_average()}"
    )
    print(f"{'variant':<8} {'implementation':<26} {'s/step':>8} {'steps/epoch':>11} {'s/epoch':>8}")
    ss_steps = max(2, args.steps // 4)
    rows = [  # (variant, implementation, steps per epoch, run)
        ("pw", "naive PyTorch", 5, lambda: naive_steps("pw", pixels, image, bundles, labels, args.steps)),
        ("pw", "egu_widgets (paper)", 5, lambda: our_steps("pw", "paper", pixels, image, bundles, labels, args.steps)),
        (
            "pw",
            "same, first BN not folded",
            5,
            lambda: our_steps("pw", "paper", pixels, image, bundles, labels, args.steps, fold=False),
        ),
        (
            "pw",
            "same, bfloat16 autocast",
            5,
            lambda: our_steps("pw", "paper", pixels, image, bundles, labels, args.steps, True),
        ),
        ("ss", "naive PyTorch", 5, lambda: naive_steps("ss", pixels, image, bundles, labels, ss_steps)),
        ("ss", "egu_widgets (paper)", 5, lambda: our_steps("ss", "paper", pixels, image, bundles, labels, ss_steps)),
        (
            "ss",
            "egu_widgets (default)",
            1,
            lambda: our_steps("ss", "default", pixels, image, bundles, labels, ss_steps),
        ),
    ]
    for variant, name, per_epoch, run in rows:
        med = statistics.median(run().times)
        print(f"{variant:<8} {name:<26} {med:>8.3f} {per_epoch:>11} {med * per_epoch:>8.2f}", flush=True)
        if args.compile and (variant, name) == ("pw", "naive PyTorch"):
            compiled = naive_steps("pw", pixels, image, bundles, labels, args.steps, compile=True)
            med = statistics.median(compiled.times)
            print(
                f"{'pw':<8} {'naive, torch.compile':<26} {med:>8.3f} {5:>11} {med * 5:>8.2f}  "
                f"(first step, compiling: {compiled.first:.1f} s)",
                flush=True,
            )
    if args.skip_full:
        return 0
    # The machine's matmul rate swings with its neighbours (a shared VM): the peak is measured
    # again after the long run, and the larger of the two is the reference.

    reached: dict = {}

    def watch(event) -> None:
        if event.kind == "epoch" and "rmse" not in reached and event.metrics.get("rmse", 1.0) <= 0.05:
            reached["rmse"] = (event.epoch, event.elapsed)

    est = EGUNet("pw", 5, seed=0, progress=False, num_threads=args.threads, eval_every=1)
    est.fit(cube, callbacks=[watch])
    out = est.outcome_
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = max(peak, matmul_gflops())
    flops = pw_step_flops(cube.n_bands, 5) * out.steps_done
    epoch_t = f"epoch {reached['rmse'][0]}, {reached['rmse'][1]:.1f} s" if reached else "not reached"
    print(
        f"\nfull pw training, default preset: {out.epochs_done} epochs, {out.steps_done} steps, "
        f"{out.seconds:.1f} s ({out.seconds / max(out.epochs_done, 1):.3f} s/epoch, RMSE evaluated every epoch), "
        f"peak RSS {peak_mb:.0f} MB, RMSE {est.result_.rmse:.4f}; RMSE <= 0.05 at {epoch_t}; "
        f"{flops / 1e12:.1f} TFLOP of matrix products = {flops / out.seconds / 1e9:.0f} GFLOP/s, "
        f"{flops / out.seconds / 1e9 / peak:.0%} of the float32 matmul peak ({peak:.0f} GFLOP/s, the larger of two measurements)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
