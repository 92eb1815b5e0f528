"""GeoTIFF and Cloud-Optimized GeoTIFF: band-stacked scenes in, abundance maps out, through rasterio.

What EnMAP, PRISMA, EMIT or AVIRIS-NG processing chains hand an analyst is usually a GeoTIFF with
one raster band per spectral band. :func:`read_geotiff` reads it with its CRS and transform (kept
in the cube's ``spatial_ref`` coordinate, see :mod:`egu_widgets.cube.georef`), its nodata (those
pixels are masked: kept out of fitting, NaN in results), the bands' scale/offset and the
wavelengths the file states. :func:`write_maps` writes a result's maps back on the same grid, so
that GDAL, QGIS or rioxarray open them in place over the scene.

rasterio (GDAL) is an optional dependency: ``pip install "egu_widgets[geo]"``.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..._atomic import atomic_path
from ...errors import DataFileError, InputError, MissingDependencyError
from ...validation import check_choice
from ..georef import crs_wkt, geotransform, grid_coords, spatial_ref_coord
from ..hypercube import ABUNDANCES, HyperCube
from .envi import _units
from .ncfile import KIND_ATTR
from .truth import MatTruth, cube_with_truth
from .values import check_scale, integer_without_scale

__all__ = ["GEOTIFF_SUFFIXES", "read_geotiff", "write_maps"]

#: File suffixes read and written as GeoTIFF.
GEOTIFF_SUFFIXES = (".tif", ".tiff")

INSTALL_HINT = 'pip install "egu_widgets[geo]"'

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_UNIT = r"(?:nm|nanometers?|nanometres?|um|µm|micrometers?|micrometres?|microns?)"
# A band description that is a wavelength: "450", "450.5 nm", or a name ending in "(0.45 um)".
_DESCRIPTION_WAVELENGTH = (
    re.compile(rf"^\s*({_NUMBER})\s*({_UNIT})?\s*$", re.IGNORECASE),
    re.compile(rf"\(\s*({_NUMBER})\s*({_UNIT})?\s*\)\s*$", re.IGNORECASE),
)


def _rasterio():
    try:
        import rasterio
    except ImportError as exc:
        raise MissingDependencyError(f"GeoTIFF files are read and written with rasterio: {INSTALL_HINT}") from exc
    return rasterio


# ---------------------------------------------------------------------------- wavelengths
def _units_by_magnitude(wavelengths: np.ndarray) -> str:
    """nm or um for wavelengths whose file does not say: imaging spectrometers cover about
    0.35-15 um, so values below 100 cannot be nanometres and values above cannot be micrometres."""
    return "um" if float(np.nanmax(wavelengths)) < 100 else "nm"


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(_NUMBER, text)]


def _floats(values: Sequence[str], source: str, where: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except ValueError as exc:
        raise DataFileError(
            f"{source}: a wavelength in the {where} is not a number ({exc}); pass wavelengths="
        ) from exc


def _tag(tags: Mapping[str, str], *keys: str) -> str | None:
    lowered = {k.lower(): v for k, v in tags.items()}
    for key in keys:
        if key in lowered and str(lowered[key]).strip():
            return str(lowered[key]).strip()
    return None


def _stated_wavelengths(meta: dict, n_bands: int, source: str) -> tuple[np.ndarray | None, str | None, str]:
    """Wavelengths the file states, their units (None when unsaid) and where they were found.

    Looked for, in order: each band's ``wavelength`` tag (with ``wavelength_units``, as GDAL exposes
    ENVI band metadata), GDAL's ``IMAGERY`` domain (``CENTRAL_WAVELENGTH_UM``), a file-level
    ``wavelength`` list (default or ``ENVI`` domain), then band descriptions that are wavelengths
    (``"450 nm"``, ``"Band 1 (450.0)"``; bare band numbers ``1, 2, ...`` are not taken for
    wavelengths). A source counts only when it covers every band.
    """
    band_tags = meta["band_tags"]
    values = [_tag(t, "wavelength") for t in band_tags]
    if all(v is not None for v in values):
        units = {_tag(t, "wavelength_units") for t in band_tags} - {None}
        if len(units) > 1:
            raise DataFileError(f"{source}: the bands state different wavelength units {sorted(units)}")
        return _floats(values, source, "band tags"), (units.pop() if units else None), "band tags"
    imagery = [_tag(t, "central_wavelength_um") for t in meta["imagery_tags"]]
    if all(v is not None for v in imagery):
        return _floats(imagery, source, "IMAGERY domain"), "um", "IMAGERY CENTRAL_WAVELENGTH_UM"
    for domain in ("tags", "envi_tags"):
        listed = _tag(meta[domain], "wavelength")
        if listed is None:
            continue
        wl = np.array(_numbers(listed))
        if wl.size != n_bands:
            raise DataFileError(
                f"{source}: the file lists {wl.size} wavelengths for {n_bands} bands; pass wavelengths= to open_cube"
            )
        return wl, _tag(meta[domain], "wavelength_units", "wavelength units"), "file tags"
    parsed = []
    for text in meta["descriptions"]:
        match = next((m for p in _DESCRIPTION_WAVELENGTH if (m := p.search(text or ""))), None)
        if match is None:
            return None, None, ""
        parsed.append((float(match.group(1)), match.group(2)))
    units = {u.lower() for _, u in parsed if u} if parsed else set()
    if len({_units(u) for u in units}) > 1:
        raise DataFileError(f"{source}: the band descriptions mix wavelength units {sorted(units)}")
    wl = np.array([w for w, _ in parsed])
    if not units and any(np.array_equal(wl, np.arange(start, start + n_bands)) for start in (0, 1)):
        return None, None, ""  # band numbers, not wavelengths
    return wl, (units.pop() if units else None), "band descriptions"


def _wavelengths(meta, n_bands, source, given, given_units) -> tuple[np.ndarray | None, str, dict]:
    if given is not None:
        wl = np.asarray(given, dtype=np.float64).ravel()
        units, where = given_units, "given"
    else:
        wl, units, where = _stated_wavelengths(meta, n_bands, source)
        units = units if given_units is None else given_units
    if wl is None:
        return None, "nm", {}
    if wl.shape != (n_bands,):
        raise InputError(f"{wl.size} wavelengths given for a cube with {n_bands} bands")
    if not np.isfinite(wl).all():
        if given is not None:
            raise InputError(f"wavelengths must be finite numbers; got {wl.tolist()}")
        raise DataFileError(f"{source}: the wavelengths ({where}) are not all finite numbers; pass wavelengths=")
    notes = {"wavelengths_from": where}
    if units is not None and units.strip().lower() in ("", "unknown"):  # ENVI's "wavelength units = Unknown"
        units = None
    if units is None:
        units = _units_by_magnitude(wl)
        notes["wavelength_units_from"] = "magnitude"
    return wl, _units(units), notes


# ---------------------------------------------------------------------------- reading
def _compact(values: np.ndarray) -> float | list[float]:
    """One number when every band shares it, else the list (for the provenance)."""
    return float(values[0]) if values.size and np.all(values == values[0]) else values.tolist()


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """The file open with rasterio; GDAL's failures (not a TIFF, truncated) become one DataFileError."""
    rasterio = _rasterio()
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.driver != "GTiff":
                    raise DataFileError(f"{str(path)!r} is a {src.driver} file, not a GeoTIFF; give it its own suffix")
                yield src
    except RasterioError as exc:
        raise DataFileError(
            f"{str(path)!r} is not a readable GeoTIFF ({exc}); it may be truncated, corrupted or of another format"
        ) from exc


