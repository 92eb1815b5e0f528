"""The egu-widgets command line: results written on success, one clear line and no file on error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from egu_widgets import HyperCube, UnmixingResult
from egu_widgets.cli import main


def run_cli(*args):
    """Run in a subprocess, as a user would: exit code, stdout, stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "egu_widgets.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


def small_cube(path, nan=False):
    rng = np.random.default_rng(1)
    em = rng.uniform(0.1, 0.9, size=(3, 15))
    ab = rng.dirichlet(np.ones(3), size=(8, 10)).transpose(2, 0, 1)
    img = np.einsum("phw,pb->hwb", ab, em)
    if nan:
        img[2, 2, 2] = np.nan
    cube = HyperCube.from_array(img, endmembers=em, abundances=ab, invalid="mask" if nan else "raise")
    cube.to_netcdf(path)
    return cube


def test_unmix_writes_result_with_scores(tmp_path):
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "r.nc"
    code, stdout, stderr = run_cli("unmix", tmp_path / "c.nc", "--endmembers", 3, "--method", "vca-fcls", "--out", out)
    assert code == 0, stderr
    res = UnmixingResult.open(out)
    assert res.abundances.dims == ("endmember", "y", "x") and res.endmembers.dims == ("endmember", "band")
    assert "rmse" in res.ds.attrs and "sad" in res.ds.attrs
    assert f"{res.rmse:.4f}" in stdout


def test_fcls_with_truth_endmembers_is_exact(tmp_path):
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "r.nc"
    assert main(["unmix", str(tmp_path / "c.nc"), "--method", "fcls", "--out", str(out)]) == 0
    assert UnmixingResult.open(out).rmse < 1e-6


