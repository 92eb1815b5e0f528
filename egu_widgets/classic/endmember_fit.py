"""Endmembers that fit an image given its abundances: non-negative least squares, band by band.

A method that predicts abundances without estimating spectra (EGU-Net reads its spectra off a
reference it was labelled against) still needs endmembers that go with those abundances. Given
the image ``Y`` (N, B) and abundances ``A`` (N, P), the spectra that explain the image best are

    M = argmin ||Y - A M||_F  subject to  M >= 0,

which splits into one small problem per band, all sharing the same P × P Gram matrix ``AᵀA``.
The pixels enter only through ``AᵀA`` and ``AᵀY``, accumulated block by block, so the cost is
one pass over the image and the working memory does not grow with it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from egu_widgets.errors import InputError
from egu_widgets.validation import check_int

__all__ = ["fit_endmembers"]


def _normal_equations(
    pixels: np.ndarray, abundances: np.ndarray, rows: np.ndarray | None, block_size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(AᵀA, AᵀY, pixels used) in float64 over the selected rows, one block at a time."""
    n, p = abundances.shape
    gram = np.zeros((p, p))
    cross = np.zeros((p, pixels.shape[1]))
    used = 0
    for start in range(0, n, block_size):
        a = np.asarray(abundances[start : start + block_size], dtype=np.float64)
        y = np.asarray(pixels[start : start + block_size], dtype=np.float64)
        if rows is not None:
            keep = rows[start : start + block_size]
            a, y = a[keep], y[keep]
        if not (np.isfinite(a).all() and np.isfinite(y).all()):
            raise InputError("pixels or abundances hold NaN or infinite values; pass mask= to leave those pixels out")
        gram += a.T @ a
        cross += a.T @ y
        used += len(a)
    return gram, cross, used


def fit_endmembers(
    pixels: np.ndarray, abundances: np.ndarray, *, mask: np.ndarray | None = None, block_size: int = 65536
) -> np.ndarray:
    """Non-negative endmembers (P, B) that best reconstruct ``pixels`` from ``abundances``.

    Solves ``min ||Y - A M||`` over ``M >= 0`` in the Frobenius norm, one non-negative least
    squares problem per band on the shared normal equations.

    Parameters
    ----------
    pixels : array (N, B)
        The image's spectra, in the units the endmembers should have.
    abundances : array (N, P)
        Each pixel's abundances (any non-negative weights; they need not sum to one).
    mask : bool array (N,), optional
        Pixels to fit on (True: used), e.g. a cube's ``valid_mask.ravel()``; None: all of them.
    block_size : int, optional
        Pixels per block while the normal equations are accumulated (bounds the memory used).

    Returns
    -------
    numpy.ndarray
        (P, B) float64, every value >= 0. A material whose abundance is zero on every used pixel
        is not determined by the data and gets a spectrum of zeros.

    Raises
    ------
    InputError
        Shapes that do not match, a mask that selects no pixel, or non-finite values among the
        used pixels.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]])
    >>> a = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]])
    >>> np.round(fit_endmembers(a @ m, a), 6)
    array([[1., 0., 2.],
           [0., 1., 1.]])
    """
    block_size = check_int("block_size", block_size, 1)
    y = np.asarray(pixels)
    a = np.asarray(abundances)
    if y.ndim != 2 or a.ndim != 2:
        raise InputError(f"pixels must be (N, B) and abundances (N, P); got shapes {y.shape} and {a.shape}")
    if y.shape[0] != a.shape[0]:
        raise InputError(f"pixels have {y.shape[0]} rows but abundances {a.shape[0]}; both must cover the same pixels")
    if a.shape[1] < 1 or y.shape[1] < 1:
        raise InputError(f"need at least one endmember and one band; got shapes {y.shape} and {a.shape}")
    rows = None
    if mask is not None:
        rows = np.asarray(mask)
        if rows.dtype != bool or rows.shape != (y.shape[0],):
            raise InputError(f"mask must be a boolean array of shape ({y.shape[0]},); got {rows.dtype} {rows.shape}")
    gram, cross, used = _normal_equations(y, a, rows, block_size)
    if used == 0:
        raise InputError("the mask selects no pixel to fit the endmembers on")
    # ||y - A m||² = mᵀGm - 2cᵀm + const with c = Aᵀy in the range of G = AᵀA. Writing G = RᵀR on
    # its range (eigenvalues above rounding) turns each band into the small NNLS ||R m - d||,
    # d = R⁺ᵀc, also when G is singular (a material absent from every used pixel).
    values, vectors = np.linalg.eigh(gram)
    keep = values > max(values.max(), 0.0) * gram.shape[0] * np.finfo(np.float64).eps
    root = np.sqrt(values[keep])
    r = root[:, None] * vectors[:, keep].T  # (k, P)
    d = (vectors[:, keep].T @ cross) / root[:, None]  # (k, B)
    out = np.empty((a.shape[1], y.shape[1]))
    for band in range(y.shape[1]):
        out[:, band] = nnls(r, d[:, band])[0]
    return out
