"""Scenes larger than memory: lazy open, chunk-level checks, Zarr in and out, the window sampler."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from egu_widgets import HyperCube, open_cube
from egu_widgets.chunked import fcls_chunked, use_scheduler
from egu_widgets.cube import check_usable
from egu_widgets.cube.sampling import patch_grid, read_windows, sample_pixels, stratified_corners
from egu_widgets.errors import DataFileError, InputError
from egu_widgets.results import UnmixingResult

pytest.importorskip("dask")
pytest.importorskip("zarr")

from dask.callbacks import Callback

CHUNKS = {"y": 16, "x": 16}


class CountComputes(Callback):
    """Counts dask computations started inside the block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    em = rng.uniform(0.1, 0.9, size=(3, 12))
    ab = rng.dirichlet(np.ones(3), size=(48, 40)).transpose(2, 0, 1)
    img = np.einsum("phw,pb->hwb", ab, em).astype(np.float32)
    return img, em, ab


@pytest.fixture
def files(tmp_path, scene):
    img, em, ab = scene
    cube = HyperCube.from_array(img, endmembers=em, abundances=ab)
    cube.to_netcdf(tmp_path / "c.nc")
    open_cube(tmp_path / "c.nc", chunks=CHUNKS).to_zarr(tmp_path / "c.zarr")  # stored in 16 x 16 chunks
    bad = img.copy()
    bad[20, 33, 2] = np.nan
    bad[5, 6, :] = np.inf
    xr.Dataset({"reflectance": (("y", "x", "band"), bad)}).to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    return tmp_path, cube


# ---------------------------------------------------------------------------- lazy open
@pytest.mark.parametrize("name", ["c.nc", "c.zarr", "bad.nc"])
def test_lazy_open_computes_nothing(files, name):
    path, _ = files
    with CountComputes() as counter:
        lazy = open_cube(path / name, chunks=CHUNKS)
        masked = open_cube(path / name, chunks=CHUNKS, invalid="mask", negative="clip")
    assert counter.count == 0
    assert lazy.reflectance.chunks is not None and masked.reflectance.chunks is not None
    assert lazy.reflectance.data.chunks[0] == (16, 16, 16)


def test_lazy_cube_computes_to_the_in_memory_cube(files):
    path, cube = files
    for name in ("c.nc", "c.zarr"):
        xr.testing.assert_identical(open_cube(path / name, chunks=CHUNKS).ds.compute(), cube.ds)


def test_nan_chunk_raises_with_its_pixel_range(files):
    path, _ = files
    lazy = open_cube(path / "bad.nc", chunks=CHUNKS)
    with pytest.raises(InputError, match=r"rows 16-31, cols 32-39 .* 1 pixel\(s\) with NaN or Inf .*row 20, col 33"):
        _ = lazy.reflectance[16:, 16:].values
    # which bad chunk a threaded computation meets first varies; either is named with its range
    with pytest.raises(InputError, match=r"chunk at rows (0-15, cols 0-15|16-31, cols 32-39) .*invalid='mask'"):
        fcls_chunked(lazy, np.eye(3, 12) + 0.1).compute()


def test_negative_chunk_raises_or_clips(tmp_path, scene):
    img = scene[0].copy()
    img[40, 2, 0] = -0.25
    xr.Dataset({"reflectance": (("y", "x", "band"), img)}).to_netcdf(tmp_path / "neg.nc", engine="h5netcdf")
    with pytest.raises(InputError, match=r"rows 32-47, cols 0-15 .*negative value"):
        _ = open_cube(tmp_path / "neg.nc", chunks=CHUNKS).reflectance.values
    clipped = open_cube(tmp_path / "neg.nc", chunks=CHUNKS, negative="clip").reflectance.values
    assert clipped[40, 2, 0] == 0 and clipped.min() == 0
    np.testing.assert_array_equal(clipped, np.clip(img, 0, None))


def test_mask_lazily_gives_nan_maps_at_invalid_pixels_and_the_in_memory_answer_elsewhere(files, scene):
    path, _ = files
    em = scene[1]
    lazy = open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask")
    eager = open_cube(path / "bad.nc", invalid="mask")
    maps = fcls_chunked(lazy, em)
    assert maps.chunks is not None
    result = UnmixingResult.from_arrays(lazy, maps.assign_coords(endmember=["a", "b", "c"]), method="fcls")
    assert result.abundances.chunks is not None  # still lazy
    computed = result.abundances.values
    expected = UnmixingResult.from_arrays(eager, fcls_chunked(eager, em).values, method="fcls").abundances.values
    bad = ~eager.valid_mask
    assert bad.sum() == 2 and bad[20, 33] and bad[5, 6]
    np.testing.assert_array_equal(lazy.valid_mask, eager.valid_mask)
    assert np.isnan(computed[:, bad]).all() and np.isfinite(computed[:, ~bad]).all()
    np.testing.assert_allclose(computed[:, ~bad], expected[:, ~bad], atol=1e-6)


