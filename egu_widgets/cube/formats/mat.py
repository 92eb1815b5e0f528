"""MATLAB files: the Zhu pair, the single-file (HySUPP) and the EGU-Net TNNLS_Data layouts.

MATLAB stores a (bands, pixels) matrix with pixels in column-major order; images and truth maps
are laid out through :func:`~.truth.mat_pixels_to_image` so that they line up. Files of MATLAB
v4-v7 are read with scipy, v7.3 (HDF5) with h5py.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataFileError, InputError
from ..hypercube import HyperCube
from .layout import Known, check_layout, orient_image, orient_pixels
from .truth import MatTruth, cube_with_truth, mat_pixels_to_image
from .values import check_scale

__all__ = ["HWB_KEYS", "MAT_LAYOUTS", "load_mat", "read_mat", "read_mat_truth", "truth_from_mat"]

MAT_LAYOUTS = (
    "Zhu pair: cube file with 'V' or 'Y' (bands x pixels), 'nRow', 'nCol' [, 'maxValue'] + truth file with 'A', 'M' [, 'cood']",
    "single file: 'Y' (bands x pixels) with 'A' and 'M' (or 'E') [, 'maxValue'] [, 'H'/'W' or 'nRow'/'nCol']",
    "EGU-Net TNNLS_Data: 'Mixed_TrSet' (pixels x bands) [+ 'TeLabel.mat' beside it]",
    "H x W x B image (Indian Pines, Pavia, Salinas): one 3-D array, e.g. 'indian_pines_corrected' (or variable=)",
)


# ---------------------------------------------------------------------------- files
def load_mat(path: str | os.PathLike) -> dict[str, Any]:
    """All variables of a MATLAB file (v4-v7 through scipy, v7.3/HDF5 through h5py)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"no such file: {str(path)!r}")
    if path.stat().st_size == 0:
        raise DataFileError(f"{str(path)!r} is empty (0 bytes)")
    import scipy.io

    try:
        with warnings.catch_warnings():  # scipy's warnings would add lines to the one-line error
            warnings.simplefilter("ignore")
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
                        [["".join(map(chr, np.asarray(fh[ref]).ravel()))] for ref in np.asarray(item).ravel()],
                        dtype=object,
                    )
                else:
                    out[key] = np.asarray(item).T  # HDF5 keeps MATLAB's column-major shape reversed
    except OSError as exc:
        raise DataFileError(f"{str(path)!r} is not a readable MATLAB v7.3 file ({exc}); it may be truncated") from exc
    return out


def _scalar(value: Any) -> float:
    return float(np.asarray(value).ravel()[0])


# ---------------------------------------------------------------------------- truth
def _material_names(cood: Any, n: int) -> list[str]:
    if cood is None:
        return [f"material {i + 1}" for i in range(n)]
    names = []
    for item in np.asarray(cood, dtype=object).ravel():
        while isinstance(item, np.ndarray) and item.size:
            item = item.ravel()[0]
        names.append(re.sub(r"^\d+\s*[-_.]\s*", "", str(item)).strip().lower())
    return names if len(names) == n else [f"material {i + 1}" for i in range(n)]


def read_mat_truth(path: str | os.PathLike) -> MatTruth:
    """Truth from a ``.mat`` file with ``A`` (materials x pixels) and/or ``M`` (bands x materials)."""
    return truth_from_mat(load_mat(path), source=str(path))


def truth_from_mat(mat: dict, *, source: str) -> MatTruth:
    """Truth from the variables of a MATLAB file: ``A``, ``M`` (or ``E``) and the names in ``cood``.

    Each matrix is turned so that it has the materials first, using the smaller axis of ``A`` as
    the number of materials when both are present.
    """
    a = mat.get("A")
    m = mat.get("M", mat.get("E"))
    labels = [k for k, v in mat.items() if _is_label_map(k, v)]
    if a is None and m is None and labels:
        raise DataFileError(_label_message(labels[0], mat[labels[0]], source, as_truth=True))
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


# ---------------------------------------------------------------------------- image size and scale
def _stored_size(mat: dict) -> tuple[int, int] | None:
    for rk, ck in (("nRow", "nCol"), ("H", "W"), ("nrow", "ncol"), ("rows", "cols")):
        if rk in mat and ck in mat:
            return int(_scalar(mat[rk])), int(_scalar(mat[ck]))
    return None


