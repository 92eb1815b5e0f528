"""Time read-outs of the training views: a clock-style duration and the time left.

Kept apart from the widgets so that console progress and notebook dashboards print times alike.
"""

from __future__ import annotations

import numpy as np

__all__ = ["format_duration", "remaining_seconds"]


def format_duration(seconds: float | None) -> str:
    """``75.2`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``; ``None``/NaN -> ``"--:--"``."""
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return "--:--"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def remaining_seconds(elapsed: float, epoch: int, n_epochs: int) -> float | None:
    """Naive estimate from the mean epoch time so far; None before the first epoch."""
    if epoch <= 0 or n_epochs <= 0:
        return None
    return elapsed / epoch * max(n_epochs - epoch, 0)
