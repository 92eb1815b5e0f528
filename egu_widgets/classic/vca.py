"""Vertex Component Analysis (VCA) endmember extraction, for one scene or many small patches.

Nascimento & Bioucas-Dias, "Vertex component analysis: a fast algorithm to unmix hyperspectral
data", IEEE TGRS 43(4), 2005. Under the linear mixing model the pixels lie in a simplex whose
vertices are the endmembers. VCA

1. estimates the SNR from how much energy a P-dimensional principal subspace captures;
2. projects the pixels to P dimensions: at high SNR onto the top-P singular subspace followed by a
   projective scaling y / (yᵀu) that maps the data onto a hyperplane (removing per-pixel
   illumination scale); at low SNR onto the top-(P−1) principal components of the centred data
   plus one constant coordinate, which is less sensitive to noise;
3. P times, draws a random direction orthogonal to the vertices found so far and takes the pixel
   with the largest absolute projection on it: the extreme point of the projected simplex in
   that direction is a vertex.

Everything is written for a batch of K independent problems (K, n, B) so that thousands of small
patches are processed with batched linear algebra; :func:`vca` is the K = 1 case and gives the
same answer as :func:`vca_batch` on a single patch with the same seed.

Differences from the reference MATLAB code, all deliberate:
- the returned endmembers are the original pixel rows at the selected indices (not their
  projections onto the signal subspace), so they can be used as observed spectra (bundles);
- the principal subspaces come from the eigen-decomposition of the smaller of the two Gram
  matrices (n×n or B×B), which is what makes 25-pixel × 224-band patches cheap;
- a pixel already chosen is never chosen again while there are others left, and degenerate data
  (identical pixels, rank smaller than P, all-zero pixels) are handled without division by zero.

Memory: :func:`vca` on a large image (more values than :data:`_WHOLE_BLOCKS` blocks of
:data:`~egu_widgets.classic.fcls._CHUNK_ELEMENTS`) reads the pixels block by block, each converted
to float64 only for its own products: the Gram matrix, the mean and the (N, P) coordinates are
accumulated, and no (N, B) copy of the image (float64, centred or projected) is ever made. The
block sums round differently from one product, so the eigenvectors' signs, which are arbitrary,
are fixed there (:func:`_canonical_signs`): the answer then does not depend on the block size.
Smaller images are computed whole, exactly as before (a float64 copy and its centred copy).
"""

from __future__ import annotations

import importlib

import numpy as np

from egu_widgets.classic.fcls import _as_pixel_matrix, _row_blocks, _rows64
from egu_widgets.errors import InputError

# The module itself (the package's name ``fcls`` is the function): its block size is read per call.
_fcls = importlib.import_module("egu_widgets.classic.fcls")

__all__ = ["vca", "vca_batch"]

#: :func:`vca` computes an image of up to this many blocks of values (2**24 values, 128 MiB as
#: float64, by default) whole, with one product per Gram matrix, as before the block path
#: existed: the block path fixes the eigenvectors' signs by a convention, which is not the sign
#: LAPACK gives the one-product Gram matrix, so it picks other (equally valid) vertices. The
#: scenes of the reproduction table (egu-synthetic: 200x200x224 values) keep their answers.
_WHOLE_BLOCKS = 4


def _computed_whole(n: int, b: int) -> bool:
    """Whether :func:`vca` computes an (n, b) image whole (see :data:`_WHOLE_BLOCKS`)."""
    return n * b <= _WHOLE_BLOCKS * _fcls._CHUNK_ELEMENTS