def _metadata(src: Any) -> dict:
    return {
        "crs": src.crs.to_wkt() if src.crs else None,
        "transform": tuple(src.transform.to_gdal()),
        "georeferenced": not src.transform.is_identity or src.crs is not None,
        "descriptions": list(src.descriptions),
        "tags": src.tags(),
        "envi_tags": src.tags(ns="ENVI"),
        "band_tags": [src.tags(i) for i in src.indexes],
        "imagery_tags": [src.tags(i, ns="IMAGERY") for i in src.indexes],
        "scales": np.asarray(src.scales, dtype=np.float64),
        "offsets": np.asarray(src.offsets, dtype=np.float64),
        "nodata": src.nodata,
        "dtype": np.dtype(src.dtypes[0]),
    }


def _read_bands(src: Any, scales: np.ndarray | None, offsets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols, bands) float32 values, scaled when ``scales`` is given, and the nodata pixels.

    One band at a time, so that no native-type or float64 copy of the whole scene is held; a pixel
    is nodata when GDAL's mask (nodata value, internal mask or alpha band) says so in any band.
    """
    image = np.empty((src.height, src.width, src.count), dtype=np.float32)
    nodata = np.zeros((src.height, src.width), dtype=bool)
    for i, bidx in enumerate(src.indexes):
        band = src.read(bidx).astype(np.float64)
        image[..., i] = band if scales is None else band * scales[i] + offsets[i]
        nodata |= src.read_masks(bidx) == 0
    return image, nodata


def read_geotiff(
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
    wavelengths: Sequence[float] | None = None,
    wavelength_units: str | None = None,
    layout: str | None = None,
    variable: str | None = None,
) -> HyperCube:
    """A cube from a band-stacked GeoTIFF or COG: one raster band per spectral band.

    Pixels the file marks as nodata (its nodata value, an internal mask or an alpha band) are
    masked as ``invalid="mask"`` masks them, whatever ``invalid`` says; ``invalid`` applies to
    other NaN/Inf values. The bands' scale/offset (``value * scale + offset``) are applied when
    the file states them; otherwise integer bands need ``scale=`` (the data are divided by it).
    Wavelengths come from ``wavelengths=`` or what the file states (see
    :func:`_stated_wavelengths`); units unsaid are told from the values' magnitude (nm or um).
    ``rows``, ``cols`` and ``chunks`` are accepted for the readers' common signature and not
    used: the file states its size, and the bands are read into memory. ``layout`` and
    ``variable`` are refused: a GeoTIFF holds one array, bands first by definition.
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise DataFileError(f"{str(path)!r} is empty (0 bytes)")
    check_choice("invalid", invalid, ("raise", "mask", "fill"))
    for option, value in (("layout", layout), ("variable", variable)):
        if value is not None:
            raise InputError(f"{option}= does not apply to a GeoTIFF: its raster bands are the spectral bands")
    scale = check_scale(scale)
    with _opened(path) as src:
        meta = _metadata(src)
        source = repr(str(path))
        if meta["tags"].get(KIND_ATTR) == "result":
            raise DataFileError(f"{source} holds unmixing result maps (written by to_geotiff), not a cube")
        dtype = meta["dtype"]
        if np.issubdtype(dtype, np.complexfloating):
            raise InputError(f"{source}: the bands are complex ({dtype}); a reflectance cube needs real numbers")
        n_bands = src.count
        provenance: dict = {"reader": "geotiff", "file": path.name}
        scales, offsets = meta["scales"], meta["offsets"]
        if np.any(scales != 1) or np.any(offsets != 0):
            if scale is not None:
                raise InputError(
                    f"{source} states its own band scale/offset (value * scale + offset), which are applied; "
                    "do not pass scale="
                )
            provenance.update(
                scale_from="band scale/offset", band_scale=_compact(scales), band_offset=_compact(offsets)
            )
        elif scale is not None:
            scales, offsets = np.full(n_bands, 1.0 / scale), np.zeros(n_bands)
            provenance["scale"] = scale
        elif np.issubdtype(dtype, np.integer):
            top = max(int(src.read(i).max()) for i in src.indexes) if src.width * src.height else None
            raise integer_without_scale(f"{source} (no band scale/offset stated)", dtype, top)
        else:
            scales = offsets = None
        image, nodata = _read_bands(src, scales, offsets)
    policy = invalid
    if nodata.any():
        image[nodata] = np.nan  # the whole pixel: a spectrum with a hole is not a spectrum
        provenance.update(nodata_pixels=int(nodata.sum()), nodata=repr(meta["nodata"]))
        if invalid == "raise":
            stray = int(np.count_nonzero(~np.isfinite(image[~nodata]).all(axis=-1)))
            if stray:
                raise InputError(
                    f"{source} has {stray} pixel(s) with NaN or Inf values besides its nodata; pass invalid='mask' "
                    "to drop them from fitting or invalid='fill' to replace them by the mean valid spectrum"
                )
            policy = "mask"
    wl, units, notes = _wavelengths(meta, n_bands, source, wavelengths, wavelength_units)
    provenance.update(notes)
    cube = cube_with_truth(
        image,
        truth,
        name=name or path.stem,
        source=str(path),
        provenance=provenance,
        wavelengths=wl,
        wavelength_units=units,
        invalid=policy,
        negative=negative,
    )
    if not meta["georeferenced"]:
        return cube
    gt = meta["transform"]
    ds = cube.ds.assign_coords(**grid_coords(gt, *image.shape[:2]), spatial_ref=spatial_ref_coord(meta["crs"], gt))
    return HyperCube(ds, validate=False)


