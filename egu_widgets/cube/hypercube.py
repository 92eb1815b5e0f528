"""HyperCube: a hyperspectral image and its optional ground truth, as one xarray Dataset.

The wrapper keeps no state of its own: everything lives in the Dataset (``cube.ds``) so that a
cube survives ``to_netcdf`` / ``open_cube`` unchanged, and any xarray tool can read it.

Layout of ``cube.ds``:

- ``reflectance(y, x, band)`` float32, reflectance (unitless, usually in [0, 1]);
- coordinate ``wavelength(band)`` with attr ``units`` when known (else the coordinate is absent);
- optional truth: ``endmembers(endmember, band)``, ``abundances(endmember, y, x)`` and the
  coordinate ``endmember`` holding material names;
- optional georeferencing (cubes read from a GeoTIFF): a ``spatial_ref`` coordinate with the CRS
  and GDAL transform as rioxarray keeps them, and ``x``/``y`` at the pixel centres (see
  :mod:`.georef`); crops and results carry both;
- attrs: ``name``, ``source`` (where it came from), ``provenance`` (JSON string: how it was made).

A lazy cube (dask-backed ``reflectance``) is checked chunk by chunk as it is computed, never at
construction (see :mod:`.lazy`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from . import georef
from .lazy import BlockCheck, checked, is_checked

__all__ = ["ABUNDANCES", "ARRAY_LAYOUTS", "ENDMEMBERS", "REFLECTANCE", "HyperCube", "check_dtype", "check_reflectance"]

REFLECTANCE = "reflectance"
ENDMEMBERS = "endmembers"
ABUNDANCES = "abundances"


#: Accepted ``layout=`` of :meth:`HyperCube.from_array`.
ARRAY_LAYOUTS = ("rows,cols,bands", "bands,rows,cols")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_dtype(dtype: Any, *, what: str = "reflectance", maximum: Any = None) -> None:
    """Refuse dtypes a cube cannot hold: not real numbers, or raw integers (they need a scale first)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b" or np.issubdtype(dtype, np.integer):
        top = f", max {maximum}" if maximum is not None else ""
        raise InputError(
            f"{what} is raw integer data ({dtype}{top}); divide it by its scale first or pass scale= "
            "(e.g. scale=10000 or the file's maxValue; CLI --scale)"
        )
    if not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{what} must be real numbers; got dtype {dtype}")


def _as_float_image(reflectance: Any, layout: str | None = None) -> np.ndarray:
    arr = np.asarray(reflectance)
    if arr.ndim != 3:
        raise InputError(
            f"a cube must be 3-D (rows, cols, bands); got an array of shape {arr.shape}. "
            "Reshape it, e.g. pixels.reshape(rows, cols, bands)."
        )
    if layout is not None and layout not in ARRAY_LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(repr(v) for v in ARRAY_LAYOUTS)}; got {layout!r}")
    a, b, c = arr.shape
    if layout is None and a > b == c:
        raise InputError(
            f"the array has shape {arr.shape}: it looks like (bands, rows, cols), a {b}x{c} image of {a} bands, "
            "but a cube is (rows, cols, bands); pass layout='bands,rows,cols' to read it so, or "
            f"layout='rows,cols,bands' if it is a {a}x{b} image of {c} bands"
        )
    if layout == "bands,rows,cols":
        arr = np.moveaxis(arr, 0, -1)
    check_dtype(arr.dtype, maximum=arr.max() if arr.size and arr.dtype.kind in "iub" else None)
    if arr.dtype.itemsize > 4 and arr.size:
        with np.errstate(invalid="ignore"):
            top = max(abs(float(np.nanmax(arr))), abs(float(np.nanmin(arr)))) if not np.isnan(arr).all() else 0.0
        if np.isinf(top):  # Inf pixels are reported by the NaN/Inf policy; look at the finite values
            finite = np.abs(arr[np.isfinite(arr)])
            top = float(finite.max()) if finite.size else 0.0
        if top > _FLOAT32_MAX:
            raise InputError(
                f"reflectance has values up to {top:.3g}, beyond float32's range ({_FLOAT32_MAX:.3g}); "
                "these are not reflectance: check the file's units, or pass scale= to divide them"
            )
    return arr.astype(np.float32, copy=False)


