"""Readers: ``open_cube`` turns the file layouts people actually have into a :class:`HyperCube`.

Accepted sources (see :func:`open_cube`): dataset names, MATLAB files in the Zhu pair layout, the
single-file HySUPP layout and the EGU-Net authors' TNNLS_Data layout, ENVI ``.hdr``/``.img`` pairs,
and the project's own netCDF files.

MATLAB stores a (bands, pixels) matrix with pixels in column-major order: pixel ``n`` is row
``n % rows``, column ``n // rows``. Every .mat reader here goes through :func:`mat_pixels_to_image`
so that images and truth maps line up.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFileError, DatasetError, InputError
from .hypercube import HyperCube
from .netcdf import KIND_ATTR, read_dataset

MAT_LAYOUTS = (
    "Zhu pair: cube file with 'V' or 'Y' (bands x pixels), 'nRow', 'nCol' [, 'maxValue'] + truth file with 'A', 'M' [, 'cood']",
    "single file: 'Y' (bands x pixels) with 'A' and 'M' (or 'E') [, 'maxValue'] [, 'H'/'W' or 'nRow'/'nCol']",
    "EGU-Net TNNLS_Data: 'Mixed_TrSet' (pixels x bands) [+ 'TeLabel.mat' beside it]",
)


# ---------------------------------------------------------------------------- MATLAB files
def load_mat(path: str | os.PathLike) -> dict[str, Any]:
    """All variables of a MATLAB file (v4-v7 through scipy, v7.3/HDF5 through h5py)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise DataFileError(f"{str(path)!r} is empty (0 bytes)")
    import scipy.io

    try:
        raw = scipy.io.loadmat(path)
        return {k: v for k, v in raw.items() if not k.startswith("__")}
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        return _load_mat_v73(path)
    except Exception as exc:
        raise DataFileError(
            f"{str(path)!r} is not a readable MATLAB file ({type(exc).__name__}: {exc}); it may be truncated or corrupted"
        ) from exc


def _load_mat_v73(path: Path) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as fh:
            for key, item in fh.items():
                if key.startswith("#") or not isinstance(item, h5py.Dataset):
                    continue
                if item.dtype.kind == "O":  # cell arrays of strings: follow the references
                    out[key] = np.array(
                        [["".join(map(chr, np.asarray(fh[ref]).ravel()))] for ref in np.asarray(item).ravel()], dtype=object
                    )
                else:
                    out[key] = np.asarray(item).T  # HDF5 keeps MATLAB's column-major shape reversed
    except OSError as exc:
        raise DataFileError(f"{str(path)!r} is not a readable MATLAB v7.3 file ({exc}); it may be truncated") from exc
    return out


def _scalar(value: Any) -> float:
    return float(np.asarray(value).ravel()[0])


