"""A new user's path through ``egu-widgets unmix --chunks``: the errors a command-line user meets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
import xarray as xr

from egu_widgets.cli import main
from egu_widgets.cube.synthetic import make_demo

pytest.importorskip("dask")
pytest.importorskip("zarr")

SAMPLE = ["-o", "sample_pixels=256", "-o", "sample_patches=12", "-o", "num_threads=1"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 40 x 40 x 16 netCDF scene, its truth as a .mat file, and a copy with a block of NaN pixels."""
    demo = make_demo(40, 40, 16, 3, seed=0)
    folder = tmp_path_factory.mktemp("user_lazy")
    img = np.asarray(demo.image, dtype=np.float32)
    xr.Dataset({"reflectance": (("y", "x", "band"), img)}).to_netcdf(folder / "scene.nc", engine="h5netcdf")
    bad = img.copy()
    bad[8:24, 8:24, :] = np.nan  # large enough that every sample of the scene reads some of it
    xr.Dataset({"reflectance": (("y", "x", "band"), bad)}).to_netcdf(folder / "nan.nc", engine="h5netcdf")
    truth = np.asarray(demo.true_abundances).reshape(3, -1)
    sio.savemat(folder / "truth.mat", {"A": truth})
    return folder


def _unmix(source, out, *extra):
    return main(
        [
            "unmix",
            str(source),
            "-m",
            "egu-pw",
            "-p",
            "3",
            "--chunks",
            "16",
            "--epochs",
            "1",
            "-q",
            *SAMPLE,
            *extra,
            "--out",
            str(out),
        ]
    )


def test_truth_with_chunks_is_refused_in_the_command_line_flags(scene, tmp_path, capsys):
    out = tmp_path / "maps.zarr"
    assert _unmix(scene / "scene.nc", out, "--truth", str(scene / "truth.mat")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--truth" in err[0] and "--chunks" in err[0]
    assert "truth=" not in err[0]  # the Python keyword means nothing to a command-line user
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_nan_block_on_the_command_line_names_the_invalid_flag(scene, tmp_path, capsys):
    out = tmp_path / "maps.zarr"
    assert _unmix(scene / "nan.nc", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "--invalid mask" in err[0]


def test_a_nan_block_masked_on_the_command_line_is_nan_there_only(scene, tmp_path):
    from egu_widgets.results import UnmixingResult

    out = tmp_path / "maps.zarr"
    assert _unmix(scene / "nan.nc", out, "--invalid", "mask") == 0
    maps = np.asarray(UnmixingResult.open(out).abundances)
    inside = np.zeros(maps.shape[1:], bool)
    inside[8:24, 8:24] = True
    assert np.isnan(maps[:, inside]).all()
    assert np.isfinite(maps[:, ~inside]).all()
    np.testing.assert_allclose(maps[:, ~inside].sum(0), 1.0, atol=1e-5)


def test_auto_endmembers_on_a_lazy_scene_counts_on_a_sample_not_the_whole_cube(scene, tmp_path, monkeypatch, capsys):
    import egu_widgets.classic.subspace as subspace

    seen = []
    estimate = subspace.estimate_n_endmembers

    def spy(data, criterion="hysime", **options):
        seen.append(data)
        return estimate(data, criterion, **options)

    monkeypatch.setattr(subspace, "estimate_n_endmembers", spy)
    out = tmp_path / "maps.zarr"
    args = ["unmix", str(scene / "scene.nc"), "-m", "egu-pw", "-p", "auto", "--chunks", "16", "--epochs", "1", "-q"]
    assert main([*args, *SAMPLE, "--out", str(out)]) == 0
    assert "endmembers: P = " in capsys.readouterr().out
    # every criterion judged the fit's sample of 256 pixels, never the 1 600 pixels of the scene
    assert seen and all(isinstance(d, np.ndarray) and d.shape == (256, 16) for d in seen)
