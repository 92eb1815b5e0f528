"""Hyperspectral cubes: the HyperCube object, readers for common layouts, datasets by name."""

from .hypercube import HyperCube
from .readers import SpectralLibrary, dataset_names, load_mat, open_cube, read_usgs_library
from .synthetic import make_demo, make_egu_synthetic

__all__ = [
    "HyperCube",
    "SpectralLibrary",
    "dataset_names",
    "load_mat",
    "make_demo",
    "make_egu_synthetic",
    "open_cube",
    "read_usgs_library",
]
