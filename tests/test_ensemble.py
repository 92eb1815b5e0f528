"""Ensembles: member seeds, alignment of members, mean and spread in the result, netCDF round trip."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("torch")

from egu_widgets import unmix
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.engine.ensemble import (
    _align_members,
    ensemble_statistics,
    fit_ensemble,
    member_seeds,
    member_workers,
)
from egu_widgets.errors import InputError
from egu_widgets.results import UnmixingResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cube():
    return make_demo(15, 15, 20, 3)


@pytest.fixture(scope="module")
def fitted(cube):
    est = EGUNet("pw", 3, epochs=3, seed=4, ensemble=3, progress=False)
    est.fit(cube)
    return est


def test_member_seeds_are_deterministic_distinct_and_extend():
    five = member_seeds(7, 5)
    assert five == member_seeds(7, 5)
    assert len(set(five)) == 5
    assert member_seeds(7, 3) == five[:3]
    assert member_seeds(8, 5) != five
    with pytest.raises(InputError):
        member_seeds(7, 0)


def test_member_workers():
    assert member_workers(5, requested=3) == 3
    assert member_workers(2, requested=8) == 2
    assert member_workers(5, device="cuda") == 1
    assert 1 <= member_workers(4) <= 4


def test_statistics_of_a_known_stack():
    stack = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    stats = ensemble_statistics(stack)
    np.testing.assert_allclose(stats["mean"], [2.0, 1.0])
    np.testing.assert_allclose(stats["std"], [np.std([0, 1, 2, 3, 4], ddof=1), 0.0])
    np.testing.assert_allclose(stats["q05"], [0.2, 1.0])
    np.testing.assert_allclose(stats["q95"], [3.8, 1.0])
    one = ensemble_statistics(stack[:1])
    np.testing.assert_array_equal(one["std"], [0.0, 0.0])


def test_members_are_aligned_to_the_first_by_spectral_angle():
    rng = np.random.default_rng(0)
    first = rng.random((4, 30))
    order = np.array([2, 0, 3, 1])  # member 2 lists the materials in another order
    members = [SimpleNamespace(endmembers_=first), SimpleNamespace(endmembers_=first[order] * 1.7 + 0.01)]
    perms = _align_members(members)
    np.testing.assert_array_equal(perms[0], np.arange(4))
    np.testing.assert_allclose(members[1].endmembers_[perms[1]], first * 1.7 + 0.01)


def test_ensemble_fit_gives_mean_and_spread(cube, fitted):
    est = fitted
    assert len(est.members_) == 3
    assert est.member_seeds_ == member_seeds(4, 3)
    assert [m.seed for m in est.members_] == est.member_seeds_
    assert all(m.ensemble is None for m in est.members_)
    ds = est.result_.ds
    for name in ("abundances_std", "abundances_q05", "abundances_q95"):
        assert ds[name].dims == ("endmember", "y", "x")
    assert ds["abundances_members"].dims == ("member", "endmember", "y", "x")
    assert ds.sizes["member"] == 3
    members = ds["abundances_members"].values.astype(np.float64)
    np.testing.assert_allclose(ds["abundances"].values, members.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(ds["abundances_std"].values, members.std(axis=0, ddof=1), atol=1e-6)
    assert (ds["abundances_q05"].values <= ds["abundances"].values + 1e-6).all()
    assert (ds["abundances_q95"].values >= ds["abundances"].values - 1e-6).all()
    assert float(ds["abundances_std"].max()) > 0  # members differ
    np.testing.assert_allclose(ds["abundances"].sum("endmember").values, 1.0, atol=1e-5)
    # transform is the members' aligned mean, the result's abundances (here reordered to the truth)
    mean = est.transform(cube)
    assert mean.shape == (cube.height * cube.width, 3)
    result_pixels = est.result_.abundance_pixels
    # the result is aligned to the truth: match its columns to the transform's by value
    for col in range(3):
        assert min(np.abs(result_pixels[:, col] - mean[:, j]).max() for j in range(3)) < 1e-6
    config = est.result_.config
    assert config["ensemble"]["members"] == 3
    assert config["ensemble"]["seeds"] == est.member_seeds_
    assert len(config["ensemble"]["permutations"]) == 3


def test_ensemble_is_deterministic(cube, fitted):
    again = EGUNet("pw", 3, epochs=3, seed=4, ensemble=3, progress=False).fit(cube)
    xr.testing.assert_identical(again.result_.ds["abundances"], fitted.result_.ds["abundances"])
    xr.testing.assert_identical(again.result_.ds["abundances_std"], fitted.result_.ds["abundances_std"])


def test_ensemble_member_equals_a_single_fit_with_its_seed(cube, fitted):
    seed = fitted.member_seeds_[1]
    single = EGUNet("pw", 3, epochs=3, seed=seed, progress=False, num_threads=1).fit(cube)
    np.testing.assert_array_equal(single.transform(cube), fitted.members_[1].transform(cube))


def test_result_round_trips_through_netcdf(tmp_path, fitted):
    path = tmp_path / "ensemble.nc"
    fitted.result_.to_netcdf(path)
    back = UnmixingResult.open(path)
    xr.testing.assert_identical(back.ds, fitted.result_.ds)


def test_geotiff_has_the_spread_bands(tmp_path, fitted):
    rasterio = pytest.importorskip("rasterio")
    path = fitted.result_.to_geotiff(tmp_path / "maps.tif")
    with rasterio.open(path) as src:
        descriptions = list(src.descriptions)
    assert sum(d.startswith("abundances_std: ") for d in descriptions) == 3
    assert sum(d.startswith("abundances_q05: ") for d in descriptions) == 3
    assert not any(d.startswith("abundances_members") for d in descriptions)


def test_ensemble_estimator_refuses_single_network_calls(tmp_path, fitted):
    with pytest.raises(InputError, match="ensemble"):
        fitted.save(tmp_path / "model.pt")
    with pytest.raises(InputError, match="ensemble"):
        fitted.pixel_unmixer()


def test_clone_keeps_ensemble():
    sklearn = pytest.importorskip("sklearn.base")
    est = EGUNet("pw", 3, ensemble=4)
    assert est.get_params()["ensemble"] == 4
    assert sklearn.clone(est).ensemble == 4


def test_bad_ensemble_is_refused_at_fit(cube):
    with pytest.raises(InputError, match="ensemble"):
        EGUNet("pw", 3, epochs=1, ensemble=0, progress=False).fit(cube)


def test_refit_as_single_network_forgets_the_members(cube):
    est = EGUNet("pw", 3, epochs=1, ensemble=2, progress=False).fit(cube)
    est.set_params(ensemble=None).fit(cube)
    assert est.members_ is None
    assert "abundances_std" not in est.result_.ds
    assert est.pixel_unmixer() is not None


def test_unmix_with_ensemble(cube):
    result = unmix(cube, method="egu-pw", ensemble=2, epochs=2)
    assert result.ds.sizes["member"] == 2
    assert "abundances_q95" in result.ds
    assert result.rmse is not None
    with pytest.raises(InputError, match="ensemble"):
        unmix(cube, method="vca-fcls", ensemble=2)


def test_shared_bundles_give_identity_alignment(cube):
    from egu_widgets.engine import extract_bundles

    bundles = extract_bundles(cube, 3, seed=0)
    est = EGUNet("pw", 3, epochs=2, ensemble=2, progress=False).fit(cube, bundles=bundles)
    assert est.result_.config["ensemble"]["permutations"] == [[0, 1, 2], [0, 1, 2]]
    assert est.bundles_ is bundles


@pytest.mark.slow
def test_members_in_processes_equal_members_in_turn(cube):
    est = EGUNet("pw", 3, epochs=2, seed=1, ensemble=2, progress=False)
    in_turn = fit_ensemble(est, cube, n_jobs=1)
    in_processes = fit_ensemble(est, cube, n_jobs=2)
    np.testing.assert_array_equal(in_turn, in_processes)
    assert est.result_.config["ensemble"]["workers"] == 2


def test_an_ensemble_keeps_its_members_first_reference(fitted):
    # Without relabelling every member's first reference is its reference: so is the ensemble's.
    np.testing.assert_array_equal(fitted.initial_reference_, fitted.reference_)
    assert fitted.initial_reference_.shape == (3, 20)
