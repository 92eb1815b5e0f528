"""The robustness suite's scenes: synthetic cubes from the USGS library that no default was tuned on.

Each scene is a :class:`~egu_widgets.cube.HyperCube` with truth, built deterministically from its
name's recipe and a seed. Together they cover what the package meets on scenes it has never seen:
no pure pixels, per-pixel scaling (illumination) variability, each material's brightness varying
on its own (the extended linear mixing model), SNRs of 20, 30 and 40 dB, 3 to 8
materials, 100 to 224 bands, image sizes that are not multiples of 8, and raw integer data with a
``maxValue`` read back through the package's own ``.mat`` reader.

    python benchmarks/robustness_scenes.py          # lists the scenes with their properties
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egu_widgets.cube import HyperCube, open_cube

__all__ = ["RECIPES", "Recipe", "make_scene", "scene_names"]


@dataclass(frozen=True)
class Recipe:
    """How one scene is made. ``max_abundance`` < 1 removes pure pixels; ``scaling`` is the
    half-width of the uniform per-pixel brightness factor (0.15: each pixel × U(0.85, 1.15));
    ``material_scaling`` that of a factor drawn per pixel *and per material* (the extended linear
    mixing model: each material's spectrum varies in brightness from pixel to pixel on its own,
    as a canopy's or a soil's does with its structure, moisture and slope)."""

    p: int
    snr_db: float
    height: int = 64
    width: int = 64
    n_bands: int = 224
    max_abundance: float = 1.0
    scaling: float = 0.0
    material_scaling: float = 0.0
    integer_scale: float | None = None  # store as uint16 of value × this, with maxValue = this
    maps: str = "smooth"  # "smooth" random fields, or "telabel" (the EGU-Net paper's 200×200 maps)


RECIPES: dict[str, Recipe] = {
    "no-pure-p4-30db": Recipe(p=4, snr_db=30, max_abundance=0.8),
    "scaling-p5-30db": Recipe(p=5, snr_db=30, scaling=0.15),
    "p3-20db": Recipe(p=3, snr_db=20),
    "p6-40db": Recipe(p=6, snr_db=40),
    "p8-30db-no-pure": Recipe(p=8, snr_db=30, max_abundance=0.8),
    "bands100-p4-30db": Recipe(p=4, snr_db=30, n_bands=100),
    "odd-57x83-p5-25db": Recipe(p=5, snr_db=25, height=57, width=83, scaling=0.1),
    "raw-uint16-p4-30db": Recipe(p=4, snr_db=30, integer_scale=10000.0),
    # Brightness varying as widely as topography and shade make it in real scenes.
    "wide-scaling-p4-30db": Recipe(p=4, snr_db=30, scaling=0.4),
    "wide-scaling-p6-35db-no-pure": Recipe(p=6, snr_db=35, scaling=0.4, max_abundance=0.9),
    "scaling-p5-25db-b120": Recipe(p=5, snr_db=25, height=70, width=61, n_bands=120, scaling=0.3),
    "telabel-other-p5-20db": Recipe(
        p=5, snr_db=20, height=200, width=200, maps="telabel", scaling=0.2, max_abundance=0.8
    ),
    # Each material's brightness varying on its own (extended linear mixing model).
    "elmm-p4-30db": Recipe(p=4, snr_db=30, material_scaling=0.2),
    "elmm-p5-25db-no-pure-75x66": Recipe(p=5, snr_db=25, height=75, width=66, material_scaling=0.3, max_abundance=0.9),
}


def scene_names() -> list[str]:
    return list(RECIPES)


def _library():
    from egu_widgets.cube import read_usgs_library
    from egu_widgets.cube.download import fetch

    return read_usgs_library(fetch("usgs/USGS_1995_Library.mat"))


def _pick_spectra(spectra: np.ndarray, p: int, rng: np.random.Generator, min_angle_deg: float = 8.0) -> np.ndarray:
    """Indices of p library spectra, pairwise at least ``min_angle_deg`` apart (distinct materials)."""
    unit = spectra / np.linalg.norm(spectra, axis=1, keepdims=True)
    cos_min = np.cos(np.deg2rad(min_angle_deg))
    for _ in range(1000):
        order = rng.permutation(len(spectra))
        chosen: list[int] = []
        for i in order:
            if all(unit[i] @ unit[j] < cos_min for j in chosen):
                chosen.append(int(i))
                if len(chosen) == p:
                    return np.array(chosen)
    raise RuntimeError(f"could not pick {p} distinct spectra")


def _cap(ab: np.ndarray, max_abundance: float) -> np.ndarray:
    """Mix each pixel toward equal shares just enough that no abundance exceeds ``max_abundance``."""
    p = ab.shape[0]
    top = ab.max(axis=0)
    lam = np.where(top > max_abundance, (max_abundance - 1 / p) / np.maximum(top - 1 / p, 1e-12), 1.0)
    return lam * ab + (1 - lam) / p


def _abundances(recipe: Recipe, rng: np.random.Generator) -> np.ndarray:
    if recipe.maps == "telabel":
        from egu_widgets.cube import load_mat
        from egu_widgets.cube.download import fetch

        labels = load_mat(fetch("egu_net_synthetic/TeLabel.mat"))["TeLabel"]
        side = int(round(np.sqrt(labels.shape[0])))
        ab = labels.reshape(side, side, -1, order="F").transpose(2, 0, 1)[: recipe.p]
        ab = ab / ab.sum(axis=0, keepdims=True)
    else:
        from egu_widgets.cube.synthetic import smooth_abundances

        ab = smooth_abundances(recipe.height, recipe.width, recipe.p, rng, scale=5.0)
    return _cap(ab, recipe.max_abundance) if recipe.max_abundance < 1 else ab


def make_scene(name: str, seed: int = 0) -> HyperCube:
    """Scene ``name`` of :data:`RECIPES`, deterministic for ``seed``."""
    recipe = RECIPES[name]
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    lib = _library()
    band_idx = np.linspace(0, len(lib.wavelengths) - 1, recipe.n_bands).round().astype(int)
    spectra = lib.spectra[:, band_idx]
    wavelengths = lib.wavelengths[band_idx]
    endmembers = spectra[_pick_spectra(spectra, recipe.p, rng)]
    ab = _abundances(recipe, rng)
    if recipe.material_scaling:
        psi = rng.uniform(1 - recipe.material_scaling, 1 + recipe.material_scaling, size=ab.shape)
        clean = np.einsum("phw,phw,pb->hwb", ab, psi, endmembers)
    else:
        clean = np.einsum("phw,pb->hwb", ab, endmembers)
    if recipe.scaling:
        clean *= rng.uniform(1 - recipe.scaling, 1 + recipe.scaling, size=clean.shape[:2])[..., None]
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (recipe.snr_db / 10))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None)
    names = [f"material {k + 1}" for k in range(recipe.p)]
    if recipe.integer_scale is None:
        return HyperCube.from_array(
            noisy,
            wavelengths=wavelengths,
            endmembers=endmembers,
            abundances=ab,
            endmember_names=names,
            name=name,
            source="benchmarks/robustness_scenes.py",
        )
    # Raw integers with maxValue, as Jasper Ridge is distributed: read back through the .mat reader.
    import scipy.io

    h, w, b = noisy.shape
    raw = np.round(noisy * recipe.integer_scale).astype(np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        cube_path, truth_path = Path(tmp) / f"{name}.mat", Path(tmp) / f"{name}_truth.mat"
        y = raw.reshape(h * w, b, order="F").T  # (bands, pixels), MATLAB column-major pixel order
        scipy.io.savemat(cube_path, {"Y": y, "maxValue": recipe.integer_scale, "nRow": h, "nCol": w, "nBand": b})
        scipy.io.savemat(truth_path, {"A": ab.reshape(recipe.p, -1, order="F"), "M": endmembers.T})
        cube = open_cube(cube_path, truth=truth_path)
        cube = cube.load() if hasattr(cube, "load") else cube
    return cube


def main() -> None:
    print("| scene | P | SNR dB | size | bands | max abundance | scaling | per-material scaling | stored as |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    for name, r in RECIPES.items():
        cube = make_scene(name)
        ab = cube.true_abundances
        print(
            f"| {name} | {r.p} | {r.snr_db:g} | {cube.height}×{cube.width} | {cube.n_bands} | "
            f"{float(np.nanmax(ab)):.2f} | ±{r.scaling:.0%} | ±{r.material_scaling:.0%} | "
            f"{'uint16 / maxValue' if r.integer_scale else 'float'} |"
        )


if __name__ == "__main__":
    main()