def test_fcls_endmembers_from_file(tmp_path):
    cube = small_cube(tmp_path / "c.nc")
    scipy.io.savemat(tmp_path / "em.mat", {"M": cube.true_endmembers.T})
    out = tmp_path / "r.nc"
    assert (
        main(
            [
                "unmix",
                str(tmp_path / "c.nc"),
                "--method",
                "fcls",
                "--endmembers-from",
                str(tmp_path / "em.mat"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert UnmixingResult.open(out).rmse < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["unmix", "{tmp}/missing.mat", "-p", "3", "--method", "vca-fcls"], "no such file"),
        (["unmix", "no-such-dataset", "-p", "3", "--method", "vca-fcls"], "unknown dataset"),
        (["unmix", "{tmp}/odd.mat", "-p", "3", "--method", "vca-fcls"], "Keys found"),
        (["unmix", "{tmp}/nan.mat", "-p", "3", "--method", "vca-fcls"], "NaN"),
        (["unmix", "{tmp}/c.nc", "-p", "1", "--method", "vca-fcls"], "whole number >= 2"),
        (["unmix", "{tmp}/c.nc", "-p", "99", "--method", "vca-fcls"], "bands"),
        (
            ["unmix", "{tmp}/c.nc", "-p", "3", "--method", "vca-fcls", "--out", "{tmp}/no/such/dir/r.nc"],
            "does not exist",
        ),
        (["unmix", "{tmp}/c.nc", "-p", "3", "--method", "vca-fcls", "--out", "{tmp}/c.nc/r.nc"], "not a folder"),
        (["unmix", "{tmp}/inf.mat", "-p", "3", "--method", "vca-fcls"], "NaN or Inf"),
        (["unmix", "{tmp}/zeros.mat", "-p", "3", "--method", "vca-fcls"], "all zeros"),
        (["unmix", "{tmp}/negative.mat", "-p", "3", "--method", "vca-fcls"], "negative"),
        (["unmix", "{tmp}/raw.mat", "-p", "3", "--method", "vca-fcls"], "raw integer"),
        (["unmix", "{tmp}/dims.mat", "-p", "3", "--method", "vca-fcls"], "expected (bands, pixels)"),
        (["unmix", "{tmp}/size.mat", "-p", "3", "--method", "vca-fcls"], "do not fill 4 rows x 5 cols"),
        (["unmix", "{tmp}/good.mat", "--truth", "{tmp}/truth_bands.mat", "-p", "3", "--method", "vca-fcls"], "bands"),
        (["unmix", "{tmp}/good.mat", "--truth", "{tmp}/truth_pixels.mat", "-p", "3", "--method", "vca-fcls"], "pixels"),
        (["unmix", "{tmp}/empty.mat", "-p", "3", "--method", "vca-fcls"], "empty"),
        (["unmix", "{tmp}/cut.mat", "-p", "3", "--method", "vca-fcls"], "truncated or corrupted"),
        (["unmix", "{tmp}/cut.nc", "-p", "3", "--method", "vca-fcls"], "truncated or corrupted"),
        (["unmix", "{tmp}/lonely.hdr", "-p", "3", "--method", "vca-fcls"], "data file"),
        (
            ["unmix", "{tmp}/c.nc", "-p", "3", "--method", "egu-pw", "-o", "patch_size=1", "--epochs", "1"],
            "fewer than the 3 endmembers",
        ),
        (
            ["unmix", "{tmp}/c.nc", "-p", "3", "--method", "egu-pw", "-o", "patch_size=20", "--epochs", "1"],
            "smaller than one 20x20 patch",
        ),
        (["unmix", "{tmp}/c.nc", "-p", "3", "--method", "egu-pw", "--device", "cuda", "--epochs", "1"], "CUDA"),
    ],
)
def test_bad_input_exits_with_one_line_and_writes_nothing(tmp_path, args, message):
    small_cube(tmp_path / "c.nc")
    scipy.io.savemat(tmp_path / "odd.mat", {"foo": np.ones(3)})
    img = np.ones((15, 16))
    img[0, 0] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"Y": img, "nRow": 4, "nCol": 4})
    write_bad_inputs(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.nc")]
    code, stdout, stderr = run_cli(*args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "r.nc").exists()


def write_bad_inputs(tmp):
    """One file for each way a user's input can be wrong (issue: the bad-input matrix)."""
    good = np.random.default_rng(2).uniform(0.1, 0.9, size=(15, 20))  # 15 bands, 4 x 5 pixels
    scipy.io.savemat(tmp / "good.mat", {"Y": good, "nRow": 4, "nCol": 5})
    inf = good.copy()
    inf[3, 7] = np.inf
    scipy.io.savemat(tmp / "inf.mat", {"Y": inf, "nRow": 4, "nCol": 5})
    scipy.io.savemat(tmp / "zeros.mat", {"Y": np.zeros((15, 20)), "nRow": 4, "nCol": 5})
    scipy.io.savemat(tmp / "negative.mat", {"Y": good - 0.5, "nRow": 4, "nCol": 5})
    scipy.io.savemat(tmp / "raw.mat", {"Y": (good * 4000).astype(np.uint16), "nRow": 4, "nCol": 5})
    scipy.io.savemat(tmp / "dims.mat", {"Y": np.ones((2, 3, 4, 5))})
    scipy.io.savemat(tmp / "size.mat", {"Y": good[:, :18], "nRow": 4, "nCol": 5, "nBand": 15})
    scipy.io.savemat(tmp / "truth_bands.mat", {"M": np.ones((10, 3))})
    scipy.io.savemat(tmp / "truth_pixels.mat", {"A": np.full((3, 12), 1 / 3), "M": np.ones((15, 3))})
    (tmp / "empty.mat").write_bytes(b"")
    data = (tmp / "good.mat").read_bytes()
    (tmp / "cut.mat").write_bytes(data[: len(data) // 2])
    data = (tmp / "c.nc").read_bytes()
    (tmp / "cut.nc").write_bytes(data[: len(data) // 3])
    (tmp / "lonely.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 4\nbands = 3\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 4\ninterleave = bsq\nbyte order = 0\n"
    )


def test_nan_pixels_masked_on_request(tmp_path):
    small_cube(tmp_path / "c.nc", nan=True)
    out = tmp_path / "r.nc"
    assert main(["unmix", str(tmp_path / "c.nc"), "--method", "fcls", "--out", str(out)]) == 0
    ab = UnmixingResult.open(out).abundances.values
    assert np.isnan(ab[:, 2, 2]).all() and np.isfinite(np.delete(ab.reshape(3, -1), 2 * 10 + 2, axis=1)).all()


def test_datasets_command_lists_names(capsys):
    assert main(["datasets"]) == 0
    assert "samson" in capsys.readouterr().out


def test_version_is_the_installed_one(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"egu-widgets {version('egu_widgets')}"
