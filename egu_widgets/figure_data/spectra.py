"""Spectra behind the endmember views: estimate, reference, spectral angles and bundle envelopes.

:func:`pair_data` resolves once, from a result and its context, everything that the endmember-pair
widget and :func:`egu_widgets.plotting.endmember_figure` draw, so that the notebook view and the
static figure always show the same curves. Plain numpy (no plotting or widget library).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "PairData",
    "SpectralAxis",
    "as_spectra",
    "bundle_envelopes",
    "group_means",
    "least_squares_endmembers",
    "match_rows_by_sad",
    "names_of",
    "pair_data",
    "spectral_angles_deg",
    "spectral_axis",
]


def spectral_angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between matching rows of ``a`` and ``b`` (the project's SAD)."""
    from ..metrics import sad

    return sad(np.atleast_2d(a), np.atleast_2d(b))


def match_rows_by_sad(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``perm`` such that ``rows[perm[i]]`` is the row matched to ``targets[i]`` (least total SAD)."""
    from ..metrics import align

    return align(
        est_endmembers=np.asarray(rows, dtype=np.float64), true_endmembers=np.asarray(targets, dtype=np.float64)
    )


def least_squares_endmembers(pixels: np.ndarray, abundances: np.ndarray) -> np.ndarray:
    """(P, B) spectra that best explain ``pixels`` (N, B) from ``abundances`` (N, P), clipped at 0.

    Used when a method gives abundances only: the "extracted" endmembers implied by them.
    """
    ab = np.asarray(abundances, dtype=np.float64)
    px = np.asarray(pixels, dtype=np.float64)
    ok = np.isfinite(ab).all(axis=1)
    em, *_ = np.linalg.lstsq(ab[ok], px[ok], rcond=None)
    return np.clip(em, 0.0, None)


def bundle_envelopes(
    spectra: np.ndarray, labels: np.ndarray, n_endmembers: int, envelope: Any = "minmax"
) -> list[tuple[np.ndarray, np.ndarray, int] | None]:
    """Per bundle group (the spectra whose label argmax is ``p``): (low, high, count) or None if empty.

    ``envelope`` is ``"minmax"`` or a pair of quantiles such as ``(0.05, 0.95)``.
    """
    spectra = np.asarray(spectra, dtype=np.float64)
    labels = np.asarray(labels)
    if spectra.ndim != 2:
        raise InputError(f"bundle spectra must be (K, bands); got shape {spectra.shape}")
    if labels.ndim == 2:
        if labels.shape[0] != spectra.shape[0]:
            raise InputError(f"{labels.shape[0]} bundle labels for {spectra.shape[0]} bundle spectra")
        group = labels.argmax(axis=1)
    elif labels.ndim == 1 and labels.shape[0] == spectra.shape[0]:
        group = labels.astype(int)
    else:
        raise InputError(f"bundle labels must be (K, P) or (K,); got shape {labels.shape}")
    if isinstance(envelope, str):
        if envelope != "minmax":
            raise InputError(f"envelope={envelope!r}; use 'minmax' or a pair of quantiles like (0.05, 0.95)")
        q = None
    else:
        q = tuple(float(v) for v in envelope)
        if len(q) != 2 or not 0.0 <= q[0] < q[1] <= 1.0:
            raise InputError(f"envelope quantiles must be two numbers 0 <= low < high <= 1; got {envelope!r}")
    out: list = []
    for p in range(n_endmembers):
        members = spectra[group == p]
        if len(members) == 0:
            out.append(None)
        elif q is None:
            out.append((members.min(axis=0), members.max(axis=0), len(members)))
        else:
            lo, hi = np.quantile(members, q, axis=0)
            out.append((lo, hi, len(members)))
    return out


def group_means(spectra: np.ndarray, labels: np.ndarray, n_endmembers: int) -> np.ndarray:
    """(P, B) mean spectrum of each bundle group (NaN rows for empty groups)."""
    spectra = np.asarray(spectra, dtype=np.float64)
    labels = np.asarray(labels)
    group = labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(int)
    out = np.full((n_endmembers, spectra.shape[1]), np.nan)
    for p in range(n_endmembers):
        members = spectra[group == p]
        if len(members):
            out[p] = members.mean(axis=0)
    return out


@dataclass(frozen=True)
class SpectralAxis:
    """The x axis of a spectrum plot: its values, an axis label and a HoloViews dimension name."""

    values: np.ndarray
    label: str  # e.g. "wavelength (nm)" or "band"
    name: str  # a HoloViews dimension name: "wavelength" or "band"


def spectral_axis(n_bands: int, cube: Any = None, result: Any = None) -> SpectralAxis:
    """Wavelengths with units when the cube (or the result) knows them, else band numbers."""
    wl, units = None, None
    if cube is not None and getattr(cube, "wavelengths", None) is not None:
        wl, units = cube.wavelengths, cube.wavelength_units
    elif result is not None and "wavelength" in getattr(result, "ds", {}).coords:
        wl = result.ds["wavelength"].values
        units = result.ds["wavelength"].attrs.get("units")
    if wl is not None and len(wl) == n_bands:
        label = f"wavelength ({units})" if units else "wavelength"
        return SpectralAxis(np.asarray(wl, dtype=np.float64), label, "wavelength")
    return SpectralAxis(np.arange(n_bands, dtype=np.float64), "band", "band")


def names_of(result: Any) -> list[str]:
    """The endmember names of ``result``, in its order, as strings."""
    return [str(v) for v in result.abundances.coords["endmember"].values]


def as_spectra(reference: Any, n_endmembers: int, n_bands: int, what: str) -> np.ndarray:
    """``reference`` as a (n_endmembers, n_bands) float array, transposed if given bands first.

    ``what`` names the argument in the error raised for any other shape.
    """
    arr = np.asarray(getattr(reference, "values", reference), dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{what} must be (endmembers, bands); got shape {arr.shape}")
    if arr.shape != (n_endmembers, n_bands) and arr.shape == (n_bands, n_endmembers):
        arr = arr.T
    if arr.shape != (n_endmembers, n_bands):
        raise InputError(f"{what} must be ({n_endmembers}, {n_bands}); got {arr.shape}")
    return arr


@dataclass
class PairData:
    """Everything the endmember-pair views draw, resolved once from a result and its context."""

    names: list[str]
    axis: SpectralAxis
    estimate: np.ndarray  # (P, B)
    estimate_label: str
    reference: np.ndarray | None  # (P, B)
    reference_label: str | None
    sad: np.ndarray | None  # (P,) degrees, estimate vs reference
    envelopes: list | None  # per endmember (low, high, count) or None
    envelope_label: str | None

    @property
    def n_endmembers(self) -> int:
        return len(self.names)

    @property
    def reference_is_max_scaled(self) -> bool:
        """Whether every reference spectrum peaks at 1 (Samson's and Jasper Ridge's truths do)."""
        if self.reference is None:
            return False
        peaks = np.nanmax(self.reference, axis=1)
        return bool(np.allclose(peaks, 1.0, atol=1e-3))

    def curves(self, p: int, normalise: bool = False) -> dict:
        """Endmember ``p``'s curves: ``estimate``, ``reference`` and ``envelope`` (low, high) or None.

        ``normalise`` scales the estimate and the reference each to a maximum of 1, so spectra
        in different units (a max-scaled truth beside estimates in reflectance) can be compared
        by shape; the bundle envelope, in the estimate's units, is scaled with the estimate.
        """
        estimate = self.estimate[p]
        reference = None if self.reference is None else self.reference[p]
        env = None if self.envelopes is None or self.envelopes[p] is None else self.envelopes[p][:2]
        if normalise:
            factor = _peak(estimate)
            estimate = estimate / factor
            if reference is not None:
                reference = reference / _peak(reference)
            if env is not None:
                env = (env[0] / factor, env[1] / factor)
        return {"estimate": estimate, "reference": reference, "envelope": env}

    def title(self, p: int) -> str:
        sad = "" if self.sad is None or not np.isfinite(self.sad[p]) else f" — SAD {self.sad[p]:.2f}°"
        return f"{self.names[p]}{sad}"


def _peak(spectrum: np.ndarray) -> float:
    """The largest finite value of ``spectrum`` (1 when there is none, or it is not positive)."""
    finite = np.asarray(spectrum, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def pair_data(
    result: Any,
    cube: Any = None,
    *,
    reference: Any = None,
    reference_label: str | None = None,
    bundles: Any = None,
    envelope: Any = "minmax",
    align: bool = False,
) -> PairData:
    """Resolve estimate, reference, SAD and bundle envelopes for each endmember of ``result``.

    The estimate is the result's endmembers, or (abundance-only methods) the least-squares spectra
    implied by its abundances and the cube. The reference is, in order: ``reference`` (labelled
    ``reference_label``), the cube's truth, the bundles' reference spectra. With ``align=True`` the
    reference rows are reordered to the estimate by least total SAD (Hungarian); otherwise they are
    taken in the result's order (results scored against truth are already aligned to it). Bundle
    groups (spectra whose label argmax is p) are matched to endmembers by SAD of their mean spectra.
    """
    names = names_of(result)
    n_em = len(names)
    if result.endmembers is not None:
        estimate = np.asarray(result.endmembers.transpose("endmember", "band").values, dtype=np.float64)
        estimate_label = "estimate"
    elif cube is not None:
        estimate = least_squares_endmembers(cube.pixels, result.abundance_pixels)
        estimate_label = "estimate (least squares from abundances)"
    else:
        raise InputError(
            "the result has no endmember spectra; pass the cube too so that they can be estimated "
            "from its pixels and the abundances"
        )
    n_bands = estimate.shape[1]
    axis = spectral_axis(n_bands, cube, result)

    ref, ref_label = None, None
    if reference is not None:
        ref = as_spectra(reference, n_em, n_bands, "reference")
        ref_label = reference_label or "reference"
    elif (
        cube is not None
        and getattr(cube, "true_endmembers", None) is not None
        and cube.true_endmembers.shape == (n_em, n_bands)
    ):
        ref, ref_label = np.asarray(cube.true_endmembers, dtype=np.float64), reference_label or "truth"
    if ref is None and bundles is not None and getattr(bundles, "reference", None) is not None:
        ref = as_spectra(bundles.reference, n_em, n_bands, "bundle reference")
        kind = str((getattr(bundles, "config", None) or {}).get("reference", ""))
        ref_label = reference_label or {"vca": "VCA", "vca-pixels": "VCA", "nfindr": "N-FINDR", "truth": "truth"}.get(
            kind, "library"
        )
        align = True  # bundle references come in extraction order, not the result's
    if ref is not None and align:
        ref = ref[match_rows_by_sad(ref, estimate)]
    sad = spectral_angles_deg(estimate, ref) if ref is not None else None

    envelopes, envelope_label = None, None
    if bundles is not None and envelope is not None:
        spectra = np.asarray(bundles.spectra, dtype=np.float64)
        labels = np.asarray(bundles.labels)
        if spectra.shape[1] != n_bands:
            raise InputError(f"bundle spectra have {spectra.shape[1]} bands; the endmembers have {n_bands}")
        n_groups = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
        groups = bundle_envelopes(spectra, labels, n_groups, envelope)
        means = group_means(spectra, labels, n_groups)
        target = ref if ref is not None else estimate
        if n_groups == n_em and np.isfinite(means).all():
            order = match_rows_by_sad(means, target)
            envelopes = [groups[i] for i in order]
        else:
            envelopes = groups[:n_em] + [None] * max(0, n_em - n_groups)
        envelope_label = (
            "bundle min-max" if isinstance(envelope, str) else f"bundle {envelope[0]:g}-{envelope[1]:g} quantiles"
        )
    return PairData(names, axis, estimate, estimate_label, ref, ref_label, sad, envelopes, envelope_label)