def test_a_lazily_masked_cube_written_and_reopened(files, tmp_path):
    path, _ = files
    masked = open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask")
    eager = open_cube(path / "bad.nc", invalid="mask")
    masked.to_zarr(tmp_path / "m.zarr")
    masked.to_netcdf(tmp_path / "m.nc")
    for name in ("m.zarr", "m.nc"):
        lazy = open_cube(tmp_path / name, chunks=CHUNKS)  # NaN at the masked pixels: no error
        xr.testing.assert_identical(lazy.ds.compute(), masked.ds.compute())
        again = open_cube(tmp_path / name)  # in memory: filled like any masked cube
        np.testing.assert_array_equal(again.valid_mask, eager.valid_mask)
        np.testing.assert_allclose(again.image, eager.image, rtol=1e-6)


def test_lazy_fill_is_refused_with_the_alternative(files):
    path, _ = files
    with pytest.raises(InputError, match="invalid='mask'|'mask'"):
        open_cube(path / "bad.nc", chunks=CHUNKS, invalid="fill")


def test_check_usable_samples_a_large_lazy_cube(files, monkeypatch):
    """A lazy cube above LAZY_SAMPLE pixels is judged on a sample: most of the file is never read."""
    from xarray.backends import h5netcdf_

    from egu_widgets.cube import checks

    path, _ = files
    read = []
    original = h5netcdf_.H5NetCDFArrayWrapper._getitem

    def spy(self, key):
        out = original(self, key)
        read.append(np.asarray(out).size)
        return out

    monkeypatch.setattr(checks, "LAZY_SAMPLE", 256)
    monkeypatch.setattr(h5netcdf_.H5NetCDFArrayWrapper, "_getitem", spy)
    lazy = open_cube(path / "c.nc", chunks=CHUNKS)
    check_usable(lazy, 3)
    assert 0 < sum(read) <= 256 * 12 * 2  # the sample (and coordinates), not 48 x 40 x 12
    with pytest.raises(InputError, match=r"window at rows 16-23, cols 32-39 .*NaN"):  # a bad window says where
        read_windows(open_cube(path / "bad.nc", chunks=CHUNKS), [16], [32], 8)


