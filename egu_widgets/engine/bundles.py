"""Spectral bundles: the pseudo-labelled training set of EGU-Net's endmember stream.

EGU-Net never sees ground truth. It builds its own labelled set from the image:

1. cut the image into small patches (5×5 in the paper) and run VCA in each patch; the pixels it
   picks are the patch's most extreme spectra, i.e. the local versions ("bundles") of the
   materials present there, with their spectral variability;
2. pool those candidates;
3. give every candidate pseudo-abundances by non-negative least squares against reference
   endmembers M (SUnSAL with λ = 0, positivity, no sum-to-one, as in the authors' script), then
   divide each row by its sum.

``mode="faithful"`` reproduces the authors' released script (``Pseudo_endmembers_generation.m``):
non-overlapping patches, P candidates per patch, VCA forced to its high-SNR branch (SNR = 30 dB),
candidates taken as VCA's projections onto each patch's top-P subspace, and a whole-image VCA
reference. ``mode="default"`` keeps those bundles but labels them against whole-image N-FINDR
spectra: what bounds EGU-Net's accuracy is the labeller (docs/bundles.md, with the commands that
regenerate the tables). How depends on the image (``labeller="auto"``): where it obeys the linear
mixing model with sum-to-one abundances (:func:`sum_to_one_statistic`, a likelihood-ratio test of
that constraint), by fully constrained least squares in the data's units; where per-pixel
brightness breaks it (real scenes' illumination and topography), by non-negative least squares,
rows divided by their sums, so that the abundances are shares of the spectra with the brightness
divided out; in the data's units unless the cube says its abundances count the spectra each
scaled to a maximum of 1, as the Samson and Jasper Ridge ground truths do (``label_scale``).
Where the N-FINDR picks are mixtures (a scene without pure pixels), the default mode refines them
by alternating least squares before labelling (``reference_rounds``, :func:`refine_reference`),
guarded so that pure picks and scenes that break the sum-to-one model keep the picks. Where
brightness varies (the labels are NNLS), it replaces each pick by the mean of the pixels that
hold the largest share of it (``reference_purest``, :func:`purest_reference`): the volume N-FINDR
maximises is then drawn out by bright pixels, which can be mixtures. Where N-FINDR misses a
material that VCA finds, the image says so: VCA's spectra, prepared the same way, then explain it
clearly better, and the default mode takes them (``reference="auto"``, :func:`prepare_reference`).
Overlapping patches (``stride``, ``dedup``) stay available; the authors' other ideas (per-patch
endmember counts, k-means reduction) never beat the released behaviour and are not offered.

Everything is vectorised across patches (one batched VCA call, batched eigen-decompositions).
Random choices come from the seed's ``"bundles"`` stream (:mod:`egu_widgets.validation`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..classic import fcls, nfindr, nnls_unmix, sunsal, vca, vca_batch
from ..classic.endmember_fit import fit_endmembers
from ..classic.fcls import _CHUNK_ELEMENTS
from ..classic.vca import _gram64
from ..cube import HyperCube
from ..errors import InputError
from ..metrics import sad
from ..validation import check_choice, check_float, check_int, check_n_endmembers, seed_sequence

__all__ = [
    "SpectralBundles",
    "extract_bundles",
    "reference_endmembers",
    "sum_to_one_statistic",
    "refine_reference",
    "purest_reference",
    "pixel_label_count",
    "label_spectra",
    "accept_endmembers",
    "labeller_residual",
    "resolve_bundle_options",
    "resolve_label_scale",
    "prepare_reference",
    "ABUNDANCE_SCALE_ATTR",
    "ASC_THRESHOLD",
    "LABELLERS",
    "BUNDLE_ARRAYS",
    "BUNDLE_MODES",
    "BUNDLE_OPTIONS",
    "CHECKPOINT_PREFIX",
]

#: The SNR (dB) the authors force on every per-patch VCA: its projective (high-SNR) branch.
PATCH_SNR = 30.0

#: Option sets behind ``mode=``; explicit keyword arguments override them.
BUNDLE_MODES: dict[str, dict[str, Any]] = {
    # The authors' released behaviour.
    "faithful": dict(
        patch_size=5,
        stride=None,
        dedup=False,
        project=True,
        reference="vca",
        label_scale="none",
        labeller="nnls",
        pixel_labels=0,
        reference_rounds=0,
        reference_purest=0.0,
    ),
}
# The authors' bundles, labelled against N-FINDR reference spectra: by fully constrained least
# squares in the data's units where the image obeys the sum-to-one model, else by non-negative
# least squares in the scale the cube's reference abundances follow, the data's units unless it
# says otherwise (label_scale="auto"; see the module doc).
# The N-FINDR picks are refined by six rounds of alternating least squares where
# that explains the image better under the sum-to-one model (refine_reference; docs/bundles.md).
# Labelled image pixels are added to the bundles (pixel_labels="auto"); where the labels are
# NNLS, each pick gives way to the mean of its purest 1 % of the pixels (reference_purest;
# "auto", which lets the image choose the fraction, is opt-in: docs/bundles.md).
# VCA's reference replaces N-FINDR's where, prepared the same way, it explains the image better
# by MIN_GAIN (reference="auto"; docs/bundles.md, "Where N-FINDR misses a material").
BUNDLE_MODES["default"] = dict(
    BUNDLE_MODES["faithful"],
    reference="auto",
    label_scale="auto",
    labeller="auto",
    reference_rounds=6,
    pixel_labels="auto",
    reference_purest=0.01,
)

#: Every keyword :func:`extract_bundles` accepts besides the cube and P (the estimator and
#: ``run_egu`` use this list to tell bundle options from network hyperparameters).
BUNDLE_OPTIONS = (
    "mode",
    "patch_size",
    "stride",
    "dedup",
    "project",
    "reference",
    "label_scale",
    "labeller",
    "pixel_labels",
    "reference_rounds",
    "reference_purest",
)

#: How the labels are solved: ``"nnls"`` (non-negative least squares, rows divided by their sum:
#: the authors'), ``"fcls"`` (fully constrained least squares: the sum-to-one constraint inside
#: the fit), ``"auto"`` (``"fcls"`` in the data's units when :func:`sum_to_one_statistic` of the
#: image is at most :data:`ASC_THRESHOLD`, else ``"nnls"`` with the requested ``label_scale``,
#: "auto" resolved by :func:`resolve_label_scale`).
LABELLERS = ("nnls", "fcls", "auto")

#: ``labeller="auto"``'s limit on :func:`sum_to_one_statistic`, the median pixel's cost of the
#: sum-to-one constraint in noise variances: 3.84, the 95 % point of χ² with one degree of
#: freedom, i.e. "auto" drops the constraint when more than half of the pixels reject it at the
#: 5 % level. Where the linear mixing model with sum-to-one abundances holds, the cost is about
#: a χ² variable of one degree of freedom (median 0.45); per-pixel brightness variability that
#: the noise does not hide, or a reference of mixed pixels, raise it (docs/bundles.md).
ASC_THRESHOLD = 3.84
#: Fitted spectra replace a reference only if they lower the labelling rule's residual on the
#: image by at least this fraction (:func:`accept_endmembers`; docs/bundles.md).
MIN_GAIN = 0.05
#: Pixels :func:`sum_to_one_statistic` reads at most (evenly spaced over the valid ones).
ASC_PIXELS = 16384

#: The arrays of a bundle set, in the order :meth:`SpectralBundles.arrays` lists them.
BUNDLE_ARRAYS = ("spectra", "labels", "reference", "patch_index", "pixel_index")
#: Key prefix of a curated set's arrays inside a model checkpoint.
CHECKPOINT_PREFIX = "__bundles__."


@dataclass(frozen=True)
class SpectralBundles:
    """Pseudo-labelled bundle spectra for EGU-Net's endmember stream.

    Attributes
    ----------
    spectra : ndarray
        (K, B) float32 candidate spectra.
    labels : ndarray
        (K, P) float32 pseudo-abundances, non-negative, rows summing to one.
    reference : ndarray
        (P, B) float64 reference endmembers the labels refer to (their order is the order of the
        network's outputs), in the data's units; with ``label_scale="max"`` the labels were
        computed against each of them scaled to a maximum of 1.
    patch_index : ndarray
        (K,) int, the patch each spectrum came from (-1: not from a patch).
    pixel_index : ndarray
        (K,) int, the image pixel (row-major) it is, or -1 when it is not one pixel (a projection
        onto the patch's subspace).
    config : dict
        How the bundles were made (JSON-able).
    """

    spectra: np.ndarray
    labels: np.ndarray
    reference: np.ndarray
    patch_index: np.ndarray
    pixel_index: np.ndarray | None = None
    config: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        spectra = np.ascontiguousarray(self.spectra, dtype=np.float32)
        labels = np.ascontiguousarray(self.labels, dtype=np.float32)
        reference = np.asarray(self.reference, dtype=np.float64)
        patch_index = np.asarray(self.patch_index, dtype=np.int64).ravel()
        pixel_index = (
            np.full(len(spectra), -1, dtype=np.int64)
            if self.pixel_index is None
            else np.asarray(self.pixel_index, dtype=np.int64).ravel()
        )
        if spectra.ndim != 2 or labels.ndim != 2 or reference.ndim != 2:
            raise InputError(
                f"bundles need spectra (K, B), labels (K, P) and reference (P, B); got shapes "
                f"{spectra.shape}, {labels.shape}, {reference.shape}"
            )
        k, b = spectra.shape
        if k == 0:
            raise InputError("the bundle set is empty; the image gave no usable patches")
        if labels.shape[0] != k or patch_index.shape[0] != k or pixel_index.shape[0] != k:
            raise InputError(
                f"{k} bundle spectra but {labels.shape[0]} label rows, {patch_index.shape[0]} patch "
                f"indices and {pixel_index.shape[0]} pixel indices; they must match"
            )
        if reference.shape != (labels.shape[1], b):
            raise InputError(f"reference endmembers must be (P, B) = ({labels.shape[1]}, {b}); got {reference.shape}")
        if not (np.isfinite(spectra).all() and np.isfinite(labels).all()):
            raise InputError("bundle spectra or labels contain NaN or Inf values")
        if labels.min() < 0 or not np.allclose(labels.sum(axis=1), 1.0, atol=1e-4):
            raise InputError("bundle labels must be non-negative and sum to one per row")
        for name, value in (
            ("spectra", spectra),
            ("labels", labels),
            ("reference", reference),
            ("patch_index", patch_index),
            ("pixel_index", pixel_index),
        ):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "config", dict(self.config))

    @property
    def n_bundles(self) -> int:
        return int(self.spectra.shape[0])

    @property
    def n_bands(self) -> int:
        return int(self.spectra.shape[1])

    @property
    def n_endmembers(self) -> int:
        return int(self.labels.shape[1])

    @property
    def pseudo_labels(self) -> np.ndarray:
        """(K,) int: each bundle's dominant material (the argmax of its label row)."""
        return self.labels.argmax(axis=1)

    @property
    def curated(self) -> bool:
        """Whether the set was edited by :meth:`select`, :meth:`reject` or :meth:`relabel`."""
        return bool(self.config.get("curated", False))

    def _mask(self, mask: Any, what: str) -> np.ndarray:
        """``mask`` as a (K,) bool array: a bool mask of K entries, or bundle indices."""
        arr = np.asarray(mask)
        if arr.dtype == bool:
            if arr.shape != (self.n_bundles,):
                raise InputError(f"{what}: a bool mask needs {self.n_bundles} entries, one per bundle; got {arr.shape}")
            return arr.copy()
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"{what}: give a bool mask or integer bundle indices; got dtype {arr.dtype}")
        index = arr.astype(np.int64).ravel()
        if index.size and (index.min() < -self.n_bundles or index.max() >= self.n_bundles):
            raise InputError(
                f"{what}: bundle indices must lie in [0, {self.n_bundles}); got {index.min()}..{index.max()}"
            )
        out = np.zeros(self.n_bundles, dtype=bool)
        out[index] = True
        return out

    def _edited(self, keep: np.ndarray, labels: np.ndarray, step: dict) -> SpectralBundles:
        config = dict(self.config)
        config["curated"] = True
        config.setdefault("n_bundles_extracted", self.n_bundles)
        config["curation"] = [*self.config.get("curation", []), step]
        config["n_bundles"] = int(keep.sum())
        return SpectralBundles(
            spectra=self.spectra[keep],
            labels=labels[keep],
            reference=self.reference,
            patch_index=self.patch_index[keep],
            pixel_index=self.pixel_index[keep],
            config=config,
        )

    def select(self, mask: Any) -> SpectralBundles:
        """A new set holding only the bundles in ``mask`` (a (K,) bool mask or bundle indices).

        The reference and the labels of the kept bundles are unchanged; the new set's ``config``
        says that it was curated and records the step (``config["curation"]``), so that a model
        trained on it, and its result, say so. Keeping none is refused: EGU-Net needs bundles.
        """
        keep = self._mask(mask, "select")
        if not keep.any():
            raise InputError("select kept no bundles; keep at least one per material you want guided")
        return self._edited(keep, self.labels, {"action": "select", "kept": int(keep.sum()), "of": self.n_bundles})

    def reject(self, mask: Any) -> SpectralBundles:
        """A new set without the bundles in ``mask``: ``select`` of the others."""
        drop = self._mask(mask, "reject")
        keep = ~drop
        if not keep.any():
            raise InputError("reject would remove every bundle; keep at least one")
        return self._edited(keep, self.labels, {"action": "reject", "removed": int(drop.sum()), "of": self.n_bundles})

    def relabel(self, mask: Any, endmember: int) -> SpectralBundles:
        """A new set in which the bundles in ``mask`` are labelled pure ``endmember`` (0-based index).

        Their label rows become one-hot on that material: the user says "these spectra are
        material p", which is what a pseudo-label of a pure bundle means. The others are unchanged.
        """
        chosen = self._mask(mask, "relabel")
        p = check_int("endmember", endmember, 0, self.n_endmembers - 1)
        labels = self.labels.copy()
        labels[chosen] = 0.0
        labels[chosen, p] = 1.0
        keep = np.ones(self.n_bundles, dtype=bool)
        return self._edited(keep, labels, {"action": "relabel", "relabelled": int(chosen.sum()), "endmember": p})

    def arrays(self) -> dict[str, np.ndarray]:
        """The set's arrays by name (what a checkpoint stores beside the weights)."""
        return {name: getattr(self, name) for name in BUNDLE_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], config: dict | None = None) -> SpectralBundles:
        """Rebuild a set from :meth:`arrays` and its ``config`` (checked as any new set)."""
        missing = sorted(set(BUNDLE_ARRAYS) - set(arrays))
        if missing:
            raise InputError(f"bundle arrays {missing} are missing")
        return cls(**{k: np.asarray(arrays[k]) for k in BUNDLE_ARRAYS}, config=dict(config or {}))

    def __repr__(self) -> str:
        curated = ", curated" if self.curated else ""
        return (
            f"<SpectralBundles: {self.n_bundles} spectra x {self.n_bands} bands, "
            f"P={self.n_endmembers}, mode={self.config.get('mode', '?')!r}{curated}>"
        )


