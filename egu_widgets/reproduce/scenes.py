"""The comparison's scenes: a dataset opened by name and, in fast mode, its most telling crop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cube import HyperCube, open_cube

__all__ = ["Scene", "best_window", "load_scene"]


def best_window(cube: HyperCube, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size``×``size`` window that best represents every material.

    Candidate windows lie on a grid with a stride of ``size // 4``; the chosen one maximises the
    smallest, over materials, of the material's mean abundance in the window (so that no material
    is missing from a crop), ties broken by position. Deterministic.
    """
    ab = cube.true_abundances
    h, w = cube.height, cube.width
    if size >= h and size >= w or ab is None:
        return 0, 0
    step = max(1, size // 4)
    ys = sorted(set(list(range(0, max(h - size, 0) + 1, step)) + [max(h - size, 0)]))
    xs = sorted(set(list(range(0, max(w - size, 0) + 1, step)) + [max(w - size, 0)]))
    # Window means from a summed-area table: one pass, whatever the number of windows.
    sat = np.pad(ab, ((0, 0), (1, 0), (1, 0))).cumsum(axis=1).cumsum(axis=2)
    best, corner = -np.inf, (0, 0)
    for y in ys:
        for x in xs:
            y1, x1 = min(y + size, h), min(x + size, w)
            total = sat[:, y1, x1] - sat[:, y, x1] - sat[:, y1, x] + sat[:, y, x]
            score = float((total / ((y1 - y) * (x1 - x))).min())
            if score > best + 1e-12:
                best, corner = score, (y, x)
    return corner


@dataclass
class Scene:
    """A scene of the comparison: its (possibly cropped) cube and where the crop lies."""

    name: str
    cube: HyperCube
    window: tuple[int, int, int, int] | None  # y0, x0, height, width of the crop, None: whole
    full_shape: tuple[int, int, int]

    def describe(self) -> str:
        """Size, crop, bands and P, for logs and the table's section headings."""
        h, w, b = self.cube.shape
        p = self.cube.n_true_endmembers
        where = (
            ""
            if self.window is None
            else f" crop of {self.full_shape[0]}×{self.full_shape[1]} at row {self.window[0]}, col {self.window[1]}"
        )
        return f"{h}×{w} pixels{where}, {b} bands, P={p}"


def load_scene(name: str, crop: int | None) -> Scene:
    """Open the dataset ``name`` and, when ``crop`` is smaller than it, its :func:`best_window`."""
    cube = open_cube(name)
    full = cube.shape
    if crop is None or (crop >= cube.height and crop >= cube.width):
        return Scene(name, cube, None, full)
    y0, x0 = best_window(cube, crop)
    hh, ww = min(crop, cube.height), min(crop, cube.width)
    return Scene(name, cube.isel(y=slice(y0, y0 + hh), x=slice(x0, x0 + ww)), (y0, x0, hh, ww), full)