def check_reflectance(image: np.ndarray, *, what: str = "cube") -> None:
    """Refuse values that would make unmixing silently wrong (NaN/Inf, all zero, negative)."""
    finite = np.isfinite(image)
    if not finite.all():
        bad = np.count_nonzero(~finite.all(axis=-1))
        raise InputError(
            f"{what} has {bad} pixel(s) with NaN or Inf values; pass invalid='mask' to drop them "
            "from fitting (their abundances come out NaN) or invalid='fill' to replace them by "
            "the mean of the valid pixels"
        )
    if not np.any(image):
        raise InputError(f"{what} is all zeros; there is nothing to unmix (check the file or its scale)")
    if image.min() < 0:
        n_neg = np.count_nonzero(image < 0)
        raise InputError(
            f"{what} has {n_neg} negative value(s) (min {float(image.min()):.4g}); reflectance cannot be "
            "negative. Pass negative='clip' to set them to zero (common after atmospheric correction)"
        )


class HyperCube:
    """A hyperspectral image (rows × cols × bands) with optional truth; see the module doc."""

    __slots__ = ("ds",)

    def __init__(self, ds: xr.Dataset, *, validate: bool = True):
        if not isinstance(ds, xr.Dataset):
            raise InputError(
                f"HyperCube wraps an xarray.Dataset; got {type(ds).__name__}. Use HyperCube.from_array for arrays"
            )
        if REFLECTANCE not in ds:
            raise InputError(f"dataset has no {REFLECTANCE!r} variable (found: {sorted(ds.data_vars)})")
        if ds[REFLECTANCE].dims != ("y", "x", "band"):
            raise InputError(f"{REFLECTANCE!r} must have dims ('y', 'x', 'band'); got {ds[REFLECTANCE].dims}")
        check_dtype(ds[REFLECTANCE].dtype)
        if validate:
            data = ds[REFLECTANCE].data
            if hasattr(data, "dask"):  # lazy cube: nothing read now; each chunk is checked when computed
                if not is_checked(data):
                    ds = ds.assign({REFLECTANCE: ds[REFLECTANCE].copy(data=checked(data, BlockCheck()))})
            else:
                check_reflectance(data)
        self.ds = ds

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_array(
        cls,
        reflectance: Any,
        *,
        wavelengths: Sequence[float] | None = None,
        wavelength_units: str = "nm",
        endmembers: Any = None,
        abundances: Any = None,
        endmember_names: Sequence[str] | None = None,
        name: str = "cube",
        source: str = "array",
        provenance: dict | None = None,
        invalid: str = "raise",
        negative: str = "raise",
        layout: str | None = None,
    ) -> HyperCube:
        """Build a cube from a (rows, cols, bands) array and optional truth.

        ``endmembers`` is (P, bands); ``abundances`` is (P, rows, cols) (or (rows, cols, P), detected
        by shape). ``invalid`` ('raise' | 'mask' | 'fill') says what to do with NaN/Inf pixels;
        ``negative`` ('raise' | 'clip') what to do with negative values. ``layout`` states the
        array's axis order, ``"rows,cols,bands"`` or ``"bands,rows,cols"``; without it an array
        shaped (a, b, b) with a > b, which reads more naturally as a square image of ``a`` bands
        stored bands first, is refused rather than taken as an a x b image of b bands. Integer
        arrays are refused (divide by their scale first), and so are values beyond float32's range.
        """
        image = _as_float_image(reflectance, layout)
        rows, cols, bands = image.shape
        if min(rows, cols, bands) < 1:
            raise InputError(f"cube has an empty dimension: shape {image.shape}")
        provenance = dict(provenance or {})
        image, notes, dropped = _repair(image, invalid=invalid, negative=negative)
        provenance.update(notes)
        data_vars: dict[str, Any] = {REFLECTANCE: (("y", "x", "band"), image)}
        if invalid == "mask" and dropped.any():
            data_vars["valid"] = (("y", "x"), (~dropped).astype(np.int8))
        coords: dict[str, Any] = {"y": np.arange(rows), "x": np.arange(cols), "band": np.arange(bands)}
        if wavelengths is not None:
            wl = np.asarray(wavelengths, dtype=np.float64).ravel()
            if wl.shape != (bands,):
                raise InputError(f"{wl.size} wavelengths given for a cube with {bands} bands")
            coords["wavelength"] = xr.Variable(("band",), wl, attrs={"units": wavelength_units})
        n_em = None
        if endmembers is not None:
            em = np.asarray(endmembers, dtype=np.float64)
            if em.ndim != 2:
                raise InputError(f"truth endmembers must be 2-D (materials, bands); got shape {em.shape}")
            if em.shape[1] != bands and em.shape[0] == bands:
                em = em.T
            if em.shape[1] != bands:
                raise InputError(
                    f"truth endmembers have {em.shape[1]} bands but the cube has {bands}; they must describe the same bands"
                )
            n_em = em.shape[0]
            data_vars[ENDMEMBERS] = (("endmember", "band"), em)
        if abundances is not None:
            ab = np.asarray(abundances, dtype=np.float64)
            if ab.ndim == 2 and ab.shape[1] == rows * cols:  # (P, pixels) in row-major pixel order
                ab = ab.reshape(ab.shape[0], rows, cols)
            if ab.ndim != 3:
                raise InputError(f"truth abundances must be (materials, rows, cols); got shape {ab.shape}")
            if ab.shape[1:] != (rows, cols) and ab.shape[:2] == (rows, cols):
                ab = np.moveaxis(ab, -1, 0)
            if ab.shape[1:] != (rows, cols):
                raise InputError(
                    f"truth abundances cover {ab.shape[1]}x{ab.shape[2]} pixels but the cube is {rows}x{cols}"
                )
            if n_em is not None and ab.shape[0] != n_em:
                raise InputError(f"truth has {n_em} endmembers but {ab.shape[0]} abundance maps")
            n_em = ab.shape[0]
            data_vars[ABUNDANCES] = (("endmember", "y", "x"), ab)
        if n_em is not None:
            names = list(endmember_names) if endmember_names is not None else [f"material {i + 1}" for i in range(n_em)]
            if len(names) != n_em:
                raise InputError(f"{len(names)} endmember names given for {n_em} endmembers")
            coords["endmember"] = np.array([str(n) for n in names])
        ds = xr.Dataset(data_vars, coords=coords)
        if "endmember" in ds.coords:  # fixed-width unicode round-trips through netCDF unchanged
            ds = ds.assign_coords(endmember=ds["endmember"].values.astype(str))
        ds[REFLECTANCE].attrs.update(long_name="reflectance", units="1")
        ds.attrs.update(name=name, source=source, provenance=json.dumps(provenance, sort_keys=True, default=str))
        return cls(ds, validate=True)

    # ------------------------------------------------------------------ views
    @property
    def reflectance(self) -> xr.DataArray:
        return self.ds[REFLECTANCE]

    @property
    def name(self) -> str:
        return str(self.ds.attrs.get("name", "cube"))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.reflectance.shape)  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def n_bands(self) -> int:
        return self.shape[2]

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    @property
    def pixels(self) -> np.ndarray:
        """(rows*cols, bands) float32, pixels in row-major (y then x) order."""
        return np.ascontiguousarray(self.reflectance.values.reshape(self.n_pixels, self.n_bands))

    @property
    def image(self) -> np.ndarray:
        """(rows, cols, bands) float32 array."""
        return self.reflectance.values

    @property
    def wavelengths(self) -> np.ndarray | None:
        return self.ds["wavelength"].values if "wavelength" in self.ds.coords else None

    @property
    def wavelength_units(self) -> str | None:
        return self.ds["wavelength"].attrs.get("units") if "wavelength" in self.ds.coords else None

    @property
    def valid_mask(self) -> np.ndarray:
        """(rows, cols) bool: pixels usable for fitting (False where invalid='mask' dropped them)."""
        if "valid" in self.ds:
            return self.ds["valid"].values.astype(bool)
        return np.ones((self.height, self.width), dtype=bool)

    @property
    def has_truth(self) -> bool:
        return ABUNDANCES in self.ds or ENDMEMBERS in self.ds

    @property
    def n_true_endmembers(self) -> int | None:
        return int(self.ds.sizes["endmember"]) if "endmember" in self.ds.sizes else None

    @property
    def endmember_names(self) -> list[str] | None:
        return [str(v) for v in self.ds["endmember"].values] if "endmember" in self.ds.coords else None

    @property
    def true_endmembers(self) -> np.ndarray | None:
        """(P, bands) float64 truth endmembers, or None."""
        return self.ds[ENDMEMBERS].values if ENDMEMBERS in self.ds else None

    @property
    def true_abundances(self) -> np.ndarray | None:
        """(P, rows, cols) float64 truth abundance maps, or None."""
        return self.ds[ABUNDANCES].values if ABUNDANCES in self.ds else None

    @property
    def true_abundance_pixels(self) -> np.ndarray | None:
        """(rows*cols, P) truth abundances in the same pixel order as :attr:`pixels`, or None."""
        ab = self.true_abundances
        return None if ab is None else ab.reshape(ab.shape[0], -1).T.copy()

    @property
    def crs_wkt(self) -> str | None:
        """The coordinate reference system as WKT, or None when the cube has none."""
        return georef.crs_wkt(self.ds)

    @property
    def geotransform(self) -> tuple[float, ...] | None:
        """GDAL's geotransform ``(c, a, b, f, d, e)`` of the cube's first pixel, or None."""
        return georef.geotransform(self.ds)

    @property
    def provenance(self) -> dict:
        return json.loads(self.ds.attrs.get("provenance", "{}"))

    # ------------------------------------------------------------------ new cubes
    def isel(self, y: slice | None = None, x: slice | None = None) -> HyperCube:
        """A spatial crop (a new cube; truth maps are cropped along)."""
        sel = {k: v for k, v in (("y", y), ("x", x)) if v is not None}
        return HyperCube(self.ds.isel(sel), validate=False)

    def without_truth(self) -> HyperCube:
        drop = [v for v in (ENDMEMBERS, ABUNDANCES) if v in self.ds]
        ds = self.ds.drop_vars(drop)
        if "endmember" in ds.coords:
            ds = ds.drop_vars("endmember")
        return HyperCube(ds, validate=False)

    def to_netcdf(self, path) -> None:
        """Write the cube (and truth) to netCDF atomically; ``open_cube(path)`` reads it back identical."""
        from .formats.ncfile import write_dataset

        write_dataset(self.ds, path, kind="cube")

    def to_zarr(self, path) -> None:
        """Write the cube (and truth) to a Zarr store atomically, a lazy cube chunk by chunk.

        ``open_cube(path)`` reads it back identical; nothing is left at ``path`` when a chunk fails.
        """
        from .formats.zarrstore import write_store

        write_store(self.ds, path, kind="cube")

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        h, w, b = self.shape
        wl = self.wavelengths
        span = f", {wl.min():.0f}-{wl.max():.0f} {self.wavelength_units}" if wl is not None and wl.size else ""
        truth = (
            f", truth: {self.n_true_endmembers} endmembers {self.endmember_names}" if self.has_truth else ", no truth"
        )
        return f"<HyperCube {self.name!r}: {h}x{w} pixels, {b} bands{span}{truth}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HyperCube) and self.ds.identical(other.ds)

    __hash__ = None  # type: ignore[assignment]


def _repair(image: np.ndarray, *, invalid: str, negative: str) -> tuple[np.ndarray, dict, np.ndarray]:
    """Apply the user's chosen policy for NaN/Inf pixels and negative values, noting what was done."""
    if invalid not in ("raise", "mask", "fill"):
        raise InputError(f"invalid={invalid!r}; choose 'raise', 'mask' or 'fill'")
    if negative not in ("raise", "clip"):
        raise InputError(f"negative={negative!r}; choose 'raise' or 'clip'")
    notes: dict = {}
    bad = ~np.isfinite(image).all(axis=-1)
    if bad.any() and invalid != "raise":
        if bad.all():
            raise InputError("every pixel has NaN or Inf values; there is nothing to unmix")
        image = image.copy()
        # Both policies need finite numbers in the array; 'mask' additionally keeps a `valid` map
        # so that fitting skips those pixels and results mark them NaN (cube.valid_mask).
        image[bad] = image[~bad].mean(axis=0)
        notes["invalid_pixels"] = int(bad.sum())
        notes["invalid_policy"] = invalid
    if negative == "clip" and np.nanmin(image) < 0:
        notes["clipped_negative_values"] = int(np.count_nonzero(image < 0))
        image = np.clip(image, 0, None)
    return image, notes, bad
