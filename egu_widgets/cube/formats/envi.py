"""ENVI images: a ``.hdr`` header beside its data file (``.img``, ``.dat``, ``.raw``, ...).

Read with the ``spectral`` package; the header's wavelengths (nm or micrometres) and reflectance
scale factor are used when present.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ...errors import DataFileError, InputError
from ..hypercube import HyperCube, check_dtype
from .truth import MatTruth, cube_with_truth
from .values import check_scale

__all__ = ["ENVI_DTYPES", "read_envi"]


def _units(text: str) -> str:
    text = text.lower()
    if text.startswith(("micro", "um", "µm")):
        return "um"
    if text.startswith(("nano", "nm")):
        return "nm"
    return text


#: ENVI ``data type`` codes -> NumPy dtypes (the ENVI header format's table).
ENVI_DTYPES = {
    1: np.uint8,
    2: np.int16,
    3: np.int32,
    4: np.float32,
    5: np.float64,
    6: np.complex64,
    9: np.complex128,
    12: np.uint16,
    13: np.uint32,
    14: np.int64,
    15: np.uint64,
}


def _header_int(meta: dict, key: str, header: Path) -> int:
    try:
        return int(str(meta[key]).strip())
    except (KeyError, ValueError):
        raise DataFileError(f"ENVI header {str(header)!r} has no valid {key!r} entry (got {meta.get(key)!r})") from None


def _read_header(header: Path) -> dict:
    import spectral.io.envi as envi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return envi.read_envi_header(str(header))
    except Exception as exc:  # spectral raises its own types for a malformed header
        raise DataFileError(f"{str(header)!r} is not a readable ENVI header ({type(exc).__name__}: {exc})") from exc


def _check_data_size(img, meta: dict, header: Path, dtype: np.dtype) -> None:
    """Refuse a data file whose size is not what the header states (a wrong band count or data type)."""
    lines, samples, bands = (_header_int(meta, k, header) for k in ("lines", "samples", "bands"))
    offset = int(str(meta.get("header offset", 0)).strip() or 0)
    expected = offset + lines * samples * bands * dtype.itemsize
    actual = os.path.getsize(img.filename)
    if actual != expected:
        raise DataFileError(
            f"ENVI header {str(header)!r} states {lines} lines x {samples} samples x {bands} bands of {dtype} "
            f"({expected} bytes with the header offset) but the data file {Path(img.filename).name!r} has {actual} "
            "bytes; the header does not describe this file (check bands, lines, samples and data type)"
        )


def read_envi(
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
    """A cube from an ENVI header or its data file (the other is looked for beside it).

    ``scale`` divides the data (default: the header's ``reflectance scale factor``). The header
    states the size, the interleave and the data type; a data file of another size is refused,
    and integer data without a scale are refused before they are converted. ``rows``, ``cols``
    and ``chunks`` are accepted for the readers' common signature and not used (the data are read
    into memory); ``layout`` and ``variable`` are refused, since the header states the layout and
    an ENVI file holds one image.
    """
    import spectral.io.envi as envi

    path = Path(path)
    header = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    if not header.exists():
        raise DataFileError(f"ENVI header {str(header)!r} not found; an ENVI image needs its .hdr beside the data file")
    for option, value in (("layout", layout), ("variable", variable)):
        if value is not None:
            raise InputError(f"{option}= does not apply to an ENVI image: its header states the interleave")
    meta = _read_header(header)
    code = _header_int(meta, "data type", header)
    if code not in ENVI_DTYPES:
        raise DataFileError(
            f"{str(header)!r}: unsupported ENVI data type {code} (supported: {', '.join(map(str, ENVI_DTYPES))})"
        )
    dtype = np.dtype(ENVI_DTYPES[code])
    provenance: dict = {"reader": "envi", "file": header.name}
    given = scale  # provenance keeps the value as given
    if scale is None and "reflectance scale factor" in meta:
        try:
            factor = float(meta["reflectance scale factor"])
        except ValueError:
            factor = meta["reflectance scale factor"]
        scale = given = check_scale(factor, origin=f"the header's reflectance scale factor ({str(header)!r})")
        provenance["scale_from"] = "reflectance scale factor"
    scale = check_scale(scale)
    if scale is None:
        check_dtype(dtype, what=f"{str(header)!r} (ENVI data type {code}, no reflectance scale factor)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = envi.open(str(header))
    except Exception as exc:  # spectral raises its own types for a missing/odd data file
        raise DataFileError(
            f"cannot open ENVI image {str(header)!r} ({type(exc).__name__}: {exc}); the data file (.img/.dat/.raw) "
            "must sit beside the header with the same name"
        ) from exc
    _check_data_size(img, meta, header, dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.asarray(img.load(scale=False))  # the scale is applied below, once, whoever gives it
    except Exception as exc:
        raise DataFileError(
            f"cannot read ENVI data of {str(header)!r} ({exc}); the data file may be truncated"
        ) from exc
    if scale is not None:
        data = data.astype(np.float64) / scale
        provenance["scale"] = given
    wavelengths = None
    units = "nm"
    if "wavelength" in meta:
        try:
            wavelengths = np.asarray([float(w) for w in meta["wavelength"]])
        except ValueError:
            raise DataFileError(f"{str(header)!r}: the wavelength list holds values that are not numbers") from None
        units = _units(str(meta.get("wavelength units", "nm")))
    return cube_with_truth(
        data,
        truth,
        name=name or header.stem,
        source=str(header),
        provenance=provenance,
        wavelengths=wavelengths,
        wavelength_units=units,
        invalid=invalid,
        negative=negative,
    )
