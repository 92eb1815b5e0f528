"""netCDF cubes: the project's own files, and CF-style files named otherwise.

The project's files (what :meth:`HyperCube.to_netcdf` writes) hold ``reflectance(y, x, band)``
and are read back identical. Other files are read by what they state: the spectral variable is
the one 3-D variable with a spectral dimension (named ``band``/``wavelength``, or carrying a
wavelength coordinate, CF ``standard_name`` or wavelength units), or the one named by
``variable=``; its spatial dimensions are told apart by their names (``y``/``lat``/``row``...,
``x``/``lon``/``col``...) or CF ``axis``/``standard_name`` attributes, or by ``layout=``.
``scale_factor``/``add_offset``/``_FillValue`` are applied by xarray's decoding; pixels at the
declared fill value are the file's nodata, masked (kept out of fitting, NaN in results).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ...errors import DataFileError, InputError
from ..hypercube import ABUNDANCES, ENDMEMBERS, REFLECTANCE, HyperCube, check_dtype
from ..lazy import BlockCheck, checked
from .layout import check_layout
from .ncfile import KIND_ATTR, read_dataset
from .truth import MatTruth, cube_with_truth
from .values import check_scale

__all__ = ["cube_from_dataset", "read_netcdf"]

_SPECTRAL_DIMS = {"band", "bands", "wavelength", "wavelengths", "wl", "lambda", "spectral", "channel", "channels"}
_WAVELENGTH_NAMES = {"wavelength", "wavelengths", "wl", "lambda", "center_wavelength", "band_center"}
_WAVELENGTH_UNITS = {"nm", "nanometer", "nanometers", "nanometre", "nanometres", "um", "µm", "micrometer",
                     "micrometers", "micrometre", "micrometres", "micron", "microns"}  # fmt: skip
_Y_NAMES = {"y", "lat", "latitude", "row", "rows", "line", "lines", "northing"}
_X_NAMES = {"x", "lon", "long", "longitude", "col", "cols", "column", "columns", "sample", "samples", "easting"}


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
    layout: str | None = None,
    variable: str | None = None,
) -> HyperCube:
    """A cube from a netCDF file; ``chunks`` opens it lazily with dask.

    ``truth``, ``scale``, ``invalid`` and ``negative`` act as in the other readers. A lazy cube
    takes ``scale``, ``invalid`` ``"raise"``/``"mask"`` and ``negative``, applied chunk by chunk
    when the data are computed (see :mod:`~egu_widgets.cube.lazy`); nothing is read at open.
    ``variable`` names the spectral variable and ``layout`` the role of its dimensions in order
    (e.g. ``"bands,rows,cols"``) when their names do not tell. ``rows`` and ``cols`` are accepted
    for the readers' common signature and not used: the file states its size. Result files are
    refused with a pointer to ``UnmixingResult.open``.
    """
    path = Path(path)
    return cube_from_dataset(
        read_dataset(path, chunks),
        path,
        truth,
        reader="netcdf",
        scale=scale,
        name=name,
        invalid=invalid,
        negative=negative,
        layout=layout,
        variable=variable,
    )


def cube_from_dataset(
    ds: xr.Dataset,
    path: Path,
    truth: MatTruth | None = None,
    *,
    reader: str,
    scale: float | None = None,
    name: str | None = None,
    invalid: str = "raise",
    negative: str = "raise",
    layout: str | None = None,
    variable: str | None = None,
) -> HyperCube:
    """A cube from a Dataset read from ``path`` (netCDF or Zarr), by what it states (see the module doc)."""
    kind = ds.attrs.pop(KIND_ATTR, None)
    if kind == "result":
        raise DataFileError(f"{str(path)!r} is an unmixing result, not a cube; open it with UnmixingResult.open")
    layout = check_layout(layout)
    scale = check_scale(scale)
    source = repr(str(path))
    own = REFLECTANCE in ds and ds[REFLECTANCE].dims == ("y", "x", "band") and variable in (None, REFLECTANCE)
    if own and layout is None:
        untouched = truth is None and scale is None and invalid == "raise" and negative == "raise"
        if untouched and not _raw_integers(ds[REFLECTANCE]):
            if "valid" not in ds:
                return HyperCube(ds)  # the project's own file, read back identical
            data = ds[REFLECTANCE].data
            if hasattr(data, "dask"):  # a masked cube: its invalid pixels may be NaN (a lazy cube wrote it)
                masked = ds[REFLECTANCE].copy(data=checked(data, BlockCheck("mask", "raise")))
                return HyperCube(ds.assign({REFLECTANCE: masked}), validate=False)
            if np.isfinite(data).all():
                return HyperCube(ds)
            invalid = "mask"  # NaN at its invalid pixels: filled, as an in-memory masked cube is
        return _finish(
            ds[REFLECTANCE],
            ds,
            truth=truth,
            scale=scale,
            invalid=invalid,
            negative=negative,
            name=name or str(ds.attrs.get("name", path.stem)),
            source=str(ds.attrs.get("source", str(path))),
            provenance=json.loads(ds.attrs.get("provenance", "{}")),
            what=source,
        )
    var = _find_variable(ds, variable, source)
    da = ds[var]
    ydim, xdim, bdim = _dim_roles(ds, da, layout, source, var)
    cube_ds = _standard_dataset(ds, da, ydim, xdim, bdim)
    provenance = {"reader": reader, "file": path.name, "variable": var}
    if (ydim, xdim, bdim) != ("y", "x", "band"):
        provenance["dims"] = [ydim, xdim, bdim]
    return _finish(
        cube_ds[REFLECTANCE],
        cube_ds,
        truth=truth,
        scale=scale,
        invalid=invalid,
        negative=negative,
        name=name or path.stem,
        source=str(path),
        provenance=provenance,
        what=f"{source}: {var!r}",
        nodata=_declares_fill(da),
    )


# ---------------------------------------------------------------------------- finding the variable
def _coords_along(ds: xr.Dataset, dim: str) -> list[str]:
    return [c for c in ds.coords if ds[c].dims == (dim,)]


def _is_wavelength(var: xr.DataArray, name: str) -> bool:
    units = str(var.attrs.get("units", "")).strip().lower()
    standard = str(var.attrs.get("standard_name", "")).lower()
    return name.lower() in _WAVELENGTH_NAMES or "wavelength" in standard or units in _WAVELENGTH_UNITS


def _is_spectral_dim(ds: xr.Dataset, dim: str) -> bool:
    if dim.lower() in _SPECTRAL_DIMS:
        return True
    return any(_is_wavelength(ds[c], c) for c in _coords_along(ds, dim))


def _find_variable(ds: xr.Dataset, variable: str | None, source: str) -> str:
    if variable is not None:
        if variable not in ds.data_vars:
            raise DataFileError(f"{source} has no variable {variable!r}; variables: {sorted(map(str, ds.data_vars))}")
        if ds[variable].ndim != 3:
            raise DataFileError(
                f"{source}: {variable!r} has dims {ds[variable].dims}; a cube needs three (two spatial, one spectral)"
            )
        return variable
    candidates = [
        str(v)
        for v in ds.data_vars
        if ds[v].ndim == 3 and ds[v].dtype.kind in "iuf" and sum(_is_spectral_dim(ds, d) for d in ds[v].dims) == 1
    ]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise DataFileError(
            f"{source} holds {len(candidates)} candidate spectral variables ({', '.join(map(repr, candidates))}); "
            "pass variable= to choose one (CLI --variable)"
        )
    three_d = [f"{v}{ds[v].dims}" for v in ds.data_vars if ds[v].ndim == 3]
    raise DataFileError(
        f"{source}: no spectral variable found: no 3-D variable has a spectral dimension (named band or "
        f"wavelength, or with a wavelength coordinate); 3-D variables: {', '.join(three_d) or 'none'}. Pass "
        "variable= and layout= (e.g. layout='bands,rows,cols'; CLI --variable/--layout)"
    )


def _axis_of(ds: xr.Dataset, dim: str) -> str | None:
    """'y', 'x' or None, from the dimension's name or its coordinate's CF attributes."""
    if dim.lower() in _Y_NAMES:
        return "y"
    if dim.lower() in _X_NAMES:
        return "x"
    for c in _coords_along(ds, dim):
        attrs = ds[c].attrs
        axis = str(attrs.get("axis", "")).upper()
        standard = str(attrs.get("standard_name", "")).lower()
        if axis == "Y" or standard in ("latitude", "projection_y_coordinate"):
            return "y"
        if axis == "X" or standard in ("longitude", "projection_x_coordinate"):
            return "x"
    return None


def _dim_roles(ds: xr.Dataset, da: xr.DataArray, layout: str | None, source: str, var: str) -> tuple[str, str, str]:
    """The (rows, cols, bands) dimension names of ``da``."""
    dims = [str(d) for d in da.dims]
    if layout is not None:
        if layout not in ("rows,cols,bands", "bands,rows,cols"):
            raise InputError(f"{source}: {var!r} is 3-D; layout={layout!r} is for 2-D matrices")
        order = dict(zip(layout.split(","), dims))
        roles = (order["rows"], order["cols"], order["bands"])
        named = {d: _axis_of(ds, d) for d in dims}
        if (
            named[roles[0]] == "x"
            or named[roles[1]] == "y"
            or (_is_spectral_dim(ds, roles[0]) or _is_spectral_dim(ds, roles[1]))
        ):
            raise InputError(f"{source}: layout={layout!r} contradicts the dimensions of {var!r}, {tuple(dims)}")
        return roles
    spectral = [d for d in dims if _is_spectral_dim(ds, d)]
    if len(spectral) != 1:
        raise DataFileError(
            f"{source}: no spectral dimension found in {var!r} dims {tuple(dims)} (name it band or wavelength, give "
            "it a wavelength coordinate, or pass layout=, e.g. layout='bands,rows,cols'; CLI --layout)"
            if not spectral
            else f"{source}: {var!r} has {len(spectral)} spectral-looking dimensions {tuple(spectral)}; pass layout="
        )
    bdim = spectral[0]
    ydims = [d for d in dims if d != bdim and _axis_of(ds, d) == "y"]
    xdims = [d for d in dims if d != bdim and _axis_of(ds, d) == "x"]
    if len(ydims) != 1 or len(xdims) != 1:
        rest = tuple(d for d in dims if d != bdim)
        raise DataFileError(
            f"{source}: cannot tell rows from columns among {var!r} dims {rest}; name them y/x or lat/lon "
            "(or give their coordinates CF axis attributes), or pass layout= (e.g. layout='rows,cols,bands')"
        )
    return ydims[0], xdims[0], bdim


# ---------------------------------------------------------------------------- building the cube
def _standard_dataset(ds: xr.Dataset, da: xr.DataArray, ydim: str, xdim: str, bdim: str) -> xr.Dataset:
    """``reflectance(y, x, band)`` with the file's spatial coordinates and wavelengths kept."""
    da = da.transpose(ydim, xdim, bdim)
    data = da.data
    coords: dict[str, Any] = {}
    for dim, new in ((ydim, "y"), (xdim, "x")):
        coords[new] = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
        if dim != new and dim in ds.coords:  # e.g. lat/lon: kept under their names too
            coords[dim] = xr.Variable((new,), ds[dim].values, attrs=dict(ds[dim].attrs))
    coords["band"] = np.arange(ds.sizes[bdim])
    rename = {ydim: "y", xdim: "x"}
    for c in da.coords:
        dims = ds[c].dims
        if c in (ydim, xdim, bdim) or not dims or not set(dims) <= {ydim, xdim}:
            continue
        coords[str(c)] = xr.Variable(tuple(rename[d] for d in dims), ds[c].values, attrs=dict(ds[c].attrs))
    wl = next((c for c in _coords_along(ds, bdim) if _is_wavelength(ds[c], c)), None)
    if wl is not None:
        units = _units(str(ds[wl].attrs.get("units", "nm")))
        coords["wavelength"] = xr.Variable(("band",), np.asarray(ds[wl].values, dtype=np.float64), {"units": units})
    grid = da.attrs.get("grid_mapping")
    if isinstance(grid, str) and grid in ds.variables and ds[grid].ndim == 0:
        coords[grid] = ds[grid].variable
    out = xr.DataArray(data, dims=("y", "x", "band"), attrs=dict(da.attrs))
    out.encoding = dict(da.encoding)
    return xr.Dataset({REFLECTANCE: out}, coords=coords)


