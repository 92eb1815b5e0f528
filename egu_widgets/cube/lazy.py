"""Checks of lazy (dask-backed) cubes, done chunk by chunk as part of whatever reads the data.

A cube opened with ``chunks=`` is never read at open: a full pass over a flight line only to look
for NaN would cost as much as the unmixing itself. Instead the reflectance is wrapped in one dask
layer (:func:`checked`) that checks each chunk when it is computed: NaN/Inf pixels and negative
values raise :class:`~egu_widgets.errors.InputError` naming the chunk's pixel range, or, with
``invalid="mask"`` / ``negative="clip"``, come out as whole-NaN pixels / zeros. So the first pass
over the data (unmixing, writing, sampling) is also the check, and a bad chunk stops it with a
message instead of NaN maps.

The layer's name carries the policy (``egu-checked-<invalid>-<negative>-<dtype>-<token>``), so that
readers of small windows (:mod:`.sampling`) can reach the file-backed array underneath, read only
the windows they need, and apply the same check to them (:func:`unchecked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["CHECK_PREFIX", "BlockCheck", "checked", "is_checked", "unchecked"]

#: Name prefix of the dask layer that checks a lazy cube's chunks.
CHECK_PREFIX = "egu-checked-"
_INVALID = ("raise", "mask")
_NEGATIVE = ("raise", "clip")


@dataclass(frozen=True)
class BlockCheck:
    """The per-chunk check of a lazy cube: a picklable function, so that dask workers can run it.

    Parameters
    ----------
    invalid
        ``"raise"``: a chunk with NaN/Inf pixels raises; ``"mask"``: those pixels become NaN in
        every band (kept out of fitting, NaN in results).
    negative
        ``"raise"``: a chunk with negative values raises; ``"clip"``: they become zero.
    """

    invalid: str = "raise"
    negative: str = "raise"

    def __post_init__(self) -> None:
        if self.invalid not in _INVALID:
            raise InputError(
                f"invalid={self.invalid!r} for a lazy cube; choose 'raise' or 'mask' ('fill' needs the cube in "
                "memory, for the mean spectrum of all its pixels: open it without chunks= to fill)"
            )
        if self.negative not in _NEGATIVE:
            raise InputError(f"negative={self.negative!r}; choose 'raise' or 'clip'")

    def __call__(self, block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        (y0, _), (x0, _), _ = block_info[0]["array-location"] if block_info else ((0, 0), (0, 0), (0, 0))
        return self.apply(block, y0, x0, what="chunk")

    def apply(self, block: np.ndarray, y0: int, x0: int, *, what: str = "chunk") -> np.ndarray:
        """``block`` (rows, cols, bands) found at pixel ``(y0, x0)`` of the cube, checked."""
        arr = np.asarray(block)
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        h, w = arr.shape[:2]
        where = f"{what} at rows {y0}-{y0 + h - 1}, cols {x0}-{x0 + w - 1} (y {y0}:{y0 + h}, x {x0}:{x0 + w})"
        bad = ~np.isfinite(arr).all(axis=-1)
        if bad.any():
            if self.invalid == "raise":
                first = np.argwhere(bad)[0]
                raise InputError(
                    f"the cube's {where} has {int(bad.sum())} pixel(s) with NaN or Inf values (first at row "
                    f"{y0 + int(first[0])}, col {x0 + int(first[1])}); open it with invalid='mask' to keep them "
                    "out (their abundances come out NaN), or repair the file"
                )
            arr = arr.copy()
            arr[bad] = np.nan
        with np.errstate(invalid="ignore"):
            negative = arr < 0
        if negative.any():
            if self.negative == "raise":
                raise InputError(
                    f"the cube's {where} has {int(negative.sum())} negative value(s) (min "
                    f"{float(np.nanmin(arr)):.4g}); reflectance cannot be negative. Open it with negative='clip' "
                    "to set them to zero"
                )
            arr = np.where(negative, np.float32(0), arr)  # NaN stays NaN
        return arr


def is_checked(data: Any) -> bool:
    """True when the dask array ``data`` already passes through a chunk check."""
    return any(str(name).startswith(CHECK_PREFIX) for name in data.dask.layers)


def checked(data: Any, check: BlockCheck) -> Any:
    """``data`` (a dask array, rows x cols x bands) with ``check`` applied to each chunk as it is computed."""
    from dask.base import tokenize

    token = tokenize(data.name, check.invalid, check.negative)
    name = f"{CHECK_PREFIX}{check.invalid}-{check.negative}-{np.dtype(data.dtype).name}-{token}"
    return data.map_blocks(check, dtype=np.float32, name=name, meta=np.empty((0, 0, 0), np.float32))


def unchecked(data: Any) -> tuple[Any, BlockCheck | None]:
    """The array under ``data``'s chunk check and that check; ``(data, None)`` when it has none on top.

    Slicing a small window of the file-backed array reads only that window, whereas slicing the
    checked array reads (and checks) whole chunks; window readers slice the array returned here
    and apply the check to what they read.
    """
    import dask.array as da

    name = str(data.name)
    if not name.startswith(CHECK_PREFIX):
        return data, None
    invalid, negative, dtype = name[len(CHECK_PREFIX) :].split("-")[:3]
    (below,) = data.dask.dependencies[name]
    raw = da.Array(data.dask, below, data.chunks, meta=np.empty((0, 0, 0), np.dtype(dtype)))
    return raw, BlockCheck(invalid, negative)
