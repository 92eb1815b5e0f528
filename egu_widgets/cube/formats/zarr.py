"""Zarr stores: the cloud-native, chunked format for scenes larger than memory.

A store is read by what it states, like a netCDF file (:mod:`.netcdf`): the project's own
``reflectance(y, x, band)`` back identical, or a CF-style spectral variable found by its
dimensions and attributes. ``chunks=`` opens it lazily (``{}`` takes the store's own chunks).
Reading and writing the store itself is :mod:`.zarrstore`'s (atomic writes, lazy variables chunk
by chunk).
"""

from __future__ import annotations

from pathlib import Path

from ..hypercube import HyperCube
from .netcdf import cube_from_dataset
from .truth import MatTruth
from .zarrstore import INSTALL_HINT, is_store, read_store, write_store

__all__ = ["INSTALL_HINT", "is_store", "read_store", "read_zarr", "write_store"]


def read_zarr(
    path: Path,
    truth: MatTruth | None = None,
    *,
    rows: int | None = None,
    cols: int | None = None,
    scale: float | None = None,
    chunks: dict | None = None,
    name: str | None = None,
    invalid: str = "raise",
    negative: str = "raise",
    layout: str | None = None,
    variable: str | None = None,
) -> HyperCube:
    """A cube from a Zarr store; ``chunks`` opens it lazily with dask.

    The options act as in :func:`~.netcdf.read_netcdf` (``rows``/``cols`` are not used: the
    store states its size). Result stores are refused with a pointer to ``UnmixingResult.open``.
    """
    path = Path(path)
    return cube_from_dataset(
        read_store(path, chunks),
        path,
        truth,
        reader="zarr",
        scale=scale,
        name=name,
        invalid=invalid,
        negative=negative,
        layout=layout,
        variable=variable,
    )
