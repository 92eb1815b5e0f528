"""The egu-widgets command line: results written on success, one clear line and no file on error."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.io

from egu_widgets import HyperCube, UnmixingResult
from egu_widgets.cli import main, merge_options
from egu_widgets.errors import InputError


def run_cli(*args):
    """Run in a subprocess, as a user would: exit code, stdout, stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "egu_widgets.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_main(capsys, *args):
    """Run ``main`` in this process: exit code, stdout, stderr (argparse's own errors exit via SystemExit)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
    args = ["unmix", str(tmp_path / "c.nc"), "--method", "fcls", "--endmembers-from", str(tmp_path / "em.mat")]
    assert main([*args, "--out", str(out)]) == 0
    assert UnmixingResult.open(out).rmse < 1e-6


def write_bad_inputs(tmp):
    """One file for each way a user's input can be wrong (the bad-input matrix)."""
    small_cube(tmp / "c.nc")
    scipy.io.savemat(tmp / "odd.mat", {"foo": np.ones(3)})
    img = np.ones((15, 16))
    img[0, 0] = np.nan
    scipy.io.savemat(tmp / "nan.mat", {"Y": img, "nRow": 4, "nCol": 4})
    good = np.random.default_rng(2).uniform(0.1, 0.9, size=(15, 20))  # 15 bands, 4 x 5 pixels
    scipy.io.savemat(tmp / "good.mat", {"Y": good, "nRow": 4, "nCol": 5})
    scipy.io.savemat(tmp / "nosize.mat", {"Y": good})
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
    (tmp / "link.nc").symlink_to(tmp / "c.nc")
    (tmp / "sub").mkdir()
    assert main(["unmix", str(tmp / "c.nc"), "-m", "vca-fcls", "--out", str(tmp / "em.nc")]) == 0


VCA = ["-p", "3", "--method", "vca-fcls"]
EGU = ["-p", "3", "--method", "egu-pw", "--epochs", "1"]

# (arguments after "unmix", a fragment of the one error line). --out defaults to {tmp}/r.nc.
BAD_INPUTS = [
    # readers
    (["{tmp}/missing.mat", *VCA], "no such file"),
    (["no-such-dataset", *VCA], "unknown dataset"),
    (["{tmp}/odd.mat", *VCA], "Keys found"),
    (["{tmp}/nan.mat", *VCA], "NaN"),
    (["{tmp}/inf.mat", *VCA], "NaN or Inf"),
    (["{tmp}/zeros.mat", *VCA], "all zeros"),
    (["{tmp}/negative.mat", *VCA], "negative"),
    (["{tmp}/raw.mat", *VCA], "raw integer"),
    (["{tmp}/dims.mat", *VCA], "expected (bands, pixels)"),
    (["{tmp}/size.mat", *VCA], "do not fill 4 rows x 5 cols"),
    (["{tmp}/good.mat", "--truth", "{tmp}/truth_bands.mat", *VCA], "bands"),
    (["{tmp}/good.mat", "--truth", "{tmp}/truth_pixels.mat", *VCA], "pixels"),
    (["{tmp}/empty.mat", *VCA], "empty"),
    (["{tmp}/cut.mat", *VCA], "truncated or corrupted"),
    (["{tmp}/cut.nc", *VCA], "truncated or corrupted"),
    (["{tmp}/lonely.hdr", *VCA], "data file"),
    (["{tmp}/good.mat", "--layout", "sideways", *VCA], "layout must be one of"),
    # image size and P
    (["{tmp}/nosize.mat", "--rows", "-5", "--cols", "-5", *VCA], "--rows must be a whole number >= 1"),
    (["{tmp}/nosize.mat", "--rows", "x", *VCA], "--rows must be a whole number >= 1"),
    (["{tmp}/c.nc", "-p", "1", "--method", "vca-fcls"], "whole number >= 2"),
    # P above the bands: refused by the P check, or earlier by the check of the data's rank
    (["{tmp}/c.nc", "-p", "99", "--method", "vca-fcls"], ("with 15 bands", "ask for fewer endmembers")),
    (["{tmp}/c.nc", "-p", "three", "--method", "vca-fcls"], "--endmembers takes a whole number or 'auto'"),
    (["{tmp}/c.nc", "--seed", "-1", *VCA], "seed must be a whole number >= 0"),
    (["{tmp}/c.nc", "--method", "no-such-method"], "invalid choice"),
    # output
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/no/such/dir/r.nc"], "does not exist"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/c.nc/r.nc"], "not a folder"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/r.png"], ".png is not a result format"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/result"], "no suffix is not a result format"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/c.nc"], "is the source file"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/link.nc"], "is the source file"),
    (["{tmp}/c.nc", *VCA, "--out", "{tmp}/sub/../c.nc"], "is the source file"),
    (["{tmp}/link.nc", *VCA, "--out", "{tmp}/c.nc"], "is the source file"),
    (["{tmp}/c.nc", "--method", "fcls", "--endmembers-from", "{tmp}/em.nc", "--out", "{tmp}/em.nc"], "endmembers file"),
    # the option path
    (["{tmp}/c.nc", *EGU, "-o", "seed=5"], "use --seed"),
    (["{tmp}/c.nc", *EGU, "-o", "callbacks=1"], "callbacks are Python objects"),
    (["{tmp}/c.nc", *EGU, "-o", "control=1"], "TrainingControl"),
    (["{tmp}/c.nc", *EGU, "-o", "progress=false"], "--quiet"),
    (["{tmp}/c.nc", *EGU, "-o", "n_endmembers=3"], "use --endmembers"),
    (["{tmp}/c.nc", *EGU, "-o", "batch_size=1"], "batch_size must be a whole number >= 2"),
    (["{tmp}/c.nc", *EGU, "-o", "epochs=4"], "--epochs 1 and -o epochs=4 disagree"),
    (["{tmp}/c.nc", *EGU, "-o", "lr=0.1", "-o", "lr=0.2"], "-o lr is given twice"),
    (["{tmp}/c.nc", *EGU, "--device", "cpu", "-o", "device=cuda"], "disagree"),
    (["{tmp}/c.nc", *EGU, "-o", "no_such_option=1"], "takes no option(s) ['no_such_option']"),
    (["{tmp}/c.nc", *EGU, "-o", "patch_size"], "KEY=VALUE"),
    (["{tmp}/c.nc", *VCA, "-o", "lam=1"], "takes no option(s) ['lam']"),
    (["{tmp}/c.nc", "--method", "fcls", "--endmembers-from", "{tmp}/em.nc", "-o", "endmembers=[1]"], "once"),
    (["{tmp}/c.nc", "--method", "fcls", "-o", "endmembers=abc"], "-o endmembers takes a JSON matrix"),
    (["{tmp}/c.nc", "--method", "fcls", "-o", "endmembers=[1,2]"], "-o endmembers takes a JSON matrix"),
    (["{tmp}/c.nc", *EGU, "-o", "patch_size=1"], "fewer than the 3 endmembers"),
    (["{tmp}/c.nc", *EGU, "-o", "patch_size=20"], "smaller than one 20x20 patch"),
    (["{tmp}/c.nc", *EGU, "--device", "cuda"], "CUDA"),
    (["{tmp}/c.nc", "-p", "3", "--method", "egu-pw", "-o", "epochs=1", "-o", "device=cuda"], "CUDA"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a[1:]) or a[0] for a, _ in BAD_INPUTS])
