"""Is a cube usable for unmixing into P materials? Checked once, before any fitting.

Some cubes pass every reader check and still cannot be unmixed: every pixel the same spectrum,
data whose centred pixels span fewer than P - 1 directions (P materials mixed linearly span an
affine space of dimension P - 1, so fewer means the P materials cannot be told apart), or values
so small or so large that their squares, which every method forms (covariances, least squares,
losses), underflow or overflow float32. Methods handed such data return confident nonsense
(identical endmembers, constant maps), so :func:`check_usable` refuses them with what to do.

Values out of float32's safe range are refused rather than rescaled with a warning: a rescale
would change the units of the endmembers the method returns without the user asking, and the
fix (``scale=`` when opening the cube) is one argument.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .hypercube import HyperCube

__all__ = ["LAZY_SAMPLE", "SAFE_RANGE", "check_usable"]

_F32 = np.finfo(np.float32)
#: Peak absolute values outside this range have squares outside float32's normal range.
SAFE_RANGE = (float(np.sqrt(_F32.tiny)), float(np.sqrt(_F32.max)))
#: Values (rows x cols x bands) read and converted to float64 at a time: 32 MiB, whatever the width.
_BLOCK_ELEMENTS = 1 << 22
#: A lazy cube with more pixels than this is checked on a stratified sample of this many.
LAZY_SAMPLE = 16384
_SAMPLE_WINDOW = 16


def _sample_moments(cube: HyperCube) -> tuple[int, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """:func:`_moments` of a stratified sample of :data:`LAZY_SAMPLE` pixels (see :mod:`.sampling`)."""
    from .sampling import sample_pixels

    pixels, _ = sample_pixels(cube, LAZY_SAMPLE, seed=0, stream="classic", window=_SAMPLE_WINDOW)
    pixels = pixels.astype(np.float64)
    n = pixels.shape[0]
    if n == 0:
        b = cube.n_bands
        return 0, np.zeros(b), np.zeros((b, b)), 0.0, np.zeros(b), np.zeros(b)
    mean = pixels.mean(axis=0)
    centred = (pixels - mean).T @ (pixels - mean)
    return n, mean, centred, float(np.abs(pixels).max()), pixels.min(axis=0), pixels.max(axis=0)


def _moments(cube: HyperCube) -> tuple[int, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
    """Count, mean, centred Gram matrix, peak |value|, band minima and maxima of the valid pixels.

    The image is read in blocks of rows; a lazy (dask) cube of more than :data:`LAZY_SAMPLE` pixels
    is never read whole: its figures are those of a stratified sample.
    """
    h, w, b = cube.shape
    if cube.reflectance.chunks is not None and h * w > LAZY_SAMPLE:
        return _sample_moments(cube)
    valid = cube.valid_mask
    n = 0
    total = np.zeros(b)
    gram = np.zeros((b, b))
    lo = np.full(b, np.inf)
    hi = np.full(b, -np.inf)
    peak = 0.0
    rows_per_block = max(1, _BLOCK_ELEMENTS // max(w * b, 1))
    for start in range(0, h, rows_per_block):
        block = np.asarray(cube.reflectance[start : start + rows_per_block].values, dtype=np.float64)
        pixels = block[valid[start : start + rows_per_block]]
        if not pixels.size:
            continue
        n += pixels.shape[0]
        total += pixels.sum(axis=0)
        gram += pixels.T @ pixels
        lo = np.minimum(lo, pixels.min(axis=0))
        hi = np.maximum(hi, pixels.max(axis=0))
        peak = max(peak, float(np.abs(pixels).max()))
    mean = total / max(n, 1)
    centred = gram - n * np.outer(mean, mean)
    return n, mean, centred, peak, lo, hi


def check_usable(cube: HyperCube, n_endmembers: int | None = None) -> None:
    """Refuse a cube that cannot be unmixed into ``n_endmembers`` materials, before any training.

    Parameters
    ----------
    cube
        The cube (only its valid pixels count). A lazy cube larger than :data:`LAZY_SAMPLE` pixels
        is judged on a stratified sample of that many (read window by window, never whole), so
        the figures in its messages are the sample's.
    n_endmembers
        P, the number of materials asked for; None checks only what does not depend on P.

    Raises
    ------
    InputError
        When every valid pixel has the same spectrum, when the peak value is outside
        :data:`SAFE_RANGE` (squares leave float32's normal range), or when the centred valid
        pixels span fewer than ``P - 1`` directions.

    Examples
    --------
    >>> from egu_widgets.cube import make_demo
    >>> check_usable(make_demo(), 3)
    """
    n, _mean, centred, peak, lo, hi = _moments(cube)
    if n == 0:
        raise InputError("the cube has no valid pixels; there is nothing to unmix")
    if peak == 0:
        raise InputError("every valid pixel is all zeros; there is nothing to unmix (check the file or its scale)")
    if peak < SAFE_RANGE[0] or peak > SAFE_RANGE[1]:
        raise InputError(
            f"the cube's values peak at {peak:.3g}: their squares, which every method forms, leave float32's range "
            f"(values must peak between {SAFE_RANGE[0]:.1e} and {SAFE_RANGE[1]:.1e}; reflectance peaks near 1). "
            f"Open it with scale= to bring it to reflectance (e.g. scale={peak:.0e})"
        )
    spread = hi - lo
    if not np.any(spread > 8 * np.finfo(np.float32).eps * peak):
        raise InputError(
            f"all {n} valid pixels have the same spectrum; there is nothing to unmix (the image may be a fill "
            "value, a single repeated pixel, or the wrong variable)"
        )
    if n_endmembers is None or n_endmembers < 2:
        return
    eig = np.clip(np.linalg.eigvalsh(centred)[::-1], 0, None)
    sv = np.sqrt(eig)
    # singular values at float32 round-off of the largest one are numerical zeros
    tol = sv[0] * max(cube.n_bands, 1) * float(np.finfo(np.float32).eps)
    rank = int(np.count_nonzero(sv > tol))
    if rank < n_endmembers - 1:
        raise InputError(
            f"the valid pixels span only {rank} direction(s) around their mean, but {n_endmembers} materials need "
            f"{n_endmembers - 1}: at most {rank + 1} distinct materials can be found in this cube; ask for fewer "
            "endmembers (CLI -p) or check that the pixels differ"
        )
