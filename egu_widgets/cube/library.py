"""Spectral libraries: reference spectra of named materials (the USGS 1995 library as resampled to AVIRIS)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import DataFileError
from .formats.mat import load_mat

__all__ = ["SpectralLibrary", "read_usgs_library"]


@dataclass(frozen=True)
class SpectralLibrary:
    """Spectra on one wavelength grid: ``wavelengths`` (bands,) in nm, ascending; ``spectra`` (n, bands)."""

    wavelengths: np.ndarray
    spectra: np.ndarray
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
