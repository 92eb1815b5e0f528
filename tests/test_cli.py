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
    proc = subprocess.run([sys.executable, "-m", "egu_widgets.cli", *map(str, args)], capture_output=True, text=True, timeout=300)
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
    assert main(["unmix", str(tmp_path / "c.nc"), "--method", "fcls", "--endmembers-from", str(tmp_path / "em.mat"), "--out", str(out)]) == 0
    assert UnmixingResult.open(out).rmse < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["unmix", "{tmp}/missing.mat", "-p", "3", "--method", "vca-fcls"], "no such file"),
        (["unmix", "no-such-dataset", "-p", "3", "--method", "vca-fcls"], "unknown dataset"),
        (["unmix", "{tmp}/odd.mat", "-p", "3", "--method", "vca-fcls"], "Keys found"),
        (["unmix", "{tmp}/nan.mat", "-p", "3", "--method", "vca-fcls"], "NaN"),
        (["unmix", "{tmp}/c.nc", "-p", "1", "--method", "vca-fcls"], "at least 2"),
        (["unmix", "{tmp}/c.nc", "-p", "99", "--method", "vca-fcls"], "bands"),
        (["unmix", "{tmp}/c.nc", "-p", "3", "--method", "vca-fcls", "--out", "{tmp}/no/such/dir/r.nc"], "does not exist"),
    ],
)
def test_bad_input_exits_with_one_line_and_writes_nothing(tmp_path, args, message):
    small_cube(tmp_path / "c.nc")
    scipy.io.savemat(tmp_path / "odd.mat", {"foo": np.ones(3)})
    img = np.ones((15, 16))
    img[0, 0] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"Y": img, "nRow": 4, "nCol": 4})
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.nc")]
    code, stdout, stderr = run_cli(*args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "r.nc").exists()


def test_nan_pixels_masked_on_request(tmp_path):
    small_cube(tmp_path / "c.nc", nan=True)
    out = tmp_path / "r.nc"
    assert main(["unmix", str(tmp_path / "c.nc"), "--method", "fcls", "--out", str(out)]) == 0
    ab = UnmixingResult.open(out).abundances.values
    assert np.isnan(ab[:, 2, 2]).all() and np.isfinite(np.delete(ab.reshape(3, -1), 2 * 10 + 2, axis=1)).all()


def test_datasets_command_lists_names(capsys):
    assert main(["datasets"]) == 0
    assert "samson" in capsys.readouterr().out
