"""File formats: one module per format and one table from file suffix to reader.

Every reader has the same signature, ``reader(path, truth=None, *, rows, cols, scale, chunks,
name, invalid, negative, layout, variable) -> HyperCube`` (``layout`` and ``variable`` are passed
only when given), and builds its cube through :func:`~.truth.cube_with_truth`. Readers orient
arrays by what their file states (:mod:`.layout`) and check scales once (:mod:`.values`). :func:`~egu_widgets.cube.open_cube` looks the suffix up in
:data:`READERS`; a new format is a module here plus its lines in the table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..hypercube import HyperCube
from .envi import read_envi
from .geotiff import read_geotiff
from .mat import read_mat
from .netcdf import read_netcdf
from .zarr import read_zarr

__all__ = ["ACCEPTED", "READERS", "Reader", "reader_for"]

Reader = Callable[..., HyperCube]

#: File suffix (lower case) -> reader.
READERS: dict[str, Reader] = {
    ".mat": read_mat,
    ".hdr": read_envi,
    ".img": read_envi,
    ".dat": read_envi,
    ".raw": read_envi,
    ".bsq": read_envi,
    ".bil": read_envi,
    ".bip": read_envi,
    ".nc": read_netcdf,
    ".nc4": read_netcdf,
    ".netcdf": read_netcdf,
    ".h5": read_netcdf,
    ".tif": read_geotiff,
    ".tiff": read_geotiff,
    ".zarr": read_zarr,
}

#: How error messages name the accepted files.
ACCEPTED = ".mat, ENVI .hdr/.img, netCDF .nc, GeoTIFF .tif, Zarr .zarr"


def reader_for(path: str | Path) -> Reader | None:
    """The reader of ``path`` by its suffix, or None when no format claims it."""
    return READERS.get(Path(path).suffix.lower())