def test_check_usable_of_a_small_lazy_cube_reads_it_in_chunks(files):
    path, _ = files
    check_usable(open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask"), 3)
    with pytest.raises(InputError, match=r"chunk at rows (0-15, cols 0-15|16-31, cols 32-39) .*NaN"):
        check_usable(open_cube(path / "bad.nc", chunks=CHUNKS), 3)


# ---------------------------------------------------------------------------- Zarr
def test_zarr_round_trips(files, tmp_path):
    path, cube = files
    xr.testing.assert_identical(open_cube(path / "c.zarr").ds, cube.ds)
    lazy = open_cube(path / "c.nc", chunks=CHUNKS)
    lazy.to_zarr(tmp_path / "again.zarr")  # written chunk by chunk
    xr.testing.assert_identical(open_cube(tmp_path / "again.zarr").ds, cube.ds)
    result = UnmixingResult.from_arrays(cube, fcls_chunked(cube, cube.true_endmembers).values, method="fcls")
    result.to_zarr(tmp_path / "r.zarr")
    xr.testing.assert_identical(UnmixingResult.open(tmp_path / "r.zarr").ds, result.ds)
    result.to_netcdf(tmp_path / "r.nc")
    xr.testing.assert_identical(UnmixingResult.open(tmp_path / "r.nc").ds, result.ds)


def test_lazy_result_written_chunk_by_chunk_to_both_formats(files, tmp_path):
    path, cube = files
    lazy = open_cube(path / "c.zarr", chunks=CHUNKS)
    maps = fcls_chunked(lazy, cube.true_endmembers).assign_coords(endmember=["a", "b", "c"])
    result = UnmixingResult.from_arrays(lazy, maps, method="fcls")
    result.to_zarr(tmp_path / "lazy.zarr")
    result.to_netcdf(tmp_path / "lazy.nc")
    expected = result.ds.compute()
    xr.testing.assert_identical(UnmixingResult.open(tmp_path / "lazy.zarr").ds, expected)
    xr.testing.assert_identical(UnmixingResult.open(tmp_path / "lazy.nc").ds, expected)
    reopened = UnmixingResult.open(tmp_path / "lazy.zarr", chunks={})
    assert reopened.abundances.chunks is not None


def test_cf_style_zarr_is_read_like_cf_netcdf(tmp_path, scene):
    img = scene[0]
    wl = np.linspace(400, 2500, img.shape[2])
    ds = xr.Dataset(
        {"radiance": (("wavelength", "lat", "lon"), np.moveaxis(img, -1, 0))},
        coords={"wavelength": ("wavelength", wl, {"units": "nm"}), "lat": np.arange(48.0), "lon": np.arange(40.0)},
    )
    ds.to_zarr(tmp_path / "cf.zarr", zarr_format=2)
    ds.to_netcdf(tmp_path / "cf.nc", engine="h5netcdf")
    from_zarr = open_cube(tmp_path / "cf.zarr")
    from_nc = open_cube(tmp_path / "cf.nc")
    np.testing.assert_array_equal(from_zarr.image, img)
    np.testing.assert_array_equal(from_zarr.wavelengths, wl)
    xr.testing.assert_identical(from_zarr.reflectance, from_nc.reflectance)
    assert open_cube(tmp_path / "cf.zarr", chunks={}).reflectance.chunks is not None


def test_failed_lazy_write_leaves_nothing_and_keeps_the_old_store(files, tmp_path, scene):
    path, cube = files
    bad = open_cube(path / "bad.nc", chunks=CHUNKS)
    result = UnmixingResult.from_arrays(bad, fcls_chunked(bad, scene[1]), method="fcls")
    with pytest.raises(InputError, match="NaN"):
        result.to_zarr(tmp_path / "out.zarr")
    with pytest.raises(InputError, match="NaN"):
        result.to_netcdf(tmp_path / "out.nc")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".out", "out"))) == []
    good = UnmixingResult.from_arrays(cube, fcls_chunked(cube, scene[1]).values, method="fcls")
    good.to_zarr(tmp_path / "out.zarr")
    with pytest.raises(InputError, match="NaN"):
        result.to_zarr(tmp_path / "out.zarr")
    xr.testing.assert_identical(UnmixingResult.open(tmp_path / "out.zarr").ds, good.ds)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_zarr_writer_refuses_to_replace_other_folders(tmp_path, files):
    _, cube = files
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep me")
    with pytest.raises(DataFileError, match="not a Zarr store"):
        cube.to_zarr(tmp_path / "notes")
    assert (tmp_path / "notes" / "a.txt").read_text() == "keep me"
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(DataFileError, match="not a Zarr store"):
        open_cube(tmp_path / "empty.zarr")


def test_result_store_is_refused_as_a_cube(files, tmp_path):
    _, cube = files
    result = UnmixingResult.from_arrays(cube, fcls_chunked(cube, cube.true_endmembers).values, method="fcls")
    result.to_zarr(tmp_path / "r.zarr")
    with pytest.raises(DataFileError, match="UnmixingResult.open"):
        open_cube(tmp_path / "r.zarr")


# ---------------------------------------------------------------------------- the sampler
def test_sampler_takes_every_patch_of_a_small_cube_in_grid_order():
    from egu_widgets.engine.bundles import _patch_grid

    for size, stride in ((5, None), (5, 3), (1, None)):
        ys, xs = stratified_corners(48, 40, size, 10_000, seed=7, stride=stride)
        ey, ex = _patch_grid(48, 40, size, stride or size)
        np.testing.assert_array_equal(ys, ey)
        np.testing.assert_array_equal(xs, ex)
        np.testing.assert_array_equal((ys, xs), patch_grid(48, 40, size, stride))