def _units(text: str) -> str:
    text = text.strip().lower()
    if text.startswith(("micro", "um", "µm")):
        return "um"
    if text.startswith(("nano", "nm")):
        return "nm"
    return text


def _raw_integers(da: xr.DataArray) -> bool:
    """True when the file stores integers that no ``scale_factor`` turned into reflectance."""
    stored = np.dtype(da.encoding.get("dtype", da.dtype))
    return stored.kind in "iu" and "scale_factor" not in da.encoding and "add_offset" not in da.encoding


def _declares_fill(da: xr.DataArray) -> bool:
    """True when the variable declares a (non-NaN) fill value: its pixels there are nodata."""
    for key in ("_FillValue", "missing_value"):
        value = da.encoding.get(key, da.attrs.get(key))
        if value is not None and not np.all(np.isnan(np.asarray(value, dtype=np.float64))):
            return True
    return False


def _finish(
    da: xr.DataArray,
    ds: xr.Dataset,
    *,
    truth: MatTruth | None,
    scale: float | None,
    invalid: str,
    negative: str,
    name: str,
    source: str,
    provenance: dict,
    what: str,
    nodata: bool = False,
) -> HyperCube:
    """The cube of ``da`` (dims y, x, band) with the readers' options applied, coordinates kept."""
    raw = _raw_integers(da) or da.dtype.kind in "iub"
    if scale is None and raw:
        stored = np.dtype(da.encoding.get("dtype", da.dtype))
        check_dtype(stored, what=f"{what} (stored as {stored} without scale_factor)")
    provenance = dict(provenance)
    if scale is not None:
        provenance["scale"] = scale
    spatial = {c: ds[c] for c in ds.coords if c not in ("band", "wavelength") and "band" not in ds[c].dims}
    if hasattr(da.data, "dask"):
        return _lazy_cube(da, ds, truth=truth, scale=scale, invalid=invalid, negative=negative, name=name,
                          source=source, provenance=provenance, nodata=nodata)  # fmt: skip
    image = np.asarray(da.values, dtype=np.float64) / scale if scale is not None else np.asarray(da.values)
    if "valid" in ds:  # the file's own mask: those pixels stay out of fitting
        image = np.array(image, dtype=np.float64)
        image[~ds["valid"].values.astype(bool)] = np.nan
        nodata = True
    if nodata and invalid == "raise":
        bad = ~np.isfinite(image).all(axis=-1)
        if bad.any():
            provenance["nodata_pixels"] = int(bad.sum())
        invalid = "mask"
    wl = ds["wavelength"] if "wavelength" in ds.coords else None
    common = dict(
        wavelengths=None if wl is None else wl.values,
        wavelength_units="nm" if wl is None else wl.attrs.get("units", "nm"),
        name=name,
        source=source,
        provenance=provenance,
        invalid=invalid,
        negative=negative,
    )
    if truth is not None:
        cube = cube_with_truth(image, truth, **common)
    else:
        names = [str(v) for v in ds["endmember"].values] if "endmember" in ds.coords else None
        cube = HyperCube.from_array(
            image,
            endmembers=ds[ENDMEMBERS].values if ENDMEMBERS in ds else None,
            abundances=ds[ABUNDANCES].values if ABUNDANCES in ds else None,
            endmember_names=names,
            layout="rows,cols,bands",
            **common,
        )
    kept = {c: v for c, v in spatial.items() if c != "endmember"}
    return HyperCube(cube.ds.assign_coords(kept), validate=False)


