"""UnmixingResult: alignment to truth, scores, netCDF round trip, atomic writes, unmix()."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

from egu_widgets import HyperCube, UnmixingResult, unmix
from egu_widgets.errors import DataFileError, InputError


@pytest.fixture
def cube():
    rng = np.random.default_rng(3)
    em = rng.uniform(0.1, 0.9, size=(3, 20))
    ab = rng.dirichlet(np.ones(3) * 0.5, size=(10, 12)).transpose(2, 0, 1)
    img = np.einsum("phw,pb->hwb", ab, em)
    return HyperCube.from_array(
        img,
        wavelengths=np.linspace(400, 900, 20),
        endmembers=em,
        abundances=ab,
        endmember_names=["soil", "grass", "water"],
    )


def test_result_is_aligned_named_and_scored(cube):
    perm = [2, 0, 1]  # the method found the materials in another order
    est_ab = cube.true_abundance_pixels[:, perm]
    est_em = cube.true_endmembers[perm]
    res = UnmixingResult.from_arrays(cube, est_ab, est_em, method="test", config={"k": 1}, seconds=1.5)
    assert list(res.ds["endmember"].values) == ["soil", "grass", "water"]
    np.testing.assert_allclose(res.abundances.values, cube.true_abundances)
    assert res.rmse == pytest.approx(0.0, abs=1e-12) and res.sad == pytest.approx(0.0, abs=1e-4)
    assert res.config == {"k": 1} and res.method == "test"
    assert res.abundances.dims == ("endmember", "y", "x") and res.endmembers.dims == ("endmember", "band")
    assert "wavelength" in res.ds.coords


def test_scores_match_hand_computation(cube):
    est = cube.true_abundance_pixels.copy()
    est[:, 0] += 0.1
    est[:, 1] -= 0.1
    res = UnmixingResult.from_arrays(cube, est, method="shifted")
    # error is 0.1 on two of three materials everywhere: sqrt(2 * 0.01 / 3)
    assert res.rmse == pytest.approx(np.sqrt(0.02 / 3))
    np.testing.assert_allclose(res.scores["rmse_per_endmember"], [0.1, 0.1, 0.0], atol=1e-12)
    assert res.sad is None  # no endmembers, no spectral angle


def test_netcdf_round_trip(cube, tmp_path):
    res = UnmixingResult.from_arrays(
        cube,
        cube.true_abundance_pixels,
        cube.true_endmembers,
        method="m",
        history={"loss_total": [3.0, 2.0, 1.0]},
        partial=True,
        stop_reason="stop requested",
    )
    res.to_netcdf(tmp_path / "r.nc")
    back = UnmixingResult.open(tmp_path / "r.nc")
    xr.testing.assert_identical(back.ds, res.ds)
    assert back.partial and back.history["loss_total"].tolist() == [3.0, 2.0, 1.0]
    assert json.loads(back.ds.attrs["scores"])["rmse"] == pytest.approx(0.0, abs=1e-12)


def test_cube_file_is_not_a_result(cube, tmp_path):
    cube.to_netcdf(tmp_path / "c.nc")
    with pytest.raises(DataFileError, match="not an egu_widgets result"):
        UnmixingResult.open(tmp_path / "c.nc")


def test_shape_errors(cube):
    with pytest.raises(InputError, match="pixels"):
        UnmixingResult.from_arrays(cube, np.ones((5, 3)), method="m")
    with pytest.raises(InputError, match="endmembers must be"):
        UnmixingResult.from_arrays(cube, cube.true_abundance_pixels, np.ones((3, 7)), method="m")


@pytest.mark.parametrize("method", ["vca-fcls", "fcls", "sunsal"])
def test_unmix_classic_methods(cube, method):
    res = unmix(cube, method=method, seed=0)
    ab = res.abundances.values
    assert (ab >= -1e-12).all()
    np.testing.assert_allclose(ab.sum(axis=0), 1.0, atol=1e-9)
    assert res.rmse < 0.05  # noise-free scene with pure-ish pixels
    assert res.method == method


def test_unmix_rejects_bad_arguments(cube):
    with pytest.raises(InputError, match="unknown method"):
        unmix(cube, method="magic")
    with pytest.raises(InputError, match=">= 2"):
        unmix(cube, method="vca-fcls", n_endmembers=1)
    with pytest.raises(InputError, match="bands"):
        unmix(cube, method="vca-fcls", n_endmembers=21)
    with pytest.raises(InputError, match="needs endmembers"):
        unmix(cube.without_truth(), method="fcls", n_endmembers=3)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from egu_widgets import HyperCube
    img = np.random.default_rng(0).uniform(0.1, 1, size=(300, 300, 60)).astype('float32')
    cube = HyperCube.from_array(img)
    print('ready', flush=True)
    while True:
        cube.to_netcdf(sys.argv[1])
    """
)


def test_killed_writer_leaves_previous_file_intact(cube, tmp_path):
    """Kill a process that keeps rewriting a file: the file on disk is always a complete cube."""
    target = tmp_path / "c.nc"
    cube.to_netcdf(target)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        import time

        time.sleep(1.5)  # let it be in the middle of some write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    from egu_widgets import open_cube

    back = open_cube(target)  # either the old cube or one complete new write, never half a file
    assert back.shape in ((10, 12, 20), (300, 300, 60))
    leftovers = [p for p in tmp_path.iterdir() if p.name != "c.nc"]
    assert all(p.name.endswith(".tmp") for p in leftovers)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    """A new file gets 0666 minus the umask (not mkstemp's private 0600); a replaced one keeps its mode."""
    from egu_widgets._atomic import atomic_path

    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "new.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"second" and target.stat().st_mode & 0o777 == 0o640
