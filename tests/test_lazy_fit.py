"""Fitting EGU-Net on lazy cubes: sampled training sets, lazy results, dask schedulers, bad chunks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from egu_widgets import HyperCube, open_cube
from egu_widgets.chunked import use_scheduler
from egu_widgets.cube.sampling import sample_pixels, stratified_corners
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet, lazy_fit
from egu_widgets.engine.bundles import extract_bundles
from egu_widgets.errors import InputError
from egu_widgets.results import UnmixingResult

pytest.importorskip("dask")
pytest.importorskip("zarr")

import dask.array as da
from dask.callbacks import Callback

from egu_widgets.cube.lazy import CHECK_PREFIX
from egu_widgets.unmixing import unmix

CHUNKS = {"y": 16, "x": 16}
SMALL = dict(epochs=2, progress=False, num_threads=1)
SAMPLED = dict(SMALL, sample_pixels=256, sample_patches=12)


@pytest.fixture(scope="module")
def demo():
    return make_demo(40, 40, 16, 3, seed=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo):
    folder = tmp_path_factory.mktemp("lazy_fit")
    demo.to_netcdf(folder / "c.nc")
    open_cube(folder / "c.nc", chunks=CHUNKS).to_zarr(folder / "c.zarr")
    return folder


def _footprint(shape, seed, n_pixels, n_patches, patch=5):
    """Pixels a sampled pw fit reads: its training blocks and its patches (bool (H, W))."""
    h, w, b = shape
    seen = np.zeros((h, w), dtype=bool)
    cube = HyperCube.from_array(np.ones((h, w, b), np.float32))
    _, index = sample_pixels(cube, n_pixels, seed=seed, stream="batches", draw=lazy_fit._PIXEL_DRAW)
    seen.ravel()[index] = True
    ys, xs = stratified_corners(h, w, patch, n_patches, seed=seed, stream="bundles", draw=lazy_fit._PATCH_DRAW)
    for y, x in zip(ys, xs):
        seen[y : y + patch, x : x + patch] = True
    return seen


def _weights_equal(a, b):
    sa, sb = a.model_.state_dict(), b.model_.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------- small cubes
@pytest.mark.parametrize("variant", ["pw", "ss"])
def test_a_small_lazy_cube_fits_as_the_loaded_cube(files, variant):
    lazy = open_cube(files / "c.nc", chunks=CHUNKS)
    loaded = open_cube(files / "c.nc")
    a = EGUNet(variant, 3, **SMALL).fit(lazy)
    b = EGUNet(variant, 3, **SMALL).fit(loaded)
    assert _weights_equal(a, b)
    assert a.bundles_.config == b.bundles_.config
    for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
        np.testing.assert_array_equal(getattr(a.bundles_, name), getattr(b.bundles_, name))
    drop = ["seconds"]
    xr.testing.assert_identical(
        a.result_.ds.drop_attrs().drop_vars(["history_seconds"], errors="ignore"),
        b.result_.ds.drop_attrs().drop_vars(["history_seconds"], errors="ignore"),
    )
    assert {k: v for k, v in a.result_.ds.attrs.items() if k not in drop + ["config"]} == {
        k: v for k, v in b.result_.ds.attrs.items() if k not in drop + ["config"]
    }


@pytest.mark.parametrize("options", [{}, {"stride": 3, "dedup": True, "project": False}, {"mode": "faithful"}])
def test_sampled_bundles_of_every_patch_equal_extract_bundles(demo, options):
    opts = {"mode": "default", **options}
    ids = np.arange(demo.height * demo.width)  # the sample is every pixel, in the cube's order
    made = lazy_fit.sampled_bundles(demo, 3, 10**6, demo.pixels, seed=4, options=opts, pixel_ids=ids)
    want = extract_bundles(demo, 3, seed=4, **opts)
    assert made.config == want.config
    for name in ("spectra", "labels", "reference", "patch_index", "pixel_index"):
        np.testing.assert_array_equal(getattr(made, name), getattr(want, name))


# ---------------------------------------------------------------------------- sampled fits
def test_a_sampled_fit_never_loads_the_cube_and_its_result_is_lazy(files, demo, monkeypatch):
    lazy = open_cube(files / "c.nc", chunks=CHUNKS)
    monkeypatch.setattr(
        HyperCube, "image", property(lambda self: pytest.fail("the lazy cube was loaded whole")), raising=True
    )
    est = EGUNet("pw", 3, **SAMPLED).fit(lazy)
    monkeypatch.undo()
    assert hasattr(est.result_.abundances.data, "dask")
    sample = est.bundles_.config["sample"]
    assert sample["patches"] == 12 and sample["of"] == 64
    assert est.result_.config["sample"]["pixels"] == 256
    patches = est.bundles_.patch_index >= 0
    assert patches.sum() == 12 * 3  # and labelled pixels of the sample (pixel_labels="auto")
    assert est.bundles_.config["n_pixel_labels"] == est.bundles_.n_bundles - 12 * 3
    # the lazy maps are the model's maps of the loaded cube
    np.testing.assert_allclose(est.result_.abundances.values, est.abundance_maps(demo).values, atol=1e-6)
    # and scoring them against the truth works once they fit in memory
    assert 0 <= est.result_.aligned_to(demo).rmse < 0.5


def test_sampling_is_deterministic_for_a_seed(files):
    lazy = open_cube(files / "c.nc", chunks=CHUNKS)
    a = EGUNet("pw", 3, seed=5, **SAMPLED).fit(lazy)
    b = EGUNet("pw", 3, seed=5, **SAMPLED).fit(lazy)
    c = EGUNet("pw", 3, seed=6, **SAMPLED).fit(lazy)
    assert _weights_equal(a, b)
    np.testing.assert_array_equal(a.bundles_.patch_index, b.bundles_.patch_index)
    np.testing.assert_array_equal(a.bundles_.spectra, b.bundles_.spectra)
    assert not np.array_equal(np.unique(a.bundles_.patch_index), np.unique(c.bundles_.patch_index))


def test_sampled_patches_keep_the_cubes_numbering(files, demo):
    lazy = open_cube(files / "c.nc", chunks=CHUNKS)
    made = lazy_fit.sampled_bundles(lazy, 3, 12, demo.pixels, seed=0, options={"mode": "default", "project": False})
    # every patch's bundle spectrum is the cube's pixel its pixel index names, inside the patch it names
    patch = made.patch_index >= 0
    index = made.pixel_index[patch]
    np.testing.assert_array_equal(made.spectra[patch], demo.pixels[index])
    rows, cols = index // 40, index % 40
    np.testing.assert_array_equal((rows // 5) * 8 + cols // 5, made.patch_index[patch])
    # labelled pixels of a sample whose places are not given carry no index
    assert (made.pixel_index[~patch] == -1).all()


def test_ss_trains_on_tiles_whose_halo_is_kept_out_of_the_loss(tmp_path):
    cube = make_demo(160, 160, 8, 3, seed=1)
    cube.to_netcdf(tmp_path / "s.nc")
    lazy = open_cube(tmp_path / "s.nc", chunks={"y": 64, "x": 64})
    tile, halo = lazy_fit.SAMPLE_TILE, lazy_fit.SAMPLE_HALO
    train, whole = lazy_fit.training_cube(lazy, "ss", 4 * tile**2, seed=0)
    assert not whole
    side = tile + 2 * halo
    assert (train.height, train.width) == (2 * side, 2 * side)  # four tiles, two by two
    assert int(train.valid_mask.sum()) == 4 * tile**2  # their inner pixels alone
    assert not train.valid_mask[:halo].any() and train.valid_mask[halo, halo : halo + tile].all()
    # the tile at the mosaic's top left is the cube's window at its corner, halo included
    ys, xs = stratified_corners(160, 160, side, 4, seed=0, stride=tile, stream="batches", draw=lazy_fit._PIXEL_DRAW)
    np.testing.assert_array_equal(train.image[:side, :side], cube.image[ys[0] : ys[0] + side, xs[0] : xs[0] + side])
    est = EGUNet("ss", 3, **dict(SMALL, epochs=1, sample_pixels=tile**2, sample_patches=40)).fit(lazy)
    assert est.result_.abundances.shape == (3, 160, 160) and hasattr(est.result_.abundances.data, "dask")


def test_lazy_fit_refuses_an_ensemble_with_the_way_out(files):
    with pytest.raises(InputError, match="ensemble cannot be fitted on a lazy cube"):
        EGUNet("pw", 3, ensemble=2, **SAMPLED).fit(open_cube(files / "c.nc", chunks=CHUNKS))


@pytest.mark.parametrize("name,value", [("sample_pixels", 0), ("sample_patches", -1), ("sample_pixels", 2.5)])
def test_sample_sizes_are_checked(files, name, value):
    with pytest.raises(InputError, match=name):
        EGUNet("pw", 3, **dict(SMALL, **{name: value})).fit(open_cube(files / "c.nc", chunks=CHUNKS))


# ---------------------------------------------------------------------------- Zarr, unmix, memory
def test_lazy_fit_of_a_zarr_store_round_trips(files, tmp_path):
    lazy = open_cube(files / "c.zarr", chunks={})
    est = EGUNet("pw", 3, **SAMPLED).fit(lazy)
    est.result_.to_zarr(tmp_path / "maps.zarr")
    back = UnmixingResult.open(tmp_path / "maps.zarr")
    np.testing.assert_array_equal(back.abundances.values, est.result_.abundances.values)
    assert back.config["sample"] == est.result_.config["sample"]


def test_unmix_takes_a_lazy_cube_and_estimates_the_sampled_fit(files):
    from egu_widgets.methods import get_method

    result = unmix(open_cube(files / "c.nc", chunks=CHUNKS), "egu-pw", 3, **SAMPLED)
    assert hasattr(result.abundances.data, "dask")
    # a 3000 x 3000 x 224 lazy cube (8 GB) is estimated at its training sample and chunks in flight
    big = HyperCube(
        xr.Dataset(
            {"reflectance": (("y", "x", "band"), da.zeros((3000, 3000, 224), np.float32, chunks=(512, 512, 224)))}
        )
    )
    spec = get_method("egu-pw")
    lazy_estimate = spec.estimate_memory(big, 5, {})
    whole = big.isel(y=slice(0, 3000))  # the same shape, but estimated as if loaded
    assert lazy_estimate < 2.5 * 2**30  # bench_scale measures 1.82 GiB for this fit and its maps
    assert lazy_estimate < spec.estimate_memory(_Loaded(whole), 5, {})


class _Loaded:
    """A lazy cube seen as in-memory by the estimate (shape and valid mask only)."""

    def __init__(self, cube):
        self.shape = cube.shape
        self.valid_mask = cube.valid_mask
        self.reflectance = xr.DataArray(np.empty((1, 1, 1)))


# ---------------------------------------------------------------------------- schedulers, bad chunks
@pytest.mark.slow  # a LocalCluster of two processes starts in tens of seconds on a loaded machine
def test_local_cluster_fits_and_writes_the_threaded_answer(files, tmp_path):
    pytest.importorskip("dask.distributed")
    lazy = open_cube(files / "c.nc", chunks=CHUNKS)
    with use_scheduler("threads", workers=2):
        a = EGUNet("pw", 3, **SAMPLED).fit(lazy)
        a.result_.to_zarr(tmp_path / "threads.zarr")
    with use_scheduler("local", workers=2):
        b = EGUNet("pw", 3, **SAMPLED).fit(lazy)
        b.result_.to_zarr(tmp_path / "local.zarr")
    assert _weights_equal(a, b)
    threaded = UnmixingResult.open(tmp_path / "threads.zarr").abundances.values
    clustered = UnmixingResult.open(tmp_path / "local.zarr").abundances.values
    assert np.abs(threaded - clustered).max() <= 1e-6


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory, demo):
    """The demo with NaN at a pixel that a sampled fit (SAMPLED, seed 0) does not read, and where it is."""
    seen = _footprint(demo.shape, 0, SAMPLED["sample_pixels"], SAMPLED["sample_patches"])
    y, x = map(int, np.argwhere(~seen)[-1])
    img = demo.image.copy()
    img[y, x, 3] = np.nan
    folder = tmp_path_factory.mktemp("bad")
    xr.Dataset({"reflectance": (("y", "x", "band"), img)}).to_netcdf(folder / "bad.nc", engine="h5netcdf")
    return folder / "bad.nc", (y, x)


def test_a_nan_chunk_found_mid_stream_names_its_range_and_writes_nothing(bad_file, tmp_path):
    path, (y, x) = bad_file
    est = EGUNet("pw", 3, **SAMPLED).fit(open_cube(path, chunks=CHUNKS))  # the sample misses the bad pixel
    y0, x0 = 16 * (y // 16), 16 * (x // 16)
    with pytest.raises(InputError, match=rf"chunk at rows {y0}-.*cols {x0}-.* NaN or Inf .*row {y}, col {x}"):
        est.result_.to_zarr(tmp_path / "maps.zarr")
    assert not (tmp_path / "maps.zarr").exists()
    assert not list(tmp_path.iterdir())


class CheckedTasks(Callback):
    """Counts the chunk checks (tasks of the cube's check layer) run inside the block: whole-chunk reads."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _posttask(self, key, result, dsk, state, id):
        name = key[0] if isinstance(key, tuple) else key
        self.count += str(name).startswith(CHECK_PREFIX)


def test_a_sampled_fit_of_a_masked_lazy_cube_reads_no_whole_chunk(bad_file, tmp_path):
    path, _ = bad_file
    with CheckedTasks() as counter:
        EGUNet("pw", 3, **SAMPLED).fit(open_cube(path, chunks=CHUNKS, invalid="mask"))  # windows only
    assert counter.count == 0
    # unmix too (its usability check samples a cube of more than LAZY_SAMPLE pixels)
    big = make_demo(136, 136, 6, 3, seed=2)
    img = big.image.copy()
    img[100, 7] = np.nan
    xr.Dataset({"reflectance": (("y", "x", "band"), img)}).to_netcdf(tmp_path / "big.nc", engine="h5netcdf")
    with CheckedTasks() as counter:
        result = unmix(
            open_cube(tmp_path / "big.nc", chunks={"y": 68, "x": 68}, invalid="mask"), "egu-pw", 3, **SAMPLED
        )
    assert counter.count == 0 and hasattr(result.abundances.data, "dask")


def test_a_masked_nan_chunk_gives_nan_there_and_the_maps_elsewhere(bad_file, demo):
    path, (y, x) = bad_file
    est = EGUNet("pw", 3, **SAMPLED).fit(open_cube(path, chunks=CHUNKS, invalid="mask"))
    maps = est.result_.abundances.values
    assert np.isnan(maps[:, y, x]).all()
    good = np.ones(maps.shape[1:], dtype=bool)
    good[y, x] = False
    np.testing.assert_allclose(maps[:, good], est.abundance_maps(demo).values[:, good], atol=1e-6)


def test_cli_fits_and_writes_chunk_by_chunk(files, tmp_path, capsys):
    from egu_widgets.cli import main

    out = tmp_path / "maps.zarr"
    args = ["unmix", str(files / "c.nc"), "-m", "egu-pw", "-p", "3", "--chunks", "16", "--epochs", "2", "-q"]
    sample = ["-o", "sample_pixels=256", "-o", "sample_patches=12", "-o", "num_threads=1"]
    assert main([*args, *sample, "--out", str(out)]) == 0
    written = UnmixingResult.open(out)
    est = EGUNet("pw", 3, **SAMPLED).fit(open_cube(files / "c.nc", chunks=CHUNKS))
    np.testing.assert_allclose(written.abundances.values, est.result_.abundances.values, atol=1e-6)
    assert written.config["sample"]["pixels"] == 256


def test_cli_nan_chunk_mid_stream_is_one_error_and_no_output(bad_file, tmp_path, capsys):
    from egu_widgets.cli import main

    path, (y, x) = bad_file
    out = tmp_path / "maps.zarr"
    args = ["unmix", str(path), "-m", "egu-pw", "-p", "3", "--chunks", "16", "--epochs", "2", "-q"]
    sample = ["-o", "sample_pixels=256", "-o", "sample_patches=12", "-o", "num_threads=1"]
    assert main([*args, *sample, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the cube's chunk at rows") and f"row {y}, col {x}" in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())
    assert main([*args, *sample, "--invalid", "mask", "--out", str(out)]) == 0
    assert np.isnan(UnmixingResult.open(out).abundances.values[:, y, x]).all()


def test_cli_refuses_a_scheduler_without_chunks(files, tmp_path, capsys):
    from egu_widgets.cli import main

    code = main(
        ["unmix", str(files / "c.nc"), "-m", "egu-pw", "--scheduler", "local", "--out", str(tmp_path / "m.zarr")]
    )
    assert code == 2 and "give --chunks N too" in capsys.readouterr().err


@pytest.mark.slow  # starts a LocalCluster of two processes
def test_cli_on_a_local_cluster_writes_the_threaded_maps(files, tmp_path):
    pytest.importorskip("dask.distributed")
    from egu_widgets.cli import main

    args = ["unmix", str(files / "c.nc"), "-m", "egu-pw", "-p", "3", "--chunks", "16", "--epochs", "2", "-q"]
    sample = ["-o", "sample_pixels=256", "-o", "sample_patches=12", "-o", "num_threads=1"]
    assert main([*args, *sample, "--out", str(tmp_path / "threads.zarr")]) == 0
    cluster = ["--scheduler", "local", "--workers", "2"]
    assert main([*args, *sample, *cluster, "--out", str(tmp_path / "local.zarr")]) == 0
    threaded = UnmixingResult.open(tmp_path / "threads.zarr").abundances.values
    clustered = UnmixingResult.open(tmp_path / "local.zarr").abundances.values
    assert np.abs(threaded - clustered).max() <= 1e-6
