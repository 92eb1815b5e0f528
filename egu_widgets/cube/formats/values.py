"""The scale a user or a file gives, checked the same way by every reader.

A scale that is zero, negative or not a number is refused as such, rather than surfacing later
as NaN or negative pixels with advice about those. (Raw integer data without any scale are
refused by :func:`~egu_widgets.cube.hypercube.check_dtype`, for every reader alike.)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ...errors import InputError

__all__ = ["check_scale", "integer_without_scale"]


def check_scale(scale: Any, *, origin: str = "scale") -> float | None:
    """``scale`` as a positive finite float (None stays None); ``origin`` names where it came from."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (numbers.Real, np.number)) or not np.isfinite(scale):
        raise InputError(f"{origin} must be a positive number; got {scale!r}")
    if not scale > 0:
        raise InputError(
            f"{origin} must be positive; got {float(scale):g} (the data are divided by it: "
            "a zero or negative scale factor would give NaN or negative reflectance); pass scale= to override it"
        )
    return float(scale)


def integer_without_scale(what: str, dtype: Any, maximum: Any = None) -> InputError:
    """The one error for raw integer data that came without a scale (the cube's own wording)."""
    from ..hypercube import check_dtype

    try:
        check_dtype(dtype, what=what, maximum=maximum)
    except InputError as exc:
        return exc
    raise InputError(f"{what}: dtype {np.dtype(dtype)} is not integer data")  # a caller's mistake, said plainly
