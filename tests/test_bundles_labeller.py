"""Bundle labels: the ``labeller`` option ("nnls", "fcls", "auto") and the sum-to-one test behind "auto"."""

from __future__ import annotations

import numpy as np
import pytest

from egu_widgets.classic import fcls
from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine.bundles import (
    ABUNDANCE_SCALE_ATTR,
    ASC_THRESHOLD,
    BUNDLE_MODES,
    BUNDLE_OPTIONS,
    PIXEL_LABELS_AUTO,
    _pseudo_abundances,
    extract_bundles,
    label_spectra,
    pixel_label_count,
    reference_endmembers,
    resolve_label_scale,
    sum_to_one_statistic,
)
from egu_widgets.errors import InputError

P = 3


def _scene(scaling: float = 0.0, snr_db: float = 40.0, seed: int = 0, size: int = 20, bands: int = 24) -> HyperCube:
    """Three materials with pure corners; ``scaling``: each pixel's brightness × U(1 − s, 1 + s)."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    em = demo_endmembers(bands, P, wl)
    yy, xx = np.mgrid[0:size, 0:size]
    centres = [(0, 0), (0, size - 1), (size - 1, size // 2)]
    fields = np.stack([np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (0.18 * size * size)) for cy, cx in centres])
    ab = fields**3 + 0.02 * rng.random(fields.shape)
    ab /= ab.sum(axis=0, keepdims=True)
    clean = np.einsum("phw,pb->hwb", ab, em)
    if scaling:
        clean *= rng.uniform(1 - scaling, 1 + scaling, size=(size, size))[..., None]
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, None)
    return HyperCube.from_array(noisy, wavelengths=wl, endmembers=em, abundances=ab, name="labeller-scene")


def test_statistic_is_noise_sized_for_sum_to_one_mixtures_and_large_under_scaling():
    plain, scaled = _scene(), _scene(scaling=0.4)
    for cube in (plain, scaled):
        assert cube.n_true_endmembers == P
    quiet = sum_to_one_statistic(plain.pixels, plain.true_endmembers)
    loud = sum_to_one_statistic(scaled.pixels, scaled.true_endmembers)
    # Noise along one direction: about a chi-square of one degree of freedom (median 0.45).
    assert 0.0 <= quiet < 3.0
    assert loud > 10 * ASC_THRESHOLD


def test_statistic_uses_at_most_max_pixels_and_checks_shapes():
    cube = _scene()
    m = cube.true_endmembers
    few = sum_to_one_statistic(cube.pixels, m, max_pixels=50)
    assert np.isfinite(few) and few >= 0
    assert sum_to_one_statistic(cube.pixels[:2] * 0, m) == 0.0  # an exact fit: no noise to compare with
    with pytest.raises(InputError, match="must share B"):
        sum_to_one_statistic(cube.pixels, m[:, :-1])


def test_fcls_labeller_solves_the_constrained_problem():
    cube = _scene()
    b = extract_bundles(cube, P, seed=1, labeller="fcls", label_scale="none")
    expected = fcls(b.spectra.astype(np.float64), b.reference)
    np.testing.assert_allclose(b.labels, expected, atol=1e-6)
    assert b.config["labeller"] == "fcls" and b.config["label_scale"] == "none"
    assert "labeller_requested" not in b.config
    # fcls with max-scaled spectra is what it says: the constrained fit against those spectra.
    scaled = extract_bundles(cube, P, seed=1, labeller="fcls", label_scale="max")
    units = b.reference.max(axis=1, keepdims=True)
    np.testing.assert_allclose(scaled.labels, fcls(b.spectra.astype(np.float64), b.reference / units), atol=1e-6)


def test_nnls_labeller_is_the_authors_normalised_least_squares():
    cube = _scene(scaling=0.4)
    b = extract_bundles(cube, P, seed=1, reference="nfindr", labeller="nnls", label_scale="max", reference_purest=0.0)
    ref, _ = reference_endmembers(cube, P, "nfindr", seed=1)
    expected, _ = _pseudo_abundances(b.spectra.astype(np.float64), ref / ref.max(axis=1, keepdims=True))
    np.testing.assert_allclose(b.labels, expected, atol=1e-6)
    # The default mode labels against the means of the purest pixels instead (reference_purest).
    default = extract_bundles(cube, P, seed=1, reference="nfindr", labeller="nnls", label_scale="max")
    means = np.asarray(default.reference)
    expected, _ = _pseudo_abundances(default.spectra.astype(np.float64), means / means.max(axis=1, keepdims=True))
    np.testing.assert_allclose(default.labels, expected, atol=1e-6)
    np.testing.assert_allclose(default.config["purest_reference"]["initial_reference"], ref)


def test_auto_picks_fcls_in_data_units_where_sum_to_one_holds():
    cube = _scene()
    auto = extract_bundles(cube, P, seed=1)
    assert BUNDLE_MODES["default"]["labeller"] == "auto"
    assert auto.config["labeller"] == "fcls" and auto.config["label_scale"] == "none"
    assert auto.config["labeller_requested"] == "auto" and auto.config["label_scale_requested"] == "none"
    assert auto.config["label_scale_option"] == "auto"  # the cube states no scale: the data's units
    assert auto.config["sum_to_one_statistic"] <= ASC_THRESHOLD
    explicit = extract_bundles(cube, P, seed=1, labeller="fcls", label_scale="none")
    np.testing.assert_array_equal(auto.labels, explicit.labels)
    # the recorded options rebuild the same labels
    opts = {k: auto.config[k] for k in BUNDLE_OPTIONS if k in auto.config}
    again = extract_bundles(cube, P, seed=1, **opts)
    np.testing.assert_array_equal(again.labels, auto.labels)


def test_auto_keeps_nnls_in_the_scale_the_cube_states_under_brightness_variability():
    cube = _scene(scaling=0.4)
    auto = extract_bundles(cube, P, seed=1)
    assert auto.config["sum_to_one_statistic"] > ASC_THRESHOLD
    # A cube that states no scale: the data's units.
    assert auto.config["labeller"] == "nnls" and auto.config["label_scale"] == "none"
    explicit = extract_bundles(cube, P, seed=1, labeller="nnls", label_scale="none")
    np.testing.assert_array_equal(auto.labels, explicit.labels)
    # A cube whose reference abundances count max-scaled spectra (as Samson's and Jasper Ridge's).
    stated = HyperCube(cube.ds.assign_attrs({ABUNDANCE_SCALE_ATTR: "max"}), validate=False)
    scaled = extract_bundles(stated, P, seed=1)
    assert scaled.config["label_scale"] == "max" and scaled.config["label_scale_option"] == "auto"
    explicit = extract_bundles(cube, P, seed=1, labeller="nnls", label_scale="max")
    np.testing.assert_array_equal(scaled.labels, explicit.labels)
    assert np.abs(scaled.labels - auto.labels).max() > 1e-3
    # An explicit scale overrides the cube's.
    assert extract_bundles(stated, P, seed=1, label_scale="none").config["label_scale"] == "none"


def test_a_cube_stating_an_unknown_scale_is_refused():
    cube = _scene(scaling=0.4)
    odd = HyperCube(cube.ds.assign_attrs({ABUNDANCE_SCALE_ATTR: "percent"}), validate=False)
    with pytest.raises(InputError, match="abundance_scale='percent'"):
        extract_bundles(odd, P, seed=1)
    assert resolve_label_scale("auto", np.zeros((4, 4, 3))) == "none"  # an array states nothing


def test_faithful_mode_keeps_the_authors_labeller():
    cube = _scene()
    b = extract_bundles(cube, P, mode="faithful", seed=1)
    assert b.config["labeller"] == "nnls" and "sum_to_one_statistic" not in b.config
    expected, _ = _pseudo_abundances(b.spectra.astype(np.float64), b.reference)
    np.testing.assert_allclose(b.labels, expected, atol=1e-6)


def test_unknown_labeller_is_refused():
    with pytest.raises(InputError, match="labeller"):
        extract_bundles(_scene(), P, labeller="sunsal")


def test_estimator_passes_the_labeller_through():
    from egu_widgets.engine import EGUNet

    cube = _scene(size=15)
    est = EGUNet(
        "pw",
        n_endmembers=P,
        epochs=1,
        batch_size=64,
        encoder_widths=(16, 8, 4),
        decoder_widths=(4, 8, 16),
        num_threads=1,
        progress=False,
        bundles={"labeller": "nnls"},
    ).fit(cube)
    assert est.bundles_.config["labeller"] == "nnls"
    assert est.result_.config["bundles"]["labeller"] == "nnls"


def test_pixel_labels_add_evenly_spaced_image_pixels_labelled_by_the_same_rule():
    cube = _scene()
    plain = extract_bundles(cube, P, seed=1, pixel_labels=0)
    more = extract_bundles(cube, P, seed=1, pixel_labels=50)
    k = plain.n_bundles
    assert more.n_bundles == k + 50 and more.config["pixel_labels"] == 50 and more.config["n_pixel_labels"] == 50
    np.testing.assert_array_equal(more.spectra[:k], plain.spectra)
    np.testing.assert_array_equal(more.labels[:k], plain.labels)
    assert (more.patch_index[k:] == -1).all()
    ids = more.pixel_index[k:]
    assert len(np.unique(ids)) == 50 and ids.min() == 0 and ids.max() == cube.height * cube.width - 1
    np.testing.assert_allclose(more.spectra[k:], cube.pixels[ids].astype(np.float32))
    expected = fcls(cube.pixels[ids].astype(np.float64), more.reference)  # "auto" chose fcls on this scene
    np.testing.assert_allclose(more.labels[k:], expected, atol=1e-5)
    every = extract_bundles(cube, P, seed=1, pixel_labels=10**6)  # more than the image: every valid pixel once
    assert every.n_bundles == k + cube.height * cube.width
    assert BUNDLE_MODES["default"]["pixel_labels"] == "auto" and BUNDLE_MODES["faithful"]["pixel_labels"] == 0


def test_auto_pixel_labels_teach_pixels_whatever_the_labeller_by_its_rule_and_scale():
    fcls_scene, scaled_scene = _scene(), _scene(scaling=0.4)
    n = min(PIXEL_LABELS_AUTO, fcls_scene.height * fcls_scene.width)
    for cube, labeller in ((fcls_scene, "fcls"), (scaled_scene, "nnls")):
        taught = extract_bundles(cube, P, seed=1)  # the default mode: pixel_labels="auto"
        assert taught.config["labeller"] == labeller and taught.config["pixel_labels"] == "auto"
        assert taught.config["n_pixel_labels"] == n and (taught.patch_index == -1).sum() == n
        same = extract_bundles(cube, P, seed=1, pixel_labels=n)
        np.testing.assert_array_equal(taught.spectra, same.spectra)
        np.testing.assert_array_equal(taught.labels, same.labels)
    # The added pixels of the NNLS scene carry NNLS shares against the bundles' reference, on the
    # scale the labels were made in (the data's units: this cube states no abundance scale).
    added = taught.patch_index == -1
    assert taught.config["label_scale"] == "none"
    shares, _ = label_spectra(taught.spectra[added].astype(np.float64), taught.reference, "nnls", "none")
    np.testing.assert_allclose(taught.labels[added], shares, atol=1e-5)
    assert pixel_label_count("auto") == PIXEL_LABELS_AUTO and pixel_label_count(7) == 7
    with pytest.raises(InputError, match="pixel_labels"):
        extract_bundles(fcls_scene, P, pixel_labels="some")


def test_pixel_labels_skip_masked_pixels_and_refuse_negative_counts():
    image = _scene().image.copy()
    image[0, :5] = np.nan
    cube = HyperCube.from_array(image, invalid="mask")
    b = extract_bundles(cube, P, seed=1, pixel_labels=10**6)
    ids = b.pixel_index[b.patch_index == -1]
    assert len(ids) == cube.height * cube.width - 5 and not np.isin(ids, np.arange(5)).any()
    with pytest.raises(InputError, match="pixel_labels"):
        extract_bundles(_scene(), P, pixel_labels=-1)


def test_a_lazy_fit_adds_pixels_of_its_sample_as_extract_bundles_adds_the_image_s():
    from egu_widgets.engine.lazy_fit import sampled_bundles

    cube = _scene()
    ids = np.arange(cube.height * cube.width)
    for option in (30, "auto"):
        opts = {"mode": "default", "pixel_labels": option}
        made = sampled_bundles(cube, P, 10**6, cube.pixels, seed=0, options=opts, pixel_ids=ids)
        want = extract_bundles(cube, P, seed=0, **opts)
        assert made.config == want.config
        for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
            np.testing.assert_array_equal(getattr(made, name), getattr(want, name))
    # A sample whose places in the cube are not known: the pixels come without an index.
    sample = sampled_bundles(cube, P, 4, cube.pixels[:50], seed=0, options={"mode": "default", "pixel_labels": 10})
    assert sample.config["n_pixel_labels"] == 10 and (sample.pixel_index[sample.patch_index == -1] == -1).all()
