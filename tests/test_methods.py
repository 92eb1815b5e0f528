"""The method registry: one table behind ``unmix``, the CLI and the docs; classical numbers pinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from egu_widgets.cube import HyperCube, make_demo, open_cube
from egu_widgets.unmixing import unmix

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def demo():
    return make_demo(16, 16, 30, 3, seed=4)


@pytest.fixture(scope="module")
def no_truth(demo):
    return HyperCube.from_array(demo.pixels.reshape(16, 16, 30))


def _row_indices(cube, endmembers):
    """Which pixel rows the endmembers are (VCA and N-FINDR return pixels unchanged)."""
    return [int(np.flatnonzero((cube.pixels == e).all(axis=1))[0]) for e in endmembers]


# Values written down from the code before the registry existed: the refactor must not move them.
def test_vca_fcls_numbers_are_pinned(demo):
    r = unmix(demo, method="vca-fcls", seed=3)
    assert _row_indices(demo, r.endmembers.values) == [113, 150, 204]
    np.testing.assert_allclose(r.abundances.values[:, 3, 11], [0.37827577893063524, 0.36900162680559134,
                                                               0.2527225942637733], rtol=1e-9)
    np.testing.assert_allclose(r.abundances.values[:, 15, 0], [0.44019683798852255, 0.19250614700280894,
                                                               0.3672970150086685], rtol=1e-9)
    assert r.rmse == pytest.approx(0.4551215595998838, rel=1e-9)
    assert r.sad == pytest.approx(23.106840880898933, rel=1e-9)
    assert r.config == {"n_endmembers": 3, "seed": 3}


def test_sunsal_numbers_are_pinned(demo, no_truth):
    r = unmix(no_truth, method="sunsal", n_endmembers=3, seed=2)
    assert _row_indices(no_truth, r.endmembers.values) == [113, 95, 204]
    np.testing.assert_allclose(r.abundances.values[:, 3, 11], [0.3847251861197827, 0.45617357388826874,
                                                               0.15910123999194867], rtol=1e-9)
    assert r.config == {"endmembers": "vca", "lam": 0.0, "n_endmembers": 3, "seed": 2}
    t = unmix(demo, method="sunsal", lam=0.01)
    np.testing.assert_allclose(t.abundances.values[:, 15, 0], [0.9971147258951901, 0.0, 0.002885274104809911],
                               rtol=1e-9, atol=1e-12)
    assert t.rmse == pytest.approx(0.005292379477432624, rel=1e-9)
    assert t.config == {"endmembers": "truth", "lam": 0.01, "n_endmembers": 3, "seed": 0}


def test_fcls_with_truth_numbers_are_pinned(demo):
    r = unmix(demo, method="fcls")
    np.testing.assert_allclose(r.abundances.values[:, 5, 7], [0.9992708241140421, 0.0, 0.0007291758859579849],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(r.endmembers.values, demo.true_endmembers)
    assert r.config == {"endmembers": "truth", "n_endmembers": 3}


@pytest.mark.skipif(not (SHARED / "samson").is_dir(), reason="../shared/data/samson not present")
def test_vca_fcls_on_samson_is_pinned():
    cube = open_cube("samson")
    r = unmix(cube, method="vca-fcls", seed=0)
    assert _row_indices(cube, r.endmembers.values) == [6584, 3282, 5893]
    assert r.rmse == pytest.approx(0.2730149967717418, rel=1e-9)
    assert r.sad == pytest.approx(4.191013107026045, rel=1e-9)
    np.testing.assert_allclose(r.abundances.values[:, 10, 20], [0.0, 0.023074609093722463, 0.9769253909062775],
                               rtol=1e-9, atol=1e-12)
