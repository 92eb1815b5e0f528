"""What every static figure shares: a pyplot-free Figure and an atomic writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["new_figure", "save_figure"]


def new_figure(width: float, height: float):
    """A constrained-layout :class:`matplotlib.figure.Figure` of ``width`` x ``height`` inches.

    Built without pyplot, so it needs no display and leaves no global state behind.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 150) -> Path:
    """Write ``fig`` atomically; the format comes from the file extension (png, pdf, svg...)."""
    from .._atomic import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise InputError(f"{str(path)!r} has no extension; add one such as .png or .pdf")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path
