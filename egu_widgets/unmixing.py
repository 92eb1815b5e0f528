"""``unmix(cube, method=...)``: one entry point for every method, classical and EGU-Net.

The methods and their options are listed once, in :mod:`egu_widgets.methods`
(:func:`~egu_widgets.methods.describe_methods` gives them as rows). ``method`` may also be any
object with ``fit`` and ``transform``, such as scikit-learn's NMF.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import validation
from .cube import check_usable, open_cube
from .errors import InputError
from .memory import check_fits
from .methods import DEFAULT_METHOD, fit_estimator, get_method
from .results import UnmixingResult
from .validation import check_seed

__all__ = ["unmix"]


def _check_numeric_endmembers(endmembers: Any) -> Any:
    """``endmembers`` unchanged when it reads as an array of numbers; else one InputError.

    The methods check its shape against the cube; what cannot become numbers at all (a string, a
    ragged list) is refused here, with what was given, instead of NumPy's bare ValueError.
    """
    try:
        np.asarray(endmembers, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        shown = repr(endmembers)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InputError(
            f"endmembers must be a (P, bands) array of numbers; got {type(endmembers).__name__} {shown} ({exc}); "
            "pass an array (CLI: --endmembers-from FILE)"
        ) from None
    return endmembers


def unmix(
    cube: Any,
    method: Any = DEFAULT_METHOD,
    n_endmembers: int | None = None,
    *,
    seed: int = 0,
    endmembers: Sequence | np.ndarray | None = None,
    lam: float | None = None,
    epochs: int | None = None,
    device: str = "cpu",
    callbacks: Sequence | None = None,
    progress: bool = False,
    **options: Any,
) -> UnmixingResult:
    """Unmix ``cube`` with ``method`` and return an :class:`~egu_widgets.results.UnmixingResult`.

    Parameters
    ----------
    cube : anything :func:`~egu_widgets.cube.open_cube` accepts (a HyperCube, a dataset name, a path).
    method : a registered name (:func:`~egu_widgets.methods.method_names`), or an object with
        ``fit`` and ``transform`` (see :func:`~egu_widgets.methods.fit_estimator`).
    n_endmembers : P; None takes the truth's count.
    seed : a whole number >= 0; the same seed gives the same result.
    endmembers, lam : the given endmembers (``fcls``, ``sunsal``) and SUnSAL's sparsity weight;
        refused by methods that do not take them.
    epochs, device, callbacks, progress : training settings, used by the methods that train.
    **options : further method options (the EGU-Net hyperparameters and bundle options;
        ``ensemble=K`` trains K EGU-Net members from ``seed`` and returns their aligned mean, with
        the spread in ``abundances_std``, ``abundances_q05`` and ``abundances_q95``).

    When the cube has truth the result is aligned to it and scored (``result.rmse``, ``result.sad``).
    """
    seed = check_seed(seed)
    if not isinstance(method, str):
        if endmembers is not None or lam is not None or options:
            given = sorted(
                [*options, *(["endmembers"] if endmembers is not None else []), *(["lam"] if lam is not None else [])]
            )
            raise InputError(
                f"options {given} are for registered methods; set them on the {type(method).__name__} itself"
            )
        cube = open_cube(cube)
        check_usable(cube, n_endmembers)
        return fit_estimator(method, cube, n_endmembers)
    spec = get_method(method)
    if endmembers is not None:
        options["endmembers"] = _check_numeric_endmembers(endmembers)
    if lam is not None:
        options["lam"] = lam
    spec.check_options(options)
    if spec.trains:
        options.update(epochs=epochs, device=device, callbacks=callbacks, progress=progress)
    cube = open_cube(cube)
    # Degenerate data (one spectrum everywhere, too few directions for P, values whose squares
    # leave float32) is refused here, before any method runs on it.
    # A lazy cube's valid map is a pass over the file: its pixel count bounds P here (its fit checks the sample).
    n_valid = cube.n_pixels if cube.reflectance.chunks is not None else int(cube.valid_mask.sum())
    try:
        p = validation.check_n_endmembers(
            n_endmembers, n_bands=cube.n_bands, n_pixels=n_valid, default=cube.n_true_endmembers
        )
    except InputError:
        p = None  # a P the method itself refuses, with the more direct message
    check_usable(cube, p)
    # A run that cannot fit is refused now, with the lazy path, not killed by the kernel later.
    needed = None if p is None else spec.estimate_memory(cube, p, options)
    if needed is not None:
        check_fits(needed, f"{method} on this {'x'.join(str(n) for n in cube.shape)} cube")
    return spec.run(cube, n_endmembers, seed, **options)
