"""``reference="auto"``: N-FINDR's reference unless VCA's, prepared the same way, explains the image clearly better."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine import bundles
from egu_widgets.engine.bundles import (
    AUTO_REFERENCES,
    BUNDLE_MODES,
    MIN_GAIN,
    extract_bundles,
    labeller_residual,
    prepare_reference,
)

P = 3


def _scene(seed: int = 0, size: int = 20, bands: int = 30) -> HyperCube:
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, bands)
    em = demo_endmembers(bands, P, wl)
    ab = rng.dirichlet(np.full(P, 0.6), size=size * size)
    ab[:P] = np.eye(P)
    clean = ab @ em
    noisy = np.clip(clean + rng.normal(0, 0.002, clean.shape), 0, None)
    return HyperCube.from_array(
        noisy.reshape(size, size, bands), wavelengths=wl, endmembers=em, abundances=ab.T.reshape(P, size, size)
    )


def _opts(**over):
    opts = dict(BUNDLE_MODES["default"], reference_purest=0.01)
    opts.update(over)
    return opts


def test_the_default_mode_chooses_and_records_the_candidates():
    assert BUNDLE_MODES["default"]["reference"] == "auto"
    assert BUNDLE_MODES["faithful"]["reference"] == "vca"  # the authors' stays as it was
    cube = _scene()
    b = extract_bundles(cube, P, seed=0)
    choice = b.config["reference_choice"]
    assert choice["candidates"] == list(AUTO_REFERENCES) and choice["min_gain"] == MIN_GAIN
    assert b.config["reference"] == choice["taken"]
    # The bundles are those of the kind taken, asked for directly.
    direct = extract_bundles(cube, P, seed=0, reference=choice["taken"])
    for name in ("spectra", "labels", "reference"):
        np.testing.assert_array_equal(getattr(b, name), getattr(direct, name))
    # Each candidate's residual is its own labelling rule's on the image's pixels.
    pixels = cube.pixels.astype(np.float64)
    for kind, residual in zip(choice["candidates"], choice["residuals"], strict=True):
        one = extract_bundles(cube, P, seed=0, reference=kind)
        assert residual == pytest.approx(labeller_residual(pixels, one.reference, one.config["labeller"]), rel=1e-9)
    json.dumps(b.config)


def test_nfindr_is_kept_unless_another_explains_the_image_better_by_min_gain(monkeypatch):
    cube = _scene()
    pixels = cube.pixels.astype(np.float64)
    real = bundles.reference_endmembers

    def missing_a_material(source, p, kind, *, seed=0):
        ref, name = real(source, p, kind, seed=seed)
        if kind == "nfindr":  # an extractor that found material 0 twice and missed material 2
            ref = ref.copy()
            ref[2] = ref[0] * 0.98
        return ref, name

    monkeypatch.setattr(bundles, "reference_endmembers", missing_a_material)
    made = prepare_reference(cube, pixels, P, _opts(reference_rounds=0), seed=0)
    residuals = made["choice"]["residuals"]
    assert residuals[1] <= (1 - MIN_GAIN) * residuals[0]
    assert made["choice"]["taken"] == "vca" and made["kind"] == "vca"
    np.testing.assert_array_equal(
        made["reference"],
        prepare_reference(cube, pixels, P, _opts(reference="vca", reference_rounds=0), seed=0)["reference"],
    )

    # The margin decides: with a gain just under MIN_GAIN the lower residual is not enough.
    gain = 1 - residuals[1] / residuals[0]
    monkeypatch.setattr(bundles, "MIN_GAIN", gain + 0.01)
    kept = prepare_reference(cube, pixels, P, _opts(reference_rounds=0), seed=0)
    assert kept["choice"]["residuals"][1] < kept["choice"]["residuals"][0]
    assert kept["choice"]["taken"] == "nfindr" and kept["kind"] == "nfindr"
    monkeypatch.setattr(bundles, "MIN_GAIN", gain - 0.01)
    assert prepare_reference(cube, pixels, P, _opts(reference_rounds=0), seed=0)["choice"]["taken"] == "vca"

    # On the unaltered scene both extractors find the three materials: N-FINDR's is kept.
    monkeypatch.setattr(bundles, "reference_endmembers", real)
    monkeypatch.setattr(bundles, "MIN_GAIN", MIN_GAIN)
    assert prepare_reference(cube, pixels, P, _opts(), seed=0)["choice"]["taken"] == "nfindr"


def test_a_named_or_given_reference_is_used_as_asked():
    cube = _scene()
    pixels = cube.pixels.astype(np.float64)
    for kind in ("nfindr", "vca"):
        made = prepare_reference(cube, pixels, P, _opts(reference=kind), seed=0)
        assert made["choice"] is None and made["kind"] == kind
    given = np.asarray(cube.true_endmembers, dtype=np.float64)
    made = prepare_reference(cube, pixels, P, _opts(reference=given), seed=0)
    assert made["kind"] == "given" and made["choice"] is None
    np.testing.assert_array_equal(made["reference"], given)
    assert "reference_choice" not in extract_bundles(cube, P, seed=0, reference="vca").config


def test_a_lazy_fit_chooses_on_its_sample_as_extract_bundles_on_the_image():
    from egu_widgets.engine import lazy_fit

    cube = _scene()
    ids = np.arange(cube.height * cube.width)
    made = lazy_fit.sampled_bundles(cube, P, 10**6, cube.pixels, seed=1, options={"mode": "default"}, pixel_ids=ids)
    want = extract_bundles(cube, P, seed=1)
    assert "reference_choice" in want.config and made.config == want.config
    for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
        np.testing.assert_array_equal(getattr(made, name), getattr(want, name))
