"""Axis order of arrays in files: read from what the file states, never guessed from the shape.

A hyperspectral array can be stored bands-last ``(rows, cols, bands)``, bands-first ``(bands,
rows, cols)``, or flattened to ``(bands, pixels)`` / ``(pixels, bands)``. Shapes alone rarely tell
these apart (a 50x20x20 array is a 20x20 image of 50 bands or a 50x20 image of 20 bands), and a
wrong reading still unmixes without complaint. So the readers orient an array with what is
stated: ``layout=``, the image size (``nRow``/``nCol``, ``rows=``/``cols=``), the band count
(``nBand``, the truth endmembers, the wavelengths) and the pixel count of truth abundances; and
refuse with one message when none of that settles it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InputError

__all__ = ["LAYOUTS", "Known", "check_layout", "orient_image", "orient_pixels"]

#: Accepted values of ``layout=``: the role of each axis of the stored array, in order.
LAYOUTS = ("rows,cols,bands", "bands,rows,cols", "bands,pixels", "pixels,bands")

_ALIASES = {
    "rows": "rows",
    "row": "rows",
    "y": "rows",
    "lines": "rows",
    "cols": "cols",
    "col": "cols",
    "columns": "cols",
    "x": "cols",
    "samples": "cols",
    "bands": "bands",
    "band": "bands",
    "b": "bands",
    "pixels": "pixels",
    "pixel": "pixels",
}

_HINT = "pass layout= (one of " + ", ".join(repr(v) for v in LAYOUTS) + "; CLI --layout)"


def check_layout(layout: str | None) -> str | None:
    """``layout`` in its canonical spelling (e.g. ``"bands, rows, cols"`` -> ``"bands,rows,cols"``), or None."""
    if layout is None:
        return None
    if not isinstance(layout, str):
        raise InputError(f"layout must be one of {', '.join(repr(v) for v in LAYOUTS)}; got {layout!r}")
    parts = [p for p in layout.replace("×", ",").replace(" ", ",").lower().split(",") if p]
    canonical = ",".join(_ALIASES.get(p, p) for p in parts)
    if canonical not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(repr(v) for v in LAYOUTS)}; got {layout!r}")
    return canonical


@dataclass(frozen=True)
class Known:
    """What a file (or the caller) states about the image: any of these may be None."""

    rows: int | None = None
    cols: int | None = None
    n_bands: int | None = None
    n_pixels: int | None = None

    @property
    def pixels(self) -> int | None:
        """The pixel count, from the image size or the truth."""
        if self.rows is not None and self.cols is not None:
            return self.rows * self.cols
        return self.n_pixels


def _fits(count: int | None, size: int) -> bool:
    return count is None or count == size


def orient_pixels(y: np.ndarray, layout: str | None, known: Known, *, what: str) -> np.ndarray:
    """A 2-D pixel matrix as ``(bands, pixels)``.

    The matrix is taken as stored ``(bands, pixels)``, the convention of the MATLAB layouts, unless
    ``layout`` or a stated count (bands or pixels) shows it is transposed. When the stated counts
    fit both readings (a square matrix) the caller must say which with ``layout=``.
    """
    layout = check_layout(layout)
    if layout is not None:
        if layout not in ("bands,pixels", "pixels,bands"):
            raise InputError(
                f"{what} is 2-D {y.shape}; layout={layout!r} is for 3-D arrays, use 'bands,pixels' or 'pixels,bands'"
            )
        return y if layout == "bands,pixels" else y.T
    n_bands, n_pixels = known.n_bands, known.pixels
    if n_bands is None and n_pixels is None:
        return y  # nothing stated: the layouts' own convention, bands x pixels
    as_stored = _fits(n_bands, y.shape[0]) and _fits(n_pixels, y.shape[1])
    transposed = _fits(n_bands, y.shape[1]) and _fits(n_pixels, y.shape[0])
    if as_stored and transposed:
        raise InputError(
            f"{what} is {y.shape[0]} x {y.shape[1]} and the file does not say which axis holds the bands; {_HINT}"
        )
    if as_stored:
        return y
    if transposed:
        return y.T
    if n_bands is not None and n_bands in y.shape:  # the bands settle it; the pixel count is reported later
        return y if y.shape[0] == n_bands else y.T
    if n_bands is not None:
        raise InputError(f"pixel matrix {y.shape} has no axis of {n_bands} bands (the truth endmembers' band count)")
    raise InputError(
        f"pixel matrix {y.shape} has no axis of {n_pixels} pixels (rows x cols); check nRow/nCol (or H/W, rows=/cols=)"
    )


def orient_image(
    arr: np.ndarray, layout: str | None, known: Known, *, what: str, bands_last: bool = False
) -> np.ndarray:
    """A 3-D array as ``(rows, cols, bands)``.

    The stated facts decide between ``(rows, cols, bands)`` and ``(bands, rows, cols)``; with none,
    ``bands_last=True`` (a file whose format fixes bands last) or an ``(n, n, b)`` shape (a square
    image, bands last; the other reading would need an image with as many rows as bands) reads
    bands last, and anything else is refused.
    """
    layout = check_layout(layout)
    if layout is not None:
        if layout not in ("rows,cols,bands", "bands,rows,cols"):
            raise InputError(f"{what} is 3-D {arr.shape}; layout={layout!r} is for 2-D matrices")
        return arr if layout == "rows,cols,bands" else np.moveaxis(arr, 0, -1)
    a, b, c = arr.shape

    def fits(rows: int, cols: int, bands: int) -> bool:
        return (
            _fits(known.rows, rows)
            and _fits(known.cols, cols)
            and _fits(known.n_bands, bands)
            and _fits(known.pixels, rows * cols)
        )

    stated = any(v is not None for v in (known.rows, known.cols, known.n_bands, known.n_pixels))
    last, first = fits(a, b, c), fits(b, c, a)
    if stated and last != first:
        return arr if last else np.moveaxis(arr, 0, -1)
    if stated and not (last or first):
        raise InputError(
            f"{what} has shape {arr.shape}, which does not match the stated size "
            f"({_describe(known)}); check nRow/nCol, nBand or the truth file"
        )
    if bands_last or (a == b != c):
        return arr
    looks = " (it looks like bands first)" if b == c != a else ""
    raise InputError(
        f"{what} has shape {arr.shape}: is it (rows, cols, bands) or (bands, rows, cols){looks}? The file does "
        f"not say; {_HINT}, or give rows= and cols= (CLI --rows/--cols)"
    )


def _describe(known: Known) -> str:
    parts = []
    if known.rows is not None and known.cols is not None:
        parts.append(f"{known.rows} x {known.cols} pixels")
    elif known.n_pixels is not None:
        parts.append(f"{known.n_pixels} pixels")
    if known.n_bands is not None:
        parts.append(f"{known.n_bands} bands")
    return ", ".join(parts)