def test_bad_input_exits_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    write_bad_inputs(tmp_path)
    capsys.readouterr()
    before = (tmp_path / "c.nc").read_bytes()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.nc")]
    code, _, stderr = run_main(capsys, "unmix", *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    alternatives = message if isinstance(message, tuple) else (message,)
    assert len(lines) == 1 and lines[0].startswith("error: ") and any(m in lines[0] for m in alternatives), stderr
    assert not (tmp_path / "r.nc").exists() and (tmp_path / "c.nc").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_bad_input_in_a_real_process_is_one_line(tmp_path):
    write_bad_inputs(tmp_path)
    for args in (["{tmp}/nosize.mat", "--rows", "-5", "--cols", "-5"], ["{tmp}/c.nc", "-o", "seed=5"]):
        args = [a.replace("{tmp}", str(tmp_path)) for a in args]
        code, _, stderr = run_cli("unmix", *args, "-m", "vca-fcls", "--out", tmp_path / "r.nc")
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), stderr
    assert not (tmp_path / "r.nc").exists()


def test_library_warnings_never_add_lines_to_the_error(tmp_path, capsys, monkeypatch):
    import egu_widgets.cube

    def warn_then_fail(*args, **kwargs):
        warnings.warn("invalid value encountered in divide", RuntimeWarning, stacklevel=1)
        raise InputError("the cube is unusable")

    monkeypatch.setattr(egu_widgets.cube, "open_cube", warn_then_fail)
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "vca-fcls", "--out", tmp_path / "r.nc")
    assert code == 2 and stderr == "error: the cube is unusable\n"


def test_library_warnings_are_shown_after_a_run_that_succeeds(tmp_path, capsys, monkeypatch):
    import egu_widgets.cube

    small_cube(tmp_path / "c.nc")
    real = egu_widgets.cube.open_cube

    def warn_then_open(*args, **kwargs):
        for _ in range(2):  # the same warning twice is shown once
            warnings.warn("a library remark\nover two lines", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(egu_widgets.cube, "open_cube", warn_then_open)
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "vca-fcls", "--out", tmp_path / "r.nc")
    assert code == 0 and stderr == "warning: a library remark over two lines\n"


