"""netCDF files of the project: the low-level read and write shared by cubes and results.

Cubes and results are both stored as netCDF through h5netcdf; ``attrs[KIND_ATTR]`` tells one from
the other. This module knows nothing of :class:`~egu_widgets.cube.HyperCube`, so that the cube (which
writes itself here) and the netCDF cube reader (:mod:`.netcdf`) can both sit above it.
"""

from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from ..._atomic import atomic_path
from ...errors import DataFileError

__all__ = ["ENGINE", "KIND_ATTR", "read_dataset", "write_dataset"]

ENGINE = "h5netcdf"
#: attrs["egu_widgets_kind"] tells a cube file from a result file.
KIND_ATTR = "egu_widgets_kind"


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, kind: str) -> Path:
    """Write ``ds`` to ``path`` atomically, marked as ``kind`` (``"cube"`` or ``"result"``)."""
    ds = ds.copy()
    ds.attrs[KIND_ATTR] = kind
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, invalid_netcdf=False)
    return Path(path)


def read_dataset(path: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Read a netCDF file: into memory and closed (default), or lazily as dask chunks."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise DataFileError(f"{str(path)!r} is empty (0 bytes); it was not written completely, write it again")
    try:
        if chunks is not None:
            return xr.open_dataset(path, engine=ENGINE, chunks=chunks)
        with xr.open_dataset(path, engine=ENGINE) as ds:
            return ds.load()
    except DataFileError:
        raise
    except Exception as exc:  # h5py/h5netcdf raise many types for damaged files
        raise DataFileError(
            f"{str(path)!r} is not a readable netCDF file ({type(exc).__name__}: {exc}); it may be truncated or corrupted"
        ) from exc
