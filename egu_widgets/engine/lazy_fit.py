"""Fitting EGU-Net on a lazy cube: an in-memory training set drawn from a scene that is not.

``EGUNet.fit`` on a lazy (dask-backed) cube never loads it. What a fit needs from the image is
small next to a flight line, so it is read from a spatially stratified sample
(:mod:`egu_widgets.cube.sampling`), window by window:

- **bundles** from ``sample_patches`` patches drawn one per cell of a grid over the patch grid,
  cut and labelled exactly as :func:`~egu_widgets.engine.bundles.extract_bundles` cuts and labels
  the patches of a whole image (the sampled patches are laid side by side in a one-row mosaic and
  tiled at the patch size, so every per-patch step is the same code);
- **reference endmembers** (N-FINDR or VCA, the bundle labels' reference) from the training
  pixels below;
- **training pixels**: about ``sample_pixels`` valid pixels in 8 x 8 blocks spread over the scene
  ("pw", "ae"); for "ss", tiles of the image with a halo around each, laid in a mosaic whose loss
  counts only the tiles' inner pixels, so the convolutions see their real neighbours.

The trained model's ``result_`` is lazy: its abundances are
:meth:`~egu_widgets.engine.estimator.EGUNet.abundance_maps` of the whole lazy cube, computed chunk
by chunk when written (``result_.to_zarr``). A cube of at most ``sample_pixels`` pixels whose patch
grid has at most ``sample_patches`` patches is read whole, and the fit is then the fit of the
loaded cube, bit for bit (a test checks it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..cube import HyperCube
from ..cube.sampling import patch_grid, read_windows, sample_pixels, stratified_corners
from ..errors import InputError
from ..validation import check_int, check_seed
from .bundles import (
    BUNDLE_MODES,
    SpectralBundles,
    check_purest,
    evenly_spaced,
    extract_bundles,
    label_spectra,
    pixel_label_count,
    prepare_reference,
    resolve_bundle_options,
    resolve_label_scale,
)

__all__ = ["SAMPLE_HALO", "SAMPLE_TILE", "fit_lazy", "is_lazy_cube", "sampled_bundles", "training_cube"]

#: "ss": the side of the tiles whose pixels count in the loss, and the halo read around each
#: (twice the 1/8-resolution stream's step, so that the inner pixels' receptive fields stay inside).
SAMPLE_TILE = 64
SAMPLE_HALO = 16

# Independent draws of the seed's streams for the samples (the engine uses the first children of
# "bundles" for the reference and patch VCA, and of "batches" for the probe and bundle batches).
_PATCH_DRAW = 2
_PIXEL_DRAW = 3


def is_lazy_cube(cube: HyperCube) -> bool:
    """True when the cube's reflectance is a dask array (read chunk by chunk, never whole)."""
    return cube.reflectance.chunks is not None


def _loaded(cube: HyperCube) -> HyperCube:
    """The lazy cube read into memory: its chunks computed (and checked) in one pass.

    Masked pixels (NaN after a lazy cube's ``invalid="mask"`` check) get the in-memory cube's
    treatment: kept out through a ``valid`` map.
    """
    ds = cube.ds.compute()
    image = ds["reflectance"].values
    bad = ~np.isfinite(image).all(axis=-1)
    if not bad.any():
        return HyperCube(ds, validate=True)
    truth = {}
    if cube.true_endmembers is not None:
        truth["endmembers"] = ds["endmembers"].values
    if "abundances" in ds:
        truth["abundances"] = ds["abundances"].values
    if truth:
        truth["endmember_names"] = [str(v) for v in ds["endmember"].values]
    wl = ds["wavelength"].values if "wavelength" in ds.coords else None
    units = ds["wavelength"].attrs.get("units", "nm") if wl is not None else "nm"
    return HyperCube.from_array(image, wavelengths=wl, wavelength_units=units, name=cube.name, invalid="mask", **truth)


def _truth_at(cube: HyperCube, index: np.ndarray) -> np.ndarray | None:
    """Truth abundances (P, K) at flat pixel ``index``, read chunk by chunk; None without truth."""
    if "abundances" not in cube.ds:
        return None
    data = cube.ds["abundances"].data
    w = cube.width
    rows, cols = index // w, index % w
    if hasattr(data, "dask"):  # points of the (y, x, P) view, each chunk read once
        return np.asarray(data.transpose(1, 2, 0).vindex[rows, cols].compute(), dtype=np.float64).T
    return np.asarray(data[:, rows, cols], dtype=np.float64)