# ------------------------------------------------------------------ the option path


def test_flags_and_options_merge_with_the_given_value_winning():
    assert merge_options({"epochs": None, "device": None}, [("epochs", 3), ("device", "cuda")]) == {
        "epochs": 3,
        "device": "cuda",
    }
    assert merge_options({"epochs": 5, "device": None}, []) == {"epochs": 5}
    assert merge_options({"epochs": 3}, [("epochs", 3), ("epochs", 3)]) == {"epochs": 3}  # same value: fine
    with pytest.raises(InputError, match="--epochs 3 and -o epochs=4 disagree"):
        merge_options({"epochs": 3}, [("epochs", 4)])
    for name in ("seed", "callbacks", "control"):
        with pytest.raises(InputError, match=f"-o {name}=... is not a method option"):
            merge_options({}, [(name, 1)])


def test_option_epochs_alone_sets_the_epochs(tmp_path, capsys):
    """``-o epochs=2`` without ``--epochs`` trains 2 epochs (the flag's default used to override it)."""
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "r.nc"
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "egu-pw", "-o", "epochs=2", "-q", "--out", out)
    assert code == 0, stderr
    res = UnmixingResult.open(out)
    assert len(res.history["loss_total"]) == 2 and not res.partial


# ------------------------------------------------------------------ output formats


def test_tif_output_is_a_geotiff(tmp_path, capsys):
    rasterio = pytest.importorskip("rasterio")
    if not callable(getattr(UnmixingResult, "to_geotiff", None)):
        pytest.skip("this version has no GeoTIFF writer")
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "maps.tif"
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "vca-fcls", "--out", out)
    assert code == 0, stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file has no georeference: the cube had none
        with rasterio.open(out) as tif:
            assert tif.count >= 3 and tif.shape == (8, 10)


def test_zarr_output_is_a_result_store(tmp_path, capsys):
    pytest.importorskip("zarr")
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "maps.zarr"
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "vca-fcls", "-p", "3", "--out", out)
    assert code == 0, stderr
    back = UnmixingResult.open(out)
    assert back.n_endmembers == 3 and back.abundances.shape == (3, 8, 10)


def test_ensemble_flag_is_an_option_of_the_methods_that_train(tmp_path, capsys):
    small_cube(tmp_path / "c.nc")
    out = tmp_path / "r.nc"
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "-m", "vca-fcls", "--ensemble", "2", "--out", out)
    assert code == 2 and "takes no option(s) ['ensemble']" in stderr and not out.exists()
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "--ensemble", "1", "--out", out)
    assert code == 2 and "--ensemble" in stderr and not out.exists()
    code, _, stderr = run_main(capsys, "unmix", tmp_path / "c.nc", "--ensemble", "2", "-o", "ensemble=3", "--out", out)
    assert code == 2 and "disagree" in stderr


# ------------------------------------------------------------------ Ctrl-C


def _interrupt_a_training(tmp_path, *extra):
    """Start a long egu-pw run, send SIGINT once it has trained an epoch; exit code, stdout, stderr."""
    small_cube(tmp_path / "c.nc")
    cmd = [sys.executable, "-m", "egu_widgets.cli", "unmix", str(tmp_path / "c.nc"), "-m", "egu-pw"]
    cmd += ["--epochs", "100000", "-o", "num_threads=1", "--out", str(tmp_path / "r.nc"), *extra]
    # SIGINT at its default in the child, whatever this process inherited (a background job ignores it).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err = io.BytesIO()
    reader = threading.Thread(target=lambda: [err.write(b) for b in iter(lambda: proc.stderr.read1(4096), b"")])
    reader.start()
    deadline = time.monotonic() + 120
    try:
        # the bar shows a finished epoch: "3/100000", or with a stopping rule "epoch 3 of at most 100000"
        while not re.search(rb"\b[1-9]\d*/100000\b|epoch [1-9]\d* (of at most|\(bound) 100000", err.getvalue()):
            assert proc.poll() is None and time.monotonic() < deadline, err.getvalue().decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    return proc.returncode, out.decode(), err.getvalue().decode()


def test_ctrl_c_writes_nothing_and_exits_130(tmp_path):
    code, _, stderr = _interrupt_a_training(tmp_path)
    assert code == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: nothing was written") and "--keep-partial" in last, stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "r.nc").exists() and not list(tmp_path.glob(".*.tmp"))


def test_ctrl_c_with_keep_partial_writes_the_partial_result_and_exits_130(tmp_path):
    code, stdout, stderr = _interrupt_a_training(tmp_path, "--keep-partial")
    assert code == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"interrupted: kept the partial result in {tmp_path / 'r.nc'}"), stderr
    res = UnmixingResult.open(tmp_path / "r.nc")
    assert res.partial and "interrupted" in res.ds.attrs["stop_reason"]
    assert 1 <= len(res.history["loss_total"]) < 100000 and "[partial:" in stdout


