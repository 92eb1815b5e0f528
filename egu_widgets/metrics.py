"""Unmixing quality metrics on plain arrays.

Conventions: abundances are (N, P) (leading axes beyond the last are flattened, so (H, W, P)
maps work too), endmembers (P, B), pixels (N, B). Abundance errors are on the 0–1 abundance
scale, not in percent; spectral angles are in degrees; SRE is in dB.

Estimated and true components come in arbitrary order, so compare only after :func:`align`
(which :func:`score` does for you).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from egu_widgets.errors import InputError

__all__ = [
    "align",
    "abundance_rmse",
    "abundance_rmse_per_endmember",
    "sad",
    "sad_matrix",
    "mean_sad",
    "sre",
    "reconstruction_rmse",
    "score",
]


def _as_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as exc:
        raise InputError(f"{name} could not be read as an array ({exc})") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{name} has dtype {arr.dtype}; pass a real-valued numeric array")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise InputError(
            f"{name} contains NaN or infinite values; metrics need finite values — fill or mask them first"
        )
    return arr


def _abundances(x, name: str) -> np.ndarray:
    arr = _as_array(x, name)
    if arr.ndim < 2:
        raise InputError(f"{name} must be (N, P) abundances (pixels × endmembers), got shape {arr.shape}")
    return arr.reshape(-1, arr.shape[-1])


def _spectra(x, name: str) -> np.ndarray:
    arr = _as_array(x, name)
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (P endmembers, B bands), got shape {arr.shape}")
    return arr


def _same_shape(a: np.ndarray, b: np.ndarray, what: str, hint: str = "") -> None:
    if a.shape != b.shape:
        raise InputError(f"{what}: shapes differ, {a.shape} vs {b.shape}{hint}")


def _pair_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between rows a[i] and b[j] broadcast together (last axis = bands).

    Uses θ = 2·atan2(‖â − b̂‖, ‖â + b̂‖) on unit vectors (Kahan), accurate for tiny and
    near-180° angles where arccos of a dot product loses half the digits. A zero vector has no
    direction: its angle is NaN.
    """
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ua = a / na
        ub = b / nb
    angle = 2.0 * np.arctan2(np.linalg.norm(ua - ub, axis=-1), np.linalg.norm(ua + ub, axis=-1))
    zero = (na[..., 0] == 0) | (nb[..., 0] == 0)
    return np.where(zero, np.nan, np.degrees(angle))


def sad(est_endmembers, true_endmembers) -> np.ndarray:
    """Spectral angle distance, in degrees, between row i of ``est`` and row i of ``true``.

    Both (P, B), already aligned (see :func:`align`). Returns (P,) float64 in [0, 180]; 0 for
    scaled copies, 90 for orthogonal spectra, NaN where either spectrum is all zeros.
    """
    est = _spectra(est_endmembers, "est_endmembers")
    true = _spectra(true_endmembers, "true_endmembers")
    _same_shape(est, true, "sad", " — align the estimate first (est[align(...)]) and use the same bands")
    return _pair_angles(est, true)


def sad_matrix(est_endmembers, true_endmembers) -> np.ndarray:
    """All pairwise spectral angles in degrees: entry [i, j] is between true[i] and est[j].

    est (P_est, B), true (P_true, B) -> (P_true, P_est).
    """
    est = _spectra(est_endmembers, "est_endmembers")
    true = _spectra(true_endmembers, "true_endmembers")
    if est.shape[1] != true.shape[1]:
        raise InputError(f"estimated endmembers have {est.shape[1]} bands, true ones {true.shape[1]}; they must match")
    return _pair_angles(true[:, None, :], est[None, :, :])


def mean_sad(est_endmembers, true_endmembers) -> float:
    """Mean over endmembers of :func:`sad`, in degrees (NaN if any spectrum is all zeros)."""
    return float(np.mean(sad(est_endmembers, true_endmembers)))


def abundance_rmse(est_abundances, true_abundances) -> float:
    """Root mean squared abundance error over all N·P entries (0–1 scale): √mean((Â − A)²)."""
    est = _abundances(est_abundances, "est_abundances")
    true = _abundances(true_abundances, "true_abundances")
    _same_shape(est, true, "abundance_rmse", " — align the estimate first (est[:, align(...)])")
    return float(np.sqrt(np.mean((est - true) ** 2)))


def abundance_rmse_per_endmember(est_abundances, true_abundances) -> np.ndarray:
    """Root mean squared abundance error of each endmember over the N pixels: (P,) float64."""
    est = _abundances(est_abundances, "est_abundances")
    true = _abundances(true_abundances, "true_abundances")
    _same_shape(est, true, "abundance_rmse_per_endmember", " — align the estimate first (est[:, align(...)])")
    return np.sqrt(np.mean((est - true) ** 2, axis=0))


