"""ENVI images: a ``.hdr`` header beside its data file (``.img``, ``.dat``, ``.raw``, ...).

Read with the ``spectral`` package; the header's wavelengths (nm or micrometres) and reflectance
scale factor are used when present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataFileError
from ..hypercube import HyperCube
from .truth import MatTruth, cube_with_truth

__all__ = ["read_envi"]


def _units(text: str) -> str:
    text = text.lower()
    if text.startswith(("micro", "um", "µm")):
        return "um"
    if text.startswith(("nano", "nm")):
        return "nm"
    return text


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
) -> HyperCube:
    """A cube from an ENVI header or its data file (the other is looked for beside it).

    ``scale`` divides the data (default: the header's ``reflectance scale factor``). ``rows``,
    ``cols`` and ``chunks`` are accepted for the readers' common signature and not used: the
    header states the size, and the data are read into memory.
    """
    import spectral.io.envi as envi

    path = Path(path)
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
        raise DataFileError(
            f"cannot read ENVI data of {str(header)!r} ({exc}); the data file may be truncated"
        ) from exc
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
