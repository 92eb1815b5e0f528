"""Fully constrained least squares (FCLS), non-negative least squares and simplex projection.

All pixels are solved at once. Each pixel's problem

    minimise ½‖y − Mᵀa‖²  subject to  a ≥ 0  (and, for FCLS, 1ᵀa = 1)

only sees the data through the P×P Gram matrix G = M Mᵀ and the vector b = M y, so the (N, B)
pixels are reduced to (N, P) once, and everything after that costs O(N·P³) however many bands
there are. The solver is a primal active-set method (Lawson–Hanson, extended with the sum-to-one
equality): every pixel keeps its own set of non-zero abundances, and each sweep solves the small
equality-constrained problem on that set for all still-unfinished pixels with one batched
``numpy.linalg.solve``. An active-set method ends at the exact optimum (to rounding) after a
handful of sweeps, typically ≤ 2P, unlike projected-gradient or ADMM schemes whose accuracy
depends on conditioning and iteration counts.

Shapes follow the package convention: pixels (N, B), endmembers (P, B), abundances (N, P).
"""

from __future__ import annotations

import warnings

import numpy as np

from egu_widgets.errors import InputError

__all__ = ["fcls", "nnls_unmix", "project_simplex"]


# --------------------------------------------------------------------------------------------
# input checks shared by the classical methods (vca.py and sunsal.py import these)
# --------------------------------------------------------------------------------------------


