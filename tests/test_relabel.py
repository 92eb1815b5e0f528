"""EGUNet(relabel=N): bundles labelled again against endmembers fitted to the trained network."""

from __future__ import annotations

import numpy as np
import pytest

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers, make_demo
from egu_widgets.engine import EGUNet, extract_bundles, resolve_hyperparameters
from egu_widgets.engine.estimator import PRESETS
from egu_widgets.engine.relabel import accept_endmembers, labeller_residual, relabelled_bundles
from egu_widgets.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # direct torch calls on one thread too

P = 3
FAST = dict(
    progress=False, epochs=15, batch_size=128, encoder_widths=(32, 16, 8), decoder_widths=(8, 16, 32), num_threads=1
)


@pytest.fixture(scope="module")
def cube() -> HyperCube:
    return make_demo(16, 16, 24, P)


@pytest.fixture(scope="module")
def mixed(cube) -> np.ndarray:
    """A reference of mixed spectra (each 70 % its material, 30 % the mean): a simplex too small."""
    em = np.asarray(cube.true_endmembers, dtype=np.float64)
    return 0.7 * em + 0.3 * em.mean(axis=0)


@pytest.fixture(scope="module")
def relabelled(cube, mixed) -> EGUNet:
    return EGUNet("pw", P, seed=0, relabel=1, **FAST).fit(cube, bundles={"reference": mixed})


# ----------------------------------------------------------------------------- the option


@pytest.mark.parametrize("bad", [-1, 1.5, "one", True])
def test_bad_relabel_values_are_refused_with_the_name(bad):
    with pytest.raises(InputError, match="relabel must be a whole number of rounds >= 0"):
        resolve_hyperparameters("pw", relabel=bad)
    with pytest.raises(InputError, match="relabel"):
        EGUNet("pw", P, relabel=bad, **FAST).fit(make_demo(8, 8, 12, P))


def test_ae_has_no_bundles_to_relabel_and_says_so_before_training():
    with pytest.raises(InputError, match="'ae' trains without any; use relabel=0"):
        EGUNet("ae", P, relabel=1, **FAST).fit(make_demo(8, 8, 12, P))


def test_both_presets_keep_relabelling_off():
    assert PRESETS["paper"]["relabel"] == 0 and PRESETS["default"]["relabel"] == 0
    assert resolve_hyperparameters("ss", "paper")["relabel"] == 0


def test_paper_preset_fit_is_unchanged_by_the_option():
    demo = make_demo(12, 12, 16, P)
    opts = dict(FAST, epochs=3)
    plain = EGUNet("pw", P, preset="paper", **opts).fit(demo)
    explicit = EGUNet("pw", P, preset="paper", relabel=0, **opts).fit(demo)
    np.testing.assert_array_equal(plain.transform(demo), explicit.transform(demo))
    assert "relabel" not in plain.bundles_.config
    np.testing.assert_array_equal(plain.initial_reference_, plain.reference_)
    assert plain.get_config()["hyperparameters"]["relabel"] == 0


# ----------------------------------------------------------------------------- the pieces


def test_fitted_spectra_are_taken_only_where_they_lower_the_residual():
    rng = np.random.default_rng(1)
    em = demo_endmembers(30, P, np.linspace(400.0, 2500.0, 30))
    pixels = rng.dirichlet(np.ones(P), 400) @ em
    mixed = 0.8 * em + 0.2 * em.mean(axis=0)  # a reference of mixed pixels: a smaller simplex
    out, record = accept_endmembers(pixels, mixed, em, "fcls")
    np.testing.assert_array_equal(out, em)
    assert record["replaced"] == [0, 1, 2] and record["residual_after"] < record["residual_before"]
    assert labeller_residual(pixels, out, "fcls") == pytest.approx(record["residual_after"])
    # the other way round (a good reference, spectra pulled to the mean): the current ones stay
    out, record = accept_endmembers(pixels, em, mixed, "nnls")
    np.testing.assert_array_equal(out, em)
    assert record["replaced"] == [] and record["residual_after"] == record["residual_before"]
    # a gain below min_gain is not enough
    out, record = accept_endmembers(pixels, mixed, em, "fcls", min_gain=1.0)
    np.testing.assert_array_equal(out, mixed)
    assert record["replaced"] == [] and record["residual_fitted"] < record["residual_before"]


