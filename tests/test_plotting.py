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

from egu_widgets import plotting
from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.errors import DataFileError, InputError
from egu_widgets.metrics import sad
from egu_widgets.results import UnmixingResult

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(5)
    wl = np.linspace(400.0, 2500.0, 30)
    em = demo_endmembers(30, 3, wl)
    ab = rng.dirichlet(np.full(3, 0.7), size=(12, 14)).transpose(2, 0, 1)
    image = np.einsum("phw,pb->hwb", ab, em).astype(np.float32)
    return HyperCube.from_array(
        image, wavelengths=wl, endmembers=em, abundances=ab, endmember_names=["soil", "tree", "water"]
    )


@pytest.fixture(scope="module")
def result(cube):
    rng = np.random.default_rng(1)
    ab = cube.true_abundances + 0.2 * rng.random(cube.true_abundances.shape)
    ab /= ab.sum(axis=0)
    em = cube.true_endmembers * 0.9 + 0.03 * rng.random(cube.true_endmembers.shape)
    history = {
        "loss_total": np.geomspace(1, 0.01, 20),
        "loss_bundle": np.geomspace(0.5, 0.02, 20),
        "rmse": np.linspace(0.3, 0.05, 20),
        "lr": np.full(20, 1e-3),
    }
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


def test_training_figure_draws_metrics_evaluated_every_few_epochs():
    # RMSE evaluated every 8 epochs, NaN in between: a line through the NaNs would draw nothing
    rmse = np.full(40, np.nan)
    rmse[7::8] = np.linspace(0.3, 0.1, 5)
    fig = plotting.training_figure({"loss_total": np.linspace(1, 0.1, 40), "rmse": rmse})
    (line,) = fig.axes[1].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [8, 16, 24, 32, 40])
    np.testing.assert_allclose(line.get_ydata(), rmse[7::8])
    assert line.get_marker() == "."
    assert fig.axes[0].get_lines()[0].get_marker() in ("None", None, "")


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


# ------------------------------------------------------------------------------------- comparison figures
@pytest.fixture(scope="module")
def compared(cube, result):
    """Three results on one scene: FCLS and SUnSAL share spectra, EGU-Net-pw has its own."""
    classic = UnmixingResult.from_arrays(
        cube, cube.true_abundances, cube.true_endmembers * 1.1, method="vca-fcls", names=cube.endmember_names
    )
    same = UnmixingResult.from_arrays(
        cube, cube.true_abundances, cube.true_endmembers * 1.1, method="sunsal", names=cube.endmember_names
    )
    return {"vca-fcls": classic, "sunsal": same, "egu-pw": result}


def test_abundance_comparison_figure_shows_truth_then_each_method(cube, compared):
    fig = plotting.abundance_comparison_figure(cube, compared, title="scene: maps")
    images = _images(fig)
    assert len(images) == 3 * 4  # materials x (truth + three methods)
    np.testing.assert_allclose(images[0].get_array(), cube.true_abundances[0], rtol=1e-6)
    np.testing.assert_allclose(images[4].get_array(), cube.true_abundances[1], rtol=1e-6)  # row 2, truth
    np.testing.assert_allclose(images[3].get_array(), compared["egu-pw"].abundances.values[0], rtol=1e-6)
    assert all(im.get_clim() == (0.0, 1.0) for im in images)
    titles = [im.axes.get_title() for im in images[:4]]
    # labels from the method registry, without their parenthesised detail
    assert titles == [
        "ground truth",
        f"FCLS\nRMSE {compared['vca-fcls'].rmse:.4f}",
        f"SUnSAL\nRMSE {compared['sunsal'].rmse:.4f}",
        f"EGU-Net-pw\nRMSE {compared['egu-pw'].rmse:.4f}",
    ]
    assert [images[4 * r].axes.get_ylabel() for r in range(3)] == cube.endmember_names
    assert fig._suptitle.get_text() == "scene: maps"
    fig = plotting.abundance_comparison_figure(
        cube, compared, labels={"vca-fcls": "A (x)", "sunsal": "B", "egu-pw": "C"}
    )
    assert _images(fig)[1].axes.get_title().startswith("A\n")


def test_endmember_comparison_figure_merges_equal_spectra_and_scales_them(cube, compared):
    fig = plotting.endmember_comparison_figure(cube, compared)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == cube.endmember_names
    lines = {line.get_label().split(" (")[0]: line for line in axes[0].get_lines()}
    assert sorted(lines) == ["EGU-Net-pw", "FCLS = SUnSAL", "reference"]
    # a spectrum proportional to the reference is scaled back onto it
    np.testing.assert_allclose(lines["FCLS = SUnSAL"].get_ydata(), cube.true_endmembers[0], rtol=1e-6)
    assert lines["EGU-Net-pw"].get_linestyle() == "--" and lines["FCLS = SUnSAL"].get_linestyle() == "-"
    fig = plotting.endmember_comparison_figure(cube, compared, trained=())
    assert all(line.get_linestyle() == "-" for line in fig.axes[0].get_lines())


def test_training_comparison_figure_draws_each_trained_method(result):
    other = {k: np.asarray(v) * 2 for k, v in result.history.items()}
    fig = plotting.training_comparison_figure(
        {"egu-pw": [(1, result.history), (0, other)], "vca-fcls": []}, title="scene: training"
    )
    assert len(fig.axes) == 2  # one column: the method without history is left out
    losses, rmse = fig.axes
    assert losses.get_title() == "EGU-Net-pw: losses (seed 1)" and losses.get_yscale() == "log"
    assert [line.get_label() for line in rmse.get_lines()] == ["seed 0", "seed 1"]
    np.testing.assert_allclose(rmse.get_lines()[1].get_ydata(), result.history["rmse"])


def test_summary_figure_bars_are_medians_with_the_range():
    fig = plotting.summary_figure(
        {"a": {"vca-fcls": [0.1, 0.3, 0.2], "egu-pw": [0.05, np.nan], "sunsal": []}, "b": {"vca-fcls": [0.4]}},
        title="summary",
    )
    left, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["FCLS", "EGU-Net-pw"]
    assert [bar.get_height() for bar in left.patches] == pytest.approx([0.2, 0.05])
    whiskers = left.containers[0].lines[2][0].get_segments()
    assert [tuple(seg[:, 1]) for seg in whiskers] == [pytest.approx((0.1, 0.3)), pytest.approx((0.05, 0.05))]
    assert left.get_title() == "a" and right.get_title() == "b" and len(right.patches) == 1


def test_network_figure_draws_a_traced_graph_or_a_model():
    pytest.importorskip("torch")
    from egu_widgets.figure_data import network_graph
    from egu_widgets.reproduce import engine_model

    model = engine_model("pw", 12, 3)
    graph = network_graph(model)
    texts = [t.get_text() for t in plotting.network_figure(graph, title="net").axes[0].texts]
    assert "linear 12→256" in texts and "endmember stream" in texts and "unmixing stream" in texts
    again = [t.get_text() for t in plotting.network_figure(model, title="net").axes[0].texts]
    assert again == texts


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
