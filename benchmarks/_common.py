"""What every benchmark reports about the machine it ran on, and its one timing helper."""

from __future__ import annotations

import os
import time


def load_average() -> str:
    """'load average 1.2 0.9 0.8' (other work on the machine skews every timing)."""
    try:
        return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def best_of(fn, repeat: int = 3) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops() -> float:
    """The machine's float32 matrix-multiply rate now, with torch's current threads (2048² products)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    return 2 * 2048**3 / (best_of(lambda: [a @ b for _ in range(10)]) / 10) / 1e9
