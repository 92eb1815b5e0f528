"""fit_endmembers: non-negative least squares of an image on given abundances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls

from egu_widgets.classic.endmember_fit import fit_endmembers
from egu_widgets.errors import InputError


def _scene(n=500, b=12, p=4, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.05, 1.0, (p, b))
    a = rng.dirichlet(np.ones(p), n)
    return a @ m + rng.normal(0, noise, (n, b)), a, m


def test_recovers_the_endmembers_of_noise_free_mixtures():
    y, a, m = _scene()
    np.testing.assert_allclose(fit_endmembers(y, a), m, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 6), shift=st.floats(-0.5, 0.5))
def test_equals_per_band_nnls_on_the_full_problem(seed, p, shift):
    """The normal-equation route gives scipy's NNLS answer on the (N, P) system, band by band,
    also where the constraint binds (the shift pushes some bands' solutions below zero)."""
    y, a, _ = _scene(n=60, b=5, p=p, noise=0.05, seed=seed)
    y = y + shift
    expected = np.stack([nnls(a, y[:, k])[0] for k in range(y.shape[1])], axis=1)
    got = fit_endmembers(y, a)
    assert got.shape == (p, 5) and np.all(got >= 0)
    residual = np.linalg.norm(y - a @ got)
    assert residual <= np.linalg.norm(y - a @ expected) * (1 + 1e-9) + 1e-12
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_mask_leaves_pixels_out_and_blocks_do_not_matter():
    y, a, m = _scene(n=300)
    y = y.copy()
    y[:40] = np.nan  # invalid pixels: left out by the mask, never read into the sums
    mask = np.ones(len(y), dtype=bool)
    mask[:40] = False
    np.testing.assert_allclose(fit_endmembers(y, a, mask=mask), m, atol=1e-10)
    np.testing.assert_allclose(
        fit_endmembers(y, a, mask=mask, block_size=7), fit_endmembers(y, a, mask=mask), atol=1e-12
    )
    with pytest.raises(InputError, match="mask="):
        fit_endmembers(y, a)


def test_float32_inputs_are_summed_in_float64():
    y, a, m = _scene(n=2000)
    got = fit_endmembers(y.astype(np.float32), a.astype(np.float32))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, m, atol=1e-5)


def test_absent_material_gets_zeros_and_the_others_are_unchanged():
    y, a, m = _scene(p=3)
    a = a.copy()
    a[:, 1] = 0.0  # material 2 nowhere: undetermined, returned as zeros
    y = a @ m
    got = fit_endmembers(y, a)
    np.testing.assert_array_equal(got[1], 0.0)
    np.testing.assert_allclose(got[[0, 2]], m[[0, 2]], atol=1e-10)


def test_bad_input_is_explained():
    y, a, _ = _scene(n=20)
    with pytest.raises(InputError, match=r"\(N, B\)"):
        fit_endmembers(y[0], a)
    with pytest.raises(InputError, match="same pixels"):
        fit_endmembers(y[:10], a)
    with pytest.raises(InputError, match="boolean"):
        fit_endmembers(y, a, mask=np.ones(20))
    with pytest.raises(InputError, match="no pixel"):
        fit_endmembers(y, a, mask=np.zeros(20, dtype=bool))
    with pytest.raises(InputError, match="block_size"):
        fit_endmembers(y, a, block_size=0)
