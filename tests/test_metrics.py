"""Tests of egu_widgets.metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from egu_widgets.errors import InputError
from egu_widgets.metrics import (
    abundance_rmse,
    abundance_rmse_per_endmember,
    align,
    mean_sad,
    reconstruction_rmse,
    sad,
    sad_matrix,
    score,
    sre,
)


def test_sad_hand_values():
    est = np.array([[1.0, 0.0, 0.0], [2.0, 4.0, 6.0], [1.0, 1.0, 0.0], [1.0, 2.0, 3.0]])
    true = np.array([[0.0, 5.0, 0.0], [1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [-1.0, -2.0, -3.0]])
    angles = sad(est, true)
    np.testing.assert_allclose(angles, [90.0, 0.0, 45.0, 180.0], atol=1e-12)
    assert mean_sad(est, true) == pytest.approx(78.75)
    # tiny angles are resolved (arccos of a dot product would round them to ~1e-6 degrees)
    eps = 1e-9
    assert sad([[1.0, eps]], [[1.0, 0.0]])[0] == pytest.approx(math.degrees(eps), rel=1e-6)


def test_sad_of_zero_spectrum_is_nan_and_matrix_orientation():
    assert np.isnan(sad([[0.0, 0.0]], [[1.0, 0.0]])[0])
    est = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    true = np.array([[0.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(sad_matrix(est, true), [[90.0, 0.0, 45.0], [0.0, 90.0, 45.0]], atol=1e-12)


def test_abundance_rmse_hand_values():
    est = np.array([[0.5, 0.5], [1.0, 0.0]])
    true = np.array([[1.0, 0.0], [1.0, 0.0]])
    # squared errors 0.25, 0.25, 0, 0 -> mean 0.125
    assert abundance_rmse(est, true) == pytest.approx(math.sqrt(0.125))
    np.testing.assert_allclose(abundance_rmse_per_endmember(est, true), [math.sqrt(0.125)] * 2)
    est3 = np.array([[0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    true3 = np.array([[0.0, 1.0, 0.0], [0.0, 0.4, 0.6]])
    np.testing.assert_allclose(
        abundance_rmse_per_endmember(est3, true3), [math.sqrt(0.02), math.sqrt(0.1), math.sqrt(0.08)]
    )
    # (H, W, P) maps are flattened
    assert abundance_rmse(est3.reshape(1, 2, 3), true3.reshape(1, 2, 3)) == pytest.approx(math.sqrt(0.4 / 6))


def test_sre_and_reconstruction_rmse():
    y = np.array([[3.0, 4.0]])
    y_hat = np.array([[3.0, 3.0]])
    assert sre(y, y_hat) == pytest.approx(10 * math.log10(25.0))
    assert sre(y, y) == math.inf
    assert reconstruction_rmse(y, y_hat) == pytest.approx(math.sqrt(0.5))
    assert reconstruction_rmse(y, y) == 0.0


def test_align_recovers_a_shuffled_permutation():
    rng = np.random.default_rng(0)
    true_m = rng.uniform(size=(5, 30))
    true_a = rng.dirichlet(np.ones(5), 200)
    perm = np.array([3, 0, 4, 1, 2])
    # est[perm] == truth  <=>  est[perm[i]] = truth[i]
    est_m = np.empty_like(true_m)
    est_m[perm] = 1.7 * true_m + 0.01 * rng.standard_normal(true_m.shape)
    est_a = np.empty_like(true_a)
    est_a[:, perm] = true_a + 0.01 * rng.standard_normal(true_a.shape)
    np.testing.assert_array_equal(align(est_endmembers=est_m, true_endmembers=true_m), perm)
    np.testing.assert_array_equal(align(est_abundances=est_a, true_abundances=true_a), perm)
    # with more estimated components than true ones the best subset is chosen
    extra_m = np.vstack([est_m, rng.uniform(size=(2, 30))])
    np.testing.assert_array_equal(align(est_endmembers=extra_m, true_endmembers=true_m), perm)
    extra_a = np.hstack([np.zeros((200, 1)), est_a])
    np.testing.assert_array_equal(align(est_abundances=extra_a, true_abundances=true_a), perm + 1)


def test_align_errors():
    with pytest.raises(InputError, match="at least as many"):
        align(est_endmembers=np.ones((2, 4)), true_endmembers=np.eye(3, 4))
    with pytest.raises(InputError):
        align()
    with pytest.raises(InputError):
        align(est_abundances=np.ones((5, 3)), true_abundances=np.ones((6, 3)))
    with pytest.raises(InputError):
        align(est_endmembers=np.ones((3, 4)), true_endmembers=np.ones((3, 5)))


def test_score_aligns_then_reports():
    rng = np.random.default_rng(1)
    true_m = rng.uniform(size=(3, 20))
    true_a = rng.dirichlet(np.ones(3), 50)
    perm = np.array([2, 0, 1])
    est_m = np.empty_like(true_m)
    est_m[perm] = true_m * 3.0
    est_a = np.empty_like(true_a)
    est_a[:, perm] = true_a
    result = score(est_a, true_a, est_m, true_m)
    assert set(result) == {"rmse", "rmse_per_endmember", "sad", "sad_per_endmember", "permutation"}
    assert result["permutation"] == perm.tolist()
    assert result["rmse"] == pytest.approx(0.0, abs=1e-15)
    assert result["sad"] == pytest.approx(0.0, abs=1e-6)
    assert len(result["rmse_per_endmember"]) == 3 and len(result["sad_per_endmember"]) == 3

    shifted = est_a.copy()
    shifted[:, perm[1]] += 0.1  # error only on true endmember 1
    result = score(shifted, true_a)
    assert math.isnan(result["sad"])
    assert result["permutation"] == perm.tolist()
    np.testing.assert_allclose(result["rmse_per_endmember"], [0.0, 0.1, 0.0], atol=1e-12)
    assert result["rmse"] == pytest.approx(math.sqrt(0.01 / 3))


@pytest.mark.parametrize(
    "call",
    [
        lambda: abundance_rmse(np.ones((3, 2)), np.ones((3, 3))),
        lambda: abundance_rmse(np.array([[np.nan, 1.0]]), np.ones((1, 2))),
        lambda: sad(np.ones((2, 3)), np.ones((3, 3))),
        lambda: sad(np.ones(3), np.ones(3)),
        lambda: sre(np.ones((2, 2)), np.ones((2, 3))),
        lambda: score(np.ones((4, 2)), np.ones((4, 3))),
        lambda: score(np.ones((4, 2)), np.ones((4, 2)), np.ones((3, 5)), np.ones((2, 5))),
    ],
)
def test_input_errors(call):
    with pytest.raises(InputError):
        call()
