"""Ground truth as files store it, and the one helper that attaches it to an image.

Truth comes from MATLAB files (``A``: materials x pixels, ``M``: bands x materials) whatever the
format of the image, so its abundances are kept in MATLAB's column-major pixel order until
:func:`cube_with_truth` lays them out beside the image. Every reader builds its cube through that
helper, so that truth maps line up with the image in the same way for every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError
from ..hypercube import HyperCube

__all__ = ["MatTruth", "cube_with_truth", "mat_pixels_to_image"]


@dataclass(frozen=True)
class MatTruth:
    """Truth read from a file, before it meets an image.

    ``endmembers`` is (P, bands); ``abundances`` is (P, pixels) in MATLAB pixel order; ``names``
    are the material names (None: the cube's default ``material 1``, ...). Either array may be None.
    """

    endmembers: np.ndarray | None
    abundances: np.ndarray | None
    names: list[str] | None


def mat_pixels_to_image(columns: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(channels, rows*cols) in MATLAB column-major pixel order -> (rows, cols, channels).

    MATLAB pixel ``n`` is row ``n % rows``, column ``n // rows``; every image and truth map read
    from a MATLAB layout goes through here so that they line up.
    """
    channels, n = columns.shape
    if n != rows * cols:
        raise InputError(f"{n} pixels do not fill {rows} rows x {cols} cols ({rows * cols}); check nRow/nCol (or H/W)")
    return np.asarray(columns).T.reshape(rows, cols, channels, order="F")


def cube_with_truth(
    image: Any,
    truth: MatTruth | None,
    *,
    name: str,
    source: str,
    provenance: dict,
    wavelengths: Any = None,
    wavelength_units: str = "nm",
    invalid: str = "raise",
    negative: str = "raise",
) -> HyperCube:
    """A :class:`HyperCube` of a (rows, cols, bands) ``image`` with ``truth`` laid out beside it.

    Truth abundances must cover the image's pixels, in MATLAB pixel order; endmembers and names
    are passed on as they are (the cube checks their band count).
    """
    rows, cols = np.shape(image)[:2]
    kwargs: dict[str, Any] = {}
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
    return HyperCube.from_array(
        image,
        wavelengths=wavelengths,
        wavelength_units=wavelength_units,
        name=name,
        source=source,
        provenance=provenance,
        invalid=invalid,
        negative=negative,
        layout="rows,cols,bands",  # the reader has oriented the image from what its file states
        **kwargs,
    )
