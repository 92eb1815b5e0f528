"""Static matplotlib figures (paper/CLI): content, scales, titles, files, and headless safety."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from egu_widgets import plotting  # noqa: E402
from egu_widgets.cube import HyperCube  # noqa: E402
from egu_widgets.cube.synthetic import demo_endmembers  # noqa: E402
from egu_widgets.errors import DataFileError, InputError  # noqa: E402
from egu_widgets.metrics import sad  # noqa: E402
from egu_widgets.results import UnmixingResult  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(5)
    wl = np.linspace(400.0, 2500.0, 30)
    em = demo_endmembers(30, 3, wl)
    ab = rng.dirichlet(np.full(3, 0.7), size=(12, 14)).transpose(2, 0, 1)
    image = np.einsum("phw,pb->hwb", ab, em).astype(np.float32)
    return HyperCube.from_array(image, wavelengths=wl, endmembers=em, abundances=ab, endmember_names=["soil", "tree", "water"])


@pytest.fixture(scope="module")
def result(cube):
    rng = np.random.default_rng(1)
    ab = cube.true_abundances + 0.2 * rng.random(cube.true_abundances.shape)
    ab /= ab.sum(axis=0)
    em = cube.true_endmembers * 0.9 + 0.03 * rng.random(cube.true_endmembers.shape)
    history = {"loss_total": np.geomspace(1, 0.01, 20), "loss_bundle": np.geomspace(0.5, 0.02, 20), "rmse": np.linspace(0.3, 0.05, 20), "lr": np.full(20, 1e-3)}
    return UnmixingResult.from_arrays(cube, ab, em, method="egu-pw", history=history, names=cube.endmember_names)


def _images(fig):
    return [ax.images[0] for ax in fig.axes if ax.images]


def test_abundance_figure_rows_scales_and_errors(cube, result):
    fig = plotting.abundance_figure(result, cube)
    images = _images(fig)
    assert len(images) == 9
    for im in images[:6]:
        assert im.get_clim() == (0.0, 1.0)
    lows_highs = {im.get_clim() for im in images[6:]}
    assert len(lows_highs) == 1
    low, high = lows_highs.pop()
    err = result.abundances.values - cube.true_abundances
    assert low == -high and high >= np.abs(err).max() - 1e-6
    np.testing.assert_allclose(images[0].get_array(), result.abundances.values[0], rtol=1e-6)
    np.testing.assert_allclose(images[4].get_array(), cube.true_abundances[1], rtol=1e-6)
    np.testing.assert_allclose(images[8].get_array(), err[2], atol=1e-6)
    titles = [im.axes.get_title() for im in images]
    assert titles[:3] == ["soil", "tree", "water"] and titles[3] == "truth: soil"
    rmse_water = np.sqrt(np.mean(err[2] ** 2))
    assert titles[8] == f"error: water\nRMSE {rmse_water:.4f}"
    assert f"abundance RMSE {result.rmse:.4f}" in fig._suptitle.get_text()
    assert len([ax for ax in fig.axes if not ax.images]) == 3  # one colour bar per row


def test_abundance_figure_without_truth(cube, result):
    bare = cube.without_truth()
    res = UnmixingResult.from_arrays(bare, result.abundances.values, method="fcls", score=False)
    fig = plotting.abundance_figure(res, bare)
    assert len(_images(fig)) == 3


def test_endmember_figure_sad_titles_and_lines(cube, result):
    fig = plotting.endmember_figure(result, cube)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    expected = sad(result.endmembers.values, cube.true_endmembers)
    for p, ax in enumerate(axes):
        assert ax.get_title() == f"{cube.endmember_names[p]} — SAD {expected[p]:.2f}°"
        lines = {line.get_label(): line for line in ax.get_lines()}
        np.testing.assert_allclose(lines["estimate"].get_ydata(), result.endmembers.values[p])
        np.testing.assert_allclose(lines["truth"].get_ydata(), cube.true_endmembers[p])
        np.testing.assert_allclose(lines["truth"].get_xdata(), cube.wavelengths)
        assert ax.get_xlabel() == "wavelength (nm)"
    assert f"mean SAD {np.mean(expected):.2f}°" in fig._suptitle.get_text()


def test_endmember_figure_bundle_envelope(cube, result):
    spectra = np.concatenate([cube.true_endmembers[p] * np.linspace(0.8, 1.2, 5)[:, None] for p in range(3)])
    labels = np.repeat(np.eye(3), 5, axis=0)
    bundles = SimpleNamespace(spectra=spectra, labels=labels, reference=cube.true_endmembers)
    fig = plotting.endmember_figure(result, cube, bundles=bundles, ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and len(fig.axes) == 4  # 2 x 2 grid, the spare panel hidden
    band = visible[1].collections[0]
    path = band.get_paths()[0].vertices
    assert path[:, 1].max() == pytest.approx((cube.true_endmembers[1] * 1.2).max())
    assert path[:, 1].min() == pytest.approx((cube.true_endmembers[1] * 0.8).min())
    assert "bundle min-max (5)" in [t.get_text() for t in visible[0].get_legend().get_texts()]


def test_training_figure_panels_and_log_scale(result):
    fig = plotting.training_figure(result)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["losses", "metrics", "learning rate"]
    losses = fig.axes[0]
    assert losses.get_yscale() == "log"
    assert {line.get_label() for line in losses.get_lines()} == {"total", "bundle"}
    np.testing.assert_array_equal(losses.get_lines()[0].get_xdata(), np.arange(1, 21))
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["abundance RMSE"]
    fig = plotting.training_figure({"loss_total": [0.0, 1.0, 0.5]})
    assert fig.axes[0].get_yscale() == "linear" and len(fig.axes) == 1
    with pytest.raises(InputError, match="no training history"):
        plotting.training_figure({})


def test_save_figures_writes_every_figure(cube, result, tmp_path):
    paths = plotting.save_figures(result, cube, tmp_path, formats=("png", "pdf"), prefix="run1-")
    names = sorted(p.name for p in paths)
    assert names == sorted(f"run1-{n}.{f}" for n in ("abundances", "endmembers", "training") for f in ("png", "pdf"))
    for p in paths:
        head = p.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else head.startswith(b"%PDF")
    assert sorted(os.listdir(tmp_path)) == names  # no temporary files left behind
    with pytest.raises(InputError, match="does not exist"):
        plotting.save_figures(result, cube, tmp_path / "missing")
    with pytest.raises(InputError, match="no extension"):
        plotting.save_figure(plotting.training_figure(result), tmp_path / "noext")
    with pytest.raises(DataFileError):
        plotting.save_figure(plotting.training_figure(result), tmp_path / "missing" / "f.png")


def test_save_figures_without_history_or_endmembers(cube, result, tmp_path):
    res = UnmixingResult.from_arrays(cube, result.abundances.values, method="fcls", names=cube.endmember_names)
    paths = plotting.save_figures(res, None, tmp_path)
    assert [p.name for p in paths] == ["abundances.png"]


def test_figures_are_headless_and_never_use_pyplot(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from egu_widgets import plotting\n"
        "from egu_widgets.cube import make_demo\n"
        "from egu_widgets.results import UnmixingResult\n"
        "assert 'matplotlib' not in sys.modules\n"
        "cube = make_demo(10, 10, 12, 2)\n"
        "res = UnmixingResult.from_arrays(cube, cube.true_abundances, cube.true_endmembers, method='t', history={'loss_total': [1.0, 0.5]})\n"
        f"print(len(plotting.save_figures(res, cube, {str(tmp_path)!r})))\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "False"]