def _image_size(n_pixels: int, n_bands: int, *, source: str, key: str) -> tuple[int, int]:
    side = int(round(np.sqrt(n_pixels)))
    if side * side == n_pixels:
        return side, side
    other = int(round(np.sqrt(n_bands)))
    transposed = (
        f"; if {key!r} holds one pixel per row ({n_bands} pixels of {n_pixels} bands), pass layout='pixels,bands'"
        if other * other == n_bands
        else ""
    )
    raise InputError(
        f"{source}: the image size is not stored and {key!r}, read as {n_bands} bands x {n_pixels} pixels, "
        f"is not a square image; pass rows= and cols= to open_cube (CLI --rows/--cols){transposed}"
    )


def _scale_pixels(y: np.ndarray, mat: dict, scale: float | None) -> tuple[np.ndarray, dict]:
    notes: dict = {}
    if scale is None and "maxValue" in mat:
        scale = check_scale(_scalar(mat["maxValue"]), origin="the file's maxValue")
        notes["scale_from"] = "maxValue"
    scale = check_scale(scale)
    if scale is not None:
        notes["scale"] = float(scale)
        return np.asarray(y, dtype=np.float64) / scale, notes
    return y, notes


# ---------------------------------------------------------------------------- which array
#: Keys of the public H x W x B scenes (Indian Pines, Pavia, Salinas, KSC, Botswana), lower case;
#: their files store the image bands last, which is what states the layout for them.
HWB_KEYS = frozenset(
    {
        "indian_pines",
        "indian_pines_corrected",
        "paviau",
        "pavia",
        "salinas",
        "salinas_corrected",
        "salinasa",
        "salinasa_corrected",
        "ksc",
        "botswana",
    }
)
_LABEL_KEYS = frozenset({"gt", "labels", "label", "groundtruth", "ground_truth", "classes"})


def _is_label_map(key: str, value: Any) -> bool:
    """A class map (one integer class per pixel, H x W), as the ``*_gt`` files of the public scenes hold."""
    arr = np.asarray(value)
    name = key.lower()
    integer = arr.dtype.kind in "iub"
    return arr.ndim == 2 and integer and (name.endswith("_gt") or name in _LABEL_KEYS)


def _label_message(key: str, value: Any, source: str, *, as_truth: bool) -> str:
    arr = np.asarray(value)
    classes = f"classes {int(arr.min())}-{int(arr.max())}" if arr.size else "no pixels"
    head = f"{source}: {key!r} is a class-label map ({arr.shape[0]} x {arr.shape[1]} pixels, {classes}), "
    if as_truth:
        return head + (
            "not abundances: a label map gives one class per pixel, unmixing truth gives fractions per material "
            "('A', materials x pixels) and/or spectra ('M', bands x materials); it can score a classification, "
            "not an unmixing"
        )
    return head + "not a hyperspectral cube; give the image file (e.g. the one whose key ends in '_corrected')"


def _is_image_array(value: Any) -> bool:
    arr = np.asarray(value)
    return arr.ndim == 3 and arr.dtype.kind in "iuf" and min(arr.shape) > 1


def _data_key(mat: dict, variable: str | None, path: Path) -> str:
    """The key of the hyperspectral array: ``variable``, else ``Y``/``V``/``X``, else the one H x W x B array."""
    source = repr(str(path))
    if variable is not None:
        if variable not in mat:
            raise DataFileError(f"{source} has no variable {variable!r}; keys found: {sorted(mat)}")
        if _is_label_map(variable, mat[variable]):
            raise DataFileError(_label_message(variable, mat[variable], source, as_truth=False))
        return variable
    key = next((k for k in ("Y", "V", "X") if k in mat), None)
    if key is not None:
        return key
    images = sorted(k for k, v in mat.items() if _is_image_array(v))
    if len(images) == 1:
        return images[0]
    if len(images) > 1:
        raise DataFileError(
            f"{source} holds {len(images)} candidate images ({', '.join(repr(k) for k in images)}); "
            "pass variable= to choose one (CLI --variable)"
        )
    labels = [k for k, v in mat.items() if _is_label_map(k, v)]
    if labels:
        raise DataFileError(_label_message(labels[0], mat[labels[0]], source, as_truth=False))
    raise DataFileError(
        f"{source}: no hyperspectral data found. Keys found: {sorted(mat)}. Layouts accepted: " + "; ".join(MAT_LAYOUTS)
    )


