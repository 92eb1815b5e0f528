"""Bundle curation: SpectralBundles.select / reject / relabel, training on and saving a curated set,
the curation view's data, and the view itself driven headless (wdict values, Button.click())."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet, SpectralBundles, extract_bundles
from egu_widgets.errors import InputError
from egu_widgets.figure_data.bundles import bundle_data, covering, in_box, in_polygon, pca_basis

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cube():
    return make_demo(15, 15, 20, 3)


@pytest.fixture(scope="module")
def bundles(cube):
    # The patches' bundles alone (27 of them: nine 5x5 patches, three each), which the counts and
    # positions below follow; labelled image pixels are added by the default mode on this scene.
    return extract_bundles(cube, 3, seed=0, pixel_labels=0)


@pytest.fixture(scope="module")
def model(cube):
    return EGUNet("pw", 3, epochs=2, progress=False).fit(cube)


# ---------------------------------------------------------------------------------- engine
def test_select_keeps_the_masked_bundles_and_records_it(bundles):
    mask = np.zeros(bundles.n_bundles, dtype=bool)
    mask[[0, 3, 5]] = True
    kept = bundles.select(mask)
    assert kept is not bundles and bundles.n_bundles == 27 and not bundles.curated
    assert kept.n_bundles == 3 and kept.curated
    np.testing.assert_array_equal(kept.spectra, bundles.spectra[[0, 3, 5]])
    np.testing.assert_array_equal(kept.labels, bundles.labels[[0, 3, 5]])
    np.testing.assert_array_equal(kept.patch_index, bundles.patch_index[[0, 3, 5]])
    np.testing.assert_array_equal(kept.reference, bundles.reference)
    assert kept.config["curation"] == [{"action": "select", "kept": 3, "of": 27}]
    assert kept.config["n_bundles"] == 3 and kept.config["n_bundles_extracted"] == 27
    np.testing.assert_array_equal(bundles.select([0, 3, 5]).spectra, kept.spectra)  # indices work too


def test_reject_and_relabel_chain(bundles):
    out = bundles.reject([1, 2]).relabel([0, 1], 2)
    assert out.n_bundles == 25
    np.testing.assert_array_equal(out.spectra, bundles.spectra[[0, *range(3, 27)]])
    np.testing.assert_array_equal(out.labels[:2], [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(out.labels[2:], bundles.labels[4:])
    assert [s["action"] for s in out.config["curation"]] == ["reject", "relabel"]
    assert out.config["n_bundles_extracted"] == 27
    assert "curated" in repr(out)


def test_curation_refusals(bundles):
    with pytest.raises(InputError, match="kept no bundles"):
        bundles.select(np.zeros(bundles.n_bundles, dtype=bool))
    with pytest.raises(InputError, match="every bundle"):
        bundles.reject(np.ones(bundles.n_bundles, dtype=bool))
    with pytest.raises(InputError, match="entries"):
        bundles.select(np.ones(3, dtype=bool))
    with pytest.raises(InputError, match="indices"):
        bundles.select([0, 99])
    with pytest.raises(InputError, match="endmember"):
        bundles.relabel([0], 3)


def test_arrays_round_trip(bundles):
    curated = bundles.relabel([4], 0)
    back = SpectralBundles.from_arrays(curated.arrays(), curated.config)
    for name, value in curated.arrays().items():
        np.testing.assert_array_equal(getattr(back, name), value)
    assert back.config == curated.config


def test_fit_on_curated_bundles_records_it_and_saves_them(tmp_path, cube, bundles):
    curated = bundles.reject(bundles.pseudo_labels == 0)
    est = EGUNet("pw", 3, epochs=2, progress=False).fit(cube, bundles=curated)
    assert est.bundles_ is curated
    assert est.result_.config["bundles"]["curated"] is True
    assert est.result_.config["bundles"]["curation"][0]["action"] == "reject"
    path = tmp_path / "curated.pt"
    est.save(path)
    back = EGUNet.load(path)
    assert back.bundles_ is not None and back.bundles_.curated
    np.testing.assert_array_equal(back.bundles_.spectra, curated.spectra)
    np.testing.assert_array_equal(back.bundles_.labels, curated.labels)
    np.testing.assert_array_equal(back.transform(cube), est.transform(cube))


def test_checkpoint_of_extracted_bundles_keeps_none(tmp_path, cube, model):
    model.save(tmp_path / "plain.pt")
    assert EGUNet.load(tmp_path / "plain.pt").bundles_ is None


def test_curated_bundles_change_the_model(cube, bundles):
    plain = EGUNet("pw", 3, epochs=2, progress=False).fit(cube, bundles=bundles)
    curated = EGUNet("pw", 3, epochs=2, progress=False).fit(
        cube, bundles=bundles.relabel(bundles.pseudo_labels == 1, 0)
    )
    assert not np.allclose(plain.transform(cube), curated.transform(cube))


# ---------------------------------------------------------------------------------- view data
def test_bundle_data_positions_and_projection(cube, bundles):
    d = bundle_data(bundles, (cube.height, cube.width))
    assert d.projection.shape == (27, 2)
    np.testing.assert_array_equal(d.group, bundles.labels.argmax(axis=1))
    # 15x15 image, 5x5 patches, stride 5: patch n has its corner at (5 * (n // 3), 5 * (n % 3))
    np.testing.assert_array_equal(d.patch_top, 5 * (bundles.patch_index // 3))
    np.testing.assert_array_equal(d.patch_left, 5 * (bundles.patch_index % 3))
    np.testing.assert_allclose(d.row, d.patch_top + 2.0)  # projected spectra: drawn at the patch centre
    assert d.counts.sum() == 27
    centred = bundles.spectra - bundles.spectra.mean(axis=0)
    # the first direction carries the most variance of any unit direction, e.g. more than the axes
    var1 = np.var(centred @ d.basis.components[0])
    assert var1 >= np.var(centred, axis=0).max() - 1e-9
    again = bundle_data(bundles.select(np.arange(10)), (15, 15), basis=d.basis)
    np.testing.assert_allclose(again.projection, d.projection[:10])  # the same axes for a curated set


def test_pca_basis_signs_are_fixed():
    rng = np.random.default_rng(1)
    x = rng.random((30, 8))
    a, b = pca_basis(x), pca_basis(x.copy())
    np.testing.assert_array_equal(a.components, b.components)
    for row in a.components:
        assert row[np.argmax(np.abs(row))] > 0


def test_selection_helpers(cube, bundles):
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [-1.0, 3.0]])
    np.testing.assert_array_equal(in_box(pts, 1.5, -0.5, -0.1, 1.2), [True, True, False, False])
    square = (np.array([-0.5, 1.5, 1.5, -0.5]), np.array([-0.5, -0.5, 1.5, 1.5]))
    np.testing.assert_array_equal(in_polygon(pts, *square), [True, True, False, False])
    d = bundle_data(bundles, (15, 15))
    hit = covering(d, 7, 12)  # row 7, column 12: patch (1, 2), number 5
    np.testing.assert_array_equal(hit, bundles.patch_index == 5)


# ---------------------------------------------------------------------------------- view
@pytest.fixture
def view(cube, model):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("holoviews")
    pytest.importorskip("jupyter_bokeh")
    from egu_widgets.widgets import bundle_curation

    d = bundle_curation(cube, model, display=False)
    yield d["view"]
    d["view"].close()


def _selected_layer(view):
    return next(p for p in view.projection.subplots("PointPlot") if p.current_frame.label == "selected")


def test_view_select_reject_retrain_changes_the_maps(view, cube, model):
    wd = view.wdict
    assert set(wd) >= {"material", "select_material", "reject", "keep", "relabel", "relabel_to", "retrain", "undo"}
    points = view.projection.subplots("PointPlot")[0].handles["source"].data
    assert len(points["pc1"]) == model.bundles_.n_bundles
    wd["material"].value = 1
    wd["select_material"].click()
    chosen = model.bundles_.pseudo_labels == 1
    assert view.n_selected == int(chosen.sum()) > 0
    assert len(_selected_layer(view).handles["source"].data["pc1"]) == view.n_selected
    before = view.maps.subplots("RasterPlot")[0].handles["source"].data["image"][0].copy()
    wd["reject"].click()
    assert view.bundles.n_bundles == model.bundles_.n_bundles - int(chosen.sum())
    assert view.bundles.curated and view.n_selected == 0
    assert len(view.projection.subplots("PointPlot")[0].handles["source"].data["pc1"]) == view.bundles.n_bundles
    wd["retrain"].click()
    assert view.model is not model and view.model.bundles_ is view.bundles
    assert view.result.config["bundles"]["curated"] is True
    after = view.maps.subplots("RasterPlot")[0].handles["source"].data["image"][0]
    assert not np.allclose(before, after)
    assert "was" in wd["status"].value


def test_view_tap_relabel_undo_reset(view, model):
    wd = view.wdict
    view.tap.event(x=2, y=2)  # a pixel of patch 0
    np.testing.assert_array_equal(view.selected, model.bundles_.patch_index == 0)
    wd["relabel_to"].value = 2
    wd["relabel"].click()
    np.testing.assert_array_equal(view.bundles.labels[model.bundles_.patch_index == 0].argmax(axis=1), 2)
    wd["undo"].click()
    assert view.bundles is model.bundles_
    view.selection.event(index=[0, 1])
    assert view.n_selected == 2
    wd["keep"].click()
    assert view.bundles.n_bundles == 2
    wd["reset"].click()
    assert view.bundles is model.bundles_


def test_view_box_and_lasso(view):
    d = view.data
    x0, x1 = np.percentile(d.projection[:, 0], [0, 50])
    view.select_box(x0, x1, -1e9, 1e9)
    np.testing.assert_array_equal(view.selected, in_box(d.projection, x0, x1, -1e9, 1e9))
    xs, ys = [x0, x1, x1, x0], [-1e9, -1e9, 1e9, 1e9]
    view.select_lasso(xs, ys)
    assert view.n_selected == int(in_polygon(d.projection, xs, ys).sum())


def test_view_refuses_an_empty_action_in_its_status(view):
    view.wdict["clear"].click()
    view.wdict["reject"].click()
    assert "nothing selected" in view.wdict["status"].value
    assert view.bundles is view.original


def test_view_needs_bundles(cube):
    pytest.importorskip("ipywidgets")
    from egu_widgets.widgets.bundle_curation import BundleCuration

    with pytest.raises(InputError, match="bundles"):
        BundleCuration(cube)


def test_labelled_image_pixels_are_drawn_at_their_pixel(cube):
    taught = extract_bundles(cube, 3, seed=0)  # the default mode adds labelled pixels on this scene
    pixels = taught.patch_index == -1
    assert taught.config["n_pixel_labels"] == pixels.sum() > 0
    d = bundle_data(taught, (cube.height, cube.width))
    np.testing.assert_array_equal(d.row[pixels], taught.pixel_index[pixels] // cube.width)
    np.testing.assert_array_equal(d.col[pixels], taught.pixel_index[pixels] % cube.width)
    assert (d.patch_top[pixels] == -1).all() and not covering(d, 0, 0)[pixels].any()
