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

Memory: float32 pixels are never copied whole. They are read in blocks of rows, each converted to
float64 just before its arithmetic (so the answer is the one an all-float64 run gives), and the
active-set sweeps run over blocks of pixels, so the working arrays stay a fixed size however large
the image is (see docs/memory.md).
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


#: Elements (rows x bands) of one block of pixels converted to float64 at a time (32 MiB).
_CHUNK_ELEMENTS = 1 << 22


def _row_blocks(n_rows: int, row_size: int, elements: int | None = None):
    """Slices of at most ``elements`` (default :data:`_CHUNK_ELEMENTS`) elements of rows of ``row_size``."""
    step = max(1, (_CHUNK_ELEMENTS if elements is None else elements) // max(row_size, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _one_block(n_rows: int, row_size: int) -> bool:
    """Whether (n_rows, row_size) fits one block of :data:`_CHUNK_ELEMENTS` (then computed whole)."""
    return n_rows * row_size <= _CHUNK_ELEMENTS


def _as_pixel_matrix(x, name: str, *, what: str) -> np.ndarray:
    """Like :func:`_as_float_matrix`, but float32 (and float64) pixels are returned without a copy.

    Callers convert blocks of rows to float64 (:func:`_rows64`) right before they compute, which
    gives the float64 answer without ever holding a float64 copy of a whole image. The finiteness
    check runs block by block too.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{name} could not be read as an array ({exc}); pass a {what} array") from exc
    if arr.dtype not in (np.float32, np.float64):
        return _as_float_matrix(arr, name, what=what)
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D {what}, got shape {arr.shape}")
    bad = 0
    for rows in _row_blocks(arr.shape[0], arr.shape[1]):
        block = arr[rows]
        if not np.isfinite(block.sum()) and not np.isfinite(block).all():
            bad += int(np.count_nonzero(~np.isfinite(block).all(axis=1)))
    if bad:
        raise InputError(
            f"{name} contains NaN or infinite values in {bad} row(s); "
            "remove or fill those rows (e.g. mask bad pixels) before calling"
        )
    return arr


def _rows64(x: np.ndarray, rows: slice) -> np.ndarray:
    """Rows ``rows`` of ``x`` as float64 (a view when ``x`` is float64 already)."""
    return x[rows].astype(np.float64, copy=False)


def _times_transpose(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """y @ m.T (N, P) in float64, reading the (N, B) pixels ``y`` block by block."""
    out = np.empty((y.shape[0], m.shape[0]))
    for rows in _row_blocks(y.shape[0], y.shape[1]):
        out[rows] = _rows64(y, rows) @ m.T
    return out


def _check_pixels_endmembers(pixels, endmembers) -> tuple[np.ndarray, np.ndarray]:
    y = _as_pixel_matrix(pixels, "pixels", what="(N, B)")
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


def _active_set(
    gram: np.ndarray,
    b: np.ndarray,
    a: np.ndarray,
    passive: np.ndarray,
    *,
    sum_to_one: bool,
    dual_tol: float,
    max_iter: int,
) -> int:
    """Primal active-set method for min ½aᵀGa − bᵀa, a ≥ 0 (and 1ᵀa = 1), for all rows of b.

    ``a`` must be feasible and ``passive`` must hold its non-zero entries (it may hold zeros too).
    Both are updated in place. Returns how many rows were not proven optimal in ``max_iter`` sweeps.
    """
    n, p = b.shape
    eye = np.eye(p, dtype=bool)
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
    return int(todo.size)


def _solve_blocks(gram: np.ndarray, b: np.ndarray, start, *, sum_to_one: bool, tol: float, max_iter: int) -> np.ndarray:
    """Run :func:`_active_set` over blocks of pixels, from ``start(b_block)`` -> feasible (m, P).

    Every pixel's problem is independent; only the dual tolerance is shared, and it is computed
    from all pixels first, so the blocks give the answer one pass over all pixels would. The
    blocks bound the (m, P+1, P+1) working arrays of a sweep.
    """
    n, p = b.shape
    # Dual feasibility is judged relative to the size of the gradient terms, so tol is unit-free.
    scale = max(float(np.max(np.abs(np.diag(gram)))), float(np.max(np.abs(b), initial=0.0)), 1e-300)
    a = np.empty((n, p))
    unfinished = 0
    for rows in _row_blocks(n, (p + 1) ** 2, _CHUNK_ELEMENTS // 4):
        a[rows] = start(b[rows])
        passive = a[rows] > 0.0
        unfinished += _active_set(gram, b[rows], a[rows], passive, sum_to_one=sum_to_one, dual_tol=tol * scale,
                                  max_iter=max_iter)  # fmt: skip
    if unfinished:
        warnings.warn(
            f"active-set solver stopped after max_iter={max_iter} sweeps with {unfinished} "
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
    b = _times_transpose(y, m)
    # Start from the projection of the sum-to-one least-squares solution onto the simplex: it is
    # feasible, and its support is usually close to the optimal one, which saves sweeps.
    kkt = np.zeros((p + 1, p + 1))
    kkt[:p, :p] = gram
    kkt[:p, p] = 1.0
    kkt[p, :p] = 1.0
    kkt_inverse = np.linalg.pinv(kkt)

    def start(b_rows: np.ndarray) -> np.ndarray:
        rhs = np.concatenate([b_rows, np.ones((b_rows.shape[0], 1))], axis=1)
        return project_simplex((kkt_inverse @ rhs.T).T[:, :p])

    a = _solve_blocks(gram, b, start, sum_to_one=True, tol=tol,
                      max_iter=_default_max_iter(p) if max_iter is None else int(max_iter))  # fmt: skip
    np.maximum(a, 0.0, out=a)
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
    b = _times_transpose(y, m)
    a = _solve_blocks(gram, b, lambda b_rows: np.zeros(b_rows.shape), sum_to_one=False, tol=tol,
                      max_iter=_default_max_iter(p) if max_iter is None else int(max_iter))  # fmt: skip
    return np.maximum(a, 0.0, out=a)
