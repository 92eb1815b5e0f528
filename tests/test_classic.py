"""Tests of the classical baselines: simplex projection, FCLS/NNLS, SUnSAL, VCA."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import nnls

from egu_widgets.classic import fcls, nfindr, nnls_unmix, project_simplex, sunsal, vca, vca_batch
from egu_widgets.classic.nfindr import simplex_coordinates
from egu_widgets.errors import InputError

# ------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------


def smooth_spectra(rng, p, b):
    """p positive, smooth, distinct spectra of b bands (sums of Gaussian bumps on a baseline)."""
    grid = np.linspace(0.0, 1.0, b)
    out = np.full((p, b), 0.1)
    for row in out:
        for _ in range(4):
            centre, width, height = rng.uniform(0, 1), rng.uniform(0.03, 0.2), rng.uniform(0.1, 0.8)
            row += height * np.exp(-0.5 * ((grid - centre) / width) ** 2)
    return out


def scene(rng, p=4, b=60, n=500, noise=0.0, concentration=1.0):
    endmembers = smooth_spectra(rng, p, b)
    abundances = rng.dirichlet(np.full(p, concentration), n)
    pixels = abundances @ endmembers + noise * rng.standard_normal((n, b))
    return pixels, endmembers, abundances


def fcls_brute_force(y, m):
    """Exact FCLS for one pixel by trying every support (fine for P ≤ 5)."""
    gram, b, p = m @ m.T, m @ y, m.shape[0]
    best, best_value = None, np.inf
    for r in range(1, p + 1):
        for support in itertools.combinations(range(p), r):
            s = list(support)
            k = np.zeros((r + 1, r + 1))
            k[:r, :r] = gram[np.ix_(s, s)]
            k[:r, r] = k[r, :r] = 1.0
            z = np.linalg.solve(k, np.r_[b[s], 1.0])[:r]
            if np.all(z >= -1e-12):
                a = np.zeros(p)
                a[s] = z
                value = 0.5 * a @ gram @ a - b @ a
                if value < best_value:
                    best, best_value = a, value
    return best


# ------------------------------------------------------------------------------------------
# simplex projection
# ------------------------------------------------------------------------------------------

finite_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(1, 7)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(finite_rows)
def test_project_simplex_lands_on_simplex_and_is_idempotent(v):
    a = project_simplex(v)
    assert a.shape == v.shape
    assert np.all(a >= 0.0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(project_simplex(a), a, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(finite_rows, st.integers(0, 2**32 - 1))
def test_project_simplex_is_the_nearest_simplex_point(v, seed):
    a = project_simplex(v)
    rng = np.random.default_rng(seed)
    candidates = rng.dirichlet(np.ones(v.shape[1]), size=(v.shape[0], 50))  # (N, 50, P)
    # vertices too: the nearest point is often on the boundary
    candidates = np.concatenate(
        [candidates, np.broadcast_to(np.eye(v.shape[1]), (v.shape[0],) + (v.shape[1],) * 2)], axis=1
    )
    d_proj = np.linalg.norm(v - a, axis=1)
    d_cand = np.linalg.norm(v[:, None, :] - candidates, axis=2).min(axis=1)
    assert np.all(d_proj <= d_cand + 1e-9 * (1.0 + np.abs(v).max()))


def test_project_simplex_known_values():
    v = np.array([[0.5, 0.5], [2.0, 0.0], [-1.0, -1.0], [0.2, 0.3]])
    expected = np.array([[0.5, 0.5], [1.0, 0.0], [0.5, 0.5], [0.45, 0.55]])
    np.testing.assert_allclose(project_simplex(v), expected, atol=1e-15)
    np.testing.assert_allclose(project_simplex([3.0, 1.0, -2.0]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(project_simplex([[1.0, 1.0]], radius=4.0), [[2.0, 2.0]])


def test_project_simplex_rejects_nan():
    with pytest.raises(InputError):
        project_simplex([[np.nan, 1.0]])


# ------------------------------------------------------------------------------------------
# FCLS and NNLS
# ------------------------------------------------------------------------------------------


def test_fcls_recovers_noise_free_abundances_exactly():
    rng = np.random.default_rng(0)
    pixels, m, a = scene(rng, p=5, b=80, n=3000, concentration=0.3)  # many near-zero entries
    a[:50] = 0.0
    a[np.arange(50), rng.integers(0, 5, 50)] = 1.0  # some pure pixels: solutions on vertices
    pixels = a @ m
    est = fcls(pixels, m)
    np.testing.assert_allclose(est, a, atol=1e-6)


def test_fcls_matches_brute_force_and_augmented_nnls_on_noisy_data():
    rng = np.random.default_rng(1)
    pixels, m, _ = scene(rng, p=4, b=50, n=400, noise=0.05, concentration=0.3)
    est = fcls(pixels.astype(np.float32), m.astype(np.float32))
    assert est.dtype == np.float64
    assert np.all(est >= 0.0)
    np.testing.assert_allclose(est.sum(axis=1), 1.0, atol=1e-12)
    # many pixels end up on a face of the simplex, which is what makes the test meaningful
    assert np.mean(np.any(est == 0.0, axis=1)) > 0.1
    y32, m32 = pixels.astype(np.float32).astype(np.float64), m.astype(np.float32).astype(np.float64)
    delta = 1e4  # weight of the appended sum-to-one row
    aug = np.vstack([m32.T, delta * np.ones(4)])
    for i in range(0, 400, 7):
        ref_nnls = nnls(aug, np.r_[y32[i], delta])[0]
        np.testing.assert_allclose(est[i], ref_nnls, atol=1e-6)
        np.testing.assert_allclose(est[i], fcls_brute_force(y32[i], m32), atol=1e-9)


def test_fcls_handles_degenerate_endmembers_and_edge_shapes():
    rng = np.random.default_rng(2)
    m = smooth_spectra(rng, 3, 20)
    m_dup = np.vstack([m, m[0]])  # exactly dependent endmembers: solution not unique
    pixels = rng.dirichlet(np.ones(3), 40) @ m
    est = fcls(pixels, m_dup)
    assert est.shape == (40, 4) and np.all(est >= 0)
    np.testing.assert_allclose(est.sum(axis=1), 1.0)
    np.testing.assert_allclose(est @ m_dup, pixels, atol=1e-8)  # still an exact fit
    assert fcls(np.zeros((0, 20)), m).shape == (0, 3)
    np.testing.assert_array_equal(fcls(pixels, m[:1]), np.ones((40, 1)))


def test_nnls_unmix_matches_scipy():
    rng = np.random.default_rng(3)
    pixels, m, _ = scene(rng, p=5, b=40, n=300, noise=0.05)
    pixels -= 0.3  # push many solutions onto the boundary
    est = nnls_unmix(pixels, m)
    assert np.mean(np.any(est == 0, axis=1)) > 0.2
    ref = np.array([nnls(m.T, y)[0] for y in pixels])
    np.testing.assert_allclose(est, ref, atol=1e-9)


@pytest.mark.parametrize(
    "pixels, endmembers",
    [
        (np.full((3, 4), np.nan), np.ones((2, 4))),
        (np.ones((3, 4)), np.ones((2, 5))),  # band mismatch
        (np.ones(4), np.ones((2, 4))),  # 1-D pixels
        (np.ones((3, 4)), np.zeros((2, 4))),  # all-zero endmembers
        (np.ones((3, 4)), np.array([[1.0, 2.0, np.inf, 1.0]])),
    ],
)
def test_fcls_input_errors(pixels, endmembers):
    with pytest.raises(InputError):
        fcls(pixels, endmembers)
    with pytest.raises(InputError):
        sunsal(pixels, endmembers)


# ------------------------------------------------------------------------------------------
# SUnSAL
# ------------------------------------------------------------------------------------------


def test_sunsal_fully_constrained_equals_fcls():
    rng = np.random.default_rng(4)
    pixels, m, _ = scene(rng, p=4, b=60, n=2000, noise=0.02)
    ref = fcls(pixels, m)
    est = sunsal(pixels, m, lam=0.0, positivity=True, sum_to_one=True)
    np.testing.assert_allclose(est, ref, atol=1e-4)
    assert np.all(est >= 0)
    np.testing.assert_allclose(est.sum(axis=1), 1.0)


def test_sunsal_positivity_only_approaches_nnls_and_least_squares_is_closed_form():
    rng = np.random.default_rng(5)
    pixels, m, _ = scene(rng, p=3, b=30, n=500, noise=0.05)
    est = sunsal(pixels, m, positivity=True, max_iter=2000, tol=1e-7)
    np.testing.assert_allclose(est, nnls_unmix(pixels, m), atol=1e-4)
    ls = sunsal(pixels, m, positivity=False)
    np.testing.assert_allclose(ls, np.linalg.lstsq(m.T, pixels.T, rcond=None)[0].T, atol=1e-8)
    ls1 = sunsal(pixels, m, positivity=False, sum_to_one=True)
    np.testing.assert_allclose(ls1.sum(axis=1), 1.0)


def test_sunsal_l1_gives_sparser_solutions_on_a_library():
    rng = np.random.default_rng(6)
    library = smooth_spectra(rng, 40, 80)
    n = 300
    a = np.zeros((n, 40))
    for i in range(n):  # each pixel mixes 3 library members
        a[i, rng.choice(40, 3, replace=False)] = rng.dirichlet(np.ones(3))
    pixels = a @ library + 0.002 * rng.standard_normal((n, 80))
    dense = sunsal(pixels, library, lam=0.0)
    sparse = sunsal(pixels, library, lam=5e-3)
    stronger = sunsal(pixels, library, lam=5e-2)
    count = lambda x: np.count_nonzero(x > 1e-3, axis=1).mean()  # noqa: E731
    assert count(sparse) < count(dense)
    assert count(stronger) < count(sparse)
    assert np.all(sparse >= 0)


def test_sunsal_argument_errors():
    m = np.eye(3)
    y = np.ones((2, 3))
    for kwargs in ({"lam": -1.0}, {"max_iter": 0}, {"tol": 0.0}, {"mu": -1.0}, {"lam": np.nan}):
        with pytest.raises(InputError):
            sunsal(y, m, **kwargs)


# ------------------------------------------------------------------------------------------
# VCA
# ------------------------------------------------------------------------------------------


def planted_scene(rng, p, b, n, noise):
    m = smooth_spectra(rng, p, b)
    # mixtures kept away from the vertices so that the planted pure pixels are the extremes
    a = 0.8 * rng.dirichlet(np.ones(p), n) + 0.2 / p
    pure = rng.choice(n, p, replace=False)
    a[pure] = np.eye(p)
    return a @ m + noise * rng.standard_normal((n, b)), pure


@pytest.mark.parametrize("noise", [0.0, 1e-3])
@pytest.mark.parametrize("p", [3, 5])
def test_vca_finds_planted_pure_pixels(noise, p):
    rng = np.random.default_rng(10 + p)
    pixels, pure = planted_scene(rng, p, 100, 1000, noise)
    for seed in range(5):
        endmembers, idx = vca(pixels, p, seed=seed)
        assert set(idx.tolist()) == set(pure.tolist())
        np.testing.assert_array_equal(endmembers, pixels[idx])
    # the low-SNR projection (PCA + constant dimension) must find them as well
    _, idx = vca(pixels, p, seed=0, snr=0.0)
    assert set(idx.tolist()) == set(pure.tolist())


def test_vca_is_deterministic_per_seed():
    rng = np.random.default_rng(11)
    pixels = rng.uniform(size=(200, 30))
    e1, i1 = vca(pixels, 4, seed=123)
    e2, i2 = vca(pixels, 4, seed=123)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(e1, e2)
    _, i3 = vca(pixels.astype(np.float32), 4, seed=np.random.default_rng(123))
    np.testing.assert_array_equal(i1, i3)


@pytest.mark.parametrize("p", [2, 3, 4, 5])
def test_vca_on_tiny_patches(p):
    rng = np.random.default_rng(12)
    patch, pure = planted_scene(rng, p, 224, 25, 0.0)  # N = 25 < B = 224
    endmembers, idx = vca(patch, p, seed=0)
    assert endmembers.shape == (p, 224) and idx.shape == (p,)
    assert set(idx.tolist()) == set(pure.tolist())
    noisy = rng.uniform(size=(25, 224))  # no structure at all: still P distinct valid rows
    _, idx = vca(noisy, p, seed=1)
    assert len(set(idx.tolist())) == p and idx.min() >= 0 and idx.max() < 25


@pytest.mark.parametrize(
    "pixels",
    [
        np.ones((25, 50)),  # identical pixels
        np.zeros((25, 50)),  # all zeros
        np.tile(np.linspace(0.1, 1.0, 50), (25, 1)) * np.linspace(0.5, 1.5, 25)[:, None],  # rank 1
        np.tile(np.random.default_rng(0).uniform(size=(2, 50)), (13, 1))[:25],  # two spectra
        np.vstack([np.zeros((1, 50)), np.random.default_rng(1).uniform(size=(24, 50))]),
    ],
)
@pytest.mark.parametrize("snr", [None, 0.0, 100.0])
def test_vca_degenerate_inputs_return_valid_rows(pixels, snr):
    endmembers, idx = vca(pixels, 4, seed=0, snr=snr)
    assert idx.shape == (4,) and len(set(idx.tolist())) == 4
    assert np.all((idx >= 0) & (idx < 25))
    np.testing.assert_array_equal(endmembers, pixels[idx])
    assert np.all(np.isfinite(endmembers))


def test_vca_batch_equals_vca_and_finds_planted_vertices():
    rng = np.random.default_rng(13)
    patches, pures = zip(*(planted_scene(rng, 4, 60, 25, 1e-4) for _ in range(30)))
    patches = np.stack(patches)
    endmembers, idx = vca_batch(patches, 4, seed=0)
    assert endmembers.shape == (30, 4, 60) and idx.shape == (30, 4)
    for k in range(30):
        assert set(idx[k].tolist()) == set(pures[k].tolist())
        _, loop_idx = vca(patches[k], 4, seed=k)
        assert set(loop_idx.tolist()) == set(idx[k].tolist())
        np.testing.assert_array_equal(endmembers[k], patches[k][idx[k]])
    # one patch with the same seed: the same random draws, hence the identical answer
    e1, i1 = vca(patches[7], 4, seed=99)
    eb, ib = vca_batch(patches[7:8], 4, seed=99)
    np.testing.assert_array_equal(i1, ib[0])
    np.testing.assert_array_equal(e1, eb[0])


def test_vca_batch_with_more_pixels_than_bands():
    rng = np.random.default_rng(14)
    patches, pures = zip(*(planted_scene(rng, 3, 10, 40, 0.0) for _ in range(5)))
    _, idx = vca_batch(np.stack(patches), 3, seed=1)
    for k in range(5):
        assert set(idx[k].tolist()) == set(pures[k].tolist())


@pytest.mark.parametrize(
    "pixels, p",
    [
        (np.full((10, 5), np.nan), 2),
        (np.ones((10, 5)), 1),  # P < 2
        (np.ones((10, 5)), 6),  # P > B
        (np.ones((3, 5)), 4),  # P > N
        (np.ones(5), 2),  # 1-D
        (np.ones((10, 5)), 2.5),  # not an integer
    ],
)
def test_vca_input_errors(pixels, p):
    with pytest.raises(InputError):
        vca(pixels, p)


def test_vca_batch_input_errors():
    with pytest.raises(InputError):
        vca_batch(np.ones((25, 10)), 3)
    bad = np.ones((4, 25, 10))
    bad[2, 3, 1] = np.nan
    with pytest.raises(InputError):
        vca_batch(bad, 3)
    assert vca_batch(np.ones((0, 25, 10)), 3)[1].shape == (0, 3)


# ------------------------------------------------------------------------------------------
# N-FINDR
# ------------------------------------------------------------------------------------------


def simplex_volume(h, idx):
    return abs(np.linalg.det(h[idx]))


@pytest.mark.parametrize("noise", [0.0, 1e-3])
@pytest.mark.parametrize("p", [3, 5])
def test_nfindr_finds_planted_pure_pixels_from_any_start(noise, p):
    rng = np.random.default_rng(20 + p)
    pixels, pure = planted_scene(rng, p, 100, 1000, noise)
    starts = [None] + [rng.choice(1000, p, replace=False) for _ in range(3)]
    for start in starts:
        endmembers, idx = nfindr(pixels, p, seed=1, start=start)
        assert set(idx.tolist()) == set(pure.tolist())
        np.testing.assert_array_equal(endmembers, pixels[idx])


def test_nfindr_ends_at_a_volume_no_single_swap_improves():
    rng = np.random.default_rng(21)
    pixels, _, _ = scene(rng, p=4, b=30, n=300, noise=0.01, concentration=0.5)  # no pure pixels
    h = simplex_coordinates(pixels, 4)
    start = rng.choice(300, 4, replace=False)
    _, idx = nfindr(pixels, 4, start=start)
    best = simplex_volume(h, idx)
    assert best >= simplex_volume(h, start)
    for j in range(4):  # brute force over every single replacement
        for x in range(300):
            trial = idx.copy()
            trial[j] = x
            assert simplex_volume(h, trial) <= best * (1 + 1e-9)


@pytest.mark.parametrize(
    "pixels",
    [
        np.ones((25, 50)),
        np.zeros((25, 50)),
        np.tile(np.linspace(0.1, 1.0, 50), (25, 1)) * np.linspace(0.5, 1.5, 25)[:, None],
        np.tile(np.random.default_rng(0).uniform(size=(2, 50)), (13, 1))[:25],
    ],
)
def test_nfindr_degenerate_inputs_return_distinct_valid_rows(pixels):
    endmembers, idx = nfindr(pixels, 4, seed=0)
    assert idx.shape == (4,) and len(set(idx.tolist())) == 4
    assert np.all((idx >= 0) & (idx < 25))
    np.testing.assert_array_equal(endmembers, pixels[idx])


@pytest.mark.parametrize("start", [[0, 1], [0, 0, 1], [0, 1, 99], [-1, 0, 1]])
def test_nfindr_rejects_bad_starts(start):
    with pytest.raises(InputError, match="start"):
        nfindr(np.random.default_rng(0).uniform(size=(20, 10)), 3, start=start)


def test_nfindr_input_errors():
    with pytest.raises(InputError, match="exceeds the number of pixels"):
        nfindr(np.ones((3, 5)), 4)
    with pytest.raises(InputError):
        nfindr(np.ones(5), 2)
