"""Zarr stores of the project: the low-level read and write shared by cubes and results.

Like :mod:`.ncfile` for netCDF, this module knows nothing of :class:`~egu_widgets.cube.HyperCube`,
so that the cube (which writes itself here), the Zarr cube reader (:mod:`.zarr`) and results can
all sit above it. Stores are written in Zarr format 2 with consolidated metadata, which every Zarr
reader and GDAL understand, and atomically (:func:`write_store`): into a temporary store beside the
target, renamed into place only when every chunk is written, so that an error or an interruption
mid-stream leaves nothing half-written at the path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

import xarray as xr

from ...errors import DataFileError, MissingDependencyError
from .ncfile import KIND_ATTR, compute_writes, is_lazy

__all__ = ["INSTALL_HINT", "is_store", "read_store", "write_store"]

INSTALL_HINT = "pip install zarr (or pip install 'egu_widgets[dask]')"
_MARKERS = ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")


def _require_zarr() -> None:
    try:
        import zarr  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(f"Zarr stores are read and written with the zarr package: {INSTALL_HINT}") from exc


def is_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a Zarr group (format 2 or 3)."""
    path = Path(path)
    return path.is_dir() and any((path / marker).exists() for marker in _MARKERS)


def read_store(path: str | os.PathLike, chunks: dict | None = None) -> xr.Dataset:
    """Read a Zarr store: into memory (default), or lazily as dask chunks (``{}``: the store's own)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"no such Zarr store: {str(path)!r}")
    if not is_store(path):
        raise DataFileError(
            f"{str(path)!r} is not a Zarr store (no zarr.json or .zgroup inside); it may be incomplete or another folder"
        )
    _require_zarr()
    try:
        if chunks is not None:
            return xr.open_zarr(path, chunks=chunks)
        with xr.open_zarr(path, chunks=None) as ds:
            return ds.load()
    except Exception as exc:  # zarr raises many types for damaged stores
        raise DataFileError(
            f"{str(path)!r} is not a readable Zarr store ({type(exc).__name__}: {exc}); it may be incomplete or corrupted"
        ) from exc


def _check_target(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not is_store(path):
        what = "a folder that is not a Zarr store" if path.is_dir() else "a file"
        raise DataFileError(f"cannot write a Zarr store at {str(path)!r}: it is {what}; choose another path")
    if not folder.is_dir():
        raise DataFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise DataFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable; choose another path")


def write_store(ds: xr.Dataset, path: str | os.PathLike, *, kind: str) -> Path:
    """Write ``ds`` to a Zarr store at ``path``, marked as ``kind``, atomically; lazy variables chunk by chunk.

    The store is written beside the target under a temporary name and renamed into place when
    complete; a previous store at ``path`` is replaced only then. Dask-backed variables are
    computed and written one chunk at a time on the active scheduler.
    """
    _require_zarr()
    path = Path(path)
    _check_target(path)
    ds = ds.copy()
    ds.attrs[KIND_ATTR] = kind
    for var in ds.variables.values():  # encodings of the source (netCDF chunking, fill) do not apply here
        var.encoding = {}
    ds = _uniform_chunks(ds)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        if is_lazy(ds):
            compute_writes(ds.to_zarr(tmp, mode="w-", zarr_format=2, consolidated=True, compute=False))
        else:
            ds.to_zarr(tmp, mode="w-", zarr_format=2, consolidated=True)
        if path.exists():
            old = path.parent / f".{path.name}.{secrets.token_hex(6)}.old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return path


def _uniform_chunks(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every dask variable in chunks of one size (the last may be smaller), as Zarr stores them."""
    sizes = {}
    for var in ds.variables.values():
        if var.chunks is None:
            continue
        for dim, chunks in zip(var.dims, var.chunks):
            if len(chunks) > 1 and (len(set(chunks[:-1])) > 1 or chunks[-1] > chunks[0]):
                sizes[dim] = max(chunks)
    return ds.chunk(sizes) if sizes else ds
