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

__all__ = ["ENGINE", "KIND_ATTR", "compute_writes", "is_lazy", "read_dataset", "write_dataset"]

ENGINE = "h5netcdf"
#: attrs["egu_widgets_kind"] tells a cube file from a result file.
KIND_ATTR = "egu_widgets_kind"


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, kind: str) -> Path:
    """Write ``ds`` to ``path`` atomically, marked as ``kind`` (``"cube"`` or ``"result"``).

    Dask-backed variables are computed and written chunk by chunk (:func:`compute_writes`).
    """
    ds = ds.copy()
    ds.attrs[KIND_ATTR] = kind
    with atomic_path(path) as tmp:
        if is_lazy(ds):
            compute_writes(ds.to_netcdf(tmp, engine=ENGINE, invalid_netcdf=False, compute=False))
        else:
            ds.to_netcdf(tmp, engine=ENGINE, invalid_netcdf=False)
    return Path(path)


def is_lazy(ds: xr.Dataset) -> bool:
    """True when any variable of ``ds`` is dask-backed."""
    return any(var.chunks is not None for var in ds.variables.values())


def compute_writes(writes) -> None:
    """Run the delayed chunk writes of ``to_netcdf``/``to_zarr(compute=False)``, all done when it returns.

    On the threaded scheduler the writes run in a pool of their own that is drained before an
    error propagates: a chunk that fails (a NaN chunk of a lazy cube) must not leave other writes
    running, which would recreate the temporary file after the caller has removed it. Under a
    ``dask.distributed`` client the writes run on its workers, and after a failure the remaining
    ones are cancelled and the cluster's running tasks are waited for (up to a minute, then a second).
    """
    import dask

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        from concurrent.futures import ThreadPoolExecutor

        workers = dask.config.get("num_workers", None) or os.cpu_count() or 1
        pool = ThreadPoolExecutor(workers)
        try:
            dask.compute(writes, scheduler="threads", pool=pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    import time

    future = client.compute(writes)
    try:
        future.result()
    except BaseException:
        client.cancel(future)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(client.processing().values()):
            time.sleep(0.05)
        # the scheduler forgets cancelled tasks that a worker is still running: give those
        # (chunk writes, milliseconds each) a moment to end before the caller removes the file
        time.sleep(1.0)
        raise


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
