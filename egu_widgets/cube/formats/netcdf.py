"""The project's own netCDF cubes: what :meth:`HyperCube.to_netcdf` writes, read back identical."""

from __future__ import annotations

from pathlib import Path

from ...errors import DataFileError
from ..hypercube import REFLECTANCE, HyperCube
from .ncfile import KIND_ATTR, read_dataset
from .truth import MatTruth

__all__ = ["read_netcdf"]


def read_netcdf(
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
) -> HyperCube:
    """A cube from a netCDF file written by this package; ``chunks`` opens it lazily with dask.

    Result files are refused with a pointer to ``UnmixingResult.open``. The file keeps its own
    truth, name, scale and values: ``truth``, ``rows``, ``cols``, ``scale``, ``name``, ``invalid``
    and ``negative`` are accepted for the readers' common signature and not applied.
    """
    path = Path(path)
    ds = read_dataset(path, chunks)
    kind = ds.attrs.pop(KIND_ATTR, None)
    if kind == "result":
        raise DataFileError(f"{str(path)!r} is an unmixing result, not a cube; open it with UnmixingResult.open")
    if REFLECTANCE not in ds:
        raise DataFileError(
            f"{str(path)!r} has no 'reflectance' variable (found: {sorted(ds.data_vars)}); egu_widgets netCDF cubes "
            "store reflectance(y, x, band)"
        )
    return HyperCube(ds)
