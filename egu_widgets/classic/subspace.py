"""How many materials: the signal subspace's dimension, estimated from the data alone.

Two criteria, both from a noise estimate and the eigenvalues of the data's second moments:

``hysime``
    HySime (Bioucas-Dias & Nascimento, "Hyperspectral subspace identification", IEEE TGRS 46(8),
    2008). The noise of every band is estimated by regressing the band on all the others (the
    residual is noise, because neighbouring bands carry the signal); the signal's correlation
    matrix is the data's minus the noise's. Along each of its eigenvectors e the subspace keeps
    e if projecting onto it removes more signal power than the noise it lets through:
    ``eᵀR_y e > 2 eᵀR_n e``. The count of kept directions is the estimate.
``hfc``
    The noise-whitened Harsanyi–Farrand–Chang test (NWHFC; Chang & Du, "Estimation of number of
    spectrally distinct signal sources in hyperspectral imagery", IEEE TGRS 42(3), 2004). After
    whitening by the same noise estimate, a direction that holds only noise has equal eigenvalues
    of the correlation and of the covariance matrix; a signal direction has a larger correlation
    eigenvalue. Each pair is tested at false-alarm probability ``false_alarm`` and the count of
    significant differences is the estimate.

``rmt``
    Random-matrix theory (Cawse-Nicholson, Damelin, Robin & Sears, "Determining the intrinsic
    dimension of a hyperspectral image using random matrix theory", IEEE TIP 22(4), 2013). After
    whitening by the noise estimate and centring, the covariance eigenvalues of pure noise stay
    below the Marchenko–Pastur edge with Tracy–Widom fluctuations (Johnstone, Ann. Statist. 29,
    2001); each eigenvalue above the edge plus ``tw_quantile`` fluctuation scales is a signal
    direction. Centring removes one direction of the simplex, so the count is that number plus one.

Under the linear mixing model with P materials the signal spans P directions of the uncentred
data (P − 1 after centring), which is why both work on correlation matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..validation import check_choice, check_float

__all__ = ["CRITERIA", "SubspaceEstimate", "estimate_n_endmembers", "estimate_noise", "hfc", "hysime", "rmt"]

CRITERIA = ("hysime", "hfc", "rmt")
#: Tracy–Widom (β=1) distribution, 99 % quantile: the default threshold of the ``rmt`` test.
TW1_Q99 = 2.0234


def _pixels(data: Any) -> np.ndarray:
    """(N, B) float64 pixels of a HyperCube (valid pixels only) or of an (N, B) / (H, W, B) array."""
    if hasattr(data, "pixels") and hasattr(data, "valid_mask"):
        x = np.asarray(data.pixels, dtype=np.float64)[np.asarray(data.valid_mask).ravel()]
    else:
        x = np.asarray(data, dtype=np.float64)
        if x.ndim == 3:
            x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2:
        raise InputError(f"expected pixels (N, bands) or an image (H, W, bands); got shape {x.shape}")
    n, b = x.shape
    if b < 3:
        raise InputError(f"estimating the number of materials needs at least 3 bands; got {b}")
    if n <= b:
        raise InputError(f"estimating the number of materials needs more pixels than bands; got {n} pixels, {b} bands")
    if not np.isfinite(x).all():
        raise InputError("the pixels contain NaN or Inf values; mask or fill them first")
    return x


def estimate_noise(pixels: np.ndarray) -> np.ndarray:
    """Per-pixel noise (N, B) by regressing each band on all the other bands.

    With Q the inverse of the bands' second-moment matrix, the regression residual of band i is
    ``(Q y)_i / Q_ii`` for every pixel y, so all B regressions cost one B×B inverse.
    """
    x = np.asarray(pixels, dtype=np.float64)
    gram = x.T @ x
    # A relative ridge keeps the inverse finite when bands are (numerically) collinear.
    ridge = 1e-10 * np.trace(gram) / gram.shape[0]
    q = np.linalg.inv(gram + ridge * np.eye(gram.shape[0]))
    return (x @ q) / np.diag(q)


def _noise_variance(noise: np.ndarray) -> np.ndarray:
    """Per-band noise variance of regression residuals, corrected for the B − 1 fitted coefficients.

    A residual of N pixels regressed on B − 1 bands has N − B + 1 degrees of freedom; the plain mean
    of its squares underestimates the variance by that factor, which the eigenvalue tests would read
    as signal.
    """
    n, b = noise.shape
    return np.maximum(np.sum(noise * noise, axis=0) / max(n - b + 1, 1), np.finfo(float).tiny)


@dataclass(frozen=True)
class SubspaceEstimate:
    """The number of materials found by one criterion, with what a plot of it needs.

    ``eigenvalues`` are the signal correlation matrix's, largest first; ``noise_power`` is the
    noise power along the same eigenvectors, so a direction counts (for HySime) where
    ``signal_power > 2 * noise_power``.
    """

    n_endmembers: int
    criterion: str
    eigenvalues: np.ndarray
    signal_power: np.ndarray
    noise_power: np.ndarray
    noise_variance: np.ndarray = field(repr=False)
    details: dict = field(default_factory=dict, repr=False)


def hysime(data: Any, noise: np.ndarray | None = None) -> SubspaceEstimate:
    """HySime's signal-subspace dimension of ``data`` (a HyperCube, (N, B) or (H, W, B) array)."""
    y = _pixels(data)
    n = y.shape[0]
    w = estimate_noise(y) if noise is None else np.asarray(noise, dtype=np.float64)
    if w.shape != y.shape:
        raise InputError(f"noise must have the pixels' shape {y.shape}; got {w.shape}")
    ry = y.T @ y / n
    rn = np.diag(_noise_variance(w))
    x = y - w
    rx = x.T @ x / n
    evals, evecs = np.linalg.eigh(rx)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    py = np.einsum("bk,bc,ck->k", evecs, ry, evecs)
    pn = np.einsum("bk,bc,ck->k", evecs, rn, evecs)
    keep = py > 2.0 * pn
    return SubspaceEstimate(int(keep.sum()), "hysime", evals, py, pn, np.diag(rn).copy(), details={"kept": keep})


