"""``open_cube``: one entry point from what people have (a name, a file, an array) to a HyperCube."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DataFileError, DatasetError, InputError
from .datasets import dataset_names, find_dataset, load_dataset
from .formats import ACCEPTED, reader_for
from .formats.layout import check_layout
from .formats.mat import read_mat, read_mat_truth
from .formats.zarr import read_zarr
from .formats.zarrstore import is_store
from .hypercube import HyperCube

__all__ = ["open_cube"]


def open_cube(
    source: Any,
    truth: Any = None,
    *,
    rows: int | None = None,
    cols: int | None = None,
    scale: float | None = None,
    invalid: str = "raise",
    negative: str = "raise",
    chunks: dict | None = None,
    layout: str | None = None,
    variable: str | None = None,
    wavelengths: Any = None,
    **options: Any,
) -> HyperCube:
    """Open a hyperspectral cube from a dataset name, a file, an array or an xarray Dataset.

    Parameters
    ----------
    source
        A dataset name (see :func:`~egu_widgets.cube.dataset_names`), a path (``.mat`` in the Zhu,
        HySUPP or TNNLS layouts or an H x W x B array such as Indian Pines' or Pavia's, ENVI
        ``.hdr``/``.img``, the project's ``.nc`` or a CF-style netCDF, GeoTIFF, a Zarr store), a
        folder holding ``Mixed_TrSet.mat``, a :class:`HyperCube` or an ``xarray.Dataset``. An existing path wins
        over a dataset of the same name.
    truth
        Optional ``.mat`` file with ``A`` (materials x pixels) and/or ``M`` (bands x materials).
    rows, cols
        Image size, when a ``.mat`` file does not store it and the image is not square.
    scale
        Divide the data by this (raw integer data needs it unless the file has ``maxValue``).
    invalid
        NaN/Inf pixels: ``"raise"`` (default), ``"mask"`` (kept out of fitting, NaN in results) or
        ``"fill"`` (replaced by the mean valid spectrum; in-memory cubes only).
    negative
        Negative values: ``"raise"`` (default) or ``"clip"`` to zero.
    chunks
        netCDF and Zarr only: open lazily with dask, e.g. ``{"y": 512, "x": 512}`` (``{}``: the
        file's own chunks), for scenes larger than memory (see :mod:`egu_widgets.chunked`).
        Nothing is read at open: ``invalid`` and ``negative`` are applied to each chunk when it is
        computed, and a chunk that breaks them raises an error naming its pixel range.
    layout
        The axis order of the stored array when the file does not state it: ``"rows,cols,bands"``,
        ``"bands,rows,cols"``, ``"bands,pixels"`` or ``"pixels,bands"``. Readers refuse to guess
        when a shape can be read two ways; this (or ``rows=``/``cols=``) settles it.
    variable
        The array to read: a ``.mat`` key (e.g. ``"paviaU"``) or a netCDF variable, when the file
        holds several candidates or names it otherwise.
    wavelengths
        GeoTIFF only: the band centres, when the file does not state them or states them wrong
        (units are told from the values: below 100 micrometres, else nanometres).
    options
        For generated datasets: generator options, e.g. ``snr_db=`` and ``seed=`` for ``egu-synthetic``.

    Returns
    -------
    HyperCube
        The cube, with its truth when the source has one.

    Examples
    --------
    >>> cube = open_cube("demo")
    >>> cube.shape
    (40, 40, 60)
    """
    import xarray as xr

    if isinstance(source, HyperCube):
        return source
    if isinstance(source, xr.Dataset):
        return HyperCube(source)
    truth_obj = read_mat_truth(truth) if truth is not None else None
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"open_cube needs a dataset name, a path, a HyperCube or an xarray.Dataset; got {type(source).__name__}"
        )
    path = Path(source)
    entry = find_dataset(source)
    if not path.exists() and entry is not None:
        if truth is not None:
            raise InputError(f"dataset {entry.name!r} brings its own truth; do not pass truth=")
        return load_dataset(entry, invalid=invalid, negative=negative, **options)
    if options:
        raise InputError(f"unexpected options {sorted(options)} for a file source")
    if not path.exists():
        looks_like_name = not path.suffix and os.sep not in str(source)
        if looks_like_name:
            raise DatasetError(
                f"unknown dataset {str(source)!r}; known datasets: {', '.join(dataset_names())} (or give a file path)"
            )
        raise DataFileError(f"no such file: {str(source)!r}")
    read_options: dict[str, Any] = dict(
        rows=rows, cols=cols, scale=scale, chunks=chunks, invalid=invalid, negative=negative
    )
    # Passed only when given, so that a reader without these options still serves the other cases.
    given = (("layout", check_layout(layout)), ("variable", variable), ("wavelengths", wavelengths))
    read_options.update({k: v for k, v in given if v is not None})
    if path.is_dir() and (path.suffix.lower() == ".zarr" or is_store(path)):
        return read_zarr(path, truth_obj, **read_options)
    if path.is_dir():
        mixed = path / "Mixed_TrSet.mat"
        if mixed.exists():
            return read_mat(mixed, truth_obj, **read_options)
        raise DataFileError(
            f"{str(path)!r} is a folder; give a file (a folder is read only in the TNNLS layout, with Mixed_TrSet.mat)"
        )
    reader = reader_for(path)
    if reader is not None:
        return reader(path, truth_obj, **read_options)
    if chunks is not None:
        raise InputError(
            "chunks= (lazy reading) is available for netCDF cubes and Zarr stores; convert the file with "
            "cube.to_netcdf or cube.to_zarr first"
        )
    raise DataFileError(f"{str(path)!r}: unknown file type {path.suffix.lower()!r}; accepted: {ACCEPTED}")
