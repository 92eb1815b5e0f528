"""Abundance maps behind the map views: estimate, truth, error, downsampling and reconstructions.

:func:`map_data` gives the abundance inspector and :func:`egu_widgets.plotting.abundance_figure`
the same maps in the same order; the block-mean helpers shrink large scenes for display, and
:func:`make_reconstructor` gives the spectrum a result predicts at a pixel. Plain numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .spectra import names_of

__all__ = [
    "MapData",
    "block_centres",
    "block_mean",
    "downsample_factor",
    "error_limit",
    "make_reconstructor",
    "map_data",
    "residual",
    "member_maps",
    "spread_layers",
    "spread_limit",
]

#: names of the layers :func:`spread_layers` gives, in the order a view offers them
MEAN_LAYER = "mean"
STD_LAYER = "spread (std)"
INTERVAL_LAYER = "90 % interval width"


def downsample_factor(height: int, width: int, max_side: int) -> int:
    """Smallest integer block size that brings both sides to at most ``max_side``."""
    if max_side < 1:
        raise InputError(f"max_side must be at least 1; got {max_side}")
    return max(1, math.ceil(max(height, width) / max_side))


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of a 2-D map (edge blocks may be partial; NaN ignored)."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1:
        return image
    h, w = image.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.full((hp, wp), np.nan, dtype=np.float32)
    padded[:h, :w] = image
    blocks = padded.reshape(hp // factor, factor, wp // factor, factor)
    with np.errstate(invalid="ignore"), _quiet_nanmean():
        return np.nanmean(blocks, axis=(1, 3)).astype(np.float32)


class _quiet_nanmean:
    """Silence the warning numpy gives for an all-NaN block (its mean stays NaN)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def block_centres(n: int, factor: int) -> np.ndarray:
    """Pixel-coordinate centre of each block along an axis of ``n`` pixels (pixel i spans i±0.5)."""
    n_blocks = -(-n // factor)
    return np.arange(n_blocks, dtype=np.float64) * factor + (factor - 1) / 2.0


def error_limit(errors: np.ndarray) -> float:
    """Symmetric colour limit for error maps: the largest ``|error|``, rounded up, at least 0.01."""
    finite = np.abs(errors[np.isfinite(errors)])
    top = float(finite.max()) if finite.size else 0.0
    return max(0.01, math.ceil(top * 100) / 100)


#: legends of the reconstructions :func:`make_reconstructor` gives
DECODER_LABEL = "decoder output (the network's reconstruction)"
LINEAR_LABEL = "linear reconstruction"
LABEL_SCALE_LABEL = "abundances × max-scaled references (pixel brightness fitted)"
SHARES_LABEL = "abundances × references (pixel brightness fitted)"


def make_reconstructor(result: Any, cube: Any, reconstruct: Any = None):
    """A ``pixel_index -> spectrum`` function and its legend, or ``(None, reason)``.

    ``reconstruct`` may be a fitted model with a ``reconstruct(cube)`` method (such as
    :class:`~egu_widgets.engine.EGUNet`: the decoder's output for every pixel), that function
    itself, or an array of reconstructed pixels, (N, B) in the cube's row-major pixel order or
    (H, W, B). Without it: a ``reconstruction(y, x, band)`` variable stored in the result, else the
    mixture of the result's endmembers in the scale its abundances were learnt in:

    - results of EGU-Net bundles labelled on the max scale (``config["bundles"]["label_scale"]
      == "max"``: Samson's and Jasper Ridge's default) have abundances of the reference spectra
      each scaled to a maximum of 1, so ``abundances @ endmembers`` in data units is not what they
      describe. The reconstruction is then the abundances times those max-scaled spectra, times
      the pixel's brightness (the one factor the sum-to-one labels drop, fitted by least
      squares), and the legend says so;
    - results of NNLS labels in the data's units (``labeller == "nnls"``, ``label_scale ==
      "none"``: the default mode's where brightness varies, and the authors') are shares with the
      brightness divided out too (each row divided by its sum): the abundances times the spectra,
      times the pixel's fitted brightness;
    - otherwise the linear mixture ``abundances @ endmembers``.
    """
    if reconstruct is not None:
        model_reconstruct = getattr(reconstruct, "reconstruct", None)
        if callable(model_reconstruct) and not isinstance(reconstruct, np.ndarray):
            rec = np.asarray(model_reconstruct(cube), dtype=np.float64)
            return _array_reconstructor(rec, cube), DECODER_LABEL
        if callable(reconstruct):
            return reconstruct, "reconstruction"
        return _array_reconstructor(np.asarray(reconstruct, dtype=np.float64), cube), "reconstruction"
    ds = getattr(result, "ds", None)
    if ds is not None and "reconstruction" in ds:
        stored = ds["reconstruction"].transpose("y", "x", "band").values
        flat = stored.reshape(-1, stored.shape[-1])
        return (lambda i: flat[i]), "reconstruction"
    if getattr(result, "endmembers", None) is not None:
        em = result.endmembers.transpose("endmember", "band").values.astype(np.float64)
        ab = result.abundance_pixels
        rule = _bundle_config(result)
        if rule.get("label_scale") == "max":
            scaled, legend = em / np.maximum(em.max(axis=1, keepdims=True), 1e-300), LABEL_SCALE_LABEL
        elif rule.get("labeller") == "nnls":
            scaled, legend = em, SHARES_LABEL
        else:
            scaled = legend = None
        if scaled is not None:
            pixels = cube.image.reshape(-1, cube.image.shape[-1]) if cube is not None else None

            def shaped(i: int) -> np.ndarray:
                shape = ab[i] @ scaled
                if pixels is None:
                    return shape
                observed = np.asarray(pixels[i], dtype=np.float64)
                norm = float(shape @ shape)
                return shape * (float(shape @ observed) / norm if norm > 0 else 0.0)

            return shaped, legend
        return (lambda i: ab[i] @ em), LINEAR_LABEL
    return None, "no reconstruction (the result has no endmembers)"


def _bundle_config(result: Any) -> dict:
    """The bundles' configuration recorded in a result ({} when absent)."""
    config = getattr(result, "config", None)
    try:
        config = dict(config) if config is not None else {}
    except (TypeError, ValueError):
        return {}
    bundles = config.get("bundles") or {}
    return bundles if isinstance(bundles, dict) else {}


def _array_reconstructor(rec: np.ndarray, cube: Any):
    h, w, b = cube.image.shape
    if rec.shape == (h, w, b):
        rec = rec.reshape(h * w, b)
    if rec.shape != (h * w, b):
        raise InputError(
            f"reconstruct must be a fitted model with reconstruct(cube), a function pixel_index -> "
            f"spectrum or an array ({h * w}, {b}) or ({h}, {w}, {b}); got shape {rec.shape}"
        )
    return lambda i: rec[i]


def residual(observed: np.ndarray, reconstruction: np.ndarray | None) -> np.ndarray | None:
    """``observed - reconstruction`` per band (None without a reconstruction)."""
    if reconstruction is None:
        return None
    return np.asarray(observed, dtype=np.float64) - np.asarray(reconstruction, dtype=np.float64)


@dataclass
class MapData:
    """Abundance maps of a result, with the truth and the error when the cube has truth."""

    names: list[str]
    estimate: np.ndarray  # (P, H, W)
    truth: np.ndarray | None  # (P, H, W), same order as estimate
    error: np.ndarray | None  # estimate - truth
    error_limit: float | None


def map_data(result: Any, cube: Any = None) -> MapData:
    """Estimated abundance maps, and the truth and error maps when the cube has truth."""
    names = names_of(result)
    estimate = np.asarray(result.abundances.transpose("endmember", "y", "x").values, dtype=np.float32)
    truth = None
    if cube is not None and getattr(cube, "true_abundances", None) is not None:
        t = np.asarray(cube.true_abundances, dtype=np.float32)
        true_names = list(getattr(cube, "endmember_names", None) or [])
        if sorted(true_names) == sorted(names) and true_names != names:
            t = t[[true_names.index(n) for n in names]]  # same materials, other order: follow the result
        if t.shape == estimate.shape:
            truth = t
    if truth is None:
        return MapData(names, estimate, None, None, None)
    error = estimate - truth
    return MapData(names, estimate, truth, error, error_limit(error))


def spread_layers(result: Any) -> dict[str, np.ndarray] | None:
    """The maps an ensemble result can show, ``{layer name: (P, H, W)}``; None for a single fit.

    An ensemble result (``unmix(..., ensemble=K)``) carries ``abundances_std`` and, with it,
    ``abundances_q05`` / ``abundances_q95``; the layers are the mean abundances, the per-pixel
    standard deviation across members and, when both quantiles exist, the width of the 90 %
    interval (q95 - q05). Every layer is in the order of :func:`map_data`'s estimate.
    """
    ds = getattr(result, "ds", None)
    if ds is None or "abundances_std" not in ds:
        return None

    def maps(name: str) -> np.ndarray:
        return np.asarray(ds[name].transpose("endmember", "y", "x").values, dtype=np.float32)

    layers = {MEAN_LAYER: maps("abundances"), STD_LAYER: maps("abundances_std")}
    if "abundances_q05" in ds and "abundances_q95" in ds:
        layers[INTERVAL_LAYER] = maps("abundances_q95") - maps("abundances_q05")
    return layers


def member_maps(result: Any) -> np.ndarray | None:
    """Every ensemble member's abundance maps, (K, P, H, W) in :func:`map_data`'s order, or None."""
    ds = getattr(result, "ds", None)
    if ds is None or "abundances_members" not in ds:
        return None
    return np.asarray(ds["abundances_members"].transpose("member", "endmember", "y", "x").values, dtype=np.float32)


def spread_limit(maps: np.ndarray) -> float:
    """Upper colour limit shared by spread maps: the largest finite value, rounded up, at least 0.01."""
    finite = maps[np.isfinite(maps)]
    top = float(finite.max()) if finite.size else 0.0
    return max(0.01, math.ceil(top * 100) / 100)
