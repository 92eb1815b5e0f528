"""N-FINDR endmember extraction: the pixels that span the simplex of largest volume.

Winter, "N-FINDR: an algorithm for fast autonomous spectral end-member determination in
hyperspectral data", Proc. SPIE 3753, 1999. Under the linear mixing model the pixels fill a
simplex whose vertices are the endmembers; among all sets of P pixels, the purest ones span the
largest volume. The search:

1. reduce the pixels to the top-(P−1) principal components of the centred data, where P points
   span a full-dimensional simplex, and write each pixel in homogeneous coordinates h = [1, w];
2. start from P pixels (VCA's picks) with vertex matrix E = [h_1; …; h_P];
3. replacing vertex j by pixel x multiplies the volume |det E| by |a_j(x)|, the j-th barycentric
   coordinate of x in the current simplex (a(x) = h(x)·E⁻¹); so for each j the best replacement
   is argmax_x |a_j(x)|, taken when it exceeds 1. Sweeps over j repeat until none changes.

Each test costs one (N, P) × (P,) product, so a sweep is O(N·P²) and the whole search is well
under a second on the scenes here. The volume grows strictly with every swap, so the search ends.

Why it is here: it gives the reference spectra behind EGU-Net's default pseudo-labels
(:mod:`egu_widgets.engine.bundles`), where on the real scenes it finds materials that VCA's single
random directions miss.

Memory: the pixels are read block by block (each block converted to float64 for its own products),
so a float32 image is never copied whole; what the search keeps is (N, P).
"""

from __future__ import annotations

import numpy as np

from egu_widgets.classic.fcls import _as_pixel_matrix, _one_block, _row_blocks, _rows64
from egu_widgets.classic.vca import (
    _block_coordinates,
    _canonical_signs,
    _check_n_endmembers,
    _top_coordinates,
    _top_directions,
    vca,
)
from egu_widgets.errors import InputError

__all__ = ["nfindr", "simplex_coordinates"]


def simplex_coordinates(pixels: np.ndarray, n_endmembers: int) -> np.ndarray:
    """Homogeneous coordinates (N, P) = [1, top-(P−1) principal components of the centred pixels].

    The components are VCA's low-SNR ones (directions at rounding-noise level come back as zero
    columns).
    """
    x = np.asarray(pixels)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    n, b = x.shape
    if _one_block(n, b):
        x = x.astype(np.float64, copy=False)
        centred = x - x.mean(axis=0)
        coords = _top_coordinates((centred.T @ centred)[None], n_endmembers - 1, np.array([np.sum(x * x)]),
                                  centred[None])[0]  # fmt: skip
        return np.concatenate([np.ones((n, 1)), coords], axis=1)
    # The same figures from blocks of rows: the mean first, then the centred Gram matrix and the
    # energy, then the coordinates.
    total = np.zeros(b)
    for rows in _row_blocks(n, b):
        total += _rows64(x, rows).sum(axis=0)
    mean = total / n
    gram = np.zeros((b, b))
    energy = 0.0
    for rows in _row_blocks(n, b):
        block = _rows64(x, rows)
        energy += float(np.sum(block * block))
        block = block - mean
        gram += block.T @ block
    _, basis, negligible = _top_directions(gram[None], n_endmembers - 1, np.array([energy]))
    h = np.empty((n, n_endmembers))
    h[:, 0] = 1.0
    h[:, 1:] = _block_coordinates(x, _canonical_signs(basis[0]), negligible[0], n_endmembers - 1, mean)
    return h


def _greedy_start(h: np.ndarray, p: int) -> np.ndarray:
    """P pixels that each add the most volume to the ones before (a start with non-zero volume)."""
    w = h[:, 1:]
    chosen = [int(np.argmax(((w - w.mean(axis=0)) ** 2).sum(axis=1)))]
    for _ in range(1, p):
        # Distance of every pixel to the affine hull of the chosen ones.
        base = w[chosen[0]]
        span = w[chosen[1:]] - base
        d = w - base
        if len(span):
            q, _ = np.linalg.qr(span.T)
            d = d - (d @ q) @ q.T
        dist = (d * d).sum(axis=1)
        dist[chosen] = -1.0
        chosen.append(int(np.argmax(dist)))
    return np.array(chosen)


def nfindr(pixels, n_endmembers: int, *, seed=None, start=None, max_sweeps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Extract ``n_endmembers`` endmembers with N-FINDR (see the module doc).

    Parameters
    ----------
    pixels : (N, B) float array.
    n_endmembers : P, at least 2.
    seed : seeds the VCA run that gives the starting pixels.
    start : P distinct pixel indices to start from instead of VCA's picks.
    max_sweeps : upper bound on sweeps over the P vertices (the search usually stops after a few).

    Returns
    -------
    endmembers : (P, B) float64, the pixel rows at ``indices``.
    indices : (P,) int, distinct row indices into ``pixels``.
    """
    x = _as_pixel_matrix(pixels, "pixels", what="(N, B)")
    p = _check_n_endmembers(n_endmembers, x.shape[0], x.shape[1])
    if start is None:
        idx = np.array(vca(x, p, seed=seed)[1], dtype=np.int64)
    else:
        idx = np.asarray(start, dtype=np.int64).ravel()
        if idx.shape != (p,) or len(np.unique(idx)) != p or idx.min() < 0 or idx.max() >= x.shape[0]:
            raise InputError(f"start must be {p} distinct pixel indices in [0, {x.shape[0]}); got {start!r}")
    h = simplex_coordinates(x, p)
    # A start whose pixels are affinely dependent has zero volume and no barycentric coordinates.
    if abs(np.linalg.det(h[idx])) <= 1e-12 * max(np.abs(h).max(), 1.0) ** p:
        idx = _greedy_start(h, p)
    for _ in range(int(max_sweeps)):
        changed = False
        for j in range(p):
            try:
                inv = np.linalg.inv(h[idx])
            except np.linalg.LinAlgError:  # the data span fewer than P−1 dimensions
                return x[idx].astype(np.float64), idx
            a = np.abs(h @ inv[:, j])
            best = int(np.argmax(a))
            if a[best] > 1.0 + 1e-9 and best not in idx:
                idx[j] = best
                changed = True
        if not changed:
            break
    return x[idx].astype(np.float64), idx