def mat_pixels_to_image(columns: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(channels, rows*cols) in MATLAB column-major pixel order -> (rows, cols, channels)."""
    channels, n = columns.shape
    if n != rows * cols:
        raise InputError(f"{n} pixels do not fill {rows} rows x {cols} cols ({rows * cols}); check nRow/nCol (or H/W)")
    return np.asarray(columns).T.reshape(rows, cols, channels, order="F")


def _material_names(cood: Any, n: int) -> list[str]:
    if cood is None:
        return [f"material {i + 1}" for i in range(n)]
    names = []
    for item in np.asarray(cood, dtype=object).ravel():
        while isinstance(item, np.ndarray) and item.size:
            item = item.ravel()[0]
        names.append(re.sub(r"^\d+\s*[-_.]\s*", "", str(item)).strip().lower())
    return names if len(names) == n else [f"material {i + 1}" for i in range(n)]


def _stored_size(mat: dict) -> tuple[int, int] | None:
    for rk, ck in (("nRow", "nCol"), ("H", "W"), ("nrow", "ncol"), ("rows", "cols")):
        if rk in mat and ck in mat:
            return int(_scalar(mat[rk])), int(_scalar(mat[ck]))
    return None


def _image_size(mat: dict, n_pixels: int, *, source: str) -> tuple[int, int]:
    stored = _stored_size(mat)
    if stored is not None:
        return stored
    side = int(round(np.sqrt(n_pixels)))
    if side * side == n_pixels:
        return side, side
    raise InputError(
        f"{source}: the image size is not stored and {n_pixels} pixels are not a square; "
        "pass rows= and cols= to open_cube (e.g. open_cube(path, rows=..., cols=...))"
    )


def _bands_first(y: np.ndarray, n_bands: int | None, n_pixels: int | None) -> np.ndarray:
    """Orient a 2-D pixel matrix as (bands, pixels) using whatever sizes are known."""
    if n_bands is not None:
        if y.shape[0] == n_bands:
            return y
        if y.shape[1] == n_bands:
            return y.T
        raise InputError(f"pixel matrix {y.shape} has no axis of {n_bands} bands (the truth endmembers' band count)")
    if n_pixels is not None:
        if y.shape[1] == n_pixels:
            return y
        if y.shape[0] == n_pixels:
            return y.T
        raise InputError(
            f"pixel matrix {y.shape} has no axis of {n_pixels} pixels (rows x cols); check nRow/nCol (or H/W, rows=/cols=)"
        )
    return y if y.shape[0] <= y.shape[1] else y.T  # images have more pixels than bands


def _scale_pixels(y: np.ndarray, mat: dict, scale: float | None) -> tuple[np.ndarray, dict]:
    notes: dict = {}
    if scale is None and "maxValue" in mat:
        scale = _scalar(mat["maxValue"])
        notes["scale_from"] = "maxValue"
    if scale is not None:
        if not scale > 0:
            raise InputError(f"scale must be positive; got {scale}")
        notes["scale"] = float(scale)
        return np.asarray(y, dtype=np.float64) / scale, notes
    return y, notes


@dataclass(frozen=True)
class MatTruth:
    endmembers: np.ndarray | None  # (P, bands)
    abundances: np.ndarray | None  # (P, pixels), MATLAB pixel order
    names: list[str]


def read_mat_truth(path: str | os.PathLike) -> MatTruth:
    mat = load_mat(path)
    return _truth_from_mat(mat, source=str(path))


def _truth_from_mat(mat: dict, *, source: str) -> MatTruth:
    a = mat.get("A")
    m = mat.get("M", mat.get("E"))
    if a is None and m is None:
        raise DataFileError(
            f"{source}: no truth found: expected 'A' (materials x pixels) and/or 'M' (bands x materials); "
            f"keys found: {sorted(mat)}"
        )
    abundances = None if a is None else np.asarray(a, dtype=np.float64)
    endmembers = None if m is None else np.asarray(m, dtype=np.float64)
    if abundances is not None and endmembers is not None:
        p = abundances.shape[0] if abundances.shape[0] <= abundances.shape[1] else abundances.shape[1]
        if abundances.shape[0] != p:
            abundances = abundances.T
        if endmembers.shape[1] != p and endmembers.shape[0] == p:
            endmembers = endmembers.T
        endmembers = endmembers.T  # (bands, P) -> (P, bands)
    elif abundances is not None:
        if abundances.shape[0] > abundances.shape[1]:
            abundances = abundances.T
    else:
        endmembers = endmembers.T if endmembers.shape[0] > endmembers.shape[1] else endmembers
    n = abundances.shape[0] if abundances is not None else endmembers.shape[0]
    return MatTruth(endmembers, abundances, _material_names(mat.get("cood"), n))


def _read_mat_cube(path: Path, truth: MatTruth | None, *, rows: int | None, cols: int | None, scale, **kw) -> HyperCube:
    mat = load_mat(path)
    if "Mixed_TrSet" in mat or "Mixed_TeSet" in mat:
        return _read_tnnls(path, mat, truth, scale=scale, **kw)
    key = next((k for k in ("Y", "V", "X") if k in mat), None)
    if key is None:
        raise DataFileError(
            f"{str(path)!r}: no hyperspectral data found. Keys found: {sorted(mat)}. Layouts accepted: "
            + "; ".join(MAT_LAYOUTS)
        )
    if truth is None and "A" in mat:
        truth = _truth_from_mat(mat, source=str(path))
    y = np.asarray(mat[key])
    provenance: dict = {"reader": "mat", "file": path.name, "key": key}
    if y.ndim == 3:  # already an image (rows, cols, bands)
        image, notes = _scale_pixels(y, mat, scale)
        provenance.update(notes)
        return _with_truth(image, truth, path, provenance, matlab_order=True, **kw)
    if y.ndim != 2:
        raise InputError(f"{str(path)!r}: {key!r} has shape {y.shape}; expected (bands, pixels) or (rows, cols, bands)")
    n_bands = truth.endmembers.shape[1] if truth is not None and truth.endmembers is not None else None
    if "nBand" in mat and n_bands is None:
        n_bands = int(_scalar(mat["nBand"]))
    stored = _stored_size(mat)
    if (rows is None or cols is None) and stored is not None:
        rows, cols = stored
    n_pixels = rows * cols if rows and cols else None
    if n_pixels is None and truth is not None and truth.abundances is not None:
        n_pixels = truth.abundances.shape[1]
    y = _bands_first(y, n_bands, n_pixels)
    if rows is None or cols is None:
        rows, cols = _image_size(mat, y.shape[1], source=str(path))
    y, notes = _scale_pixels(y, mat, scale)
    provenance.update(notes)
    image = mat_pixels_to_image(y, rows, cols)
    return _with_truth(image, truth, path, provenance, **kw)


def _with_truth(image, truth: MatTruth | None, path: Path, provenance: dict, *, matlab_order: bool = True, **kw) -> HyperCube:
    rows, cols, _ = image.shape
    kwargs: dict = {}
    if truth is not None:
        if truth.abundances is not None:
            if truth.abundances.shape[1] != rows * cols:
                raise InputError(
                    f"truth abundances cover {truth.abundances.shape[1]} pixels but the cube has {rows * cols} ({rows}x{cols})"
                )
            kwargs["abundances"] = mat_pixels_to_image(truth.abundances, rows, cols).transpose(2, 0, 1)
        if truth.endmembers is not None:
            kwargs["endmembers"] = truth.endmembers
        kwargs["endmember_names"] = truth.names
    name = kw.pop("name", None) or path.stem
    return HyperCube.from_array(image, name=name, source=str(path), provenance=provenance, **kwargs, **kw)


def _read_tnnls(path: Path, mat: dict, truth: MatTruth | None, *, scale, **kw) -> HyperCube:
    """The EGU-Net authors' layout: Mixed_TrSet (pixels, bands) square image, TeLabel beside it."""
    y = np.asarray(mat.get("Mixed_TrSet", mat.get("Mixed_TeSet")), dtype=np.float64)
    n, bands = y.shape
    side = int(round(np.sqrt(n)))
    if side * side != n:
        raise InputError(f"{str(path)!r}: {n} pixels are not a square image; the TNNLS layout stores square scenes")
    y, notes = _scale_pixels(y, mat, scale)
    image = y.reshape(side, side, bands, order="F")
    kwargs: dict = {}
    label_file = path.parent / "TeLabel.mat"
    labels = None
    if truth is not None and truth.abundances is not None:
        labels = truth.abundances.T
    elif label_file.exists():
        labels = load_mat(label_file).get("TeLabel")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape[0] != n:
            raise InputError(f"TeLabel has {labels.shape[0]} pixels but Mixed_TrSet has {n}")
        kwargs["abundances"] = labels.reshape(side, side, -1, order="F").transpose(2, 0, 1)
        if truth is not None and truth.endmembers is not None:
            kwargs["endmembers"] = truth.endmembers
    name = kw.pop("name", None) or "tnnls"
    provenance = {"reader": "tnnls", "file": path.name, **notes}
    return HyperCube.from_array(image, name=name, source=str(path), provenance=provenance, **kwargs, **kw)


# ---------------------------------------------------------------------------- USGS library
@dataclass(frozen=True)
class SpectralLibrary:
    wavelengths: np.ndarray  # (bands,) nm, ascending
    spectra: np.ndarray  # (n, bands)
    names: tuple[str, ...]


def read_usgs_library(path: str | os.PathLike) -> SpectralLibrary:
    """The USGS 1995 library as resampled to AVIRIS: rows sorted by wavelength (they are not)."""
    mat = load_mat(path)
    if "datalib" not in mat or "names" not in mat:
        raise DataFileError(f"{str(path)!r}: expected 'datalib' and 'names'; keys found: {sorted(mat)}")
    lib = np.asarray(mat["datalib"], dtype=np.float64)
    order = np.argsort(lib[:, 0])
    names = tuple(bytes(np.asarray(r, dtype=np.uint8)).decode("latin-1").strip() for r in mat["names"])
    return SpectralLibrary(lib[order, 0] * 1000.0, lib[order, 3:].T.copy(), names[3:])


# ---------------------------------------------------------------------------- ENVI
def _read_envi(path: Path, truth: MatTruth | None, *, scale, **kw) -> HyperCube:
    import spectral.io.envi as envi

    header = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    if not header.exists():
        raise DataFileError(f"ENVI header {str(header)!r} not found; an ENVI image needs its .hdr beside the data file")
    try:
        img = envi.open(str(header))
    except Exception as exc:  # spectral raises its own types for a missing/odd data file
        raise DataFileError(
            f"cannot open ENVI image {str(header)!r} ({type(exc).__name__}: {exc}); the data file (.img/.dat/.raw) "
            "must sit beside the header with the same name"
        ) from exc
    try:
        data = np.asarray(img.load(scale=False))  # the scale is applied below, once, whoever gives it
    except Exception as exc:
        raise DataFileError(f"cannot read ENVI data of {str(header)!r} ({exc}); the data file may be truncated") from exc
    meta = img.metadata
    provenance: dict = {"reader": "envi", "file": header.name}
    if scale is None and "reflectance scale factor" in meta:
        scale = float(meta["reflectance scale factor"])
        provenance["scale_from"] = "reflectance scale factor"
    if scale is not None:
        data = data.astype(np.float64) / scale
        provenance["scale"] = scale
    wavelengths = None
    units = "nm"
    if "wavelength" in meta:
        wavelengths = np.asarray([float(w) for w in meta["wavelength"]])
        unit_text = str(meta.get("wavelength units", "nm")).lower()
        if unit_text.startswith(("micro", "um", "µm")):
            units = "um"
        elif unit_text.startswith(("nano", "nm")):
            units = "nm"
        else:
            units = unit_text
    kwargs: dict = {}
    if truth is not None:
        rows, cols = data.shape[:2]
        if truth.abundances is not None:
            kwargs["abundances"] = mat_pixels_to_image(truth.abundances, rows, cols).transpose(2, 0, 1)
        if truth.endmembers is not None:
            kwargs["endmembers"] = truth.endmembers
        kwargs["endmember_names"] = truth.names
    name = kw.pop("name", None) or header.stem
    return HyperCube.from_array(
        data, wavelengths=wavelengths, wavelength_units=units, name=name, source=str(header), provenance=provenance, **kwargs, **kw
    )


# ---------------------------------------------------------------------------- named datasets
def _zhu_wavelengths(n_bands: int, first: float, last: float) -> np.ndarray:
    return np.linspace(first, last, n_bands)


def _load_samson(**kw) -> HyperCube:
    from .datasets import fetch

    truth = read_mat_truth(fetch("samson/end3.mat"))
    cube = _read_mat_cube(fetch("samson/samson_1.mat"), truth, rows=None, cols=None, scale=None, name="samson", **kw)
    ds = cube.ds.assign_coords(wavelength=("band", _zhu_wavelengths(cube.n_bands, 401.0, 889.0), {"units": "nm"}))
    return HyperCube(ds, validate=False)


def _load_jasper(**kw) -> HyperCube:
    from .datasets import fetch

    cube_path = fetch("jasper_ridge/jasperRidge2_R198.mat")
    truth = read_mat_truth(fetch("jasper_ridge/end4.mat"))
    cube = _read_mat_cube(cube_path, truth, rows=None, cols=None, scale=None, name="jasper-ridge", **kw)
    kept = np.asarray(load_mat(cube_path)["SlectBands"]).ravel().astype(int) - 1
    # AVIRIS: 224 channels spread over 380-2500 nm; the file keeps 198 of them (water bands removed).
    wl = _zhu_wavelengths(224, 380.0, 2500.0)[kept]
    ds = cube.ds.assign_coords(wavelength=("band", wl, {"units": "nm"}))
    return HyperCube(ds, validate=False)


def _load_egu_synthetic(**kw) -> HyperCube:
    from .synthetic import make_egu_synthetic

    return make_egu_synthetic(**kw)


def _load_demo(**kw) -> HyperCube:
    from .synthetic import make_demo

    return make_demo(**kw)


DATASETS = {
    "samson": _load_samson,
    "jasper-ridge": _load_jasper,
    "egu-synthetic": _load_egu_synthetic,
    "demo": _load_demo,
}
_ALIASES = {"jasper": "jasper-ridge", "jasper_ridge": "jasper-ridge", "jasperridge": "jasper-ridge", "egu_synthetic": "egu-synthetic"}


def dataset_names() -> list[str]:
    return list(DATASETS)


# ---------------------------------------------------------------------------- entry point
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
    **options: Any,
) -> HyperCube:
    """Open a hyperspectral cube from a dataset name, a file, an array or an xarray Dataset.

    Parameters
    ----------
    source
        A dataset name (``"samson"``, ``"jasper-ridge"``, ``"egu-synthetic"``, ``"demo"``), a path
        (``.mat`` in the Zhu, HySUPP or TNNLS layouts, ENVI ``.hdr``/``.img``, the project's
        ``.nc``), a folder holding ``Mixed_TrSet.mat``, a :class:`HyperCube` or an ``xarray.Dataset``.
    truth
        Optional ``.mat`` file with ``A`` (materials x pixels) and/or ``M`` (bands x materials).
    rows, cols
        Image size, when a ``.mat`` file does not store it and the image is not square.
    scale
        Divide the data by this (raw integer data needs it unless the file has ``maxValue``).
    invalid
        NaN/Inf pixels: ``"raise"`` (default), ``"mask"`` (kept out of fitting, NaN in results) or
        ``"fill"`` (replaced by the mean valid spectrum).
    negative
        Negative values: ``"raise"`` (default) or ``"clip"`` to zero.
    chunks
        netCDF only: open lazily with dask, e.g. ``{"y": 512, "x": 512}``, for scenes larger than
        memory (see :mod:`egu_widgets.chunked`).
    options
        For named datasets: generator options, e.g. ``snr_db=`` and ``seed=`` for ``egu-synthetic``.
    """
    import xarray as xr

    if isinstance(source, HyperCube):
        return source
    if isinstance(source, xr.Dataset):
        return HyperCube(source)
    kw = dict(invalid=invalid, negative=negative)
    truth_obj = read_mat_truth(truth) if truth is not None else None
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"open_cube needs a dataset name, a path, a HyperCube or an xarray.Dataset; got {type(source).__name__}")
    path = Path(source)
    key = str(source).strip().lower()
    key = _ALIASES.get(key, key)
    if not path.exists() and key in DATASETS:
        if truth is not None:
            raise InputError(f"dataset {key!r} brings its own truth; do not pass truth=")
        if key in ("demo", "egu-synthetic"):  # generated scenes: always finite and non-negative
            return DATASETS[key](**options)
        if options:
            raise InputError(f"dataset {key!r} takes no options; got {sorted(options)}")
        return DATASETS[key](**kw)
    if options:
        raise InputError(f"unexpected options {sorted(options)} for a file source")
    if not path.exists():
        looks_like_name = not path.suffix and os.sep not in str(source)
        if looks_like_name:
            raise DatasetError(f"unknown dataset {str(source)!r}; known datasets: {', '.join(dataset_names())} (or give a file path)")
        raise DataFileError(f"no such file: {str(source)!r}")
    if path.is_dir():
        mixed = path / "Mixed_TrSet.mat"
        if mixed.exists():
            return _read_mat_cube(mixed, truth_obj, rows=rows, cols=cols, scale=scale, **kw)
        raise DataFileError(f"{str(path)!r} is a folder; give a file (a folder is read only in the TNNLS layout, with Mixed_TrSet.mat)")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _read_mat_cube(path, truth_obj, rows=rows, cols=cols, scale=scale, **kw)
    if suffix in (".hdr", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip"):
        return _read_envi(path, truth_obj, scale=scale, **kw)
    if suffix in (".nc", ".nc4", ".netcdf", ".h5"):
        return _read_netcdf(path, chunks)
    if chunks is not None:
        raise InputError("chunks= (lazy reading) is available for netCDF cubes; convert the file with cube.to_netcdf first")
    raise DataFileError(f"{str(path)!r}: unknown file type {suffix!r}; accepted: .mat, ENVI .hdr/.img, netCDF .nc")


def _read_netcdf(path: Path, chunks: dict | None = None) -> HyperCube:
    ds = read_dataset(path, chunks)
    kind = ds.attrs.pop(KIND_ATTR, None)
    if kind == "result":
        raise DataFileError(f"{str(path)!r} is an unmixing result, not a cube; open it with UnmixingResult.open")
    if "reflectance" not in ds:
        raise DataFileError(
            f"{str(path)!r} has no 'reflectance' variable (found: {sorted(ds.data_vars)}); egu_widgets netCDF cubes "
            "store reflectance(y, x, band)"
        )
    return HyperCube(ds)
