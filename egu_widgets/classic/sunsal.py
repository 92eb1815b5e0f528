"""SUnSAL: sparse unmixing by variable splitting and augmented Lagrangian (ADMM).

Bioucas-Dias & Figueiredo, "Alternating direction algorithms for constrained sparse regression:
application to hyperspectral unmixing", WHISPERS 2010. For every pixel y it solves

    minimise ½‖y − Mᵀa‖² + λ‖a‖₁   subject to  a ≥ 0 (optional),  1ᵀa = 1 (optional)

by splitting a = z: the a-step is a ridge-regularised least-squares solve (with the sum-to-one
equality folded in exactly), the z-step a soft threshold (and clip at zero), and d the scaled dual
variable. The a-step's matrix (M Mᵀ + μI)⁻¹ is the same for every pixel, so all pixels advance
together with (N, P) @ (P, P) products; the data enter only through M y, computed once.

As in the reference implementation, the data are rescaled to unit RMS first, which makes ``mu``,
``tol`` and the stopping rule independent of the reflectance scale (λ is rescaled accordingly,
so the problem solved is unchanged), and μ is adapted every 10 iterations to keep the primal and
dual residuals within a factor 10 of each other.

Memory: the pixels are read block by block (each converted to float64 and rescaled only for its
own product with M), so a float32 image is never copied whole; the iterations work on (N, P).
"""

from __future__ import annotations

import numpy as np

from egu_widgets.classic.fcls import _check_pixels_endmembers, _row_blocks, _rows64
from egu_widgets.errors import InputError

__all__ = ["sunsal"]


def _soft(x: np.ndarray, threshold: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - threshold, 0.0)


class _SplitSolver:
    """The a-step: argmin ½aᵀGa − wᵀa + (μ/2)‖a − c‖², optionally with 1ᵀa = 1, for all rows."""

    def __init__(self, gram: np.ndarray, mu: float, sum_to_one: bool):
        p = gram.shape[0]
        self.inverse = np.linalg.inv(gram + mu * np.eye(p))
        self.sum_to_one = sum_to_one
        if sum_to_one:
            # With H = (G + μI)⁻¹ the constrained minimiser is H r − H1 (1ᵀH r − 1)/(1ᵀH1):
            # the unconstrained one shifted along H1 back onto the hyperplane.
            h1 = self.inverse.sum(axis=1)
            self.shift = h1 / h1.sum()

    def __call__(self, rhs: np.ndarray) -> np.ndarray:
        a = rhs @ self.inverse  # inverse is symmetric
        if self.sum_to_one:
            a -= (a.sum(axis=1, keepdims=True) - 1.0) * self.shift
        return a