# ---------------------------------------------------------------------------- the reader
def read_mat(
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
    """A cube from a ``.mat`` file in any of :data:`MAT_LAYOUTS`.

    ``truth`` (from a separate file) wins over truth stored in the file. ``rows``/``cols`` give
    the image size when the file does not store it; ``scale`` divides the data (default: the
    file's ``maxValue``). ``variable`` names the array to read (default ``Y``, ``V`` or ``X``, else
    the file's one 3-D array). The axis order comes from what is stated (``layout``, the size,
    ``nBand``, the truth; see :mod:`.layout`); a file that states nothing is read as the layouts
    define it, bands x pixels, or refused when a 3-D array could be read two ways. ``chunks`` is
    accepted for the readers' common signature and not used: MATLAB files are read into memory.
    """
    path = Path(path)
    mat = load_mat(path)
    layout = check_layout(layout)
    options = dict(invalid=invalid, negative=negative)
    if variable is None and ("Mixed_TrSet" in mat or "Mixed_TeSet" in mat):
        if layout not in (None, "pixels,bands"):
            raise InputError(
                f"{str(path)!r} is in the TNNLS layout, which stores pixels x bands; drop layout={layout!r}"
            )
        return _read_tnnls(path, mat, truth, scale=scale, name=name, **options)
    key = _data_key(mat, variable, path)
    if truth is None and "A" in mat:
        truth = truth_from_mat(mat, source=str(path))
    y = np.asarray(mat[key])
    provenance: dict = {"reader": "mat", "file": path.name, "key": key}
    if layout is not None:
        provenance["layout"] = layout
    name = name or path.stem
    stored = _stored_size(mat)
    if (rows is None or cols is None) and stored is not None:
        rows, cols = stored
    n_bands = truth.endmembers.shape[1] if truth is not None and truth.endmembers is not None else None
    if "nBand" in mat and n_bands is None:
        n_bands = int(_scalar(mat["nBand"]))
    n_pixels = truth.abundances.shape[1] if truth is not None and truth.abundances is not None else None
    known = Known(rows=rows, cols=cols, n_bands=n_bands, n_pixels=n_pixels)
    what = f"{str(path)!r}: {key!r}"
    if y.ndim == 3:
        image = orient_image(y, layout, known, what=what, bands_last=key.lower() in HWB_KEYS)
        image, notes = _scale_pixels(image, mat, scale)
        provenance.update(notes)
        return cube_with_truth(image, truth, name=name, source=str(path), provenance=provenance, **options)
    if y.ndim != 2:
        raise InputError(f"{str(path)!r}: {key!r} has shape {y.shape}; expected (bands, pixels) or (rows, cols, bands)")
    y = orient_pixels(y, layout, known, what=what)
    if rows is None or cols is None:
        rows, cols = _image_size(y.shape[1], y.shape[0], source=str(path), key=key)
    y, notes = _scale_pixels(y, mat, scale)
    provenance.update(notes)
    image = mat_pixels_to_image(y, rows, cols)
    return cube_with_truth(image, truth, name=name, source=str(path), provenance=provenance, **options)


def _read_tnnls(path: Path, mat: dict, truth: MatTruth | None, *, scale, name, **options) -> HyperCube:
    """The EGU-Net authors' layout: Mixed_TrSet (pixels, bands) square image, TeLabel beside it.

    Truth abundances come from ``truth`` when it has them, else from ``TeLabel.mat`` (pixels,
    materials) in the same folder.
    """
    y = np.asarray(mat.get("Mixed_TrSet", mat.get("Mixed_TeSet")), dtype=np.float64)
    n, bands = y.shape
    side = int(round(np.sqrt(n)))
    if side * side != n:
        raise InputError(f"{str(path)!r}: {n} pixels are not a square image; the TNNLS layout stores square scenes")
    y, notes = _scale_pixels(y, mat, scale)
    image = y.reshape(side, side, bands, order="F")
    label_file = path.parent / "TeLabel.mat"
    if (truth is None or truth.abundances is None) and label_file.exists():
        labels = load_mat(label_file).get("TeLabel")
        if labels is not None:
            labels = np.asarray(labels, dtype=np.float64)
            if labels.shape[0] != n:
                raise InputError(f"TeLabel has {labels.shape[0]} pixels but Mixed_TrSet has {n}")
            truth = MatTruth(
                None if truth is None else truth.endmembers, labels.T, None if truth is None else truth.names
            )
    provenance = {"reader": "tnnls", "file": path.name, **notes}
    return cube_with_truth(image, truth, name=name or "tnnls", source=str(path), provenance=provenance, **options)
