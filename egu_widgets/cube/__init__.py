"""Hyperspectral cubes: the HyperCube object, file formats, datasets by name and synthetic scenes.

Modules, lowest first: :mod:`.hypercube` (the data model), :mod:`.checks` (is a cube usable for P materials), :mod:`.formats` (one reader per file
format and the suffix table), :mod:`.download` (finding and fetching dataset files),
:mod:`.library` (spectral libraries), :mod:`.synthetic` (generated scenes), :mod:`.datasets`
(the registry of named datasets) and :mod:`.open` (:func:`open_cube`).
"""

from .checks import check_usable
from .datasets import dataset_names
from .formats.mat import load_mat
from .hypercube import HyperCube
from .library import SpectralLibrary, read_usgs_library
from .open import open_cube
from .synthetic import make_demo, make_egu_synthetic

__all__ = [
    "HyperCube",
    "SpectralLibrary",
    "check_usable",
    "dataset_names",
    "load_mat",
    "make_demo",
    "make_egu_synthetic",
    "open_cube",
    "read_usgs_library",
]