def sunsal(
    pixels,
    endmembers,
    *,
    lam: float = 0.0,
    positivity: bool = True,
    sum_to_one: bool = False,
    mu: float | None = None,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> np.ndarray:
    """SUnSAL abundances for all pixels at once.

    Solves, for every pixel y,  min ½‖y − Mᵀa‖² + λ‖a‖₁  subject to the selected constraints.

    Parameters
    ----------
    pixels : (N, B) float array.
    endmembers : (P, B) float array — a handful of endmembers, or a large spectral library for
        sparse unmixing (P > B is allowed).
    lam : weight λ ≥ 0 of the ℓ1 penalty, in the units of that objective (the internal
        rescaling leaves the problem unchanged). With both ``positivity`` and ``sum_to_one``
        the ℓ1 norm equals 1 on the whole feasible set, so λ has no effect then.
    positivity : impose a ≥ 0.
    sum_to_one : impose 1ᵀa = 1.
    mu : initial ADMM penalty (on the rescaled data); default √(λ_min·λ_max) of the rescaled
        M Mᵀ (λ_min floored at 1e-6·λ_max). Adapted during the run.
    max_iter : maximum number of ADMM iterations.
    tol : stop when the primal residual ‖a − z‖ and the dual residual μ‖z − z_prev‖ (Frobenius,
        over all pixels, rescaled data) are both below tol·√(N·P).

    Returns
    -------
    (N, P) float64 abundances. When ``positivity`` or ``lam > 0`` this is the split variable z,
    so entries are exactly ≥ 0 (with positivity) and exactly zero where the ℓ1 term switched them
    off; with ``sum_to_one`` and ``positivity`` the rows are then renormalised to sum exactly to
    one (a change of the order of tol), otherwise the sum is one up to the primal residual.
    Without positivity and with λ = 0 the problem has a closed form, which is returned directly.
    ADMM converges slowly on ill-conditioned endmembers (e.g. a large library of similar
    spectra): raise ``max_iter`` and lower ``tol`` there, or use :func:`fcls`/:func:`nnls_unmix`
    for exact constrained least squares.
    """
    y, m = _check_pixels_endmembers(pixels, endmembers)
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise InputError(f"lam must be a finite number >= 0, got {lam}")
    if int(max_iter) < 1:
        raise InputError(f"max_iter must be >= 1, got {max_iter}")
    if not (np.isfinite(tol) and tol > 0):
        raise InputError(f"tol must be a positive number, got {tol}")
    if mu is not None and not (np.isfinite(mu) and mu > 0):
        raise InputError(f"mu must be a positive number (or None for the default), got {mu}")
    n, p = y.shape[0], m.shape[0]
    if n == 0:
        return np.zeros((0, p))

    # Rescale so that the pixels have unit RMS; a (the abundances) is unchanged by scaling y and
    # M together, and λ scales with the squared norm.
    blocks = list(_row_blocks(n, y.shape[1]))
    if len(blocks) == 1:
        norm_y = float(np.sqrt(np.mean(y.astype(np.float64, copy=False) ** 2)))
    else:
        squares = sum(float(np.sum(_rows64(y, rows) ** 2)) for rows in blocks)
        norm_y = float(np.sqrt(squares / y.size))
    if norm_y == 0.0:
        norm_y = 1.0
    m = m / norm_y
    lam = lam / norm_y**2

    gram = m @ m.T
    my = np.empty((n, p))  # (N, P): the only way the pixels enter
    for rows in blocks:
        my[rows] = (_rows64(y, rows) / norm_y) @ m.T

    if lam == 0.0 and not positivity:
        # Plain (or sum-to-one) least squares: one solve, no iterations. A vanishing ridge keeps
        # it defined when M Mᵀ is singular (library with P > B); this is the minimum-norm answer.
        ridge = 1e-12 * max(np.trace(gram) / p, 1e-300)
        return _SplitSolver(gram, ridge, sum_to_one)(my)

    if mu is None:
        # ADMM on a quadratic converges fastest near μ = √(λ_min·λ_max) of M Mᵀ (Ghadimi et al.
        # 2015); the floor on λ_min keeps μ useful for libraries with P > B, where λ_min = 0.
        eig = np.linalg.eigvalsh(gram)
        top = max(float(eig[-1]), 1e-300)
        mu = float(np.sqrt(max(float(eig[0]), 1e-6 * top) * top))
    else:
        mu = float(mu)
    solve = _SplitSolver(gram, mu, sum_to_one)
    a = solve(my)  # start from the (regularised) least-squares solution, as SUnSAL does
    z = a.copy()
    d = np.zeros_like(a)
    bound = tol * np.sqrt(n * p)

    for it in range(1, int(max_iter) + 1):
        z_prev = z
        z = a - d
        if lam > 0.0:
            z = _soft(z, lam / mu)
        if positivity:
            z = np.maximum(z, 0.0)
        a = solve(my + mu * (z + d))
        d = d - (a - z)

        if it % 10 == 1 or it == max_iter:
            res_primal = float(np.linalg.norm(a - z))
            res_dual = mu * float(np.linalg.norm(z - z_prev))
            if res_primal < bound and res_dual < bound:
                break
            # Residual balancing (Boyd et al. 2011, sec. 3.4.1): a larger mu pulls a and z
            # together, a smaller one lets z move; the scaled dual d must be rescaled with mu.
            if res_primal > 10.0 * res_dual:
                mu *= 2.0
                d /= 2.0
                solve = _SplitSolver(gram, mu, sum_to_one)
            elif res_dual > 10.0 * res_primal:
                mu /= 2.0
                d *= 2.0
                solve = _SplitSolver(gram, mu, sum_to_one)

    # Return z, the last proximal step: it carries the bounds and the exact zeros of the
    # shrinkage, and differs from a by the primal residual.
    if sum_to_one and positivity:
        total = z.sum(axis=1, keepdims=True)
        # An all-zero row (possible only far from convergence) falls back to the a-iterate.
        z = np.where(total > 0, z / np.where(total > 0, total, 1.0), a)
    return z
