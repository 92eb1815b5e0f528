"""The reference refinement (``reference_rounds``): alternating least squares from the picked spectra, with a guard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egu_widgets import metrics
from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine.bundles import (
    ASC_THRESHOLD,
    BUNDLE_MODES,
    BUNDLE_OPTIONS,
    MIN_GAIN,
    extract_bundles,
    labeller_residual,
    reference_endmembers,
    refine_reference,
)
from egu_widgets.errors import InputError

P = 3


def _scene(
    max_abundance: float, seed: int = 0, size: int = 24, bands: int = 30, snr_db: float = 40.0, scaling: float = 0.0
) -> HyperCube:
    """Three materials mixed by Dirichlet abundances, each at most ``max_abundance`` (1: pure pixels
    too); ``scaling``: each pixel's brightness × U(1 − s, 1 + s)."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    em = demo_endmembers(bands, P, wl)
    ab = rng.dirichlet(np.full(P, 0.6), size=size * size)
    if max_abundance < 1.0:
        ab = ab[(ab <= max_abundance).all(axis=1)]
        ab = np.concatenate([ab, rng.dirichlet(np.full(P, 3.0), size=size * size)])
        ab = ab[(ab <= max_abundance).all(axis=1)][: size * size]
    else:
        ab[:P] = np.eye(P)  # pure pixels of every material
    assert len(ab) == size * size
    clean = ab @ em
    if scaling:
        clean *= rng.uniform(1 - scaling, 1 + scaling, size=(len(ab), 1))
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None)
    image = noisy.reshape(size, size, bands)
    maps = ab.T.reshape(P, size, size)
    return HyperCube.from_array(image, wavelengths=wl, endmembers=em, abundances=maps, name="refine-scene")


def _mean_sad(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(metrics.sad(estimate[metrics.align(estimate, truth)], truth)))


def test_mixed_picks_move_towards_the_materials_and_are_taken():
    cube = _scene(max_abundance=0.75)
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    refined, record = refine_reference(pixels, picked, 3, "auto")
    assert record["taken"] and record["replaced"], record
    assert record["sum_to_one_statistic_fitted"] <= ASC_THRESHOLD
    assert _mean_sad(refined, cube.true_endmembers) < _mean_sad(picked, cube.true_endmembers) - 1.0
    assert labeller_residual(pixels, refined, "fcls") <= (1 - MIN_GAIN) * labeller_residual(pixels, picked, "fcls")
    assert np.all(refined >= 0)


def test_pure_picks_are_kept_as_they_are():
    cube = _scene(max_abundance=1.0)
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    refined, record = refine_reference(pixels, picked, 3, "fcls")
    assert record["replaced"] == [] and not record["taken"]
    assert "initial_reference" not in record  # the picks are the reference: not stored twice
    np.testing.assert_array_equal(refined, picked)


def test_spectra_fitted_where_brightness_varies_are_not_trusted():
    # They explain the image better, but it rejects sum-to-one abundances against them: the
    # model they were fitted under does not hold there.
    cube = _scene(max_abundance=0.75, scaling=0.2)
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    refined, record = refine_reference(pixels, picked, 6, "auto")
    assert record["rule"] == "nnls"
    assert record["replaced"] and record["sum_to_one_statistic_fitted"] > ASC_THRESHOLD, record
    assert not record["taken"]
    np.testing.assert_array_equal(refined, picked)


def test_a_fit_that_absorbed_brightness_is_not_taken_though_the_image_then_passes_the_test():
    # No pure pixels, brightness ±30 %, 20 dB: the fit explains the image better than the picks
    # under sum-to-one and passes the test, but worse than the picks scaled freely (NNLS) do.
    cube = _scene(max_abundance=0.75, scaling=0.3, snr_db=20.0)
    pixels = cube.pixels.astype(np.float64)
    picked, _ = reference_endmembers(cube, P, "nfindr", seed=0)
    refined, record = refine_reference(pixels, picked, 6, "auto")
    assert record["replaced"], record  # guard 1 passed
    assert record["residual_fitted_fcls"] > record["residual_picks_nnls"]
    assert record["residual_picks_nnls"] == pytest.approx(labeller_residual(pixels, picked, "nnls"), rel=0.05)
    assert not record["taken"]
    np.testing.assert_array_equal(refined, picked)
    assert record["sum_to_one_statistic_fitted"] <= ASC_THRESHOLD  # the test alone would take it


def test_extract_bundles_records_the_refinement_and_labels_against_it():
    cube = _scene(max_abundance=0.75)
    plain = extract_bundles(cube, P, seed=0, reference="nfindr", reference_rounds=0)
    assert "reference_refinement" not in plain.config
    b = extract_bundles(cube, P, seed=0, reference="nfindr", reference_rounds=3)
    record = b.config["reference_refinement"]
    assert record["taken"] and record["rounds"] == 3 and b.config["reference_rounds"] == 3
    np.testing.assert_allclose(record["initial_reference"], plain.reference)
    assert not np.allclose(b.reference, plain.reference)
    # The same bundle spectra, labelled against the refined spectra by the rule "auto" picks for them.
    np.testing.assert_array_equal(b.spectra, plain.spectra)
    assert b.config["labeller"] == "fcls"
    assert _mean_sad(b.reference, cube.true_endmembers) < _mean_sad(plain.reference, cube.true_endmembers)
    json.dumps(b.config)  # the record travels in results and checkpoints


def test_a_given_reference_is_never_refined():
    cube = _scene(max_abundance=0.75)
    for reference in ("truth", cube.true_endmembers):
        b = extract_bundles(cube, P, seed=0, reference=reference, reference_rounds=3)
        assert "reference_refinement" not in b.config
        np.testing.assert_array_equal(b.reference, np.asarray(cube.true_endmembers, dtype=np.float64))


def test_option_is_known_and_checked():
    assert "reference_rounds" in BUNDLE_OPTIONS
    assert BUNDLE_MODES["faithful"]["reference_rounds"] == 0
    with pytest.raises(InputError, match="reference_rounds"):
        extract_bundles(_scene(1.0), P, reference_rounds=-1)


def test_a_lazy_fit_refines_its_sample_as_extract_bundles_refines_the_image():
    from egu_widgets.engine import lazy_fit

    cube = _scene(max_abundance=0.75)
    opts = {"mode": "default", "reference_rounds": 3}
    ids = np.arange(cube.height * cube.width)
    made = lazy_fit.sampled_bundles(cube, P, 10**6, cube.pixels, seed=2, options=opts, pixel_ids=ids)
    want = extract_bundles(cube, P, seed=2, **opts)
    assert want.config["reference_refinement"]["taken"]
    assert made.config == want.config
    for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
        np.testing.assert_array_equal(getattr(made, name), getattr(want, name))
