"""Synthetic scenes: the built-in demo (no files) and the EGU-Net paper's stand-in scene."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .download import fetch
from .formats.mat import load_mat
from .hypercube import HyperCube
from .library import read_usgs_library

__all__ = [
    "EGU_SYNTHETIC_FILES",
    "EGU_SYNTHETIC_MINERALS",
    "add_noise",
    "demo_endmembers",
    "make_demo",
    "make_egu_synthetic",
    "smooth_abundances",
]


def add_noise(clean: np.ndarray, snr_db: float | None, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise at a global signal-to-noise ratio (dB): var = mean(y²) / 10^(snr/10)."""
    if snr_db is None or np.isinf(snr_db):
        return clean
    sigma = np.sqrt(np.mean(clean.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return clean + rng.normal(0.0, sigma, size=clean.shape)


def smooth_abundances(
    height: int, width: int, n_endmembers: int, rng: np.random.Generator, *, scale: float = 6.0
) -> np.ndarray:
    """(P, H, W) spatially smooth abundance maps on the simplex, with some pure pixels.

    Each material gets a random field smoothed by a Gaussian; a softmax with a sharpening factor
    turns the fields into abundances, which gives both mixed regions and near-pure patches.
    """
    from scipy.ndimage import gaussian_filter

    fields = rng.normal(size=(n_endmembers, height, width))
    fields = np.stack([gaussian_filter(f, sigma=scale, mode="wrap") for f in fields])
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
    logits = 3.0 * fields
    logits -= logits.max(axis=0, keepdims=True)
    ab = np.exp(logits)
    ab /= ab.sum(axis=0, keepdims=True)
    return ab


def _demo_abundances(height: int, width: int, n_endmembers: int, rng: np.random.Generator) -> np.ndarray:
    """(P, H, W) abundances of the demo scene: regions around seed points, blended at their edges.

    Each material owns the same number of seed points (three) at random places; a pixel's
    abundances are a softmax of how close it is to each material's nearest seed, with a little
    smooth noise. Every material thus dominates regions of its own, with near-pure cores, and
    mixtures lie along the borders. Independent smooth fields (:func:`smooth_abundances`) can
    leave a material almost absent.
    """
    from scipy.ndimage import gaussian_filter

    per_material = 3
    owners = rng.permutation(np.repeat(np.arange(n_endmembers), per_material))
    sites = rng.uniform(0.0, 1.0, size=(owners.size, 2)) * (height, width)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    dist = np.hypot(rows[None] - sites[:, 0, None, None], cols[None] - sites[:, 1, None, None])
    nearest = np.stack([dist[owners == p].min(axis=0) for p in range(n_endmembers)])
    scale = max(np.sqrt(height * width / owners.size), 1.0)  # typical distance between seeds
    noise = np.stack([gaussian_filter(f, sigma=2.0, mode="wrap") for f in rng.normal(size=nearest.shape)])
    noise /= noise.std(axis=(1, 2), keepdims=True) + 1e-12
    logits = -4.0 * nearest / scale + 0.3 * noise
    logits -= logits.max(axis=0, keepdims=True)
    ab = np.exp(logits)
    return ab / ab.sum(axis=0, keepdims=True)


def demo_endmembers(n_bands: int, n_endmembers: int, wavelengths: np.ndarray) -> np.ndarray:
    """Smooth, distinct reflectance spectra made of a baseline slope and absorption features."""
    t = (wavelengths - wavelengths.min()) / max(float(np.ptp(wavelengths)), 1e-9)
    spectra = []
    for k in range(n_endmembers):
        base = 0.25 + 0.5 * (k + 1) / (n_endmembers + 1) + 0.2 * (t - 0.5) * (-1) ** k
        centre = (k + 0.5) / n_endmembers
        dip = 0.35 * np.exp(-0.5 * ((t - centre) / 0.07) ** 2)
        bump = 0.15 * np.exp(-0.5 * ((t - (1 - centre)) / 0.12) ** 2)
        spectra.append(np.clip(base - dip + bump, 0.02, 1.0))
    return np.array(spectra)


def make_demo(
    height: int = 40, width: int = 40, n_bands: int = 60, n_endmembers: int = 3, *, snr_db: float = 30.0, seed: int = 0
) -> HyperCube:
    """The built-in demo scene: small, needs no files, has truth. Deterministic for a seed.

    Every material is present: each one has near-pure pixels and is the largest abundance in a
    fair share of the image (see :func:`_demo_abundances`), so a P-material demo really has P.
    """
    if n_endmembers < 2 or n_bands < n_endmembers:
        raise InputError(f"demo needs 2 <= endmembers <= bands; got {n_endmembers} endmembers, {n_bands} bands")
    rng = np.random.default_rng(seed)
    wavelengths = np.linspace(400.0, 2500.0, n_bands)
    endmembers = demo_endmembers(n_bands, n_endmembers, wavelengths)
    abundances = _demo_abundances(height, width, n_endmembers, rng)
    clean = np.einsum("phw,pb->hwb", abundances, endmembers)
    noisy = np.clip(add_noise(clean, snr_db, rng), 0.0, None)
    return HyperCube.from_array(
        noisy,
        wavelengths=wavelengths,
        endmembers=endmembers,
        abundances=abundances,
        endmember_names=[f"material {chr(ord('A') + k)}" for k in range(n_endmembers)],
        name="demo",
        source="built-in",
        layout="rows,cols,bands",  # generated bands last, whatever the sizes
        provenance={"generator": "make_demo", "snr_db": snr_db, "seed": seed, "size": [height, width, n_bands]},
    )


#: The five USGS (1995) library spectra of the EGU-Net stand-in scene. The paper does not name its
#: five; these are distinct minerals (pairwise spectral angles 11-34 degrees) like a typical choice.
EGU_SYNTHETIC_MINERALS = (
    "Alunite GDS84 Na03",
    "Calcite WS272",
    "Hematite GDS27",
    "Nontronite GDS41",
    "Andradite GDS12",
)
#: The files the scene is made of: the paper's abundance maps and the USGS library.
EGU_SYNTHETIC_FILES = ("egu_net_synthetic/TeLabel.mat", "usgs/USGS_1995_Library.mat")


def make_egu_synthetic(*, snr_db: float = 30.0, seed: int = 0) -> HyperCube:
    """The EGU-Net paper's synthetic scene: its 200x200 abundance maps x five USGS spectra + noise."""
    labels_file, library_file = EGU_SYNTHETIC_FILES
    labels = load_mat(fetch(labels_file))["TeLabel"]  # (40000, 5)
    library = read_usgs_library(fetch(library_file))
    names = list(library.names)
    idx = [names.index(n) for n in EGU_SYNTHETIC_MINERALS]
    endmembers = library.spectra[idx]
    side = int(round(np.sqrt(labels.shape[0])))
    # The maps were exported from MATLAB: pixel columns are in column-major (Fortran) order.
    abundances = labels.reshape(side, side, -1, order="F").transpose(2, 0, 1)
    clean = np.einsum("phw,pb->hwb", abundances, endmembers)
    rng = np.random.default_rng(seed)
    noisy = np.clip(add_noise(clean, snr_db, rng), 0.0, None)
    return HyperCube.from_array(
        noisy,
        wavelengths=library.wavelengths,
        endmembers=endmembers,
        abundances=abundances,
        endmember_names=[n.split()[0].lower() for n in EGU_SYNTHETIC_MINERALS],
        name="egu-synthetic",
        source="TeLabel.mat x USGS_1995_Library.mat",
        layout="rows,cols,bands",  # generated bands last, whatever the sizes
        provenance={"snr_db": snr_db, "seed": seed, "library_spectra": list(EGU_SYNTHETIC_MINERALS)},
    )