# ------------------------------------------------------------------ progress, help, datasets, auto P


def test_progress_bar_draws_its_last_line_once():
    from egu_widgets.engine.events import TrainingEvent
    from egu_widgets.engine.progress import ConsoleProgress

    for final, done in (("end", 3), ("stop", 2)):
        out = io.StringIO()
        bar = ConsoleProgress(file=out, mininterval=0)
        bar.on_event(TrainingEvent("start", 0, 3, 0.0, info={"method": "egu-pw"}))
        for epoch in range(1, done + 1):
            bar.on_event(TrainingEvent("epoch", epoch, 3, 0.1 * epoch, losses={"total": 1.0}, learning_rate=0.1))
        bar.on_event(TrainingEvent(final, done, 3, 0.5, message="" if final == "end" else "stopped by a test"))
        frames = [f for f in re.split(r"[\r\n]", out.getvalue()) if f.strip()]
        if final == "end":  # the finished bar once (it was drawn three times: update, refresh, close)
            assert sum("3/3" in f for f in frames) == 1 and frames[-1].startswith("egu-pw: 100%"), frames
        else:  # the stopped bar once, then the reason
            assert sum("stopped" in f for f in frames) == 2 and frames[-2].startswith("egu-pw stopped:"), frames
            assert frames[-1] == "stop: stopped by a test"


def test_demo_prints_progress(tmp_path, capsys):
    code, stdout, stderr = run_main(capsys, "demo", "--out", tmp_path, "--epochs", "2")
    assert code == 0, stderr
    assert re.search(r"egu-pw: 100%.*2/2", stderr) and (tmp_path / "result.nc").exists()
    assert "wrote" in stdout


@pytest.mark.parametrize("command", ["unmix", "demo"])
def test_help_shows_the_default_method(capsys, command):
    from egu_widgets.methods import DEFAULT_METHOD

    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert f"(default: {DEFAULT_METHOD})" in " ".join(capsys.readouterr().out.split())


def test_datasets_marks_present_downloadable_missing(tmp_path, capsys, monkeypatch):
    from egu_widgets.cube import datasets, download

    (tmp_path / "data" / "samson").mkdir(parents=True)
    for rel in datasets.SAMSON_FILES:
        (tmp_path / "data" / rel).write_bytes(b"x")
    monkeypatch.setattr(download, "search_path", lambda: [tmp_path / "data"])
    monkeypatch.setattr(download, "download_dir", lambda: tmp_path / "cache")
    fake = datasets.DatasetEntry(
        "private-scene", "a scene with no public source", 3, lambda **kw: None, ("private/x.mat",)
    )
    monkeypatch.setitem(datasets.DATASETS, "private-scene", fake)
    assert main(["datasets"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.search(r"present\s+" + re.escape(str(tmp_path / "data" / "samson")), rows["samson"])
    assert re.search(r"downloadable\s+to " + re.escape(str(tmp_path / "cache" / "jasper_ridge")), rows["jasper-ridge"])
    assert re.search(r"missing\s+not found: private/x.mat", rows["private-scene"])
    assert "built in" in rows["demo"]


def test_endmembers_auto_prints_every_criterion(tmp_path, capsys):
    small_cube(tmp_path / "c.nc")
    for extra, criterion in (([], "rmt"), (["--endmembers-criterion", "hysime"], "hysime")):
        out = tmp_path / f"{criterion}.nc"
        code, stdout, stderr = run_main(
            capsys, "unmix", tmp_path / "c.nc", "-p", "auto", *extra, "-m", "vca-fcls", "--out", out
        )
        assert code == 0, stderr
        said = re.search(
            rf"^endmembers: P = (\d+) by {criterion} \(hysime (\d+), hfc (\d+), rmt (\d+)\)$", stdout, re.M
        )
        assert said, stdout
        chosen = int(said.group(1))
        assert chosen == int(said.group({"hysime": 2, "rmt": 4}[criterion]))
        assert UnmixingResult.open(out).n_endmembers == chosen


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


def test_errors_name_the_flags_where_the_library_names_its_keywords():
    from egu_widgets.cli import _in_flag_words

    message = (
        "pass invalid='mask' to drop them or invalid=\"fill\"; open it with negative='clip'; "
        "give layout='rows,cols,bands'; bundles={'labeller': 'nnls'} and label_scale='max' stay"
    )
    assert _in_flag_words(message) == (
        "pass --invalid mask to drop them or --invalid fill; open it with --negative clip; "
        "give --layout rows,cols,bands; bundles={'labeller': 'nnls'} and label_scale='max' stay"
    )