def sre(pixels, reconstruction) -> float:
    """Signal-to-reconstruction error in dB: 10·log10(‖Y‖² / ‖Y − Ŷ‖²), over all entries.

    Higher is better; +inf for an exact reconstruction.
    """
    y = _as_array(pixels, "pixels")
    y_hat = _as_array(reconstruction, "reconstruction")
    _same_shape(y, y_hat, "sre")
    err = float(np.sum((y - y_hat) ** 2))
    sig = float(np.sum(y * y))
    if err == 0.0:
        return float("inf")
    if sig == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(sig / err))


def reconstruction_rmse(pixels, reconstruction) -> float:
    """Root mean squared difference between pixels and their reconstruction, over all entries."""
    y = _as_array(pixels, "pixels")
    y_hat = _as_array(reconstruction, "reconstruction")
    _same_shape(y, y_hat, "reconstruction_rmse")
    return float(np.sqrt(np.mean((y - y_hat) ** 2)))


def align(est_endmembers=None, true_endmembers=None, est_abundances=None, true_abundances=None) -> np.ndarray:
    """Permutation that puts estimated components in the order of the true ones.

    Returns ``perm`` (P_true,) int such that ``est_endmembers[perm]`` and
    ``est_abundances[:, perm]`` line up with the truth. The matching is the optimal one-to-one
    assignment (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``) minimising the
    total spectral angle when both endmember sets are given, otherwise the total abundance RMSE
    between columns. If there are more estimated components than true ones, the best-matching
    subset is chosen (the others are left out of ``perm``); fewer is an error.
    """
    if est_endmembers is not None and true_endmembers is not None:
        cost = sad_matrix(est_endmembers, true_endmembers)
        # A zero spectrum matches nothing: give it the worst possible angle rather than NaN.
        cost = np.where(np.isnan(cost), 180.0, cost)
        kind, n_est, n_true = "endmembers", cost.shape[1], cost.shape[0]
    elif est_abundances is not None and true_abundances is not None:
        est = _abundances(est_abundances, "est_abundances")
        true = _abundances(true_abundances, "true_abundances")
        if est.shape[0] != true.shape[0]:
            raise InputError(
                f"estimated abundances cover {est.shape[0]} pixels but true ones {true.shape[0]}; "
                "both must be (N, P) over the same pixels"
            )
        # Pairwise column RMSE, (P_true, P_est); one pass per true component (P is small),
        # computed from differences so that near-identical columns are compared exactly.
        cost = np.stack([np.sqrt(np.mean((est - true[:, [i]]) ** 2, axis=0)) for i in range(true.shape[1])])
        kind, n_est, n_true = "abundances", est.shape[1], true.shape[1]
    else:
        raise InputError(
            "align needs both est_endmembers and true_endmembers, or both est_abundances and true_abundances"
        )
    if n_est < n_true:
        raise InputError(
            f"the estimate has {n_est} {kind} components but the truth has {n_true}; every true "
            "component needs a partner — estimate at least as many endmembers as the truth has"
        )
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(n_true, dtype=np.intp)
    perm[rows] = cols
    return perm


def score(est_abundances, true_abundances, est_endmembers=None, true_endmembers=None) -> dict:
    """Align the estimate to the truth and report the standard figures.

    Alignment uses the endmembers (spectral angle) when both are given, else the abundances.

    Returns a dict:
      ``rmse`` — overall abundance RMSE (float, 0–1 scale);
      ``rmse_per_endmember`` — list of P_true floats, in the truth's order;
      ``sad`` — mean spectral angle in degrees (NaN when endmembers are not given);
      ``sad_per_endmember`` — list of P_true floats in degrees (NaNs when not given);
      ``permutation`` — list of ints: estimated component index for each true one.
    """
    est = _abundances(est_abundances, "est_abundances")
    true = _abundances(true_abundances, "true_abundances")
    if est.shape[0] != true.shape[0]:
        raise InputError(
            f"estimated abundances cover {est.shape[0]} pixels but true ones {true.shape[0]}; "
            "both must be over the same pixels"
        )
    have_endmembers = est_endmembers is not None and true_endmembers is not None
    if have_endmembers:
        est_m = _spectra(est_endmembers, "est_endmembers")
        true_m = _spectra(true_endmembers, "true_endmembers")
        if est_m.shape[0] != est.shape[1] or true_m.shape[0] != true.shape[1]:
            raise InputError(
                f"endmember counts ({est_m.shape[0]} estimated, {true_m.shape[0]} true) must match "
                f"the abundance columns ({est.shape[1]} estimated, {true.shape[1]} true)"
            )
        perm = align(est_endmembers=est_m, true_endmembers=true_m)
        sad_each = sad(est_m[perm], true_m)
    else:
        perm = align(est_abundances=est, true_abundances=true)
        sad_each = np.full(true.shape[1], np.nan)
    aligned = est[:, perm]
    per = abundance_rmse_per_endmember(aligned, true)
    return {
        "rmse": abundance_rmse(aligned, true),
        "rmse_per_endmember": [float(v) for v in per],
        "sad": float(np.mean(sad_each)) if have_endmembers else float("nan"),
        "sad_per_endmember": [float(v) for v in sad_each],
        "permutation": [int(v) for v in perm],
    }