# ---------------------------------------------------------------------------------------------
# patches
# ---------------------------------------------------------------------------------------------


def _image_of(cube: Any) -> tuple[np.ndarray, np.ndarray, HyperCube | None]:
    """(H, W, B) float image, (H, W) validity mask, and the cube when one was given.

    The image is the cube's own array (float32 or float64, not copied): the computations convert
    the pixels they read to float64 a block at a time, which gives the numbers of a float64 copy
    without holding one.
    """
    if isinstance(cube, HyperCube):
        return cube.image, cube.valid_mask, cube
    arr = np.asarray(cube)
    if arr.ndim != 3:
        raise InputError(f"bundles need a HyperCube or a (rows, cols, bands) array; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"the image must hold floating-point reflectance; got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError("the image has NaN or Inf values; build a HyperCube with invalid='mask' first")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr, np.ones(arr.shape[:2], dtype=bool), None


def _patch_grid(height: int, width: int, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (rows, cols) of all size×size patches at the given stride.

    With stride == size this is the paper's tiling: floor(H/size) × floor(W/size) patches, the
    remainder at the bottom and right edges unused, exactly like the authors' loop.
    """
    ys = np.arange(0, height - size + 1, stride)
    xs = np.arange(0, width - size + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return yy.ravel(), xx.ravel()


def _patch_pixel_ids(width: int, size: int, y0: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """(K, size²) row-major image indices of each patch's pixels (row-major inside the patch)."""
    dy, dx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    rows = y0[:, None] + dy.ravel()[None, :]
    cols = x0[:, None] + dx.ravel()[None, :]
    return rows * width + cols


def _gather_patches(image: np.ndarray, pixel_ids: np.ndarray) -> np.ndarray:
    """(K, n, B) float64 pixels of the patches whose (K, n) image indices are given."""
    return image.reshape(-1, image.shape[2])[pixel_ids].astype(np.float64, copy=False)


def _patch_block(n_pixels: int, n_bands: int) -> int:
    """Patches per block of the candidate search: about ``_CHUNK_ELEMENTS`` float64 values."""
    return max(1, _CHUNK_ELEMENTS // max(n_pixels * n_bands, 1))


# ---------------------------------------------------------------------------------------------
# candidates
# ---------------------------------------------------------------------------------------------


def _project_top(patches: np.ndarray, chosen: np.ndarray, rank: int) -> np.ndarray:
    """Chosen pixels projected onto each patch's top-``rank`` (uncentred) singular subspace.

    This is what the reference VCA returns in its high-SNR branch (Rp = Ud·Udᵀ·R): denoised
    versions of the picked pixels. With X = U S Vᵀ, X V_r V_rᵀ = U_r U_rᵀ X, so the small n×n
    Gram matrix is enough.
    """
    gram = patches @ patches.transpose(0, 2, 1)
    _, vecs = np.linalg.eigh(gram)
    top = vecs[:, :, ::-1][:, :, :rank]  # (K, n, r)
    coeff = top.transpose(0, 2, 1) @ patches  # (K, r, B)
    rows = np.take_along_axis(top, chosen[:, :, None], axis=1)  # (K, m, r)
    return rows @ coeff


def _candidates(image, pixel_ids, n_endmembers, *, project, rng):
    """VCA on every patch: spectra (K·P, B) float64, patch ids and pixel ids (flat).

    The K patches (their (K, n) image indices ``pixel_ids``) are gathered and searched a block
    of patches at a time, so no copy of all patches exists at once. Each patch's answer does not
    depend on its block: the batched algebra works patch by patch, and the block calls draw
    their random directions one after the other from ``rng``, the same numbers that one call for
    all K patches draws.
    """
    k, n = pixel_ids.shape
    bands = image.shape[2]
    spectra = np.empty((k * n_endmembers, bands))
    pix = np.full((k, n_endmembers), -1, dtype=pixel_ids.dtype)
    step = _patch_block(n, bands)
    for start in range(0, k, step):
        ids = pixel_ids[start : start + step]
        patches = _gather_patches(image, ids)
        _, idx = vca_batch(patches, n_endmembers, seed=rng, snr=PATCH_SNR)
        if project:
            chosen = _project_top(patches, idx, n_endmembers)
        else:
            chosen = np.take_along_axis(patches, idx[:, :, None], axis=1)
            pix[start : start + len(ids)] = np.take_along_axis(ids, idx, axis=1)
        spectra[start * n_endmembers : (start + len(ids)) * n_endmembers] = chosen.reshape(-1, bands)
    patch_of = np.repeat(np.arange(k), n_endmembers)  # patch order, as in the paper
    return spectra, patch_of, pix.reshape(-1)


def _pseudo_abundances(spectra: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative least squares (SUnSAL, λ = 0) against M, each row divided by its sum."""
    ab = sunsal(spectra, reference, lam=0.0, positivity=True, sum_to_one=False, max_iter=200, tol=1e-4)
    total = ab.sum(axis=1, keepdims=True)
    dead = total[:, 0] <= 1e-12
    # A spectrum that no non-negative combination of M approaches (e.g. all zeros) carries no
    # information about the mixture: give it the uninformative uniform label.
    ab = np.where(dead[:, None], 1.0 / reference.shape[0], ab / np.where(dead[:, None], 1.0, total))
    return ab, int(dead.sum())


def _constrained_abundances(spectra: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Fully constrained least squares (non-negative, summing to one inside the fit) against M."""
    return fcls(np.asarray(spectra, dtype=np.float64), reference)


def labeller_residual(pixels: np.ndarray, endmembers: np.ndarray, labeller: str) -> float:
    """Mean squared residual per pixel of the labelling rule's unmixing of ``pixels`` (N, B).

    ``labeller="fcls"``: fully constrained least squares against ``endmembers`` as given (the
    data's units); ``"nnls"``: non-negative least squares, whose residual is the same for any
    positive scaling of the spectra (so ``label_scale`` does not enter).
    """
    m = np.asarray(endmembers, dtype=np.float64)
    y = np.asarray(pixels, dtype=np.float64)
    ab = fcls(y, m) if labeller == "fcls" else nnls_unmix(y, m)
    return float(((y - ab @ m) ** 2).sum(axis=1).mean())


def accept_endmembers(
    pixels: np.ndarray, current: np.ndarray, fitted: np.ndarray, labeller: str, min_gain: float | None = None
) -> tuple[np.ndarray, dict]:
    """The spectra to label against next: ``fitted`` where it explains the image better, else ``current``.

    The fitted set (its all-zero or non-finite rows, materials the others explain, replaced by
    the current ones) is taken only if it lowers the labelling rule's residual on ``pixels`` by
    at least the fraction ``min_gain`` (None: :data:`MIN_GAIN`); otherwise ``current`` is kept
    whole. In a taken set each fitted row whose current one gives a lower residual goes back to
    the current one. Returns the (P, B) spectra and a record (rows replaced, degenerate and
    reverted rows, the fitted rows' angles to the current ones, the residuals).
    """
    gain = MIN_GAIN if min_gain is None else float(min_gain)
    current = np.array(current, dtype=np.float64)
    fitted = np.asarray(fitted, dtype=np.float64)
    usable = np.isfinite(fitted).all(axis=1) & (np.abs(np.nan_to_num(fitted)) > 0).any(axis=1)
    candidate = np.where(usable[:, None], np.nan_to_num(fitted), current)
    before = labeller_residual(pixels, current, labeller)
    after = labeller_residual(pixels, candidate, labeller)
    replaced, reverted = [int(p) for p in np.flatnonzero(usable)], []
    if not after <= before * (1.0 - gain):
        candidate, after, replaced = current, before, []
    for p in list(replaced):
        trial = candidate.copy()
        trial[p] = current[p]
        value = labeller_residual(pixels, trial, labeller)
        if value < after:
            candidate, after = trial, value
            replaced.remove(p)
            reverted.append(p)
    angles = sad(np.nan_to_num(fitted, nan=0.0, posinf=0.0, neginf=0.0), current)  # NaN for a row without direction
    record = dict(
        replaced=replaced,
        degenerate=[int(p) for p in np.flatnonzero(~usable)],
        reverted=reverted,
        angle_to_current=[None if math.isnan(v) else round(float(v), 4) for v in angles],
        residual_before=before,
        residual_fitted=labeller_residual(pixels, np.where(usable[:, None], np.nan_to_num(fitted), current), labeller),
        residual_after=after,
    )
    return candidate, record


#: ``pixel_labels="auto"``: image pixels added to the bundles, labelled by the bundles' rule
#: (docs/bundles.md, "Labelled image pixels").
PIXEL_LABELS_AUTO = 4096


def pixel_label_count(option: Any) -> int:
    """How many image pixels ``pixel_labels=option`` adds to the bundles.

    An integer is that count; ``"auto"`` is :data:`PIXEL_LABELS_AUTO`, whatever the labels: FCLS
    labels are the maximum-likelihood abundances under the model the image obeys, and NNLS labels
    count shares on the scale the scene's abundances follow (``label_scale="auto"``), so either
    teaches the endmember stream the abundance of a mixed pixel.
    """
    if isinstance(option, str):
        check_choice("pixel_labels", option, ("auto",))
        return PIXEL_LABELS_AUTO
    return check_int("pixel_labels", option, 0, what="a whole number >= 0 or 'auto'")


def evenly_spaced(n: int, count: int) -> np.ndarray:
    """``count`` indices evenly spaced over ``range(n)`` (all of them when there are fewer)."""
    if count >= n:
        return np.arange(n, dtype=np.int64)
    return np.linspace(0, n - 1, count).round().astype(np.int64)


def label_spectra(
    spectra: np.ndarray, reference: np.ndarray, labeller: str, label_scale: str
) -> tuple[np.ndarray, int]:
    """Labels of ``spectra`` against ``reference`` (in the data's units) by a resolved rule, and the uniform ones.

    ``labeller`` is ``"fcls"`` or ``"nnls"``; with ``label_scale="max"`` each reference spectrum is
    scaled to a maximum of 1 first, so that an abundance is a material's share with its brightness
    divided out (the convention of the Samson and Jasper Ridge ground truths).
    """
    units = 1.0
    if label_scale == "max":
        units = np.maximum(reference.max(axis=1, keepdims=True), 1e-300)
    if labeller == "fcls":
        return _constrained_abundances(spectra, reference / units), 0
    return _pseudo_abundances(spectra, reference / units)


#: The cube attribute ``label_scale="auto"`` reads: the scale in which the cube's reference
#: abundances count each material ("max": its spectrum scaled to a maximum of 1, the convention
#: of the Samson and Jasper Ridge ground truths; "none": the spectrum in the data's units).
ABUNDANCE_SCALE_ATTR = "abundance_scale"


def resolve_label_scale(option: Any, cube: Any) -> str:
    """``label_scale`` as "none" or "max". "auto" (the default mode's) is the cube's
    :data:`ABUNDANCE_SCALE_ATTR` attribute where it states one, else "none".

    Where brightness varies from pixel to pixel an abundance depends on the scale given to each
    material's spectrum, which the image cannot fix: "none" counts shares of each material's
    spectrum as it appears in the data (its typical pure pixels, with ``reference_purest``), the
    convention of library-based references; a dataset whose ground truth follows another says so.
    """
    check_choice("label_scale", option, ("none", "max", "auto"))
    if option != "auto":
        return option
    attrs = getattr(getattr(cube, "ds", None), "attrs", None) or {}
    value = attrs.get(ABUNDANCE_SCALE_ATTR, "none")
    if value not in ("none", "max"):
        raise InputError(
            f"the cube's attribute {ABUNDANCE_SCALE_ATTR}={value!r} must be 'none' or 'max'; "
            f"fix it or pass label_scale= explicitly"
        )
    return value


#: Pixels the reference refinement reads at most (evenly spaced over the valid ones).
REFINE_PIXELS = 16384
#: Reference kinds picked from the image, which ``reference_rounds`` refines (a given library is used as it is).
PICKED_REFERENCES = ("nfindr", "vca", "vca-pixels")


def refine_reference(pixels: np.ndarray, reference: np.ndarray, rounds: int, labeller: str) -> tuple[np.ndarray, dict]:
    """Spectra fitted to the image from ``reference`` under the sum-to-one mixing model, or ``reference``.

    Each of ``rounds`` rounds unmixes ``pixels`` (N, B; at most :data:`REFINE_PIXELS` of them,
    evenly spaced, are read) by fully constrained least squares against the current spectra and
    fits the spectra to those abundances
    (:func:`~egu_widgets.classic.endmember_fit.fit_endmembers`): alternating least squares of the
    linear mixing model with sum-to-one abundances, started at the reference. Where the reference
    pixels are mixtures (a scene without pure pixels) this moves them out towards the materials;
    where they are pure it moves them within the noise. The fitted set is taken only if

    - it lowers the residual of the labelling rule ``labeller`` (``"auto"``: the rule the
      reference's own sum-to-one test picks) by :data:`MIN_GAIN` (:func:`accept_endmembers`,
      which also keeps each reference spectrum that fits better on its own), and
    - the image passes the sum-to-one test (:func:`sum_to_one_statistic` at most
      :data:`ASC_THRESHOLD`) against it: spectra fitted under that model are used only where the
      image obeys it (brightness varying from pixel to pixel breaks it, and then the fit is not
      trusted), and
    - the sum-to-one model with it explains the image at least as well as the brightness-free
      model with the picks (the residual of fully constrained least squares against the fitted
      set against that of non-negative least squares against the picks): where brightness varies
      from pixel to pixel the fit can absorb it into the spectra, pass the test and still explain
      the image worse than the picks scaled freely do.

    Returns the (P, B) spectra and a record: :func:`accept_endmembers`'s, with ``rounds``, the
    ``rule``, the second guard's statistic and the residuals the third compares (where the
    first passed), the test's statistics (``sum_to_one_statistic``: against the spectra
    returned; None when ``labeller`` is not "auto" and nothing was taken), ``taken`` and, when
    taken, the picks (``initial_reference``).
    """
    pixels = np.asarray(pixels)
    y = np.asarray(pixels[evenly_spaced(len(pixels), REFINE_PIXELS)], dtype=np.float64)
    current = np.array(reference, dtype=np.float64)
    statistic, rule = None, labeller
    if labeller == "auto":  # the same test, on the same pixels, as the labels' choice
        statistic = sum_to_one_statistic(pixels, current)
        rule = "fcls" if statistic <= ASC_THRESHOLD else "nnls"
    fitted = current
    for _ in range(rounds):
        step = fit_endmembers(y, fcls(y, fitted))
        dead = ~(step > 0).any(axis=1)  # a material the others explain: keep its spectrum
        fitted = np.where(dead[:, None], fitted, step)
    chosen, record = accept_endmembers(y, current, fitted, rule)
    taken = bool(record["replaced"])
    record.update(rounds=rounds, rule=rule, sum_to_one_statistic_initial=statistic)
    if taken:
        # Guard 3: the sum-to-one model with the fitted spectra must also explain the image as well
        # as the brightness-free one with the picks, or the fit only absorbed brightness.
        free = record["residual_before"] if rule == "nnls" else labeller_residual(y, current, "nnls")
        record["residual_fitted_fcls"] = tied = labeller_residual(y, chosen, "fcls")
        record["residual_picks_nnls"] = free
        record["sum_to_one_statistic_fitted"] = after = sum_to_one_statistic(pixels, chosen)
        taken = tied <= free and after <= ASC_THRESHOLD
    record["taken"] = taken
    if taken:  # the picks stay available beside the spectra that replace them
        record["initial_reference"] = current.tolist()
    # The test's value for the spectra returned, so that the labels' choice need not compute it again.
    record["sum_to_one_statistic"] = record["sum_to_one_statistic_fitted"] if taken else statistic
    return (chosen if taken else current), record


#: The fractions ``reference_purest="auto"`` chooses among (see :func:`purest_reference`).
PUREST_FRACTIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2)


def check_purest(option: Any) -> float | str:
    """``reference_purest`` checked: "auto" or a fraction in [0, 1]."""
    if isinstance(option, str):
        if option == "auto":
            return option
        raise InputError(f'reference_purest must be a fraction in [0, 1] or "auto"; got {option!r}')
    return check_float("reference_purest", option, 0.0, 1.0)


def purest_reference(
    pixels: np.ndarray, reference: np.ndarray, fraction: float | str, label_scale: str
) -> tuple[np.ndarray, dict]:
    """Each reference spectrum replaced by the mean of the pixels that hold the largest share of it.

    Where brightness varies from pixel to pixel the image is a cone rather than a simplex, and
    the pixels that maximise a simplex's volume (N-FINDR's picks) are its brightest and most
    extreme ones, which can be mixtures or outliers. The non-negative shares of the labels are
    brightness-free, so the ``fraction`` of ``pixels`` (N, B; at most :data:`REFINE_PIXELS`,
    evenly spaced, are read) with the largest share of material p are its purest pixels whatever
    their brightness; their mean, in the data's units, is a typical pure spectrum of p, with the
    noise and the extremes of single pixels averaged out. ``label_scale`` is the labels' (see
    :func:`label_spectra`).

    ``fraction="auto"`` takes, among :data:`PUREST_FRACTIONS`, the one whose means explain the
    pixels best under the labels' model: the lowest mean residual of non-negative least squares
    (:func:`labeller_residual`). Too few pixels per mean keep their noise and extremes, too many
    take in mixtures; both fit the image worse, and how many pure pixels a scene has is what the
    image, not a constant, can say.

    Returns the (P, B) spectra and a record (the fraction, the pixels per mean, the smallest share
    among them per material, the angles to the picks, the picks themselves and, with "auto", the
    candidates and their residuals).
    """
    y = np.asarray(pixels)
    y = np.asarray(y[evenly_spaced(len(y), REFINE_PIXELS)], dtype=np.float64)
    current = np.asarray(reference, dtype=np.float64)
    shares, _ = label_spectra(y, current, "nnls", label_scale)
    order = np.argsort(-shares, axis=0, kind="stable")  # (N, P): pixel rows, purest first

    def means_of(f: float) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, math.ceil(float(f) * len(y)))
        return y[order[:k]].mean(axis=0), order[:k]

    auto = {}
    if fraction == "auto":
        residuals = [labeller_residual(y, means_of(f)[0], "nnls") for f in PUREST_FRACTIONS]
        fraction = PUREST_FRACTIONS[int(np.argmin(residuals))]
        auto = dict(
            fraction_option="auto",
            candidates=list(PUREST_FRACTIONS),
            candidate_residuals=[float(r) for r in residuals],
        )
    means, purest = means_of(fraction)
    record = dict(
        fraction=float(fraction),
        n_pixels=int(len(purest)),
        min_share=[round(float(v), 4) for v in np.take_along_axis(shares, purest[-1:], axis=0)[0]],
        angle_to_initial=[round(float(v), 4) for v in sad(means, current)],
        initial_reference=current.tolist(),
        **auto,
    )
    return means, record


def sum_to_one_statistic(pixels: np.ndarray, reference: np.ndarray, *, max_pixels: int = ASC_PIXELS) -> float:
    """How strongly an image contradicts sum-to-one abundances of ``reference``, in noise variances.

    For every pixel y the residual of fully constrained least squares (non-negative abundances
    summing to one) is compared with that of non-negative least squares alone; the difference is
    what the sum-to-one constraint costs that pixel. It is divided by a noise variance estimated
    from the non-negative fit (the median residual over the degrees of freedom left, B − P), and
    the median over the pixels is returned.

    Where the linear mixing model with sum-to-one abundances holds (a synthetic mixture, a scene
    without brightness changes), the cost is noise along one direction, so the statistic is
    close to a χ² variable of one degree of freedom (median about 0.45). Per-pixel brightness
    (scaling) variability, e.g. topography and shade in a real scene, breaks the constraint and
    the statistic grows with the image's signal-to-noise ratio. It is the likelihood-ratio test
    of the nested constraint, taken at the median pixel so that a few outliers do not decide.

    Parameters
    ----------
    pixels : array (N, B)
        The image's valid pixels.
    reference : array (P, B)
        The endmembers, in the pixels' units.
    max_pixels : int
        At most this many pixels, evenly spaced over the N, are used.

    Returns
    -------
    float
        The median cost in noise variances (0 when the non-negative fit is exact).
    """
    y = np.asarray(pixels)
    m = np.asarray(reference, dtype=np.float64)
    if y.ndim != 2 or m.ndim != 2 or y.shape[1] != m.shape[1]:
        raise InputError(f"pixels (N, B) and reference (P, B) must share B; got {y.shape} and {m.shape}")
    if len(y) > max_pixels:  # the sample first, then float64: no float64 copy of the image
        y = y[evenly_spaced(len(y), max_pixels)]
    y = y.astype(np.float64, copy=False)
    free = nnls_unmix(y, m)
    tied = fcls(y, m)
    r_free = ((y - free @ m) ** 2).sum(axis=1)
    r_tied = ((y - tied @ m) ** 2).sum(axis=1)
    dof = max(y.shape[1] - m.shape[0], 1)
    noise = float(np.median(r_free)) / dof
    if noise <= 0:
        return 0.0
    return float(np.median(np.maximum(r_tied - r_free, 0.0)) / noise)


def _bundle_rngs(seed: int | None) -> tuple[Any, Any]:
    """Generators for the whole-image reference and the per-patch VCA, from the seed's "bundles" stream.

    None gives fresh, unseeded generators.
    """
    if seed is None:
        return np.random.default_rng(), np.random.default_rng()
    reference, patches = seed_sequence(seed, "bundles").spawn(2)
    return np.random.default_rng(reference), np.random.default_rng(patches)


#: ``reference="auto"`` (the default mode's): the picked references it chooses between, the first
#: preferred; another is taken only where its spectra, prepared the same way, explain the image
#: better by :data:`MIN_GAIN` (:func:`prepare_reference`).
AUTO_REFERENCE = "auto"
AUTO_REFERENCES = ("nfindr", "vca")


def _chooses_reference(reference: Any) -> bool:
    """Whether ``reference`` asks for the choice among :data:`AUTO_REFERENCES` (it may be an array)."""
    return isinstance(reference, str) and reference == AUTO_REFERENCE


def _prepare_one(source: Any, pixels: np.ndarray, n_endmembers: int, kind: Any, opts: dict, seed: int | None) -> dict:
    """The reference ``kind`` picked from ``source`` and what ``opts`` make of it on ``pixels``."""
    ref, ref_kind = reference_endmembers(source, n_endmembers, kind, seed=seed)
    labeller, label_scale, statistic = opts["labeller"], opts["label_scale"], None
    refinement = purest = None
    if opts["reference_rounds"] and ref_kind in PICKED_REFERENCES:
        ref, refinement = refine_reference(pixels, ref, opts["reference_rounds"], labeller)
    if labeller == "auto":
        # Sum-to-one abundances in the data's units where the image obeys that model; where it
        # does not (brightness varies from pixel to pixel), shares of the spectra's shapes. A
        # refined reference is tested again: mixed reference pixels also fail the test.
        statistic = (refinement or {}).get("sum_to_one_statistic")
        if statistic is None:
            statistic = sum_to_one_statistic(pixels, ref)
        labeller, label_scale = ("fcls", "none") if statistic <= ASC_THRESHOLD else ("nnls", label_scale)
    if opts["reference_purest"] and labeller == "nnls" and ref_kind in PICKED_REFERENCES:
        ref, purest = purest_reference(pixels, ref, opts["reference_purest"], label_scale)
    return dict(
        reference=ref,
        kind=ref_kind,
        labeller=labeller,
        label_scale=label_scale,
        statistic=statistic,
        refinement=refinement,
        purest=purest,
    )


def prepare_reference(source: Any, pixels: np.ndarray, n_endmembers: int, opts: dict, *, seed: int | None) -> dict:
    """The labels' reference and rule: picked, refined, tested for sum-to-one and averaged over purest pixels.

    ``source`` is what :func:`reference_endmembers` picks from (a cube or an image), ``pixels``
    (N, B) its valid pixels, which the refinement, the sum-to-one test and the purest-pixel means
    read; ``opts`` are checked bundle options. With ``reference="auto"`` every kind of
    :data:`AUTO_REFERENCES` is prepared, and a later one is taken only where the residual of its
    labelling rule on ``pixels`` (at most :data:`REFINE_PIXELS`, evenly spaced) is lower than the
    first's by :data:`MIN_GAIN`: each extractor can miss a material that the other finds (N-FINDR
    maximises a volume that a few bright or noisy pixels can draw out, VCA follows random
    directions), and a missed material leaves part of the image unexplained.

    Returns a dict: ``reference`` (P, B), ``kind``, ``labeller``, ``label_scale``,
    ``statistic`` (the sum-to-one test's, or None), ``refinement`` and ``purest`` (their records,
    or None), and ``choice`` (None, or with "auto" the candidates, their residuals and the kind taken).
    """
    if not _chooses_reference(opts["reference"]):
        return dict(_prepare_one(source, pixels, n_endmembers, opts["reference"], opts, seed), choice=None)
    runs = [_prepare_one(source, pixels, n_endmembers, k, opts, seed) for k in AUTO_REFERENCES]
    y = np.asarray(pixels[evenly_spaced(len(pixels), REFINE_PIXELS)], dtype=np.float64)
    residuals = [labeller_residual(y, run["reference"], run["labeller"]) for run in runs]
    taken = 0
    for k in range(1, len(runs)):
        if residuals[k] <= (1.0 - MIN_GAIN) * residuals[0] and residuals[k] < residuals[taken]:
            taken = k
    choice = dict(
        candidates=list(AUTO_REFERENCES),
        residuals=[float(r) for r in residuals],
        min_gain=MIN_GAIN,
        taken=AUTO_REFERENCES[taken],
    )
    return dict(runs[taken], choice=choice)


def reference_endmembers(
    cube: Any, n_endmembers: int, reference: Any = "nfindr", *, seed: int | None = 0
) -> tuple[np.ndarray, str]:
    """Reference endmembers M (P, B): ``"nfindr"`` or ``"vca"`` on the whole image, ``"truth"``, or an array.

    ``"nfindr"`` and ``"vca"`` give the picked pixels projected onto the image's top-P subspace
    (what the reference VCA returns); ``"vca-pixels"`` VCA's picked pixels themselves. ``seed``
    is the user's seed: the picks draw from its "bundles" stream, as in :func:`extract_bundles`.
    Returns M and the name of its kind ("nfindr", "vca", "vca-pixels", "truth" or "given").
    """
    image, valid, hc = _image_of(cube)
    b = image.shape[2]
    if isinstance(reference, str):
        if reference in ("vca", "vca-pixels", "nfindr"):
            pixels = image.reshape(-1, b) if valid.all() else image.reshape(-1, b)[valid.ravel()]
            finder = nfindr if reference == "nfindr" else vca
            em, _ = finder(pixels, n_endmembers, seed=_bundle_rngs(seed)[0])
            if reference == "vca-pixels":
                return em, reference
            # The reference VCA returns its picks projected onto the data's top-P (uncentred)
            # singular subspace, i.e. with the noise outside the signal subspace removed; the
            # classic vca() returns the raw pixels. The projection lowers the labels' error.
            _, vecs = np.linalg.eigh(_gram64(pixels))  # float64, block by block on large images
            top = vecs[:, ::-1][:, :n_endmembers]
            return (em @ top) @ top.T, reference
        if reference == "truth":
            if hc is None or hc.true_endmembers is None:
                raise InputError("reference='truth' needs a cube with truth endmembers; use 'vca' or pass an array")
            em = np.asarray(hc.true_endmembers, dtype=np.float64)
            if em.shape[0] != n_endmembers:
                raise InputError(f"the cube's truth has {em.shape[0]} endmembers but P={n_endmembers} was asked for")
            return em, "truth"
        raise InputError(
            f"reference={reference!r}; use 'auto' (bundles only), 'nfindr', 'vca', 'vca-pixels', 'truth' "
            f"or a (P, bands) array"
        )
    em = np.asarray(reference, dtype=np.float64)
    if em.ndim != 2:
        raise InputError(f"reference endmembers must be (P, bands); got shape {em.shape}")
    if em.shape[1] != b and em.shape[0] == b:
        em = em.T
    if em.shape != (n_endmembers, b):
        raise InputError(f"reference endmembers must be ({n_endmembers}, {b}); got {em.shape}")
    if not np.isfinite(em).all():
        raise InputError("reference endmembers contain NaN or Inf values")
    return em, "given"


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def _resolve_options(mode: str, overrides: dict) -> dict:
    check_choice("bundle mode", mode, sorted(BUNDLE_MODES))
    opts = dict(BUNDLE_MODES[mode])
    opts.update({k: v for k, v in overrides.items() if v is not _UNSET})
    return opts


class _Unset:
    def __repr__(self) -> str:
        return "<default of the mode>"


_UNSET: Any = _Unset()


def resolve_bundle_options(spec: Any, default_mode: str) -> dict:
    """An estimator's ``bundles=`` (None, a mode name or a dict) as :func:`extract_bundles` options.

    None takes ``default_mode``; unknown options are refused with the known ones named.
    """
    if spec is None:
        opts: dict = {"mode": default_mode}
    elif isinstance(spec, str):
        opts = {"mode": spec}
    elif isinstance(spec, Mapping):
        opts = dict(spec)
        opts.setdefault("mode", default_mode)
    else:
        raise InputError(
            f"bundles= takes None, a mode name, a dict of options or SpectralBundles; got {type(spec).__name__}"
        )
    unknown = sorted(set(opts) - set(BUNDLE_OPTIONS) - {"seed"})
    if unknown:
        raise InputError(f"unknown bundle option(s) {unknown}; known: {', '.join(BUNDLE_OPTIONS)}")
    return opts


def extract_bundles(
    cube: Any,
    n_endmembers: int,
    *,
    mode: str = "default",
    patch_size: int = _UNSET,
    stride: int | None = _UNSET,
    dedup: bool = _UNSET,
    project: bool = _UNSET,
    reference: Any = _UNSET,
    label_scale: str = _UNSET,
    labeller: str = _UNSET,
    pixel_labels: int | str = _UNSET,
    reference_rounds: int = _UNSET,
    reference_purest: float | str = _UNSET,
    seed: int | None = 0,
) -> SpectralBundles:
    """Build EGU-Net's spectral bundles from a cube (see the module doc).

    Parameters
    ----------
    cube : HyperCube or ndarray
        A HyperCube (invalid pixels are respected: a patch holding one is skipped) or a
        (rows, cols, bands) float array.
    n_endmembers : int
        P, the candidates per patch and the label count.
    mode : {"default", "faithful"}
        ``"faithful"``: the authors' script; ``"default"``: its bundles labelled against max-scaled
        N-FINDR spectra. The options below default to the mode's values (``BUNDLE_MODES``).
    patch_size : int
        Side of the square patches (5).
    stride : int or None
        Step between patches; None means ``patch_size`` (no overlap, the paper's tiling).
    dedup : bool
        Keep each image pixel once (matters only with overlapping patches; needs ``project=False``).
    project : bool
        Take VCA's projections of the picked pixels onto the patch's top subspace (the reference
        VCA's output, denoised) instead of the observed pixels.
    reference : str or ndarray
        ``"nfindr"`` (whole-image N-FINDR), ``"vca"`` (whole-image VCA, the authors'), both
        projected onto the image's top-P subspace; ``"vca-pixels"``, ``"truth"`` or a (P, bands)
        array (a library); ``"auto"`` (the default mode's): N-FINDR's, unless VCA's, prepared the
        same way (refinement, labelling rule, purest-pixel means), explains the image better by
        :data:`MIN_GAIN` (:func:`prepare_reference`; ``config["reference_choice"]`` records the
        residuals and ``config["reference"]`` the kind taken).
    label_scale : {"none", "max", "auto"}
        ``"none"``: the reference spectra as they are (the authors'); ``"max"``: each scaled to a
        maximum of 1 before the least squares, so a material's brightness is divided out of its
        abundance (the convention of the Samson and Jasper Ridge ground truths); ``"auto"`` (the
        default mode's): the cube's ``abundance_scale`` attribute where it states one (the named
        datasets Samson and Jasper Ridge say "max"), else "none" (:func:`resolve_label_scale`).
        It matters only where the labels are NNLS.
    labeller : {"nnls", "fcls", "auto"}
        ``"nnls"``: non-negative least squares, each row divided by its sum (the authors');
        ``"fcls"``: fully constrained least squares, the sum-to-one constraint inside the fit;
        ``"auto"``: ``"fcls"`` against the reference in the data's units (``label_scale`` is
        then not applied) when the image obeys the sum-to-one model
        (:func:`sum_to_one_statistic` at most :data:`ASC_THRESHOLD`), else ``"nnls"`` with
        ``label_scale``. ``config`` records what was used (``labeller``, ``label_scale``), what
        was asked (``labeller_requested``, ``label_scale_requested``) and the statistic.
    pixel_labels : int or "auto"
        Also add this many image pixels (evenly spaced over the valid ones; all of them when there
        are fewer), labelled by the same rule, so that the endmember stream is taught mixed
        pixels as well as the patches' extreme ones (0: the bundles alone, the authors').
        ``"auto"`` (the default mode's): :data:`PIXEL_LABELS_AUTO` (:func:`pixel_label_count`);
        ``config["n_pixel_labels"]`` says how many were added.
    reference_rounds : int
        Rounds of :func:`refine_reference` applied to a reference picked from the image
        (``"nfindr"``, ``"vca"``, ``"vca-pixels"``; a given array or ``"truth"`` is used as it
        is): alternating least squares from the picked spectra, taken only if it lowers the
        labelling rule's residual by :data:`MIN_GAIN`. ``config["reference_refinement"]``
        records it, with the picked spectra (``initial_reference``) when they were replaced. 0: the
        picks (the authors').
    reference_purest : float or "auto"
        Where the labels are NNLS (the image breaks the sum-to-one model, or ``labeller="nnls"``)
        and the reference was picked from the image, replace each picked spectrum by the mean of
        this fraction of the image's pixels that hold the largest share of it
        (:func:`purest_reference`; 0.01 in the default mode); ``"auto"``: the fraction among
        :data:`PUREST_FRACTIONS` whose means explain the image best. ``config["purest_reference"]``
        records it, with the picks. 0: the picks (the authors').
    seed : int or None
        The user's seed; VCA's random directions (whole image and patches) draw from its
        "bundles" stream. None: unseeded.

    Returns
    -------
    SpectralBundles
        Spectra, labels, the reference in the data's units, and ``config`` (how they were made).
    """
    opts = _resolve_options(
        mode,
        dict(
            patch_size=patch_size,
            stride=stride,
            dedup=dedup,
            project=project,
            reference=reference,
            label_scale=label_scale,
            labeller=labeller,
            pixel_labels=pixel_labels,
            reference_rounds=reference_rounds,
            reference_purest=reference_purest,
        ),
    )
    image, valid, _ = _image_of(cube)
    height, width, bands = image.shape
    p = check_n_endmembers(n_endmembers, n_bands=bands, n_pixels=int(valid.sum()))
    size = check_int("patch_size", opts["patch_size"], 1)
    stride = size if opts["stride"] is None else check_int("stride", opts["stride"], 1, what="a whole number (or None)")
    if size * size < p:
        raise InputError(
            f"a {size}x{size} patch has {size * size} pixels, fewer than the {p} endmembers VCA must "
            f"find in it; use patch_size >= {math.ceil(math.sqrt(p))}"
        )
    if height < size or width < size:
        raise InputError(
            f"the cube ({height}x{width} pixels) is smaller than one {size}x{size} patch; use a smaller patch_size"
        )
    scale_option = opts["label_scale"]
    opts["label_scale"] = resolve_label_scale(scale_option, cube)
    check_choice("labeller", opts["labeller"], LABELLERS)
    n_pixel_labels = pixel_label_count(opts["pixel_labels"])  # checked before any work
    rounds = check_int("reference_rounds", opts["reference_rounds"], 0)
    purest_fraction = check_purest(opts["reference_purest"])
    if opts["dedup"] and opts["project"]:
        raise InputError("dedup=True compares image pixels, but project=True makes new spectra; set project=False")
    reference_rng, patch_rng = _bundle_rngs(seed)

    y0, x0 = _patch_grid(height, width, size, stride)
    pixel_ids = _patch_pixel_ids(width, size, y0, x0)
    usable = valid.ravel()[pixel_ids].all(axis=1)  # a patch with a masked pixel is skipped whole
    if not usable.any():
        raise InputError("every patch contains invalid (masked) pixels; there is nothing to build bundles from")
    patch_numbers = np.flatnonzero(usable)
    pixel_ids = pixel_ids[usable]

    spectra, patch_of, pixel_of = _candidates(image, pixel_ids, p, project=bool(opts["project"]), rng=patch_rng)
    patch_of = patch_numbers[patch_of]
    n_candidates = len(spectra)
    if opts["dedup"]:
        _, first = np.unique(np.where(pixel_of >= 0, pixel_of, -1 - np.arange(len(pixel_of))), return_index=True)
        keep = np.sort(first)
        spectra, patch_of, pixel_of = spectra[keep], patch_of[keep], pixel_of[keep]

    flat = image.reshape(-1, bands)
    # The valid pixels, read by the refinement, the sum-to-one test, the purest-pixel means and the
    # choice of reference (a copy only where some are masked).
    reads_image = rounds or opts["labeller"] == "auto" or purest_fraction or _chooses_reference(opts["reference"])
    image_pixels = flat if valid.all() or not reads_image else flat[valid.ravel()]
    checked = dict(opts, reference_rounds=rounds, reference_purest=purest_fraction)
    prepared = prepare_reference(cube, image_pixels, p, checked, seed=seed)
    ref, ref_kind = prepared["reference"], prepared["kind"]
    labeller, label_scale, statistic = prepared["labeller"], prepared["label_scale"], prepared["statistic"]
    refinement, purest = prepared["refinement"], prepared["purest"]
    n_added = 0
    if n_pixel_labels:
        valid_ids = np.flatnonzero(valid.ravel())
        valid_ids = valid_ids[evenly_spaced(len(valid_ids), n_pixel_labels)]
        extra = image.reshape(-1, bands)[valid_ids].astype(np.float64)
        spectra = np.concatenate([spectra, extra])
        patch_of = np.concatenate([patch_of, np.full(len(valid_ids), -1)])
        pixel_of = np.concatenate([pixel_of, valid_ids])
        n_added = len(valid_ids)
    labels, n_dead = label_spectra(spectra, ref, labeller, label_scale)
    chosen = {}
    if opts["labeller"] == "auto":
        chosen = dict(
            labeller_requested="auto",
            label_scale_requested=opts["label_scale"],
            sum_to_one_statistic=statistic,
        )
    if scale_option == "auto":  # what "auto" resolved to is label_scale(_requested)
        chosen["label_scale_option"] = "auto"
    config = dict(
        mode=mode,
        **{k: v for k, v in opts.items() if k not in ("reference", "labeller", "label_scale")},
        label_scale=label_scale,
        labeller=labeller,
        **chosen,
        stride_used=stride,
        reference=ref_kind,
        seed=seed,
        n_patches=int(usable.sum()),
        n_candidates=int(n_candidates),
        n_bundles=int(len(spectra)),
        n_pixel_labels=int(n_added),
        uniform_labels=n_dead,
    )
    if refinement is not None:
        config["reference_refinement"] = refinement
    if purest is not None:
        config["purest_reference"] = purest
    if prepared["choice"] is not None:
        config["reference_choice"] = prepared["choice"]
    return SpectralBundles(
        spectra=spectra, labels=labels, reference=ref, patch_index=patch_of, pixel_index=pixel_of, config=config
    )
