"""``unmix(cube, method=...)``: one entry point for every method, classical and EGU-Net.

Methods
-------
``vca-fcls``
    Endmembers by VCA on the image, abundances by fully constrained least squares.
``fcls``
    FCLS against given endmembers (``endmembers=``), or the cube's truth endmembers.
``sunsal``
    SUnSAL (non-negative, sparse with ``lam``) against given, truth or VCA endmembers, then each
    pixel's abundances are divided by their sum. Without the sum-to-one constraint during the fit
    a pixel's overall brightness is free, which absorbs illumination and scale differences between
    the endmembers and the image (Samson's truth endmembers are scaled per material, for example).
``egu-pw``, ``egu-ss``, ``ae``
    EGU-Net pixel-wise and spatial-spectral, and the autoencoder ablation (:mod:`egu_widgets.engine`).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .cube.hypercube import HyperCube
from .cube.readers import open_cube
from .errors import InputError
from .results import UnmixingResult

CLASSIC_METHODS = ("vca-fcls", "fcls", "sunsal")
ENGINE_METHODS = ("egu-pw", "egu-ss", "ae")
METHODS = CLASSIC_METHODS + ENGINE_METHODS


def check_n_endmembers(cube: HyperCube, n_endmembers: int | None) -> int:
    if n_endmembers is None:
        if cube.n_true_endmembers is None:
            raise InputError("the number of endmembers is unknown: pass n_endmembers= (CLI: --endmembers P)")
        n_endmembers = cube.n_true_endmembers
    if isinstance(n_endmembers, bool) or int(n_endmembers) != n_endmembers:
        raise InputError(f"the number of endmembers must be a whole number; got {n_endmembers!r}")
    n_endmembers = int(n_endmembers)
    if n_endmembers < 2:
        raise InputError(f"the number of endmembers must be at least 2; got {n_endmembers}")
    if n_endmembers > cube.n_bands:
        raise InputError(f"cannot find {n_endmembers} endmembers with {cube.n_bands} bands; use at most {cube.n_bands}")
    valid = int(cube.valid_mask.sum())
    if n_endmembers > valid:
        raise InputError(f"cannot find {n_endmembers} endmembers among {valid} valid pixels")
    return n_endmembers


def _given_endmembers(cube: HyperCube, endmembers: Any, n_endmembers: int | None, method: str) -> np.ndarray:
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
    if n_endmembers is not None and em.shape[0] != n_endmembers:
        raise InputError(f"{em.shape[0]} endmembers given but {n_endmembers} asked for")
    if not np.isfinite(em).all():
        raise InputError("the given endmembers contain NaN or Inf values")
    return em


def unmix(
    cube: Any,
    method: str = "egu-pw",
    n_endmembers: int | None = None,
    *,
    seed: int = 0,
    endmembers: Sequence | np.ndarray | None = None,
    lam: float = 0.0,
    epochs: int | None = None,
    device: str = "cpu",
    callbacks: Sequence | None = None,
    progress: bool = False,
    **options: Any,
) -> UnmixingResult:
    """Unmix ``cube`` (anything :func:`open_cube` accepts) with ``method``; see the module doc.

    Returns an :class:`UnmixingResult`; when the cube has truth it is aligned to it and scored
    (``result.rmse``, ``result.sad``).
    """
    cube = open_cube(cube)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method in ENGINE_METHODS:
        from .engine import run_egu

        p = check_n_endmembers(cube, n_endmembers)
        return run_egu(
            cube, method=method, n_endmembers=p, seed=seed, epochs=epochs, device=device,
            callbacks=callbacks, progress=progress, **options,
        )
    if options:
        raise InputError(f"method {method!r} takes no options {sorted(options)}")
    from .classic import fcls, sunsal, vca

    start = time.perf_counter()
    pixels = cube.pixels
    valid = cube.valid_mask.ravel()
    config: dict[str, Any] = {"n_endmembers": n_endmembers}
    if method == "vca-fcls":
        p = check_n_endmembers(cube, n_endmembers)
        em, _ = vca(pixels[valid], p, seed=seed)
        config.update(n_endmembers=p, seed=seed)
        ab = fcls(pixels, em)
    elif method == "fcls":
        em = _given_endmembers(cube, endmembers, n_endmembers, method)
        config.update(n_endmembers=em.shape[0], endmembers="given" if endmembers is not None else "truth")
        ab = fcls(pixels, em)
    else:  # sunsal
        if endmembers is None and cube.true_endmembers is None:
            p = check_n_endmembers(cube, n_endmembers)
            em, _ = vca(pixels[valid], p, seed=seed)
            source = "vca"
        else:
            em = _given_endmembers(cube, endmembers, n_endmembers, method)
            source = "given" if endmembers is not None else "truth"
        raw = sunsal(pixels, em, lam=lam, positivity=True, sum_to_one=False)
        total = raw.sum(axis=1, keepdims=True)
        # A pixel that SUnSAL explains with nothing (all zeros) gets equal shares, not NaN.
        ab = np.where(total > 0, raw / np.where(total > 0, total, 1.0), 1.0 / em.shape[0])
        config.update(n_endmembers=em.shape[0], endmembers=source, lam=lam, seed=seed)
    seconds = time.perf_counter() - start
    return UnmixingResult.from_arrays(cube, ab, em, method=method, config=config, seconds=seconds)
