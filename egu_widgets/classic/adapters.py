"""Cube-level adapters of the classical methods, the shape the method registry builds and fits.

Each adapter is a small estimator: ``__init__`` stores its settings, ``fit(cube)`` validates them
against the cube, finds the endmembers and sets ``endmembers_`` (P, B), ``abundances_`` (N, P, in
cube pixel order) and ``config_`` (what to record with the result); ``transform(cube)`` gives the
abundances of another cube's pixels against the fitted endmembers. The registry
(:mod:`egu_widgets.methods`) wraps the fitted arrays in an :class:`~egu_widgets.results.UnmixingResult`;
the adapters stay at array level so that this layer needs nothing above the cube.

A cube here is anything with ``pixels`` (N, B), ``valid_mask`` (H, W), ``n_bands``,
``true_endmembers`` and ``n_true_endmembers``, as :class:`~egu_widgets.cube.HyperCube` has.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from egu_widgets.classic.fcls import fcls
from egu_widgets.classic.sunsal import sunsal
from egu_widgets.classic.vca import vca
from egu_widgets.errors import InputError
from egu_widgets.validation import check_float, check_int, check_n_endmembers, check_seed

__all__ = ["CubeUnmixer", "Fcls", "Sunsal", "VcaFcls", "given_endmembers", "valid_pixels"]


def given_endmembers(cube: Any, endmembers: Any, n_endmembers: int | None, method: str) -> np.ndarray:
    """The endmembers a method was given (P, B), or the cube's truth ones when none were given.

    ``endmembers`` may be (P, B) or (B, P); a count ``n_endmembers``, when given, must match.
    """
    if endmembers is None:
        if cube.true_endmembers is None:
            raise InputError(
                f"method {method!r} needs endmembers: pass endmembers= (CLI: --endmembers-from FILE) "
                "or use a cube with truth endmembers"
            )
        em = cube.true_endmembers
    else:
        em = np.asarray(endmembers, dtype=np.float64)
        if em.ndim != 2:
            raise InputError(f"endmembers must be (P, bands); got shape {em.shape}")
        if em.shape[1] != cube.n_bands and em.shape[0] == cube.n_bands:
            em = em.T
        if em.shape[1] != cube.n_bands:
            raise InputError(f"endmembers have {em.shape[1]} bands; the cube has {cube.n_bands}")
    if n_endmembers is not None and em.shape[0] != check_int("the number of endmembers", n_endmembers, 1):
        raise InputError(f"{em.shape[0]} endmembers given but {n_endmembers} asked for")
    if not np.isfinite(em).all():
        raise InputError("the given endmembers contain NaN or Inf values")
    return em


def valid_pixels(cube: Any) -> np.ndarray:
    """The cube's valid pixels (n, B): a view of ``cube.pixels`` when all are valid, else a copy of those.

    The view matters for memory: selecting with an all-True mask would copy the whole image.
    """
    pixels = cube.pixels
    valid = cube.valid_mask.ravel()
    return pixels if valid.all() else pixels[valid]


class CubeUnmixer:
    """Base of the classical adapters: abundances by FCLS against the fitted endmembers.

    Subclasses set ``name`` and implement :meth:`_endmembers`; a method whose abundances come from
    another solver overrides :meth:`_abundances` too, so that ``fit`` and ``transform`` agree.
    """

    #: Registry name, recorded as the result's method.
    name = ""
    #: Marks estimators that fit a whole cube (the registry's), not an (N, B) matrix.
    fits_cubes = True

    def __init__(self, n_endmembers: int | None = None, seed: int = 0) -> None:
        self.n_endmembers = n_endmembers
        self.seed = seed

    def _n_endmembers(self, cube: Any) -> int:
        """P for this cube: the given count, or the truth's; checked against bands and valid pixels."""
        return check_n_endmembers(
            self.n_endmembers, n_bands=cube.n_bands, n_pixels=int(cube.valid_mask.sum()), default=cube.n_true_endmembers
        )

    def _endmembers(self, cube: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Endmembers (P, B) found on ``cube`` and the settings to record with the result."""
        raise NotImplementedError

    def _abundances(self, pixels: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
        return fcls(pixels, endmembers)

    def fit(self, cube: Any) -> CubeUnmixer:
        """Find the endmembers on ``cube`` and the abundances of its pixels; return ``self``."""
        em, config = self._endmembers(cube)
        self.endmembers_ = em
        self.abundances_ = self._abundances(cube.pixels, em)
        self.config_ = config
        return self

    def transform(self, cube: Any) -> np.ndarray:
        """Abundances (N, P) of ``cube``'s pixels against the fitted endmembers."""
        if not hasattr(self, "endmembers_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit(cube) first")
        if cube.n_bands != self.endmembers_.shape[1]:
            raise InputError(
                f"the cube has {cube.n_bands} bands; the fitted endmembers have {self.endmembers_.shape[1]}"
            )
        return self._abundances(cube.pixels, self.endmembers_)

    def fit_transform(self, cube: Any) -> np.ndarray:
        """``fit(cube)``, then the abundances (N, P) of its pixels."""
        return self.fit(cube).abundances_


class VcaFcls(CubeUnmixer):
    """Endmembers by VCA on the valid pixels, abundances by fully constrained least squares."""

    name = "vca-fcls"

    def _endmembers(self, cube: Any) -> tuple[np.ndarray, dict[str, Any]]:
        p = self._n_endmembers(cube)
        seed = check_seed(self.seed)
        em, _ = vca(valid_pixels(cube), p, seed=seed)
        return em, {"n_endmembers": p, "seed": seed}


class Fcls(CubeUnmixer):
    """FCLS against given endmembers, or the cube's truth endmembers when none are given."""

    name = "fcls"

    def __init__(self, n_endmembers: int | None = None, seed: int = 0, endmembers: Any = None) -> None:
        super().__init__(n_endmembers, seed)
        self.endmembers = endmembers

    def _endmembers(self, cube: Any) -> tuple[np.ndarray, dict[str, Any]]:
        em = given_endmembers(cube, self.endmembers, self.n_endmembers, self.name)
        return em, {"n_endmembers": em.shape[0], "endmembers": "given" if self.endmembers is not None else "truth"}


class Sunsal(CubeUnmixer):
    """SUnSAL (non-negative, ℓ1 weight ``lam``) against given, truth or VCA endmembers, then each
    pixel's abundances divided by their sum.

    Without sum-to-one during the fit a pixel's overall brightness is free, which absorbs
    illumination and scale differences between the endmembers and the image.
    """

    name = "sunsal"

    def __init__(
        self, n_endmembers: int | None = None, seed: int = 0, endmembers: Any = None, lam: float = 0.0
    ) -> None:
        super().__init__(n_endmembers, seed)
        self.endmembers = endmembers
        self.lam = lam

    def _endmembers(self, cube: Any) -> tuple[np.ndarray, dict[str, Any]]:
        seed = check_seed(self.seed)
        check_float("lam", self.lam, 0.0)
        if self.endmembers is None and cube.true_endmembers is None:
            p = self._n_endmembers(cube)
            em, _ = vca(valid_pixels(cube), p, seed=seed)
            source = "vca"
        else:
            em = given_endmembers(cube, self.endmembers, self.n_endmembers, self.name)
            source = "given" if self.endmembers is not None else "truth"
        return em, {"n_endmembers": em.shape[0], "endmembers": source, "lam": self.lam, "seed": seed}

    def _abundances(self, pixels: np.ndarray, endmembers: np.ndarray) -> np.ndarray:
        raw = sunsal(pixels, endmembers, lam=self.lam, positivity=True, sum_to_one=False)
        total = raw.sum(axis=1, keepdims=True)
        # A pixel that SUnSAL explains with nothing (all zeros) gets equal shares, not NaN.
        return np.where(total > 0, raw / np.where(total > 0, total, 1.0), 1.0 / endmembers.shape[0])
