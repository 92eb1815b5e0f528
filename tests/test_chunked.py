"""Chunked, lazy unmixing with dask, on a LocalCluster bound to loopback."""

from __future__ import annotations

import numpy as np
import pytest

from egu_widgets import HyperCube, open_cube
from egu_widgets.chunked import fcls_chunked, is_lazy, map_pixels
from egu_widgets.classic import fcls
from egu_widgets.errors import InputError

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on loopback, started once for the module (each test connects its own client)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        yield cluster


@pytest.fixture
def cube_file(tmp_path):
    rng = np.random.default_rng(5)
    em = rng.uniform(0.1, 0.9, size=(3, 16))
    ab = rng.dirichlet(np.ones(3), size=(37, 29)).transpose(2, 0, 1)
    img = np.einsum("phw,pb->hwb", ab, em) + rng.normal(0, 0.005, size=(37, 29, 16))
    cube = HyperCube.from_array(np.clip(img, 0, None), endmembers=em, abundances=ab)
    cube.to_netcdf(tmp_path / "c.nc")
    return tmp_path / "c.nc", cube


def test_lazy_open_reads_nothing_up_front(cube_file):
    path, cube = cube_file
    lazy = open_cube(path, chunks={"y": 10, "x": 8})
    assert is_lazy(lazy) and not is_lazy(cube)
    assert lazy.reflectance.data.chunks[0] == (10, 10, 10, 7)


def test_chunked_fcls_on_local_cluster_equals_in_memory(cube_file, cluster):
    path, cube = cube_file
    expected = fcls(cube.pixels, cube.true_endmembers).T.reshape(3, 37, 29)
    with distributed.Client(cluster):
        lazy = open_cube(path, chunks={"y": 10, "x": 8})
        result = fcls_chunked(lazy, cube.true_endmembers)
        assert result.chunks is not None  # still lazy: nothing computed yet
        computed = result.compute()
    assert computed.dims == ("endmember", "y", "x")
    np.testing.assert_allclose(computed.values, expected, atol=1e-10)


def test_map_pixels_checks_the_function_output(cube_file):
    _, cube = cube_file
    with pytest.raises(InputError, match="expected"):
        map_pixels(cube, lambda px: np.ones((px.shape[0], 2)), 3)


def test_lazy_nan_cube_is_refused_when_its_chunk_is_read(tmp_path):
    img = np.random.default_rng(0).uniform(0.1, 1, size=(6, 6, 4))
    img[3, 3, 1] = np.nan
    HyperCube.from_array(img, invalid="fill").ds.assign(
        reflectance=(("y", "x", "band"), img.astype(np.float32))
    ).to_netcdf(tmp_path / "nan.nc", engine="h5netcdf")
    lazy = open_cube(tmp_path / "nan.nc", chunks={"y": 3})  # opening reads nothing
    np.testing.assert_array_equal(lazy.reflectance[:3].values, img[:3].astype(np.float32))
    with pytest.raises(InputError, match=r"rows 3-5, cols 0-5 .*NaN"):
        fcls_chunked(lazy, np.full((2, 4), 0.5) + np.eye(2, 4)).compute()


def test_egu_abundance_maps_on_local_cluster_equal_in_memory(cube_file, cluster, one_torch_thread):
    """A trained EGU-Net-pw applied lazily to a netCDF cube on a cluster gives the in-memory answer."""
    from egu_widgets.engine import EGUNet

    path, cube = cube_file
    est = EGUNet("pw", 3, epochs=3, seed=0, progress=False, num_threads=1).fit(cube)
    expected = est.transform(cube).T.reshape(3, 37, 29)
    with distributed.Client(cluster):
        lazy = open_cube(path, chunks={"y": 10, "x": 8})
        maps = est.abundance_maps(lazy)
        assert maps.chunks is not None  # nothing computed yet: the workers do it
        computed = maps.compute()
        # transform() on a lazy cube computes chunk by chunk and returns the in-memory layout
        flat = est.transform(lazy)
    assert computed.dims == ("endmember", "y", "x") and computed.dtype == np.float32
    np.testing.assert_allclose(computed.values, expected, atol=1e-6)
    np.testing.assert_allclose(flat, expected.reshape(3, -1).T, atol=1e-6)
