"""``reference_purest``: where the labels are NNLS, each picked spectrum becomes the mean of its purest pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egu_widgets import metrics
from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine.bundles import (
    BUNDLE_MODES,
    BUNDLE_OPTIONS,
    PUREST_FRACTIONS,
    extract_bundles,
    label_spectra,
    labeller_residual,
    purest_reference,
    reference_endmembers,
)
from egu_widgets.errors import InputError

P = 3


def _cone(
    seed: int = 0, size: int = 24, bands: int = 30, snr_db: float = 40.0, scaling: float = 0.4, bright: float = 2.5
) -> HyperCube:
    """Three materials with many pure pixels of each, every pixel's brightness × U(1 − s, 1 + s), and
    a few mixed pixels ``bright`` times as bright: the cone whose volume N-FINDR's picks draw out."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    em = demo_endmembers(bands, P, wl)
    n = size * size
    ab = rng.dirichlet(np.full(P, 0.6), size=n)
    ab[: 30 * P] = np.repeat(np.eye(P), 30, axis=0)  # 30 pure pixels of every material
    brightness = rng.uniform(1 - scaling, 1 + scaling, size=(n, 1))
    mixed = np.arange(30 * P, 30 * P + 2 * P)
    ab[mixed] = np.tile([[0.7, 0.3, 0.0], [0.0, 0.7, 0.3], [0.3, 0.0, 0.7]], (2, 1))
    brightness[mixed] = bright
    clean = (ab @ em) * brightness
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None)
    return HyperCube.from_array(
        noisy.reshape(size, size, bands), wavelengths=wl, endmembers=em, abundances=ab.T.reshape(P, size, size)
    )


def _mean_sad(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(metrics.sad(estimate[metrics.align(estimate, truth)], truth)))


def test_the_means_of_the_purest_pixels_are_closer_to_the_materials_than_bright_mixed_picks():
    cube = _cone()
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    means, record = purest_reference(pixels, picked, 0.02, "max")
    assert _mean_sad(means, cube.true_endmembers) < _mean_sad(picked, cube.true_endmembers) - 1.0
    # Each mean is that of the pixels with the largest shares of the material, in the data's units.
    shares, _ = label_spectra(pixels, picked, "nnls", "max")
    k = int(np.ceil(0.02 * len(pixels)))
    assert record["n_pixels"] == k and record["fraction"] == 0.02
    for p in range(P):
        top = np.argsort(-shares[:, p], kind="stable")[:k]
        np.testing.assert_allclose(means[p], pixels[top].mean(axis=0))
        assert record["min_share"][p] == pytest.approx(shares[top[-1], p], abs=1e-4)
    np.testing.assert_array_equal(record["initial_reference"], picked)
    np.testing.assert_allclose(record["angle_to_initial"], metrics.sad(means, picked), atol=1e-4)


def test_extract_bundles_labels_against_the_means_where_the_labels_are_nnls():
    cube = _cone()
    plain = extract_bundles(cube, P, seed=0, reference_purest=0.0)
    assert plain.config["labeller"] == "nnls" and "purest_reference" not in plain.config
    b = extract_bundles(cube, P, seed=0, reference_purest=0.02)
    record = b.config["purest_reference"]
    np.testing.assert_allclose(record["initial_reference"], plain.reference)
    np.testing.assert_array_equal(b.spectra, plain.spectra)
    assert b.config["label_scale"] == "none"  # the cube states no scale (label_scale="auto")
    want, _ = label_spectra(b.spectra, b.reference, "nnls", "none")
    np.testing.assert_allclose(b.labels, want, rtol=1e-6, atol=1e-7)
    assert _mean_sad(b.reference, cube.true_endmembers) < _mean_sad(plain.reference, cube.true_endmembers)
    json.dumps(b.config)  # the record travels in results and checkpoints


def test_where_the_labels_are_fcls_or_the_reference_is_given_nothing_changes():
    fcls_scene = _cone(scaling=0.0, bright=1.0)
    plain = extract_bundles(fcls_scene, P, seed=0, reference_purest=0.0)
    b = extract_bundles(fcls_scene, P, seed=0, reference_purest=0.02)
    assert b.config["labeller"] == "fcls" and "purest_reference" not in b.config
    for name in ("spectra", "labels", "reference"):
        np.testing.assert_array_equal(getattr(b, name), getattr(plain, name))
    cube = _cone()
    given = extract_bundles(cube, P, seed=0, reference="truth", reference_purest=0.02)
    assert "purest_reference" not in given.config
    np.testing.assert_array_equal(given.reference, np.asarray(cube.true_endmembers, dtype=np.float64))


def test_auto_takes_the_candidate_fraction_whose_means_explain_the_pixels_best():
    cube = _cone()
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    means, record = purest_reference(pixels, picked, "auto", "max")
    assert record["fraction_option"] == "auto" and record["candidates"] == list(PUREST_FRACTIONS)
    residuals = [
        labeller_residual(pixels, purest_reference(pixels, picked, f, "max")[0], "nnls") for f in PUREST_FRACTIONS
    ]
    np.testing.assert_allclose(record["candidate_residuals"], residuals, rtol=1e-12)
    best = PUREST_FRACTIONS[int(np.argmin(residuals))]
    assert record["fraction"] == best
    np.testing.assert_array_equal(means, purest_reference(pixels, picked, best, "max")[0])
    # On this cone (30 pure pixels of each material among 576, 5 %) the residual prefers a mean of
    # more than the 1 % that a constant would take, and those means are closer to the materials.
    assert best > 0.01
    one_percent, _ = purest_reference(pixels, picked, 0.01, "max")
    assert _mean_sad(means, cube.true_endmembers) < _mean_sad(one_percent, cube.true_endmembers)


def test_extract_bundles_with_auto_chooses_the_fraction_and_records_the_candidates():
    assert BUNDLE_MODES["default"]["reference_purest"] == 0.01  # "auto" is opt-in
    cube = _cone()
    b = extract_bundles(cube, P, seed=0, reference_purest="auto")
    record = b.config["purest_reference"]
    assert b.config["reference_purest"] == "auto" and record["fraction"] in PUREST_FRACTIONS
    assert len(record["candidate_residuals"]) == len(PUREST_FRACTIONS)
    fixed = extract_bundles(cube, P, seed=0, reference_purest=record["fraction"])
    for name in ("spectra", "labels", "reference"):
        np.testing.assert_array_equal(getattr(b, name), getattr(fixed, name))
    json.dumps(b.config)


def test_option_is_known_and_checked():
    assert "reference_purest" in BUNDLE_OPTIONS
    assert BUNDLE_MODES["faithful"]["reference_purest"] == 0.0
    for bad in (-0.1, 1.5, "some", "AUTO", None):
        with pytest.raises(InputError, match="reference_purest"):
            extract_bundles(_cone(), P, reference_purest=bad)


def test_a_lazy_fit_takes_the_means_of_its_sample_as_extract_bundles_of_the_image():
    from egu_widgets.engine import lazy_fit

    cube = _cone()
    ids = np.arange(cube.height * cube.width)
    for opts in ({"mode": "default", "reference_purest": 0.02}, {"mode": "default", "reference_purest": "auto"}):
        made = lazy_fit.sampled_bundles(cube, P, 10**6, cube.pixels, seed=2, options=opts, pixel_ids=ids)
        want = extract_bundles(cube, P, seed=2, **opts)
        assert "purest_reference" in want.config
        assert made.config == want.config
        for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
            np.testing.assert_array_equal(getattr(made, name), getattr(want, name))
