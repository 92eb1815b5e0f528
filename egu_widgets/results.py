"""UnmixingResult: what an unmixing method found, as an xarray Dataset saved to netCDF.

Layout of ``result.ds``:

- ``abundances(endmember, y, x)`` float64, non-negative and summing to one per pixel
  (NaN at pixels the cube marked invalid);
- ``endmembers(endmember, band)`` float64 when the method yields spectra (for EGU-Net the
  reference spectra its bundle labels were computed against; see
  :attr:`egu_widgets.engine.EGUNet.endmembers_`);
- optional training curves ``history_<name>(epoch)`` (e.g. ``history_loss_total``);
- for an ensemble (``ensemble=K``; :mod:`egu_widgets.engine.ensemble`) the spread across members,
  ``abundances_std``, ``abundances_q05`` and ``abundances_q95`` ``(endmember, y, x)`` (standard
  deviation and a 90 % interval), and every member's maps ``abundances_members(member,
  endmember, y, x)``; ``abundances`` is then the members' mean;
- coordinates ``endmember`` (names), ``wavelength(band)`` when the cube had them;
- attrs: ``method``, ``config`` (JSON), ``cube_name``, ``seconds``, ``partial`` (1 when training
  was stopped early), ``stop_reason``, and when truth was known ``rmse``, ``sad`` (aligned; see
  :mod:`egu_widgets.metrics`) and ``scores`` (JSON with per-material figures).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .cube.formats.ncfile import KIND_ATTR, read_dataset, write_dataset
from .cube.georef import SPATIAL_REF
from .cube.hypercube import HyperCube
from .errors import DataFileError, InputError

__all__ = ["UnmixingResult"]


class UnmixingResult:
    """What an unmixing method found, kept in one :class:`xarray.Dataset` (``.ds``; see the module doc)."""

    __slots__ = ("ds",)

    def __init__(self, ds: xr.Dataset):
        if "abundances" not in ds:
            raise InputError(f"an unmixing result needs an 'abundances' variable (found: {sorted(ds.data_vars)})")
        self.ds = ds

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        cube: HyperCube,
        abundances: np.ndarray,
        endmembers: np.ndarray | None = None,
        *,
        method: str,
        config: Mapping[str, Any] | None = None,
        seconds: float | None = None,
        history: Mapping[str, Any] | None = None,
        partial: bool = False,
        stop_reason: str = "",
        names: list[str] | None = None,
        score: bool = True,
    ) -> UnmixingResult:
        """Wrap a method's output. ``abundances`` is (pixels, P) in cube pixel order or (P, rows, cols).

        When the cube has truth and ``score`` is true, endmembers are reordered to match the truth
        (Hungarian alignment) and the aligned scores are stored in attrs. Lazy abundances (a dask
        array, or the ``(endmember, y, x)`` DataArray of a lazy cube's ``abundance_maps``) stay
        lazy, to be written chunk by chunk, and are not scored.
        """
        h, w, b = cube.shape
        if _is_lazy(abundances):
            return cls._from_lazy(cube, abundances, endmembers, method=method, config=config, seconds=seconds,
                                  history=history, partial=partial, stop_reason=stop_reason, names=names)  # fmt: skip
        ab = np.asarray(abundances, dtype=np.float64)
        if ab.ndim == 2:
            if ab.shape[0] != h * w:
                raise InputError(f"abundances have {ab.shape[0]} pixels; the cube has {h * w}")
            ab = ab.T.reshape(-1, h, w)
        if ab.ndim != 3 or ab.shape[1:] != (h, w):
            raise InputError(f"abundances must be (pixels, P) or (P, {h}, {w}); got {np.shape(abundances)}")
        valid = cube.valid_mask
        if not valid.all():
            ab = ab.copy()
            ab[:, ~valid] = np.nan
        result = cls._assemble(cube, ab, endmembers, method=method, config=config, seconds=seconds,
                               history=history, partial=partial, stop_reason=stop_reason, names=names)  # fmt: skip
        if score and cube.true_abundances is not None:
            result = result.aligned_to(cube)
        return result

    @classmethod
    def _from_lazy(
        cls, cube: HyperCube, abundances: Any, endmembers: np.ndarray | None, **attrs: Any
    ) -> UnmixingResult:
        """A result whose abundances stay a dask array, computed chunk by chunk when written.

        Not scored (scoring reads every pixel): call :meth:`aligned_to` when the maps fit in memory.
        """
        import dask.array as da

        h, w, _ = cube.shape
        ab = abundances.data if isinstance(abundances, xr.DataArray) else abundances
        if isinstance(abundances, xr.DataArray) and abundances.dims != ("endmember", "y", "x"):
            raise InputError(f"lazy abundances must have dims ('endmember', 'y', 'x'); got {abundances.dims}")
        if ab.ndim != 3 or tuple(ab.shape[1:]) != (h, w):
            raise InputError(f"lazy abundances must be (P, {h}, {w}); got {tuple(ab.shape)}")
        ab = ab.astype(np.float64)
        if "valid" in cube.ds:  # invalid pixels NaN, as for in-memory results; read with the chunks
            ab = da.where(cube.ds["valid"].data.astype(bool)[None], ab, np.nan)
        return cls._assemble(cube, ab, endmembers, **attrs)

    @classmethod
    def _assemble(
        cls,
        cube: HyperCube,
        ab: Any,
        endmembers: np.ndarray | None,
        *,
        method: str,
        config: Mapping[str, Any] | None,
        seconds: float | None,
        history: Mapping[str, Any] | None,
        partial: bool,
        stop_reason: str,
        names: list[str] | None,
    ) -> UnmixingResult:
        """The result's Dataset around (P, rows, cols) abundances, in memory or lazy."""
        b = cube.n_bands
        n_em = ab.shape[0]
        data_vars: dict[str, Any] = {"abundances": (("endmember", "y", "x"), ab)}
        if endmembers is not None:
            em = np.asarray(endmembers, dtype=np.float64)
            if em.shape != (n_em, b):
                raise InputError(f"endmembers must be ({n_em}, {b}); got {em.shape}")
            data_vars["endmembers"] = (("endmember", "band"), em)
        for key, values in (history or {}).items():
            data_vars[f"history_{key}"] = (("epoch",), np.asarray(values, dtype=np.float64))
        coords: dict[str, Any] = {"y": cube.ds["y"].values, "x": cube.ds["x"].values}
        if endmembers is not None or "band" in cube.ds.coords:
            coords["band"] = cube.ds["band"].values
        if "wavelength" in cube.ds.coords:
            coords["wavelength"] = cube.ds["wavelength"]
        if SPATIAL_REF in cube.ds.coords:  # the CRS and transform, so that maps are written on the input's grid
            coords[SPATIAL_REF] = cube.ds[SPATIAL_REF]
        coords["endmember"] = np.array(names if names is not None else [f"endmember {i + 1}" for i in range(n_em)])
        ds = xr.Dataset(data_vars, coords=coords)
        if "epoch" in ds.dims:
            ds = ds.assign_coords(epoch=np.arange(1, ds.sizes["epoch"] + 1))
        ds.attrs.update(
            method=method,
            config=json.dumps(dict(config or {}), sort_keys=True, default=str),
            cube_name=cube.name,
            seconds=float(seconds) if seconds is not None else float("nan"),
            partial=int(bool(partial)),
            stop_reason=stop_reason,
        )
        return cls(ds)

    # ------------------------------------------------------------------ views
    @property
    def abundances(self) -> xr.DataArray:
        return self.ds["abundances"]

    @property
    def endmembers(self) -> xr.DataArray | None:
        return self.ds.get("endmembers")

    @property
    def abundance_pixels(self) -> np.ndarray:
        """(rows*cols, P) abundances in cube pixel order."""
        ab = self.abundances.values
        return ab.reshape(ab.shape[0], -1).T.copy()

    @property
    def n_endmembers(self) -> int:
        return int(self.ds.sizes["endmember"])

    @property
    def method(self) -> str:
        return str(self.ds.attrs.get("method", ""))

    @property
    def config(self) -> dict:
        return json.loads(self.ds.attrs.get("config", "{}"))

    @property
    def partial(self) -> bool:
        return bool(self.ds.attrs.get("partial", 0))

    @property
    def scores(self) -> dict:
        return json.loads(self.ds.attrs.get("scores", "{}"))

    @property
    def rmse(self) -> float | None:
        return float(self.ds.attrs["rmse"]) if "rmse" in self.ds.attrs else None

    @property
    def sad(self) -> float | None:
        return float(self.ds.attrs["sad"]) if "sad" in self.ds.attrs else None

    @property
    def history(self) -> dict[str, np.ndarray]:
        return {k[len("history_") :]: self.ds[k].values for k in self.ds.data_vars if k.startswith("history_")}

    # ------------------------------------------------------------------ scoring
    def aligned_to(self, cube: HyperCube) -> UnmixingResult:
        """A new result with endmembers reordered to the cube's truth, named after it, and scored."""
        from . import metrics

        if cube.true_abundances is None:
            raise InputError("the cube has no truth abundances to align to; open it with truth=")
        true_ab = cube.true_abundance_pixels
        est_ab = self.abundance_pixels
        if est_ab.shape[0] != true_ab.shape[0]:
            raise InputError(f"the result covers {est_ab.shape[0]} pixels, the truth {true_ab.shape[0]}")
        valid = cube.valid_mask.ravel()
        est_em = self.endmembers.values if self.endmembers is not None else None
        scores = metrics.score(
            est_ab[valid], true_ab[valid], est_endmembers=est_em, true_endmembers=cube.true_endmembers
        )
        perm = np.asarray(scores.pop("permutation"))
        ds = self.ds.isel(endmember=perm)
        names = list(cube.endmember_names or [])
        if len(names) == len(perm):
            ds = ds.assign_coords(endmember=np.array(names))
        ds.attrs["rmse"] = float(scores["rmse"])
        sad = scores.get("sad")
        if sad is not None and np.isfinite(sad):
            ds.attrs["sad"] = float(sad)
        ds.attrs["scores"] = json.dumps(scores, default=_jsonable)
        return UnmixingResult(ds)

    # ------------------------------------------------------------------ files
    def to_netcdf(self, path: str | os.PathLike) -> None:
        """Write atomically: an interrupted write leaves any previous file intact.

        Lazy abundances (a result of a lazy cube) are computed and written chunk by chunk.
        """
        write_dataset(self.ds, path, kind="result")

    def to_zarr(self, path: str | os.PathLike) -> Path:
        """Write to a Zarr store atomically, lazy abundances chunk by chunk; :meth:`open` reads it back.

        The store is written beside ``path`` under a temporary name and renamed into place when
        every chunk is written: a chunk that fails (bad input found mid-stream) or an interruption
        leaves any previous store intact and nothing half-written. Needs the zarr package.

        Examples
        --------
        >>> result.to_zarr("abundances.zarr")  # doctest: +SKIP
        """
        from .cube.formats.zarrstore import write_store

        return write_store(self.ds, path, kind="result")

    def to_geotiff(self, path: str | os.PathLike, *, cog: bool = False) -> Path:
        """Write the maps to a float32 GeoTIFF (a Cloud-Optimized one with ``cog=True``) for GIS tools.

        One band per endmember, described by its name, then the other per-pixel maps (error or
        uncertainty variables with dims ``(endmember, y, x)`` or ``(y, x)``); invalid pixels and
        nodata are NaN. The CRS and geotransform are the input cube's, so that GDAL and QGIS lay
        the maps over the scene; a cube without them gives a file without them. Needs rasterio
        (``pip install "egu_widgets[geo]"``). Written atomically.

        Examples
        --------
        >>> result = egu_widgets.unmix(open_cube("scene.tif"), method="vca-fcls", n_endmembers=3)  # doctest: +SKIP
        >>> result.to_geotiff("abundances.tif")  # doctest: +SKIP
        """
        from .cube.formats.geotiff import write_maps

        tags = {k: v for k, v in self.ds.attrs.items() if isinstance(v, (str, int, float, np.number))}
        return write_maps(self.ds, path, tags=tags, cog=cog)

    @classmethod
    def open(cls, path: str | os.PathLike, chunks: dict | None = None) -> UnmixingResult:
        """Read a result written by :meth:`to_netcdf` or :meth:`to_zarr`; ``chunks`` reads it lazily."""
        from .cube.formats.zarrstore import is_store, read_store

        ds = read_store(path, chunks) if is_store(path) else read_dataset(path, chunks)
        kind = ds.attrs.get(KIND_ATTR)
        if kind == "cube" or (kind is None and "abundances" not in ds):
            what = "a cube (open it with open_cube)" if kind == "cube" else "a file without an 'abundances' variable"
            raise DataFileError(f"{str(path)!r} is not an egu_widgets result file: it is {what}")
        ds.attrs.pop(KIND_ATTR, None)
        check_result_dataset(ds, source=repr(str(path)))
        return cls(ds)

    def __repr__(self) -> str:
        try:
            h, w = self.ds.sizes["y"], self.ds.sizes["x"]
            score = f", rmse={self.rmse:.4f}" if self.rmse is not None else ""
            score += f", sad={self.sad:.2f} deg" if self.sad is not None else ""
            part = " (partial)" if self.partial else ""
            return f"<UnmixingResult {self.method}{part}: {self.n_endmembers} endmembers on {h}x{w}{score}>"
        except Exception:  # a repr must never raise, whatever the dataset holds
            dims = ", ".join(f"{k}={v}" for k, v in self.ds.sizes.items())
            return f"<UnmixingResult (not a well-formed result: {dims})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnmixingResult) and self.ds.identical(other.ds)

    __hash__ = None  # type: ignore[assignment]


def _is_lazy(value: Any) -> bool:
    """True for a dask array or a dask-backed DataArray."""
    data = value.data if isinstance(value, xr.DataArray) else value
    return hasattr(data, "dask")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_result_dataset(ds: xr.Dataset, *, source: str = "the result") -> None:
    """Refuse a result dataset whose variables or attrs are not what :class:`UnmixingResult` writes.

    Checks dims and dtypes (``abundances(endmember, y, x)``, ``endmembers(endmember, band)``,
    ``history_*(epoch)``, an ensemble's spread and members' maps, all real numbers) and attrs
    (``config``/``scores`` JSON objects; ``rmse``, ``sad``, ``seconds``, ``partial`` numbers), so
    that a damaged or hand-made file fails on open with one message instead of giving wrong pixels
    or a traceback later.
    """
    maps = ("endmember", "y", "x")
    expected = {
        "abundances": maps,
        "endmembers": ("endmember", "band"),
        **{f"abundances_{s}": maps for s in ("std", "q05", "q95")},
        "abundances_members": ("member", *maps),
    }
    if "abundances" not in ds:
        raise DataFileError(f"{source}: a result needs an 'abundances' variable (found: {sorted(ds.data_vars)})")
    for var in ds.data_vars:
        name = str(var)
        dims = expected.get(name, ("epoch",) if name.startswith("history_") else None)
        if dims is None:
            continue
        da = ds[var]
        if da.dims != dims:
            raise DataFileError(
                f"{source}: {name!r} has dims {da.dims}; a result stores {name}{dims}. The file was not written "
                "by UnmixingResult.to_netcdf or was changed since; transpose it (e.g. ds.transpose(*dims)) or write it again"
            )
        if da.dtype.kind not in "iuf":
            raise DataFileError(f"{source}: {name!r} holds {da.dtype} values; a result stores real numbers")
    for key in ("config", "scores"):
        if key in ds.attrs:
            text = ds.attrs[key]
            try:
                value = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise DataFileError(f"{source}: attribute {key!r} must be a JSON object (text); got {text!r:.60}")
    for key in ("rmse", "sad", "seconds", "partial"):
        value = ds.attrs.get(key)
        if isinstance(value, np.ndarray) and value.size == 1:  # netCDF gives 1-element arrays at times
            value = value.reshape(-1)[0]
        if key in ds.attrs and not _is_number(value):
            raise DataFileError(f"{source}: attribute {key!r} must be a number; got {ds.attrs[key]!r:.60}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
