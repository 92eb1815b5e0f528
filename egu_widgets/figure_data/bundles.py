"""Numbers behind the bundle-curation view: PCA of the bundle spectra, envelopes, patch positions.

:func:`bundle_data` turns a :class:`~egu_widgets.engine.SpectralBundles` (or anything with its
arrays and ``config``) into what the view draws: each bundle's pseudo-label (its dominant
material), a 2-D projection of its spectrum on the set's first two principal components, its
position on the image (the pixel it is, or the centre of the patch it came from) and, per material,
the envelope and mean of its bundles. The selection helpers (:func:`in_box`, :func:`in_polygon`,
:func:`covering`) turn a box, a lasso or a tapped pixel into a bundle mask. Plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .spectra import bundle_envelopes

__all__ = ["BundleData", "PcaBasis", "bundle_data", "covering", "in_box", "in_polygon", "pca_basis"]


@dataclass(frozen=True)
class PcaBasis:
    """The centre (B,) and the first two principal directions (2, B) of a set of spectra."""

    centre: np.ndarray
    components: np.ndarray
    explained: np.ndarray

    def project(self, spectra: np.ndarray) -> np.ndarray:
        """(K, 2) coordinates of ``spectra`` (K, B) on the two directions."""
        return (np.asarray(spectra, dtype=np.float64) - self.centre) @ self.components.T


def pca_basis(spectra: np.ndarray) -> PcaBasis:
    """The first two principal components of ``spectra`` (K, B), signs fixed so that each
    direction's largest entry is positive (the same set always gives the same picture)."""
    x = np.asarray(spectra, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise InputError(f"spectra must be (K, bands) with K >= 1; got shape {x.shape}")
    centre = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - centre, full_matrices=False)
    components = np.zeros((2, x.shape[1]))
    k = min(2, vt.shape[0])
    components[:k] = vt[:k]
    for row in components:
        if row.any() and row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float((s**2).sum())
    explained = np.zeros(2)
    if total > 0:
        explained[:k] = s[:k] ** 2 / total
    return PcaBasis(centre, components, explained)


@dataclass(frozen=True)
class BundleData:
    """What the curation view draws for one bundle set (K bundles, P materials, B bands).

    spectra (K, B); group (K,) pseudo-label; projection (K, 2) and ``basis``; row, col (K,)
    position on the image (NaN when unknown); patch_top, patch_left (K,) the patch's corner (-1
    when unknown) and ``patch_size``; envelopes per material: (low, high, count) or None;
    means (P, B) per-material mean spectrum (NaN for a material without bundles); names (P,).
    """

    spectra: np.ndarray
    group: np.ndarray
    projection: np.ndarray
    basis: PcaBasis
    row: np.ndarray
    col: np.ndarray
    patch_top: np.ndarray
    patch_left: np.ndarray
    patch_size: int
    envelopes: list
    means: np.ndarray
    names: list[str]

    @property
    def counts(self) -> np.ndarray:
        """(P,) bundles per material."""
        return np.bincount(self.group, minlength=len(self.names))


def _patch_corners(patch_index: np.ndarray, config: dict, shape: tuple[int, int] | None):
    """Top-left corners of the patches (the grid of ``extract_bundles``); -1 where unknown."""
    size, stride = config.get("patch_size"), config.get("stride_used", config.get("patch_size"))
    top = np.full(patch_index.shape, -1, dtype=np.int64)
    left = top.copy()
    if shape is None or not size or not stride:
        return top, left, int(size or 0)
    height, width = shape
    n_cols = len(range(0, width - size + 1, stride))
    known = (patch_index >= 0) & (n_cols > 0)
    top[known] = (patch_index[known] // max(n_cols, 1)) * stride
    left[known] = (patch_index[known] % max(n_cols, 1)) * stride
    return top, left, int(size)


def bundle_data(
    bundles: Any,
    image_shape: tuple[int, int] | None = None,
    *,
    names: list[str] | None = None,
    basis: PcaBasis | None = None,
) -> BundleData:
    """The curation view's data for ``bundles`` on an image of ``image_shape`` (rows, cols).

    ``basis`` (from an earlier call) keeps the projection of a curated set on the axes of the set
    it came from, so that points stay where the user saw them.
    """
    spectra = np.asarray(bundles.spectra, dtype=np.float64)
    labels = np.asarray(bundles.labels)
    p = labels.shape[1]
    names = list(names) if names is not None else [f"endmember {i + 1}" for i in range(p)]
    if len(names) != p:
        raise InputError(f"{len(names)} names for {p} materials")
    group = labels.argmax(axis=1)
    basis = basis if basis is not None else pca_basis(spectra)
    config = dict(getattr(bundles, "config", {}) or {})
    patch_index = np.asarray(bundles.patch_index, dtype=np.int64)
    top, left, size = _patch_corners(patch_index, config, image_shape)
    row = np.where(top >= 0, top + (size - 1) / 2.0, np.nan)
    col = np.where(left >= 0, left + (size - 1) / 2.0, np.nan)
    pixel = np.asarray(getattr(bundles, "pixel_index", np.full(len(spectra), -1)), dtype=np.int64)
    if image_shape is not None:
        own = pixel >= 0  # a bundle that is one image pixel is drawn at that pixel
        row = np.where(own, pixel // image_shape[1], row)
        col = np.where(own, pixel % image_shape[1], col)
    means = np.full((p, spectra.shape[1]), np.nan)
    for i in range(p):
        if (group == i).any():
            means[i] = spectra[group == i].mean(axis=0)
    return BundleData(
        spectra=spectra,
        group=group,
        projection=basis.project(spectra),
        basis=basis,
        row=row.astype(np.float64),
        col=col.astype(np.float64),
        patch_top=top,
        patch_left=left,
        patch_size=size,
        envelopes=bundle_envelopes(spectra, labels, p),
        means=means,
        names=names,
    )


def in_box(points: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """(K,) bool: which of ``points`` (K, 2) lie in the box (edges included, either order)."""
    pts = np.asarray(points, dtype=np.float64)
    (xa, xb), (ya, yb) = sorted((x0, x1)), sorted((y0, y1))
    return (pts[:, 0] >= xa) & (pts[:, 0] <= xb) & (pts[:, 1] >= ya) & (pts[:, 1] <= yb)


def in_polygon(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(K,) bool: which of ``points`` (K, 2) lie inside the polygon (a lasso) of vertices xs, ys.

    Even-odd rule: a horizontal ray from the point crosses the outline an odd number of times.
    """
    pts = np.asarray(points, dtype=np.float64)
    vx, vy = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if vx.shape != vy.shape or vx.size < 3:
        raise InputError("a lasso needs at least three vertices, as many x as y")
    inside = np.zeros(len(pts), dtype=bool)
    x, y = pts[:, 0], pts[:, 1]
    for i in range(vx.size):
        xa, ya, xb, yb = vx[i - 1], vy[i - 1], vx[i], vy[i]
        crosses = (ya > y) != (yb > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < at)
    return inside


def covering(data: BundleData, row: int, col: int) -> np.ndarray:
    """(K,) bool: the bundles whose patch covers image pixel (row, col) ("select by patch")."""
    size = data.patch_size
    known = data.patch_top >= 0
    return (
        known
        & (data.patch_top <= row)
        & (row < data.patch_top + size)
        & (data.patch_left <= col)
        & (col < data.patch_left + size)
    )
