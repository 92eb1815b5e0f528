"""The datasets known by name: what each is, the files it needs and how it is loaded.

:data:`DATASETS` is the one list of named datasets; the command line, the reproduction and
:func:`~egu_widgets.cube.open_cube` all read it (through :func:`dataset_names`,
:func:`paper_datasets` and :func:`find_dataset`). Files are fetched by :mod:`.download`, which
holds their checksums and public addresses. A new dataset is a loader and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .download import fetch
from .formats.mat import load_mat, read_mat, read_mat_truth
from .hypercube import HyperCube
from .synthetic import EGU_SYNTHETIC_FILES, make_demo, make_egu_synthetic

__all__ = ["ALIASES", "DATASETS", "DatasetEntry", "dataset_names", "find_dataset", "load_dataset", "paper_datasets"]


@dataclass(frozen=True)
class DatasetEntry:
    """One named dataset.

    ``loader`` returns the cube; ``files`` are the registered files it reads (paths inside a data
    folder, see :mod:`.download`); ``n_endmembers`` is its number of materials P. A ``generated``
    scene takes generator options (``seed=``, ``snr_db=``, ...) and is always finite and
    non-negative; a file dataset takes ``invalid=`` and ``negative=`` instead. ``paper`` marks the
    scenes of the EGU-Net paper's comparison.
    """

    name: str
    description: str
    n_endmembers: int
    loader: Callable[..., HyperCube]
    files: tuple[str, ...] = ()
    generated: bool = False
    paper: bool = False


SAMSON_FILES = ("samson/samson_1.mat", "samson/end3.mat")
JASPER_FILES = ("jasper_ridge/jasperRidge2_R198.mat", "jasper_ridge/end4.mat")


#: Samson's and Jasper Ridge's ground truths count each material's spectrum scaled to a maximum
#: of 1 (least squares against their max-scaled truth spectra reproduces their abundances); the
#: cube says so, and EGU-Net's default labels follow it where brightness varies
#: (``label_scale="auto"`` in :func:`egu_widgets.engine.extract_bundles`).
TRUTH_ABUNDANCE_SCALE = "max"


def _band_centres(n_bands: int, first: float, last: float) -> np.ndarray:
    return np.linspace(first, last, n_bands)


def _load_samson(**options: Any) -> HyperCube:
    cube_file, truth_file = SAMSON_FILES
    cube = read_mat(fetch(cube_file), read_mat_truth(fetch(truth_file)), name="samson", **options)
    wl = _band_centres(cube.n_bands, 401.0, 889.0)
    ds = cube.ds.assign_coords(wavelength=("band", wl, {"units": "nm"}))
    return HyperCube(ds.assign_attrs(abundance_scale=TRUTH_ABUNDANCE_SCALE), validate=False)


def _load_jasper(**options: Any) -> HyperCube:
    cube_file, truth_file = JASPER_FILES
    cube_path = fetch(cube_file)
    cube = read_mat(cube_path, read_mat_truth(fetch(truth_file)), name="jasper-ridge", **options)
    kept = np.asarray(load_mat(cube_path)["SlectBands"]).ravel().astype(int) - 1
    # AVIRIS: 224 channels spread over 380-2500 nm; the file keeps 198 of them (water bands removed).
    wl = _band_centres(224, 380.0, 2500.0)[kept]
    ds = cube.ds.assign_coords(wavelength=("band", wl, {"units": "nm"}))
    return HyperCube(ds.assign_attrs(abundance_scale=TRUTH_ABUNDANCE_SCALE), validate=False)


#: Name -> dataset, in the order they are listed (the paper's comparison order first).
DATASETS: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        DatasetEntry(
            "egu-synthetic",
            "the EGU-Net paper's synthetic scene: its 200x200 abundance maps x five USGS spectra, 30 dB noise",
            5,
            make_egu_synthetic,
            EGU_SYNTHETIC_FILES,
            generated=True,
            paper=True,
        ),
        DatasetEntry(
            "samson", "Samson, 95x95 pixels, 156 bands: rock, tree, water", 3, _load_samson, SAMSON_FILES, paper=True
        ),
        DatasetEntry(
            "jasper-ridge",
            "Jasper Ridge, 100x100 pixels, 198 AVIRIS bands: tree, water, dirt, road",
            4,
            _load_jasper,
            JASPER_FILES,
            paper=True,
        ),
        DatasetEntry("demo", "the built-in demo scene: small, needs no files, has truth", 3, make_demo, generated=True),
    )
}
#: Other spellings accepted for a name (lower case).
ALIASES = {
    "jasper": "jasper-ridge",
    "jasper_ridge": "jasper-ridge",
    "jasperridge": "jasper-ridge",
    "egu_synthetic": "egu-synthetic",
}


def dataset_names() -> list[str]:
    """The names of the known datasets, in listing order."""
    return list(DATASETS)


def paper_datasets() -> tuple[str, ...]:
    """The names of the EGU-Net paper's comparison scenes, in the table's order."""
    return tuple(name for name, entry in DATASETS.items() if entry.paper)


def find_dataset(name: Any) -> DatasetEntry | None:
    """The dataset called ``name`` (any case, surrounding spaces and aliases allowed), or None."""
    key = str(name).strip().lower()
    return DATASETS.get(ALIASES.get(key, key))


def load_dataset(entry: DatasetEntry, *, invalid: str = "raise", negative: str = "raise", **options: Any) -> HyperCube:
    """Load a named dataset: generator ``options`` for a generated scene, else ``invalid``/``negative``."""
    if entry.generated:  # generated scenes: always finite and non-negative
        return entry.loader(**options)
    if options:
        raise InputError(f"dataset {entry.name!r} takes no options; got {sorted(options)}")
    return entry.loader(invalid=invalid, negative=negative)