def hfc(data: Any, false_alarm: float = 1e-3, noise: np.ndarray | None = None) -> SubspaceEstimate:
    """The noise-whitened HFC count of ``data`` at false-alarm probability ``false_alarm``."""
    from scipy.stats import norm

    false_alarm = check_float("false_alarm", false_alarm, 0.0, 0.5, min_inclusive=False, max_inclusive=False)
    y = _pixels(data)
    n = y.shape[0]
    w = estimate_noise(y) if noise is None else np.asarray(noise, dtype=np.float64)
    sigma = np.sqrt(_noise_variance(w))
    z = y / sigma
    corr = np.sort(np.linalg.eigvalsh(z.T @ z / n))[::-1]
    centred = z - z.mean(axis=0)
    cov = np.sort(np.linalg.eigvalsh(centred.T @ centred / n))[::-1]
    # Under "noise only" the difference has mean 0 and variance about 2(λ_R² + λ_K²)/N.
    threshold = norm.isf(false_alarm) * np.sqrt(2.0 * (corr**2 + cov**2) / n)
    significant = (corr - cov) > threshold
    return SubspaceEstimate(
        int(significant.sum()),
        "hfc",
        corr,
        corr - cov,
        threshold,
        sigma**2,
        details={"covariance_eigenvalues": cov, "false_alarm": false_alarm},
    )


def rmt(data: Any, tw_quantile: float = TW1_Q99, noise: np.ndarray | None = None) -> SubspaceEstimate:
    """The random-matrix count of ``data``: whitened covariance eigenvalues above the noise edge, plus one."""
    tw_quantile = check_float("tw_quantile", tw_quantile)
    y = _pixels(data)
    n, b = y.shape
    w = estimate_noise(y) if noise is None else np.asarray(noise, dtype=np.float64)
    variance = _noise_variance(w)
    z = y / np.sqrt(variance)
    z -= z.mean(axis=0)
    evals = np.sort(np.linalg.eigvalsh(z.T @ z))[::-1]
    root = np.sqrt(n - 1) + np.sqrt(b)
    edge = root**2 + tw_quantile * root * (1 / np.sqrt(n - 1) + 1 / np.sqrt(b)) ** (1 / 3)
    count = int((evals > edge).sum()) + 1
    return SubspaceEstimate(
        count,
        "rmt",
        evals / n,
        evals / n,
        np.full(b, edge / n),
        variance,
        details={"edge": edge / n, "tw_quantile": tw_quantile},
    )


def estimate_n_endmembers(data: Any, criterion: str = "hysime", **options: Any) -> SubspaceEstimate:
    """The number of materials in ``data`` by ``criterion`` ("hysime", "hfc" or "rmt"; see the module doc).

    ``data`` is a :class:`~egu_widgets.cube.HyperCube` (its valid pixels are used) or an array of
    pixels (N, B) or an image (H, W, B). ``options`` go to the criterion's function.
    """
    check_choice("criterion", criterion, CRITERIA)
    return {"hysime": hysime, "hfc": hfc, "rmt": rmt}[criterion](data, **options)
