"""Georeferencing of cubes and results: a CRS and an affine transform kept in a ``spatial_ref`` coordinate.

The layout is rioxarray's, so ``ds.rio.crs`` and ``ds.rio.transform()`` work on any cube or result
read from a GeoTIFF, and nothing here needs rasterio:

- a scalar coordinate ``spatial_ref`` whose attrs hold ``crs_wkt`` and ``spatial_ref`` (the same
  WKT, as GDAL wrote it; absent when the file has no CRS) and ``GeoTransform`` (GDAL's six numbers
  ``c a b f d e`` as text, written with ``repr`` so that they read back bit for bit);
- coordinates ``x`` and ``y`` at the pixel centres when the transform has no rotation, else the
  pixel's column and row in the file.

Coordinates travel with every ``isel`` while attrs do not change, so :func:`geotransform` takes the
stored transform and moves its origin to the first pixel the coordinates name: a crop of a cube,
and any result made from it, is written back on exactly the grid of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["SPATIAL_REF", "crs_wkt", "geotransform", "grid_coords", "spatial_ref_coord"]

#: Name of the scalar coordinate holding the CRS and transform (rioxarray's default).
SPATIAL_REF = "spatial_ref"

# Coordinates may drift from the pixel-centre values by float rounding (a*col computed two ways);
# anything beyond this fraction of a pixel means the grid was changed (resampled), not cropped.
_GRID_TOLERANCE = 1e-6


def _rectilinear(gt: tuple[float, ...]) -> bool:
    return gt[2] == 0 and gt[4] == 0


def spatial_ref_coord(wkt: str | None, gt: tuple[float, ...]) -> xr.Variable:
    """The ``spatial_ref`` coordinate for a CRS (WKT, or None) and a GDAL geotransform."""
    attrs: dict[str, Any] = {}
    if wkt:
        attrs.update(crs_wkt=wkt, spatial_ref=wkt)
    attrs["GeoTransform"] = " ".join(repr(float(v)) for v in gt)
    return xr.Variable((), np.int64(0), attrs=attrs)


def grid_coords(gt: tuple[float, ...], rows: int, cols: int) -> dict[str, np.ndarray]:
    """``x`` and ``y`` coordinates of a (rows, cols) grid: pixel centres, or indices when rotated."""
    c, a, _, f, _, e = gt
    if not _rectilinear(gt):
        return {"y": np.arange(rows), "x": np.arange(cols)}
    return {"y": f + e * (np.arange(rows) + 0.5), "x": c + a * (np.arange(cols) + 0.5)}


def crs_wkt(ds: xr.Dataset) -> str | None:
    """The CRS of ``ds`` as WKT, or None when it has none."""
    if SPATIAL_REF not in ds.coords:
        return None
    attrs = ds[SPATIAL_REF].attrs
    return attrs.get("crs_wkt") or attrs.get("spatial_ref") or None


def _offset(values: np.ndarray, expected: np.ndarray, step: float, axis: str) -> int:
    """Whole pixels by which ``values`` (cropped coordinates) are shifted from the full grid."""
    if values.size == 0:
        raise InputError(f"the georeferenced grid has no {axis} pixels")
    shift = (float(values[0]) - float(expected[0])) / step
    k = int(round(shift))
    if abs(shift - k) > _GRID_TOLERANCE or not np.allclose(
        values, expected[0] + step * (k + np.arange(values.size)), rtol=0, atol=abs(step) * _GRID_TOLERANCE
    ):
        raise InputError(
            f"the {axis} coordinates do not lie on the grid of the stored GeoTransform (were they resampled?); "
            "only crops (isel) keep a dataset's georeferencing"
        )
    return k


def geotransform(ds: xr.Dataset) -> tuple[float, ...] | None:
    """GDAL's geotransform of ``ds`` (``c, a, b, f, d, e``) for its own first pixel, or None.

    The stored transform describes the grid the data came from; a crop's origin is moved by the
    whole pixels its ``x``/``y`` coordinates say it starts at. Raises :class:`InputError` when the
    coordinates are not on that grid.
    """
    if SPATIAL_REF not in ds.coords or "GeoTransform" not in ds[SPATIAL_REF].attrs:
        return None
    try:
        gt = tuple(float(v) for v in str(ds[SPATIAL_REF].attrs["GeoTransform"]).split())
    except ValueError:
        gt = ()
    if len(gt) != 6:
        raise InputError(
            f"spatial_ref's GeoTransform must be six numbers; got {ds[SPATIAL_REF].attrs['GeoTransform']!r}"
        )
    c, a, b, f, d, e = gt
    if _rectilinear(gt):
        full = grid_coords(gt, 1, 1)
        col = _offset(np.asarray(ds["x"].values, dtype=np.float64), full["x"], a, "x")
        row = _offset(np.asarray(ds["y"].values, dtype=np.float64), full["y"], e, "y")
    else:
        col = _offset(np.asarray(ds["x"].values, dtype=np.float64), np.zeros(1), 1.0, "x")
        row = _offset(np.asarray(ds["y"].values, dtype=np.float64), np.zeros(1), 1.0, "y")
    if col == 0 and row == 0:
        return gt
    return (c + a * col + b * row, a, b, f + d * col + e * row, d, e)