def _truth_kwargs(cube: HyperCube, abundances: np.ndarray | None) -> dict:
    kw: dict[str, Any] = {}
    if cube.true_endmembers is not None:
        kw["endmembers"] = np.asarray(cube.true_endmembers, dtype=np.float64)
    if abundances is not None:
        kw["abundances"] = abundances
    if kw:
        kw["endmember_names"] = cube.endmember_names
    return kw


def training_cube(cube: HyperCube, variant: str, n_pixels: int, *, seed: Any) -> tuple[HyperCube, bool]:
    """The in-memory cube a lazy fit trains on, and whether it is the whole cube.

    Parameters
    ----------
    cube
        The lazy cube.
    variant
        "pw" and "ae": a 1 x K cube of about ``n_pixels`` sampled valid pixels (with their truth);
        "ss": a mosaic of tiles with halos whose ``valid`` map holds only the tiles' inner pixels.
    n_pixels
        The sample size; a cube of at most that many pixels is read whole.
    seed
        The fit's seed (the samples draw from its "batches" stream).
    """
    h, w, b = cube.shape
    if h * w <= n_pixels:
        return _loaded(cube), True
    wl = cube.wavelengths
    units = cube.wavelength_units or "nm"
    if variant != "ss":
        pixels, index = sample_pixels(cube, n_pixels, seed=seed, stream="batches", draw=_PIXEL_DRAW)
        if pixels.shape[0] == 0:
            raise InputError("every sampled pixel of the lazy cube is invalid (masked); there is nothing to fit")
        truth = _truth_at(cube, index)
        sample = HyperCube.from_array(
            pixels[None],
            wavelengths=wl,
            wavelength_units=units,
            name=f"{cube.name} (sample of {pixels.shape[0]} pixels)",
            **_truth_kwargs(cube, None if truth is None else truth[:, None, :]),
        )
        return sample, False
    tile, halo = min(SAMPLE_TILE, h, w), SAMPLE_HALO
    halo = max(0, min(halo, (min(h, w) - tile) // 2))
    side = tile + 2 * halo
    wanted = max(1, -(-n_pixels // tile**2))
    ys, xs = stratified_corners(h, w, side, wanted, seed=seed, stride=tile, stream="batches", draw=_PIXEL_DRAW)
    k = ys.size
    gx = max(1, int(math.ceil(math.sqrt(k))))
    gy = k // gx
    if gy * gx != k:  # drop no tile: one row of them
        gy, gx = 1, k
    windows = read_windows(cube, ys, xs, side)  # (K, side, side, B)
    mosaic = windows.reshape(gy, gx, side, side, b).transpose(0, 2, 1, 3, 4).reshape(gy * side, gx * side, b)
    inner = np.zeros((side, side), dtype=bool)
    inner[halo : halo + tile, halo : halo + tile] = True
    finite = np.isfinite(mosaic).all(axis=-1)
    valid = np.tile(inner, (gy, gx)) & finite
    if not valid.any():
        raise InputError("every sampled tile of the lazy cube is invalid (masked); there is nothing to fit")
    truth = None
    if "abundances" in cube.ds:
        offsets = np.arange(side)
        rows = (ys[:, None] + offsets)[:, :, None]
        cols = (xs[:, None] + offsets)[:, None, :]
        index = (rows * w + cols).reshape(-1)
        t = _truth_at(cube, index).reshape(-1, k, side, side)
        truth = t.reshape(-1, gy, gx, side, side).transpose(0, 1, 3, 2, 4).reshape(-1, gy * side, gx * side)
    sample = HyperCube.from_array(
        np.where(finite[..., None], mosaic, 0.0).astype(np.float32),
        wavelengths=wl,
        wavelength_units=units,
        name=f"{cube.name} (sample of {k} tiles)",
        **_truth_kwargs(cube, truth),
    )
    ds = sample.ds.assign(valid=(("y", "x"), valid.astype(np.int8)))
    return HyperCube(ds, validate=False), False


def sampled_bundles(
    cube: HyperCube,
    n_endmembers: int,
    n_patches: int,
    reference_pixels: np.ndarray,
    *,
    seed: Any,
    options: Mapping[str, Any],
    pixel_ids: np.ndarray | None = None,
) -> SpectralBundles:
    """Bundles of ``n_patches`` stratified patches of ``cube`` (all of them when the grid has no more).

    The patches are labelled against reference endmembers found in ``reference_pixels`` (K, B)
    (the training sample), as :func:`extract_bundles` labels a whole image's patches against the
    image's; when every patch and every pixel is in the sample the result equals
    ``extract_bundles(loaded_cube, ...)``, config included. Labelled image pixels
    (``pixel_labels``) are drawn from ``reference_pixels``; ``pixel_ids`` (their indices in the
    cube, when known) become their ``pixel_index``, else -1.
    """
    opts = dict(options)
    mode = opts.pop("mode")
    bundle_seed = opts.pop("seed", seed)
    if mode not in BUNDLE_MODES:
        raise InputError(f"bundle mode {mode!r} is not one of {sorted(BUNDLE_MODES)}")
    resolved = dict(BUNDLE_MODES[mode], **opts)
    scale_option = resolved["label_scale"]
    resolved["label_scale"] = resolve_label_scale(scale_option, cube)  # the cube's, not the mosaic's
    n_pixel_labels = pixel_label_count(resolved["pixel_labels"])  # checked before any reading
    size = check_int("patch_size", resolved["patch_size"], 1)
    stride = resolved["stride"]
    stride = size if stride is None else check_int("stride", stride, 1, what="a whole number (or None)")
    h, w, b = cube.shape
    if h < size or w < size:
        raise InputError(f"the cube ({h}x{w} pixels) is smaller than one {size}x{size} patch; use a smaller patch_size")
    reference = resolved["reference"]
    rounds = check_int("reference_rounds", resolved.get("reference_rounds", 0), 0)
    purest_fraction = check_purest(resolved.get("reference_purest", 0.0))
    is_truth = isinstance(reference, str) and reference == "truth"
    if is_truth:
        if cube.true_endmembers is None:
            raise InputError("reference='truth' needs a cube with truth endmembers; use 'vca' or pass an array")
        reference = np.asarray(cube.true_endmembers, dtype=np.float64)
        if reference.shape[0] != n_endmembers:
            raise InputError(f"the cube's truth has {reference.shape[0]} endmembers but P={n_endmembers} was asked for")
    # On the training sample, as extract_bundles on the image: the same picks, refinement, test,
    # purest-pixel means and choice of reference.
    checked = dict(resolved, reference=reference, reference_rounds=rounds, reference_purest=purest_fraction)
    prepared = prepare_reference(reference_pixels[None].astype(np.float64), reference_pixels, n_endmembers, checked,
                                 seed=bundle_seed)  # fmt: skip
    ref, ref_kind = prepared["reference"], "truth" if is_truth else prepared["kind"]
    refinement, purest = prepared["refinement"], prepared["purest"]
    all_y, _ = patch_grid(h, w, size, stride)
    ys, xs = stratified_corners(h, w, size, n_patches, seed=bundle_seed if bundle_seed is not None else 0,
                                stride=stride, stream="bundles", draw=_PATCH_DRAW)  # fmt: skip
    sampled = ys.size < all_y.size
    windows = read_windows(cube, ys, xs, size)  # (K, size, size, B) float32
    usable = np.isfinite(windows).all(axis=(1, 2, 3))
    if "valid" in cube.ds and not hasattr(cube.ds["valid"].data, "dask"):
        valid = cube.valid_mask
        offsets = np.arange(size)
        usable &= valid[(ys[:, None] + offsets)[:, :, None], (xs[:, None] + offsets)[:, None, :]].all(axis=(1, 2))
    if not usable.any():
        raise InputError("every patch contains invalid (masked) pixels; there is nothing to build bundles from")
    ys, xs, windows = ys[usable], xs[usable], windows[usable]
    k = ys.size
    mosaic = windows.transpose(1, 0, 2, 3).reshape(size, k * size, b)
    # Labelled image pixels come from the training sample below, not from the mosaic of patches.
    opts_mosaic = {key: value for key, value in opts.items() if key not in ("stride", "dedup", "reference")}
    opts_mosaic["pixel_labels"] = 0
    opts_mosaic["label_scale"] = resolved["label_scale"]
    chosen = {}
    if resolved["labeller"] == "auto":  # decided on the sample's pixels, as extract_bundles decides on the image's
        chosen = dict(
            labeller=prepared["labeller"],
            label_scale=prepared["label_scale"],
            labeller_requested="auto",
            label_scale_requested=resolved["label_scale"],
            sum_to_one_statistic=prepared["statistic"],
        )
        opts_mosaic.update(labeller=chosen["labeller"], label_scale=chosen["label_scale"])
    made = extract_bundles(mosaic, n_endmembers, mode=mode, stride=None, dedup=False, reference=ref,
                           seed=bundle_seed, **opts_mosaic)  # fmt: skip
    # Back to the cube's numbering: patch k of the mosaic is sampled patch k.
    n_x = (w - size) // stride + 1
    patch_number = (ys // stride) * n_x + xs // stride
    patch_of = patch_number[made.patch_index]
    pixel_of = made.pixel_index.copy()
    inside = pixel_of >= 0
    my, mx = pixel_of[inside] // (k * size), pixel_of[inside] % (k * size)
    which = mx // size
    pixel_of[inside] = (ys[which] + my) * w + xs[which] + mx % size
    spectra, labels = made.spectra, made.labels
    n_candidates = len(spectra)
    if resolved["dedup"]:
        if resolved["project"]:
            raise InputError("dedup=True compares image pixels, but project=True makes new spectra; set project=False")
        _, first = np.unique(np.where(pixel_of >= 0, pixel_of, -1 - np.arange(len(pixel_of))), return_index=True)
        keep = np.sort(first)
        spectra, labels, patch_of, pixel_of = spectra[keep], labels[keep], patch_of[keep], pixel_of[keep]
    config = dict(made.config)
    if chosen:
        config.update(chosen)
    if scale_option == "auto":
        config["label_scale_option"] = "auto"
    n_added = 0
    if n_pixel_labels:  # as extract_bundles adds the image's pixels, from the sample that stands for it
        pick = evenly_spaced(len(reference_pixels), n_pixel_labels)
        n_added = len(pick)
        extra = np.asarray(reference_pixels[pick], dtype=np.float64)
        extra_labels, n_dead = label_spectra(extra, ref, config["labeller"], config["label_scale"])  # row by row
        spectra = np.concatenate([spectra, extra])
        labels = np.concatenate([labels, extra_labels])
        patch_of = np.concatenate([patch_of, np.full(n_added, -1)])
        pixel_of = np.concatenate([pixel_of, np.full(n_added, -1) if pixel_ids is None else pixel_ids[pick]])
        config["uniform_labels"] = int(config.get("uniform_labels", 0)) + int(n_dead)
    config["pixel_labels"] = resolved["pixel_labels"]
    config["n_pixel_labels"] = int(n_added)
    if purest is not None:
        config["purest_reference"] = purest
    if prepared["choice"] is not None:
        config["reference_choice"] = prepared["choice"]
    config.update(
        stride=resolved["stride"],
        dedup=resolved["dedup"],
        stride_used=stride,
        reference=ref_kind,
        n_candidates=int(n_candidates),
        n_bundles=int(len(spectra)),
    )
    if refinement is not None:
        config["reference_refinement"] = refinement
    if sampled:
        config["sample"] = dict(patches=int(ys.size), of=int(all_y.size), reference_pixels=int(len(reference_pixels)))
    return SpectralBundles(
        spectra=spectra, labels=labels, reference=ref, patch_index=patch_of, pixel_index=pixel_of, config=config
    )


def fit_lazy(est: Any, cube: HyperCube, bundles: Any, callbacks: Sequence | None, control: Any) -> np.ndarray | None:
    """Fit ``est`` (an :class:`~egu_widgets.engine.estimator.EGUNet`) on the lazy ``cube``; see the module doc.

    Returns the abundances (N, P) when the whole cube was read (small cubes), else None: the
    result's abundances are then lazy (``est.result_.abundances``).
    """
    if est.ensemble is not None and est.ensemble != 1:
        raise InputError(
            "an ensemble cannot be fitted on a lazy cube yet; fit one network (ensemble=None) on it, or fit the "
            "ensemble on a crop held in memory and map it with abundance_maps"
        )
    t0 = time.perf_counter()
    hp = est.get_hyperparameters()
    n_pixels, n_patches = hp["sample_pixels"], hp["sample_patches"]
    train, whole = training_cube(cube, est.variant, n_pixels, seed=check_seed(est.seed))
    # Checked against the sample: a lazy cube's valid map would be a pass over the whole file.
    p = est._resolve(train)
    spec = est.bundles if bundles is None else bundles
    bset = None
    if est.variant != "ae":
        if isinstance(spec, SpectralBundles):
            bset = spec
        else:
            opts = resolve_bundle_options(spec, hp["bundle_mode"])
            source = train if whole else cube
            pixels = train.pixels[train.valid_mask.ravel()]
            ids = np.flatnonzero(train.valid_mask.ravel()) if whole else None
            bset = sampled_bundles(source, p, n_patches, pixels, seed=est.seed_, options=opts, pixel_ids=ids)
    sampling_seconds = time.perf_counter() - t0
    abundances = est._fit(train, bset, callbacks, control, _sampled=True)
    if whole:
        return abundances
    result = est.result_
    config = est.get_config()
    config["sample"] = dict(
        pixels=int(train.valid_mask.sum()), tiles=est.variant == "ss", seconds=round(sampling_seconds, 3)
    )
    from ..results import UnmixingResult

    est.result_ = UnmixingResult.from_arrays(
        cube,
        est.abundance_maps(cube),
        est.endmembers_,
        method=est.method,
        config=config,
        seconds=time.perf_counter() - t0,
        history=est.outcome_.history,
        partial=result.partial,
        stop_reason=result.ds.attrs.get("stop_reason", ""),
    )
    return None