def test_degenerate_and_worse_rows_keep_the_current_spectrum():
    rng = np.random.default_rng(2)
    em = demo_endmembers(30, P, np.linspace(400.0, 2500.0, 30))
    pixels = rng.dirichlet(np.ones(P), 400) @ em
    mixed = 0.8 * em + 0.2 * em.mean(axis=0)
    # an all-zero fitted row (a material the others explain) is never taken
    fitted = em.copy()
    fitted[1] = 0.0
    out, record = accept_endmembers(pixels, mixed, fitted, "fcls")
    assert record["degenerate"] == [1] and record["replaced"] == [0, 2] and record["angle_to_current"][1] is None
    np.testing.assert_array_equal(out[1], mixed[1])
    np.testing.assert_array_equal(out[[0, 2]], em[[0, 2]])
    # in a taken set, a fitted row worse than its current one goes back to it
    current = mixed.copy()
    current[2] = em[2]
    fitted = em.copy()
    fitted[2] = mixed[2]
    out, record = accept_endmembers(pixels, current, fitted, "fcls")
    assert record["reverted"] == [2] and record["replaced"] == [0, 1]
    np.testing.assert_array_equal(out, em)


def test_relabelled_bundles_follow_the_rule_and_keep_the_first_reference(cube):
    bundles = extract_bundles(cube, P, seed=0)
    target = np.asarray(cube.true_endmembers, dtype=np.float64)
    again = relabelled_bundles(bundles, target, {"replaced": [0, 1, 2]})
    assert again.config["labeller"] == bundles.config["labeller"]
    np.testing.assert_array_equal(again.spectra, bundles.spectra)
    np.testing.assert_array_equal(again.reference, target)
    assert not np.array_equal(again.labels, bundles.labels)
    np.testing.assert_allclose(again.config["relabel"]["initial_reference"], bundles.reference)
    twice = relabelled_bundles(again, bundles.reference, {"replaced": []})
    assert len(twice.config["relabel"]["rounds"]) == 2
    np.testing.assert_allclose(twice.config["relabel"]["initial_reference"], bundles.reference)


def test_curated_bundles_are_not_relabelled(cube):
    curated = extract_bundles(cube, P, seed=0).relabel([0], 1)
    with pytest.raises(InputError, match="curated"):
        EGUNet("pw", P, relabel=1, **FAST).fit(cube, bundles=curated)


# ----------------------------------------------------------------------------- a fit


def test_a_round_relabels_fine_tunes_and_is_recorded(relabelled, cube, mixed):
    est = relabelled
    rounds = est.bundles_.config["relabel"]["rounds"]
    assert len(rounds) == 1 and rounds[0]["replaced"], rounds
    assert rounds[0]["residual_after"] <= 0.95 * rounds[0]["residual_before"]
    first = extract_bundles(cube, P, seed=est.seed_, reference=mixed)
    np.testing.assert_array_equal(est.initial_reference_, first.reference)
    replaced = rounds[0]["replaced"]
    assert not np.allclose(est.endmembers_[replaced], first.reference[replaced])
    assert not np.array_equal(est.bundles_.labels, first.labels)
    np.testing.assert_array_equal(est.bundles_.spectra, first.spectra)
    # the fine-tune's steps count in the outcome; the result carries the new spectra and the old
    # 256 pixels in batches of 128: two steps per epoch; the first run goes to its bound
    assert rounds[0]["steps"] > 0 and est.outcome_.steps_done == 2 * FAST["epochs"] + rounds[0]["steps"]
    # (the result's endmembers are its rows reordered to match the truth)
    stored = est.result_.endmembers.values
    match = [int(np.argmin(np.abs(est.endmembers_ - row).max(axis=1))) for row in stored]
    assert sorted(match) == list(range(P))
    np.testing.assert_allclose(stored, est.endmembers_[match])
    recorded = est.result_.config["bundles"]["relabel"]
    np.testing.assert_allclose(recorded["initial_reference"], first.reference)
    assert est.result_.config["hyperparameters"]["relabel"] == 1
    assert len(est.history_["loss_total"]) == est.outcome_.epochs_done


def test_relabelled_checkpoint_round_trip(relabelled, cube, tmp_path):
    relabelled.save(tmp_path / "relabelled.pt")
    loaded = EGUNet.load(tmp_path / "relabelled.pt")
    np.testing.assert_array_equal(loaded.transform(cube), relabelled.transform(cube))
    np.testing.assert_array_equal(loaded.endmembers_, relabelled.endmembers_)
    np.testing.assert_array_equal(loaded.initial_reference_, relabelled.initial_reference_)
    assert loaded.get_config()["hyperparameters"]["relabel"] == 1