def _check_n_endmembers(n_endmembers, n_pixels: int, n_bands: int) -> int:
    if isinstance(n_endmembers, (bool, np.bool_)) or not isinstance(n_endmembers, (int, np.integer)):
        raise InputError(f"n_endmembers must be an integer, got {n_endmembers!r}")
    p = int(n_endmembers)
    if p < 2:
        raise InputError(f"n_endmembers must be at least 2 (got {p}); unmixing needs two or more materials")
    if p > n_bands:
        raise InputError(
            f"n_endmembers={p} exceeds the number of bands ({n_bands}); VCA can find at most as many "
            "endmembers as bands — lower n_endmembers"
        )
    if p > n_pixels:
        raise InputError(
            f"n_endmembers={p} exceeds the number of pixels ({n_pixels}); VCA picks endmembers among "
            "the pixels, so pass at least n_endmembers pixels (e.g. a larger patch)"
        )
    return p


def _top_coordinates(gram: np.ndarray, p: int, energy: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """Coordinates (K, n, p) of the rows of data x (K, n, B) on their top-p right singular vectors.

    With x = U S Vᵀ the wanted coordinates are x V = U S. If ``x`` is None, ``gram`` is x xᵀ
    (K, n, n) and the coordinates are its eigenvectors times √eigenvalues — no need to form V or
    even x. Otherwise ``gram`` is xᵀx (K, B, B), whose eigenvectors are V. Directions with an
    eigenvalue below 1e-12·``energy`` (K,) — the raw data's total energy — are rounding noise
    and come back as zero columns, as do missing ones (rank or size below p); the vertex search
    ignores them.
    """
    k = gram.shape[0]
    eigval, eigvec, negligible = _top_directions(gram, p, energy)
    q = eigval.shape[1]
    if x is None:
        coords = eigvec * np.sqrt(np.maximum(eigval, 0.0))[:, None, :]
    else:
        coords = x @ eigvec
    coords = np.where(negligible[:, None, :], 0.0, coords)
    if q < p:
        coords = np.concatenate([coords, np.zeros((k, coords.shape[1], p - q))], axis=2)
    return coords


def _top_directions(gram: np.ndarray, p: int, energy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top-q (q = min(p, size)) eigenpairs of ``gram`` (K, m, m), largest first, and which are negligible."""
    eigval, eigvec = np.linalg.eigh(gram)  # ascending
    q = min(p, gram.shape[-1])
    eigval = eigval[:, ::-1][:, :q]
    eigvec = eigvec[:, :, ::-1][:, :, :q]
    # Eigen-solver noise (and the rounding of deriving the centred Gram from the raw one) must
    # not steer the vertex search.
    negligible = eigval <= 1e-12 * np.maximum(energy, 1e-300)[:, None]
    return eigval, eigvec, negligible


def _canonical_signs(basis: np.ndarray) -> np.ndarray:
    """``basis`` (B, q) with each column's sign fixed: its largest-magnitude entry positive.

    An eigenvector's sign is arbitrary, and a Gram matrix summed block by block rounds differently
    from one product, which can flip it; the vertex search, being driven by fixed random
    directions, would then pick other pixels. Fixing the sign makes the block-wise answer
    independent of the block size and of the BLAS threads.
    """
    top = np.argmax(np.abs(basis), axis=0)
    return basis * np.where(basis[top, np.arange(basis.shape[1])] < 0, -1.0, 1.0)


def _block_coordinates(
    x: np.ndarray, basis: np.ndarray, negligible: np.ndarray, p: int, centre: np.ndarray | None = None
) -> np.ndarray:
    """(N, p) coordinates of the rows of ``x`` (N, B), minus ``centre``, on ``basis`` (B, q), block by block.

    The one-image, low-memory form of ``_top_coordinates(..., x)``: each block is converted to
    float64 (and centred) only for its own product; negligible directions and missing ones
    (q < p) are zero columns.
    """
    coords = np.zeros((x.shape[0], p))
    q = basis.shape[1]
    for rows in _row_blocks(x.shape[0], x.shape[1]):
        block = _rows64(x, rows)
        if centre is not None:
            block = block - centre
        coords[rows, :q] = np.where(negligible, 0.0, block @ basis)
    return coords


def _image_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (B,) and raw Gram matrix xᵀx (B, B) of the (N, B) pixels, summed block by block in float64."""
    total = np.zeros(x.shape[1])
    gram = np.zeros((x.shape[1], x.shape[1]))
    for rows in _row_blocks(x.shape[0], x.shape[1]):
        block = _rows64(x, rows)
        total += block.sum(axis=0)
        gram += block.T @ block
    return total / x.shape[0], gram


def _gram64(x: np.ndarray) -> np.ndarray:
    """The raw Gram matrix xᵀx (B, B) of (N, B) pixels in float64, without a float64 copy of them.

    An image that :func:`vca` computes whole is converted and multiplied whole (the same numbers
    as ``x.astype(float64).T @ x``); a larger one is summed block by block, each block converted
    just before its product.
    """
    if _computed_whole(x.shape[0], x.shape[1]):
        x64 = x.astype(np.float64, copy=False)
        return x64.T @ x64
    return _image_moments(x)[1]


def _image_projected_data(x: np.ndarray, p: int, snr) -> np.ndarray:
    """:func:`_projected_data` of one (N, B) image with N > B, reading it block by block -> (1, N, P)."""
    n = x.shape[0]
    mean, gram = _image_moments(x)
    gram_c = gram - n * mean[:, None] * mean[None, :]
    energy = np.array([np.trace(gram)])
    _, basis, negligible = _top_directions(gram_c[None], p, energy)
    centred_coords = _block_coordinates(x, _canonical_signs(basis[0]), negligible[0], p, mean)[None]

    def raw_coordinates(_high: np.ndarray) -> np.ndarray:
        _, raw_basis, raw_negligible = _top_directions(gram[None], p, energy)
        return _block_coordinates(x, _canonical_signs(raw_basis[0]), raw_negligible[0], p)[None]

    return _scaled_projection(centred_coords, mean[None], energy, p, x.shape[1], snr, raw_coordinates)


def _projected_data(x: np.ndarray, p: int, snr) -> np.ndarray:
    """Map each patch to its P-dimensional VCA representation y (K, n, P)."""
    k, n, b = x.shape
    small_is_pixels = n <= b
    mean = x.mean(axis=1)  # (K, B)
    # One Gram matrix of the raw data serves both branches: the centred one is derived from it
    # (double centring of x xᵀ, or xᵀx − n·mean meanᵀ), which saves a second product.
    if small_is_pixels:
        gram = x @ x.transpose(0, 2, 1)  # (K, n, n)
        row_mean = gram.mean(axis=2, keepdims=True)
        gram_c = gram - row_mean - row_mean.transpose(0, 2, 1) + gram.mean(axis=(1, 2), keepdims=True)
    else:
        gram = x.transpose(0, 2, 1) @ x  # (K, B, B)
        gram_c = gram - n * mean[:, :, None] * mean[:, None, :]
    energy = np.trace(gram, axis1=1, axis2=2)
    centred = None if small_is_pixels else x - mean[:, None, :]
    centred_coords = _top_coordinates(gram_c, p, energy, centred)  # (K, n, p)
    del centred

    def raw_coordinates(high: np.ndarray) -> np.ndarray:
        raw = None if small_is_pixels else (x if high.all() else x[high])  # no copy when all are high
        return _top_coordinates(gram[high], p, energy[high], raw)

    return _scaled_projection(centred_coords, mean, energy, p, b, snr, raw_coordinates)


def _scaled_projection(
    centred_coords: np.ndarray, mean: np.ndarray, energy: np.ndarray, p: int, b: int, snr, raw_coordinates
) -> np.ndarray:
    """The SNR choice and the two projections of :func:`_projected_data`, from the centred coordinates.

    ``raw_coordinates(high)`` gives the (Kh, n, p) top-p coordinates of the raw (uncentred) data of
    the patches selected by the boolean mask ``high``; it is called only when some patch needs them.
    """
    k, n, _ = centred_coords.shape

    if snr is None:
        # SNR estimate of the paper (eq. 13): P_y is the data power, P_x the power captured by
        # the signal subspace; the noise power is P_y − P_x, of which (p/B)·P_y leaked into the
        # subspace. Non-positive differences mean "no measurable noise" or "all noise".
        power_y = energy / n
        power_x = np.einsum("knp,knp->k", centred_coords, centred_coords) / n + np.einsum("kb,kb->k", mean, mean)
        signal = power_x - (p / b) * power_y
        noise = power_y - power_x
        with np.errstate(divide="ignore", invalid="ignore"):
            snr_db = np.where(
                noise <= 1e-12 * np.maximum(power_y, 1e-300),
                np.inf,
                np.where(signal <= 0.0, -np.inf, 10.0 * np.log10(signal / noise)),
            )
    else:
        snr_db = np.full(k, float(snr))
    high = snr_db > 15.0 + 10.0 * np.log10(p)

    y = np.empty((k, n, p))
    if np.any(~high):
        # Low SNR: (p−1) principal components of the centred data plus a constant coordinate c
        # (the largest norm), so that the data sit on the hyperplane "last coordinate = c".
        low_coords = centred_coords[~high][:, :, : p - 1]
        c = np.sqrt(np.einsum("knd,knd->kn", low_coords, low_coords).max(axis=1))
        c = np.where(c > 0.0, c, 1.0)
        y[~high, :, : p - 1] = low_coords
        y[~high, :, p - 1] = c[:, None]
    if np.any(high):
        # High SNR: top-p subspace of the raw (uncentred) data, then the projective scaling
        # y / (yᵀu) with u the mean projected pixel.
        coords = raw_coordinates(high)
        u = coords.mean(axis=1)  # (Kh, p)
        denom = np.einsum("knp,kp->kn", coords, u)
        # A pixel orthogonal to the mean direction (e.g. an all-zero pixel) has no position on
        # the hyperplane; keeping its coordinates unscaled is harmless for the vertex search.
        tiny = 1e-12 * np.maximum(np.abs(denom).max(axis=1, keepdims=True), 1e-300)
        denom = np.where(np.abs(denom) > tiny, denom, 1.0)
        y[high] = coords / denom[:, :, None]
    return y


def _find_vertices(y: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Successive orthogonal projections: (K, n, P) data and (K, P, P) random draws -> (K, P) indices."""
    k, n, p = y.shape
    rows = np.arange(k)
    basis = np.zeros((k, p, p))  # orthonormal columns spanning the vertices found so far
    basis[:, p - 1, 0] = 1.0  # the first direction is taken orthogonal to e_P, as in the paper
    taken = np.zeros((k, n), dtype=bool)
    indices = np.empty((k, p), dtype=np.intp)
    for i in range(p):
        w = directions[:, i, :]
        span = basis[:, :, : max(i, 1)]
        f = w - np.einsum("kpj,kj->kp", span, np.einsum("kpj,kp->kj", span, w))
        norm = np.linalg.norm(f, axis=1, keepdims=True)
        f = f / np.where(norm > 0.0, norm, 1.0)
        score = np.abs(np.einsum("knp,kp->kn", y, f))
        # Never take the same pixel twice while others remain (there always are: n ≥ P).
        score = np.where(taken, -1.0, score)
        best = np.argmax(score, axis=1)
        indices[:, i] = best
        taken[rows, best] = True
        vertex = y[rows, best]  # (K, P)
        # Gram–Schmidt, twice for numerical orthogonality, against the vertices found before
        # (for i = 0 the placeholder e_P is replaced, not kept).
        r = vertex.copy()
        if i > 0:
            prev = basis[:, :, :i]
            for _ in range(2):
                r -= np.einsum("kpj,kj->kp", prev, np.einsum("kpj,kp->kj", prev, r))
        rnorm = np.linalg.norm(r, axis=1, keepdims=True)
        vnorm = np.linalg.norm(vertex, axis=1, keepdims=True)
        # A vertex already in the span adds no direction: leave a zero column.
        keep = rnorm > 1e-10 * np.maximum(vnorm, 1e-300)
        basis[:, :, i] = np.where(keep, r / np.where(keep, rnorm, 1.0), 0.0)
    return indices


def _vca_core(x: np.ndarray, p: int, rng: np.random.Generator, snr) -> tuple[np.ndarray, np.ndarray]:
    y = _projected_data(x, p, snr)
    directions = rng.standard_normal((x.shape[0], p, p))
    indices = _find_vertices(y, directions)
    endmembers = np.take_along_axis(x, indices[:, :, None], axis=1)
    return endmembers, indices


def _vca_image(x: np.ndarray, p: int, rng: np.random.Generator, snr) -> tuple[np.ndarray, np.ndarray]:
    """VCA of one (N, B) image of any float dtype; large images go block by block (see the module doc)."""
    n, b = x.shape
    if n <= b or _computed_whole(n, b):
        endmembers, indices = _vca_core(x.astype(np.float64, copy=False)[None], p, rng, snr)
        return endmembers[0], indices[0]
    y = _image_projected_data(x, p, snr)
    indices = _find_vertices(y, rng.standard_normal((1, p, p)))[0]
    return x[indices].astype(np.float64), indices


def _check_snr(snr):
    if snr is None:
        return None
    snr = float(snr)
    if np.isnan(snr):
        raise InputError("snr is NaN; pass the SNR in dB, or None to estimate it")
    return snr


def vca(pixels, n_endmembers: int, *, seed=None, snr: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Extract ``n_endmembers`` endmembers from the pixels with VCA.

    Parameters
    ----------
    pixels : (N, B) float array; needs N ≥ P and B ≥ P.
    n_endmembers : P, at least 2.
    seed : seed (or ``numpy.random.Generator``) for the random projection directions; the same
        seed gives the same result.
    snr : SNR in dB to choose the projection; None estimates it from the data. Values above
        15 + 10·log10(P) dB select the projective (high-SNR) projection.

    Returns
    -------
    endmembers : (P, B) float64, the pixel rows at ``indices`` (unprojected).
    indices : (P,) int, distinct row indices into ``pixels``, in the order found.
    """
    x = _as_pixel_matrix(pixels, "pixels", what="(N, B)")
    p = _check_n_endmembers(n_endmembers, x.shape[0], x.shape[1])
    return _vca_image(x, p, np.random.default_rng(seed), _check_snr(snr))


def vca_batch(patches, n_endmembers: int, *, seed=None, snr: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run VCA independently on each of K patches at once (batched linear algebra).

    Parameters
    ----------
    patches : (K, n, B) float array — K groups of n pixels (e.g. 5×5 patches flattened to 25).
    n_endmembers : P, at least 2, at most n and B.
    seed : one seed for the whole batch; directions for all patches are drawn together as
        ``default_rng(seed).standard_normal((K, P, P))``, so for K = 1 the result equals
        ``vca(patches[0], P, seed=seed)``.
    snr : as in :func:`vca`, applied to every patch (None: estimated per patch).

    Returns
    -------
    endmembers : (K, P, B) float64 — for each patch, its pixel rows at ``indices``.
    indices : (K, P) int — indices into each patch's n pixels.
    """
    try:
        arr = np.asarray(patches)
    except Exception as exc:
        raise InputError(f"patches could not be read as an array ({exc}); pass a (K, n, B) array") from exc
    if arr.ndim != 3:
        raise InputError(
            f"patches must be 3-D (K patches, n pixels, B bands), got shape {arr.shape}; "
            "reshape image patches (K, h, w, B) to (K, h*w, B)"
        )
    k, n, b = arr.shape
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"patches has dtype {arr.dtype}; pass a real-valued numeric array")
    x = arr.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x).all(axis=(1, 2))))
        raise InputError(f"patches contain NaN or infinite values in {bad} patch(es); drop or fill them first")
    p = _check_n_endmembers(n_endmembers, n, b)
    if k == 0:
        return np.zeros((0, p, b)), np.zeros((0, p), dtype=np.intp)
    return _vca_core(x, p, np.random.default_rng(seed), _check_snr(snr))