def test_sampler_is_deterministic_for_a_seed():
    a = stratified_corners(3000, 3000, 5, 1000, seed=4)
    b = stratified_corners(3000, 3000, 5, 1000, seed=4)
    c = stratified_corners(3000, 3000, 5, 1000, seed=5)
    d = stratified_corners(3000, 3000, 5, 1000, seed=4, draw=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert len(a[0]) == 1000 and len(set(zip(*a))) == 1000
    assert np.all(a[0] % 5 == 0) and np.all(a[1] % 5 == 0) and a[0].max() <= 2995


def test_sampler_is_stratified():
    """Every cell of a 10 x 10 partition of the image holds exactly one of 100 windows."""
    ys, xs = stratified_corners(1000, 1000, 1, 100, seed=0)
    counts = np.zeros((10, 10), dtype=int)
    np.add.at(counts, (ys // 100, xs // 100), 1)
    np.testing.assert_array_equal(counts, 1)
    # a uniform draw of the same size leaves cells empty; the stratified one never does
    for seed in range(5):
        ys, xs = stratified_corners(600, 900, 1, 54, seed=seed)
        counts = np.zeros((6, 9), dtype=int)
        np.add.at(counts, (ys // 100, xs // 100), 1)
        np.testing.assert_array_equal(counts, 1)


def test_read_windows_lazy_equals_in_memory_and_reads_only_the_windows(files, monkeypatch):
    from xarray.backends import h5netcdf_

    path, cube = files
    ys, xs = stratified_corners(48, 40, 4, 12, seed=1)
    expected = read_windows(cube, ys, xs, 4)
    np.testing.assert_array_equal(expected[3], cube.image[ys[3] : ys[3] + 4, xs[3] : xs[3] + 4])
    read = []
    original = h5netcdf_.H5NetCDFArrayWrapper._getitem
    monkeypatch.setattr(
        h5netcdf_.H5NetCDFArrayWrapper, "_getitem", lambda self, key: read.append(key) or original(self, key)
    )
    lazy = open_cube(path / "c.nc", chunks=CHUNKS)
    np.testing.assert_array_equal(read_windows(lazy, ys, xs, 4), expected)

    def values_read():
        sizes = [np.prod([s.stop - s.start for s in key]) for key in read if len(key) == 3]
        read.clear()
        return sum(sizes)

    assert values_read() < 48 * 40 * 12  # chunks holding several windows are read once, whole
    # windows in chunks of their own (one across a chunk edge) are read alone from the file
    ys, xs = [0, 20, 36], [0, 14, 24]
    np.testing.assert_array_equal(read_windows(lazy, ys, xs, 4), read_windows(cube, ys, xs, 4))
    assert values_read() == 3 * 4 * 4 * 12
    masked = open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask")
    window = read_windows(masked, [18], [31], 4)[0]
    assert np.isnan(window[2, 2]).all() and np.isfinite(np.delete(window.reshape(16, -1), 10, axis=0)).all()


def test_sample_pixels_skips_invalid_and_is_deterministic(files):
    path, cube = files
    masked = open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask")
    px, index = sample_pixels(masked, 10_000, seed=0)
    assert px.shape == (48 * 40 - 2, 12) and 20 * 40 + 33 not in index  # small: every valid pixel
    px, index = sample_pixels(masked, 400, seed=2, window=4)
    again, index2 = sample_pixels(masked, 400, seed=2, window=4)
    np.testing.assert_array_equal(index, index2)
    np.testing.assert_array_equal(px, again)
    np.testing.assert_array_equal(px, cube.pixels[index])
    assert 380 <= len(index) <= 400 and np.all(np.diff(index) > 0)


# ---------------------------------------------------------------------------- distributed
def test_local_cluster_gives_the_threaded_answer(files, tmp_path, scene):
    pytest.importorskip("dask.distributed")
    path, _ = files
    em = scene[1]

    def run(scheduler, out):
        with use_scheduler(scheduler, workers=2):
            lazy = open_cube(path / "bad.nc", chunks=CHUNKS, invalid="mask")
            maps = fcls_chunked(lazy, em).assign_coords(endmember=["a", "b", "c"])
            UnmixingResult.from_arrays(lazy, maps, method="fcls").to_zarr(out)
            refused = open_cube(path / "bad.nc", chunks=CHUNKS)  # the NaN chunks found on the workers
            failing = UnmixingResult.from_arrays(refused, fcls_chunked(refused, em), method="fcls")
            for write, name in ((failing.to_zarr, "failed.zarr"), (failing.to_netcdf, "failed.nc")):
                with pytest.raises(InputError, match="NaN"):
                    write(tmp_path / name)
        assert [p.name for p in tmp_path.iterdir() if "failed" in p.name] == []
        return UnmixingResult.open(out).abundances.values

    threaded = run("threads", tmp_path / "threads.zarr")
    distributed = run("local", tmp_path / "local.zarr")
    assert np.isnan(threaded[:, 20, 33]).all()
    np.testing.assert_allclose(distributed, threaded, atol=1e-6, equal_nan=True)
