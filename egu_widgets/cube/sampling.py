"""Spatially stratified samples of a cube's windows, read without loading the cube.

A flight line does not fit in memory, but what fitting needs from it does: patches to cut bundles
from, pixels to estimate reference endmembers and to train on, a few thousand pixels to check the
cube is usable. A uniform random sample of that size can miss a corner of the scene where a
material lives; so the window grid is cut into as many cells as windows wanted, and one window is
drawn in each (:func:`stratified_corners`). When the grid has no more windows than wanted, every
window is returned in the grid's row-major order, so that fitting a small scene through a sample
sees exactly what it sees without one.

:func:`read_windows` reads the windows of a lazy cube in one dask computation that touches only
those windows of the file (not their whole chunks), and applies the cube's chunk check to each
(:mod:`.lazy`): a window with NaN pixels raises naming its pixel range, or, in a cube opened with
``invalid="mask"``, holds NaN there. Everything is deterministic for a seed: the draws come from one
named stream of the seed scheme (:func:`egu_widgets.validation.seed_sequence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..validation import SEED_STREAMS, check_choice, check_int, check_seed, seed_sequence
from .hypercube import HyperCube
from .lazy import unchecked

__all__ = ["patch_grid", "read_windows", "sample_pixels", "stratified_corners"]


def patch_grid(height: int, width: int, size: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (rows, cols) of every ``size`` x ``size`` window at ``stride``, row-major.

    ``stride=None`` tiles (stride = size): floor(H/size) x floor(W/size) windows, the remainder at
    the bottom and right edges unused, the order :mod:`egu_widgets.engine.bundles` cuts patches in.
    """
    size = check_int("size", size, 1)
    stride = size if stride is None else check_int("stride", stride, 1)
    ys = np.arange(0, height - size + 1, stride)
    xs = np.arange(0, width - size + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return yy.ravel(), xx.ravel()


def _rng(seed: Any, stream: str, draw: int) -> np.random.Generator:
    check_choice("random stream", stream, SEED_STREAMS)
    draw = check_int("draw", draw, 0)
    return np.random.default_rng(seed_sequence(check_seed(seed), stream).spawn(draw + 1)[draw])


def _cells(n: int, ny: int, nx: int) -> tuple[int, int]:
    """A gy x gx cell grid with gy * gx <= n, cells about square in window units."""
    gy = int(np.clip(round(np.sqrt(n * ny / nx)), 1, ny))
    gx = int(np.clip(n // gy, 1, nx))
    gy = int(np.clip(n // gx, 1, ny))
    return gy, gx


def stratified_corners(
    height: int,
    width: int,
    size: int,
    n: int,
    *,
    seed: Any = 0,
    stride: int | None = None,
    stream: str = "bundles",
    draw: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Corners (rows, cols) of ``n`` windows spread over the image: one per cell of a grid.

    Parameters
    ----------
    height, width
        The image size in pixels.
    size
        Window side in pixels (1: single pixels).
    n
        How many windows. When the grid (:func:`patch_grid`) has at most ``n``, all are returned.
    seed, stream, draw
        The seed and named stream (:data:`~egu_widgets.validation.SEED_STREAMS`) the draws come
        from; ``draw`` numbers independent draws of one seed (e.g. one per epoch).
    stride
        The window grid's step (None: ``size``, non-overlapping windows).

    Returns
    -------
    (ys, xs)
        Two int64 arrays of the same length, min(n, windows in the grid), in row-major order.

    Notes
    -----
    The grid of candidate windows is cut into gy x gx cells of near-equal size (gy * gx <= n,
    cells near square); one window is drawn uniformly in each cell, and the remaining
    ``n - gy * gx`` uniformly among the windows not drawn yet. Every part of the image is thus
    represented in proportion to its area, whatever the seed.

    Examples
    --------
    >>> ys, xs = stratified_corners(3000, 3000, 5, 1000, seed=0)
    >>> len(ys)
    1000
    """
    n = check_int("n", n, 1)
    ys, xs = patch_grid(height, width, size, stride)
    total = ys.size
    if total <= n:
        return ys, xs
    ny = int(np.unique(ys).size)
    nx = total // ny
    rng = _rng(seed, stream, draw)
    gy, gx = _cells(n, ny, nx)
    ey = np.linspace(0, ny, gy + 1).astype(np.int64)
    ex = np.linspace(0, nx, gx + 1).astype(np.int64)
    u = rng.random((2, gy, gx))
    iy = ey[:-1, None] + np.floor(u[0] * (ey[1:] - ey[:-1])[:, None]).astype(np.int64)
    ix = ex[None, :-1] + np.floor(u[1] * (ex[1:] - ex[:-1])[None, :]).astype(np.int64)
    chosen = (iy * nx + ix).ravel()
    rest = n - chosen.size
    if rest:
        free = np.ones(total, dtype=bool)
        free[chosen] = False
        chosen = np.concatenate([chosen, rng.choice(np.flatnonzero(free), size=rest, replace=False)])
    chosen.sort()
    return ys[chosen], xs[chosen]


def read_windows(cube: HyperCube, ys: Any, xs: Any, size: int) -> np.ndarray:
    """The ``size`` x ``size`` windows at corners ``(ys, xs)``: (K, size, size, bands) float32.

    A lazy cube is read in one dask computation of the windows alone, each checked as the cube's
    chunks are (NaN pixels raise with the window's pixel range, or stay NaN when the cube masks
    them); an in-memory cube is indexed directly.
    """
    size = check_int("size", size, 1)
    ys = np.asarray(ys, dtype=np.int64).ravel()
    xs = np.asarray(xs, dtype=np.int64).ravel()
    h, w, b = cube.shape
    if ys.shape != xs.shape:
        raise InputError(f"ys and xs must have the same length; got {ys.size} and {xs.size}")
    if ys.size and (ys.min() < 0 or xs.min() < 0 or ys.max() + size > h or xs.max() + size > w):
        raise InputError(f"windows of {size} x {size} pixels at these corners leave the {h} x {w} image")
    data = cube.reflectance.data
    if not hasattr(data, "dask"):
        offsets = np.arange(size)
        rows = (ys[:, None] + offsets)[:, :, None]
        cols = (xs[:, None] + offsets)[:, None, :]
        return np.asarray(data[rows, cols], dtype=np.float32).reshape(ys.size, size, size, b)
    import dask

    raw, check = unchecked(data)
    # Windows are cut at chunk edges: dask reads a slice inside one chunk of the file-backed
    # array from the file alone, but a slice across chunks through whole chunks.
    y_edges, x_edges = (np.cumsum((0, *c)) for c in raw.chunks[:2])
    parts = []
    for y, x in zip(ys.tolist(), xs.tolist()):
        for y0, y1 in _spans(y, size, y_edges):
            for x0, x1 in _spans(x, size, x_edges):
                parts.append((y, x, y0, y1, x0, x1))
    pieces = dask.compute(*[raw[y0:y1, x0:x1] for _, _, y0, y1, x0, x1 in parts])
    out = np.empty((ys.size, size, size, b), dtype=np.float32)
    k = -1
    last = None
    for (y, x, y0, y1, x0, x1), piece in zip(parts, pieces):
        if (y, x) != last:
            k, last = k + 1, (y, x)
        out[k, y0 - y : y1 - y, x0 - x : x1 - x] = piece
    if check is not None:
        for k, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
            out[k] = check.apply(out[k], y, x, what="window")
    return out


def _spans(start: int, size: int, edges: np.ndarray) -> list[tuple[int, int]]:
    """``[start, start + size)`` cut at the chunk ``edges``."""
    inner = [int(e) for e in edges if start < e < start + size]
    bounds = [start, *inner, start + size]
    return list(zip(bounds[:-1], bounds[1:]))


def sample_pixels(
    cube: HyperCube,
    n: int,
    *,
    seed: Any = 0,
    stream: str = "batches",
    draw: int = 0,
    window: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` valid pixels spread over the cube, read without loading it.

    Pixels come in ``window`` x ``window`` blocks (one read each) from :func:`stratified_corners`;
    a cube of at most ``n`` pixels is read whole. Pixels the cube marks invalid are left out, so
    fewer than ``n`` may come back.

    Returns
    -------
    (pixels, index)
        ``pixels`` (K, bands) float32 and their flat row-major indices ``index`` (K,) int64,
        sorted by index.
    """
    n = check_int("n", n, 1)
    h, w, b = cube.shape
    window = int(min(check_int("window", window, 1), h, w))
    if h * w <= n:
        pixels = np.asarray(cube.reflectance.values, dtype=np.float32).reshape(-1, b)
        index = np.arange(h * w, dtype=np.int64)
    else:
        ys, xs = stratified_corners(h, w, window, -(-n // window**2), seed=seed, stream=stream, draw=draw)
        offsets = np.arange(window)
        index = ((ys[:, None, None] + offsets[None, :, None]) * w + xs[:, None, None] + offsets[None, None, :]).ravel()
        pixels = read_windows(cube, ys, xs, window).reshape(-1, b)
    keep = np.isfinite(pixels).all(axis=1)
    if "valid" in cube.ds and not hasattr(cube.ds["valid"].data, "dask"):
        keep &= cube.valid_mask.ravel()[index]
    order = np.argsort(index[keep], kind="stable")
    return pixels[keep][order], index[keep][order]