# ---------------------------------------------------------------------------- writing
def _maps(ds: xr.Dataset) -> tuple[list[np.ndarray], list[str], list[dict]]:
    """The (y, x) maps of ``ds`` to write: abundances first, then every other per-pixel variable."""
    names = [str(n) for n in ds["endmember"].values] if "endmember" in ds.coords else []
    order = [ABUNDANCES] + [v for v in ds.data_vars if v != ABUNDANCES]
    arrays, descriptions, tags = [], [], []
    for var in order:
        if var not in ds:
            continue
        da = ds[var]
        if set(da.dims) == {"endmember", "y", "x"}:
            values = da.transpose("endmember", "y", "x").values
            for i, em in enumerate(names):
                arrays.append(values[i])
                descriptions.append(em if var == ABUNDANCES else f"{var}: {em}")
                tags.append({"variable": var, "endmember": em})
        elif set(da.dims) == {"y", "x"}:
            arrays.append(da.transpose("y", "x").values)
            descriptions.append(var)
            tags.append({"variable": var})
    return arrays, descriptions, tags


def write_maps(
    ds: xr.Dataset, path: str | os.PathLike, *, tags: Mapping[str, Any] | None = None, cog: bool = False
) -> Path:
    """Write the per-pixel maps of ``ds`` to a float32 GeoTIFF (or COG) on the grid of its input.

    One band per endmember of ``abundances`` (described by the endmember's name), then one per
    endmember of each other ``(endmember, y, x)`` variable and one per ``(y, x)`` variable (error
    or uncertainty maps), each band tagged with its ``variable`` and ``endmember``. Pixels where
    every abundance is NaN (invalid in the cube) are NaN in every band; nodata is NaN. The CRS and
    geotransform are those of ``ds``'s ``spatial_ref`` (none written when it has none). Written
    atomically: an interrupted write leaves any previous file intact.
    """
    rasterio = _rasterio()
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning

    if ABUNDANCES not in ds:
        raise InputError(f"nothing to write: the dataset has no {ABUNDANCES!r} variable")
    arrays, descriptions, band_tags = _maps(ds)
    stack = np.stack(arrays).astype(np.float32)
    invalid = np.isnan(ds[ABUNDANCES].transpose("endmember", "y", "x").values).all(axis=0)
    stack[:, invalid] = np.nan
    wkt, gt = crs_wkt(ds), geotransform(ds)
    profile: dict[str, Any] = dict(
        driver="COG" if cog else "GTiff",
        width=stack.shape[2],
        height=stack.shape[1],
        count=stack.shape[0],
        dtype="float32",
        nodata=np.nan,
        compress="deflate",
    )
    if wkt:
        profile["crs"] = CRS.from_wkt(wkt)
    if gt is not None:
        profile["transform"] = Affine.from_gdal(*gt)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(stack)
            for i, (text, band) in enumerate(zip(descriptions, band_tags), start=1):
                dst.set_band_description(i, text)
                dst.update_tags(i, **band)
            dst.update_tags(**{str(k): str(v) for k, v in (tags or {}).items()}, **{KIND_ATTR: "result"})
    return Path(path)