def _as_float_matrix(x, name: str, *, what: str) -> np.ndarray:
    """Return ``x`` as a finite 2-D float64 array, or raise InputError saying what to change."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} could not be read as an array ({exc}); pass a {what} array") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name} has dtype {arr.dtype}; pass a real-valued numeric {what} array")
    if np.iscomplexobj(arr):
        raise InputError(f"{name} is complex; pass a real-valued {what} array")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D {what}, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise InputError(
            f"{name} contains NaN or infinite values in {bad} row(s); "
            "remove or fill those rows (e.g. mask bad pixels) before calling"
        )
    return arr


def _check_pixels_endmembers(pixels, endmembers) -> tuple[np.ndarray, np.ndarray]:
    y = _as_float_matrix(pixels, "pixels", what="(N, B)")
    m = _as_float_matrix(endmembers, "endmembers", what="(P, B)")
    if y.shape[1] != m.shape[1]:
        raise InputError(
            f"pixels have {y.shape[1]} bands but endmembers have {m.shape[1]}; both must be "
            "(rows, bands) with the same bands — transpose a (B, P) endmember matrix to (P, B)"
        )
    if m.shape[0] < 1:
        raise InputError("endmembers is empty; pass at least one endmember row (P, B)")
    if y.shape[1] < 1:
        raise InputError("pixels have zero bands; pass a (N, B) array with B >= 1")
    if not np.any(m):
        raise InputError("all endmembers are zero; pass real endmember spectra")
    return y, m


# --------------------------------------------------------------------------------------------
# simplex projection
# --------------------------------------------------------------------------------------------


def project_simplex(v, radius: float = 1.0) -> np.ndarray:
    """Euclidean projection of each row of ``v`` onto the simplex {a ≥ 0, Σa = radius}.

    Exact sort-based algorithm (Held et al. 1974; Duchi et al. 2008), vectorised over rows:
    the projection is max(v − θ, 0) where θ is found from the sorted row in O(P log P).

    Parameters
    ----------
    v : array (..., P) — any leading shape; each last-axis vector is projected independently.
    radius : the sum of the projected vector (1 for abundances).

    Returns
    -------
    float64 array with the shape of ``v``.
    """
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise InputError(f"project_simplex needs vectors along the last axis, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("project_simplex input contains NaN or infinite values; fill them first")
    if not radius > 0:
        raise InputError(f"radius must be positive, got {radius}")
    rows = arr.reshape(-1, arr.shape[-1])
    p = rows.shape[1]
    u = -np.sort(-rows, axis=1)  # descending
    css = np.cumsum(u, axis=1) - radius
    k = np.arange(1, p + 1, dtype=np.float64)
    # The support size rho is the last k with u_k > (Σ_{j≤k} u_j − r)/k; the condition holds
    # for a prefix of k, so counting the Trues gives rho.
    rho = np.count_nonzero(u * k > css, axis=1)
    theta = css[np.arange(rows.shape[0]), rho - 1] / rho
    out = np.maximum(rows - theta[:, None], 0.0)
    return out.reshape(arr.shape)


# --------------------------------------------------------------------------------------------
# batched active-set solver
# --------------------------------------------------------------------------------------------


def _batched_solve(k: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve k[i] x[i] = rhs[i]; fall back to the pseudo-inverse where a system is singular.

    Singular systems happen only with exactly dependent endmembers (duplicates); the minimum-norm
    solution then keeps the active-set iteration going instead of crashing.
    """
    try:
        return np.linalg.solve(k, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("nij,nj->ni", np.linalg.pinv(k), rhs)


def _active_set(gram: np.ndarray, b: np.ndarray, a: np.ndarray, passive: np.ndarray, *,
                sum_to_one: bool, tol: float, max_iter: int) -> np.ndarray:
    """Primal active-set method for min ½aᵀGa − bᵀa, a ≥ 0 (and 1ᵀa = 1), for all rows of b.

    ``a`` must be feasible and ``passive`` must hold its non-zero entries (it may hold zeros too).
    Both are updated in place; the final ``a`` is returned.
    """
    n, p = b.shape
    eye = np.eye(p, dtype=bool)
    # Dual feasibility is judged relative to the size of the gradient terms, so tol is unit-free.
    scale = max(float(np.max(np.abs(np.diag(gram)))), float(np.max(np.abs(b), initial=0.0)), 1e-300)
    dual_tol = tol * scale
    todo = np.arange(n)
    for _ in range(max_iter):
        if todo.size == 0:
            break
        s = passive[todo]  # (m, P)
        m = todo.size
        # Equality-constrained subproblem on each pixel's passive set S: rows i ∈ S carry G_SS
        # (and the multiplier column of 1ᵀa = 1); rows i ∉ S just pin a_i = 0.
        both = s[:, :, None] & s[:, None, :]
        size = p + 1 if sum_to_one else p
        k = np.zeros((m, size, size))
        k[:, :p, :p] = np.where(both, gram, 0.0) + (eye & ~s[:, :, None])
        rhs = np.zeros((m, size))
        rhs[:, :p] = np.where(s, b[todo], 0.0)
        if sum_to_one:
            k[:, :p, p] = s
            k[:, p, :p] = s
            rhs[:, p] = 1.0
        z = _batched_solve(k, rhs)[:, :p]
        z = np.where(s, z, 0.0)

        infeasible = np.any(s & (z < 0.0), axis=1)
        # Pixels whose subproblem solution left the feasible region: walk from a towards z until
        # the first abundance hits zero, and drop that one from the passive set.
        if np.any(infeasible):
            rows = todo[infeasible]
            ai = a[rows]
            zi = z[infeasible]
            si = s[infeasible]
            neg = si & (zi < 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(neg, ai / (ai - zi), np.inf)
            j = np.argmin(ratio, axis=1)
            alpha = np.clip(ratio[np.arange(rows.size), j], 0.0, 1.0)
            ai = ai + alpha[:, None] * (zi - ai)
            ai[np.arange(rows.size), j] = 0.0
            drop = ai <= 0.0
            ai[drop] = 0.0
            a[rows] = ai
            passive[rows] = si & ~drop

        feasible = ~infeasible
        if np.any(feasible):
            rows = todo[feasible]
            af = z[feasible]
            sf = s[feasible]
            a[rows] = af
            grad = af @ gram - b[rows]  # gradient of the objective, (m, P)
            if sum_to_one:
                # Stationarity on S fixes the multiplier of 1ᵀa = 1: it equals −grad_i for every
                # i ∈ S; the multipliers of the bounds a_i ≥ 0 outside S are grad_i minus that.
                count = np.maximum(sf.sum(axis=1), 1)
                level = np.where(sf, grad, 0.0).sum(axis=1) / count
                lam = grad - level[:, None]
            else:
                lam = grad
            lam = np.where(sf, np.inf, lam)
            j = np.argmin(lam, axis=1)
            worst = lam[np.arange(rows.size), j]
            improve = worst < -dual_tol
            # Pixels with a negative multiplier gain by freeing that bound; the rest are optimal.
            passive[rows[improve], j[improve]] = True
            done = rows[~improve]
        else:
            done = np.empty(0, dtype=np.intp)
        todo = np.setdiff1d(todo, done, assume_unique=True)
    else:
        if todo.size:
            warnings.warn(
                f"active-set solver stopped after max_iter={max_iter} sweeps with {todo.size} "
                "pixel(s) not proven optimal; their abundances are feasible but may be slightly "
                "sub-optimal — raise max_iter",
                RuntimeWarning,
                stacklevel=3,
            )
    return a


def _default_max_iter(p: int) -> int:
    # Each sweep frees or drops one bound per pixel; the optimum is normally reached in ≤ 2P
    # sweeps, so 10P + 50 only matters for degenerate (cycling-prone) data.
    return 10 * p + 50


def fcls(pixels, endmembers, *, tol: float = 1e-8, max_iter: int | None = None) -> np.ndarray:
    """Fully constrained least-squares abundances: non-negative, summing to one.

    Solves, for every pixel y (row of ``pixels``),  min ½‖y − Mᵀa‖²  s.t. a ≥ 0, 1ᵀa = 1,
    exactly (to rounding), with a vectorised primal active-set method.

    Parameters
    ----------
    pixels : (N, B) float array.
    endmembers : (P, B) float array (rows are spectra).
    tol : optimality tolerance on the bound multipliers, relative to the scale of M Mᵀ and M y.
    max_iter : number of active-set sweeps allowed (default 10P + 50; rarely more than 2P used).

    Returns
    -------
    (N, P) float64 abundances; every row is ≥ 0 and sums to 1.

    Raises
    ------
    InputError for NaN/inf, wrong dimensions or band mismatch.
    """
    y, m = _check_pixels_endmembers(pixels, endmembers)
    n, p = y.shape[0], m.shape[0]
    if n == 0:
        return np.zeros((0, p))
    if p == 1:
        return np.ones((n, 1))
    gram = m @ m.T
    b = y @ m.T
    # Start from the projection of the sum-to-one least-squares solution onto the simplex: it is
    # feasible, and its support is usually close to the optimal one, which saves sweeps.
    kkt = np.zeros((p + 1, p + 1))
    kkt[:p, :p] = gram
    kkt[:p, p] = 1.0
    kkt[p, :p] = 1.0
    rhs = np.concatenate([b, np.ones((n, 1))], axis=1)
    unconstrained = (np.linalg.pinv(kkt) @ rhs.T).T[:, :p]
    a = project_simplex(unconstrained)
    passive = a > 0.0
    a = _active_set(gram, b, a, passive, sum_to_one=True, tol=tol,
                    max_iter=_default_max_iter(p) if max_iter is None else int(max_iter))
    a = np.maximum(a, 0.0)
    # The subproblem enforces 1ᵀa = 1 only up to rounding; make it exact.
    a /= a.sum(axis=1, keepdims=True)
    return a


def nnls_unmix(pixels, endmembers, *, tol: float = 1e-8, max_iter: int | None = None) -> np.ndarray:
    """Non-negative least-squares abundances (no sum-to-one), all pixels at once.

    Solves min ½‖y − Mᵀa‖² s.t. a ≥ 0 per pixel with the same active-set solver as :func:`fcls`
    (Lawson–Hanson), so it matches ``scipy.optimize.nnls`` to rounding. Shapes and arguments as
    in :func:`fcls`. Returns (N, P) float64, ≥ 0.
    """
    y, m = _check_pixels_endmembers(pixels, endmembers)
    n, p = y.shape[0], m.shape[0]
    if n == 0:
        return np.zeros((0, p))
    gram = m @ m.T
    b = y @ m.T
    a = np.zeros((n, p))
    passive = np.zeros((n, p), dtype=bool)
    a = _active_set(gram, b, a, passive, sum_to_one=False, tol=tol,
                    max_iter=_default_max_iter(p) if max_iter is None else int(max_iter))
    return np.maximum(a, 0.0)
