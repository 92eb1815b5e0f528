"""GPU check: same results on CUDA as on the CPU, and paper-scale timings for pw and ss.

    bash benchmarks/gpu_check.sh            # on a machine with an NVIDIA GPU, from the repository root
    python benchmarks/gpu_check.py --device cpu --quick   # the same script on the CPU, small

Uses a generated 200x200x224 scene with 5 materials (no data files needed, so it runs on a bare
GPU machine with only the repository). Prints:

1. inference equivalence: a model trained on the CPU, loaded on the GPU, gives the same abundances
   (max abs difference; float32 tolerance);
2. training equivalence: the same seed trained on both devices for a few epochs ends at nearly the
   same RMSE (kernels differ, so bit-identity is not expected across devices);
3. timings on the GPU: pw training (200 epochs), ss training (seconds per epoch and total),
   inference pixels per second for pw and ss.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet


def synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_fit(model: EGUNet, cube, device: str) -> float:
    synchronise(device)
    start = time.perf_counter()
    model.fit(cube)
    synchronise(device)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small scene and few epochs (to try the script on a CPU)")
    args = parser.parse_args(argv)
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: no CUDA device visible to torch; run with --device cpu --quick to try the script")
    side, epochs, short = (48, 4, 2) if args.quick else (200, 200, 10)
    cube = make_demo(side, side, 224, 5, seed=0)
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
    print(f"device: {name}; torch {torch.__version__}; scene {side}x{side}x224, P=5")

    # 1. inference equivalence through a checkpoint
    cpu_model = EGUNet("pw", 5, epochs=short, seed=0, device="cpu", progress=False).fit(cube)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "pw.pt")
        cpu_model.save(ckpt)
        dev_model = EGUNet.load(ckpt, device=device)
    diff = float(np.abs(cpu_model.transform(cube) - dev_model.transform(cube)).max())
    print(
        f"| check | value |\n|---|---|\n| pw inference, CPU model loaded on {device}: max abs difference | {diff:.2e} |"
    )

    # 2. training equivalence (a short run on each device, same seed)
    for variant in ("pw", "ss"):
        rmse = {}
        for dev in ("cpu", device):
            m = EGUNet(variant, 5, epochs=short, seed=0, device=dev, progress=False).fit(cube)
            rmse[dev] = m.result_.rmse  # aligned to the truth
        print(f"| {variant} {short} epochs: RMSE cpu / {device} | {rmse['cpu']:.4f} / {rmse[device]:.4f} |")

    # 3. timings on the device
    print(f"\n| run on {name} | seconds | per epoch | RMSE |\n|---|---|---|---|")
    for variant in ("pw", "ss"):
        model = EGUNet(variant, 5, epochs=epochs, seed=0, device=device, progress=False)
        seconds = timed_fit(model, cube, device)
        print(
            f"| {variant} training, {epochs} epochs | {seconds:.2f} | {seconds / epochs:.3f} | {model.result_.rmse:.4f} |"
        )
        synchronise(device)
        start = time.perf_counter()
        for _ in range(3):
            model.transform(cube)
        synchronise(device)
        per = (time.perf_counter() - start) / 3
        print(f"| {variant} inference, {cube.n_pixels} px | {per:.4f} | {cube.n_pixels / per:,.0f} px/s | |")


if __name__ == "__main__":
    main()
