"""The built-in demo scene has every one of its materials (issue 15: material B was nearly absent)."""

from __future__ import annotations

import numpy as np
import pytest

from egu_widgets.cube import make_demo


@pytest.mark.parametrize("seed", range(5))
def test_every_demo_material_is_present(seed):
    cube = make_demo(seed=seed)
    ab = cube.true_abundances.reshape(cube.n_true_endmembers, -1)
    np.testing.assert_allclose(ab.sum(axis=0), 1.0, atol=1e-9)
    assert (ab.max(axis=1) >= 0.6).all(), ab.max(axis=1)
    share = np.bincount(ab.argmax(axis=0), minlength=ab.shape[0]) / ab.shape[1]
    assert (share >= 0.10).all(), share


def test_demo_is_deterministic_and_other_sizes_keep_every_material():
    np.testing.assert_array_equal(make_demo(seed=3).image, make_demo(seed=3).image)
    cube = make_demo(24, 30, 20, 4, seed=1)
    ab = cube.true_abundances.reshape(4, -1)
    assert cube.image.shape == (24, 30, 20)
    assert (ab.max(axis=1) >= 0.6).all()