def _lazy_cube(
    da: xr.DataArray,
    ds: xr.Dataset,
    *,
    truth: MatTruth | None,
    scale: float | None,
    invalid: str,
    negative: str,
    name: str,
    source: str,
    provenance: dict,
    nodata: bool,
) -> HyperCube:
    """The lazy cube of ``da``: options applied chunk by chunk when computed, nothing read now.

    Masked pixels (``invalid="mask"``, the file's fill value or its own ``valid`` map) are NaN in
    every band of the reflectance and 0 in a lazy ``valid`` map; an in-memory cube fills them with
    the mean valid spectrum instead, which would need a pass over the whole file.
    """
    if truth is not None:
        raise InputError("truth= needs the cube in memory; open it without chunks= (or attach the truth to a crop)")
    if invalid not in ("raise", "mask", "fill"):
        raise InputError(f"invalid={invalid!r}; choose 'raise', 'mask' or 'fill'")
    data = da.data
    if scale is not None:
        data = data.astype(np.float64) / scale
    if "valid" in ds:  # the file's own mask: those pixels stay out of fitting
        data = _dask_where(ds["valid"].data.astype(bool)[..., None], data, np.nan)
        nodata = True
    if nodata and invalid == "raise":
        invalid = "mask"
    check = BlockCheck(invalid, negative)
    data = checked(data, check)
    out = ds.drop_vars([v for v in ("valid",) if v in ds])
    out = out.assign({REFLECTANCE: (("y", "x", "band"), data, dict(da.attrs))})
    if invalid == "mask":
        import dask.array as dask_array

        out["valid"] = (("y", "x"), dask_array.isfinite(data).all(axis=-1).astype(np.int8))
        provenance["invalid_policy"] = "mask"
    if negative == "clip":
        provenance["negative_policy"] = "clip"
    out.attrs.update(name=name, source=source, provenance=json.dumps(provenance, sort_keys=True, default=str))
    return HyperCube(out, validate=False)


def _dask_where(condition: Any, data: Any, other: float) -> Any:
    import dask.array as dask_array

    return dask_array.where(condition, data, other)
