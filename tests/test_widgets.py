"""Headless tests of the notebook views: build on tiny cubes, drive them, assert on the models and
on the rendered Bokeh data sources. The browser tests are in tests/browser/."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("holoviews")
pytest.importorskip("jupyter_bokeh")

from egu_widgets.cube import HyperCube
from egu_widgets.cube.synthetic import demo_endmembers
from egu_widgets.engine.events import TrainingControl, TrainingEvent
from egu_widgets.engine.progress import ConsoleProgress
from egu_widgets.errors import InputError, MissingDependencyError, TrainingError
from egu_widgets.results import UnmixingResult
from egu_widgets.widgets import (
    AbundanceInspector,
    EndmemberPairs,
    TrainingDashboard,
    abundance_inspector,
    endmember_pairs,
    progress_callback,
    training_dashboard,
)

sys.path.insert(0, str(Path(__file__).parent / "browser"))
from fake_training import nmf_fit

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- fixtures
def _tiny_cube(height=16, width=20, n_bands=24, n_em=3, seed=1, wavelengths=True):
    """Mixed pixels everywhere (Dirichlet abundances), demo spectra, a little noise."""
    rng = np.random.default_rng(seed)
    wl = np.linspace(400.0, 2500.0, n_bands)
    em = demo_endmembers(n_bands, n_em, wl)
    ab = rng.dirichlet(np.full(n_em, 0.7), size=(height, width)).transpose(2, 0, 1)
    image = np.einsum("phw,pb->hwb", ab, em) + rng.normal(0, 0.002, (height, width, n_bands))
    return HyperCube.from_array(
        np.clip(image, 0, None).astype(np.float32),
        wavelengths=wl if wavelengths else None,
        endmembers=em,
        abundances=ab,
        endmember_names=[f"material {chr(65 + k)}" for k in range(n_em)],
        name="tiny",
    )


@pytest.fixture(scope="module")
def cube():
    return _tiny_cube()


def _noisy_result(cube, *, endmembers=True, scale=1.1, seed=0, score=False):
    rng = np.random.default_rng(seed)
    ab = cube.true_abundances + 0.1 * rng.random(cube.true_abundances.shape)
    ab /= ab.sum(axis=0)
    em = cube.true_endmembers * scale + 0.02 * rng.random(cube.true_endmembers.shape) if endmembers else None
    return UnmixingResult.from_arrays(cube, ab, em, method="test", score=score, names=cube.endmember_names)


@pytest.fixture(scope="module")
def result(cube):
    return _noisy_result(cube)


def _events(
    n_epochs=5, *, control=None, losses=lambda k: {"total": 1.0 / k, "reconstruction": 0.5 / k}, rmse=True, lr=True
):
    control = control or TrainingControl()
    yield TrainingEvent("start", 0, n_epochs, 0.0, control=control, info={"method": "fake", "device": "cpu"})
    for k in range(1, n_epochs + 1):
        yield TrainingEvent(
            "epoch",
            k,
            n_epochs,
            0.5 * k,
            losses=losses(k),
            metrics={"rmse": 0.2 / k} if rmse else {},
            learning_rate=1e-3 / k if lr else None,
            control=control,
        )


def _curve_sources(plots):
    """{label: (epochs, values)} for every curve of a rendered HoloViews plot."""
    out = {}
    for p in plots.subplots("CurvePlot"):
        data = p.handles["source"].data
        keys = [k for k in data if k != "epoch"]
        for k in keys[1:]:  # hover copies of the value column must stay identical to it
            np.testing.assert_array_equal(np.asarray(data[k]), np.asarray(data[keys[0]]))
        out[p.current_frame.label] = (np.asarray(data["epoch"]), np.asarray(data[keys[0]]))
    return out


def _state(dash):
    return dash.wdict["state"].value.split("data-state='")[1].split("'")[0]


# ---------------------------------------------------------------------------------- packaging
BLOCK_WIDGETS = r"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"ipywidgets", "holoviews", "bokeh", "jupyter_bokeh", "panel"}:
            raise ImportError(f"No module named {name!r} (blocked for the test)")
sys.meta_path.insert(0, Block())
"""


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_core_imports_no_widget_library():
    out = _run_python(
        "import sys, egu_widgets, egu_widgets.results, egu_widgets.engine.events, egu_widgets.plotting, egu_widgets.widgets\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'ipywidgets','holoviews','bokeh','jupyter_bokeh','IPython','panel','matplotlib'})\n"
        "print(bad)"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_widget_extra_views_say_what_to_install():
    out = _run_python(
        BLOCK_WIDGETS + "import egu_widgets, egu_widgets.widgets as W\n"
        "from egu_widgets.errors import MissingDependencyError\n"
        "for name in ['TrainingDashboard', 'training_dashboard', 'EndmemberPairs', 'abundance_inspector']:\n"
        "    try:\n"
        "        getattr(W, name)\n"
        "    except MissingDependencyError as e:\n"
        "        print('MDE', e)\n"
        "    else:\n"
        "        print('NO ERROR', name)\n"
        "cb = W.progress_callback(mode='console')\n"
        "print(type(cb).__name__)\n"
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 5
    assert all(line.startswith("MDE") and 'pip install "egu_widgets[widgets]"' in line for line in lines[:4]), lines
    assert lines[4] == "ConsoleProgress"


def test_missing_dependency_error_is_an_import_error(monkeypatch):
    from egu_widgets.widgets import _deps

    monkeypatch.setattr(_deps, "_checked", False)
    monkeypatch.setitem(_deps.WIDGET_MODULES, "egu_no_such_module_xyz", "egu-no-such-dist")
    with pytest.raises(MissingDependencyError, match=r'egu-no-such-dist.*pip install "egu_widgets\[widgets\]"') as info:
        _deps.require_widgets()
    assert isinstance(info.value, ImportError)


def test_bokehjs_is_loaded_inline_without_extension_scripts(monkeypatch):
    """jupyter_bokeh needs BokehJS on the page; Panel's bundle (imported by HoloViews) would make
    the loader wait forever for a script JupyterLab does not serve, so only Bokeh's own goes."""
    import IPython.display

    from egu_widgets.widgets import _deps, _view

    published = []
    monkeypatch.setattr(_view, "in_notebook", lambda: True)
    monkeypatch.setattr(_view, "_BOKEHJS_LOADED", False)
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, **kw: published.append(data))
    _view.ensure_bokehjs()
    _view.ensure_bokehjs()  # once per kernel
    assert len(published) == 1
    js = published[0]["application/vnd.bokehjs_load.v0+json"]
    assert "BEGIN bokeh.min.js" in js and "BEGIN bokeh-widgets.min.js" in js
    assert "es-module-shims" not in js and "panel.min.js" not in js
    assert "const js_urls = [];" in js  # nothing to fetch: the loader runs at once
    assert _deps.in_notebook() is False  # the real check: pytest is no kernel


# ---------------------------------------------------------------------------------- builders
@pytest.mark.parametrize("which", ["dashboard", "pairs", "inspector"])
def test_builders_return_widget_and_named_parts(which, cube, result):
    if which == "dashboard":
        built = training_dashboard("run", display=False)
        names = {"progress", "stop", "status", "state", "values", "note", "stop_note", "error", "plots", "title"}
    elif which == "pairs":
        built = endmember_pairs(result, cube, display=False)
        names = {"selector", "prev", "next", "normalise", "title", "plot"}
    else:
        built = abundance_inspector(result, cube, display=False)
        names = {"row", "col", "info", "maps", "probe", "band", "band_image"}
    assert set(built) == {"widget", "wdict", "view"}
    assert set(built["wdict"]) == names
    view = built["view"]
    assert view.widget is built["widget"]
    bundle = view._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == built["widget"].model_id
    # every named part is inside the container (reachable through children)
    seen, todo = set(), [built["widget"]]
    while todo:
        node = todo.pop()
        seen.add(id(node))
        todo.extend(getattr(node, "children", ()))
    assert all(id(child) in seen for child in built["wdict"].values())


# ---------------------------------------------------------------------------------- dashboard
def test_dashboard_progress_curves_and_values():
    dash = TrainingDashboard(update_every=0.0)
    for event in _events(4):
        dash.on_event(event)
        dash.flush()
    wd = dash.wdict
    assert (wd["progress"].value, wd["progress"].max) == (4, 4)
    assert "epoch 4 of 4" in wd["status"].value and "elapsed 0:02" in wd["status"].value
    assert "remaining ~0:00" in wd["status"].value
    assert (
        "total 0.25" in wd["values"].value
        and "abundance RMSE 0.05" in wd["values"].value
        and "lr 0.00025" in wd["values"].value
    )
    curves = _curve_sources(dash.plots)
    assert set(curves) == {"total", "reconstruction", "rmse", "lr"}
    np.testing.assert_array_equal(curves["total"][0], [1, 2, 3, 4])
    np.testing.assert_allclose(curves["reconstruction"][1], [0.5, 0.25, 0.5 / 3, 0.125])
    np.testing.assert_allclose(curves["rmse"][1], [0.2, 0.1, 0.2 / 3, 0.05])
    np.testing.assert_allclose(curves["lr"][1], [1e-3, 5e-4, 1e-3 / 3, 2.5e-4])
    assert _state(dash) == "running"
    # the axes frame the data: x spans the planned epochs, y every value drawn
    for plot in dash.plots.subplots("CurvePlot"):
        fig = plot.handles["plot"]
        assert (fig.x_range.start, fig.x_range.end) == (0.0, 4.0)  # 1.5 x 4 epochs, capped at the 4 planned
        ys = np.asarray(plot.handles["source"].data[[k for k in plot.handles["source"].data if k != "epoch"][0]])
        assert fig.y_range.start < ys.min() and ys.max() < fig.y_range.end
    # losses are all positive: the loss axis is logarithmic
    loss_plot = [p for p in dash.plots.subplots("CurvePlot") if p.current_frame.label == "total"][0]
    assert type(loss_plot.handles["plot"].y_scale).__name__ == "LogScale"


def test_dashboard_reads_the_trainers_history_instead_of_copying_it():
    from dataclasses import replace

    from egu_widgets.engine.history import TrainingHistory

    history = TrainingHistory()
    dash = TrainingDashboard(update_every=0.0)
    for event in _events(4):
        event = replace(event, history=history)
        history.on_event(event)  # the trainer records the epoch, then tells its callbacks
        dash.on_event(event)
    dash.flush()
    assert len(dash._own_history) == 0  # nothing recorded twice
    assert dash.history == {k: v.tolist() for k, v in history.table().items()}
    curves = _curve_sources(dash.plots)
    np.testing.assert_array_equal(curves["total"][0], [1, 2, 3, 4])
    np.testing.assert_allclose(curves["rmse"][1], history.table()["metric:rmse"])


def test_dashboard_remaining_time_estimate():
    dash = TrainingDashboard()
    control = TrainingControl()
    dash.on_event(TrainingEvent("start", 0, 10, 0.0, control=control))
    dash.on_event(TrainingEvent("epoch", 2, 10, 30.0, losses={"total": 1.0}, control=control))
    dash.flush()
    assert "elapsed 0:30" in dash.wdict["status"].value
    assert "remaining ~2:00" in dash.wdict["status"].value  # 15 s/epoch x 8 epochs left


def test_dashboard_throttles_redraws_but_ends_complete():
    dash = TrainingDashboard(update_every=30.0)
    for event in _events(200):
        dash.on_event(event)
    assert dash.redraws <= 2  # the start event, maybe the first epoch; then nothing for 30 s
    assert dash.wdict["progress"].value < 200
    dash.on_event(TrainingEvent("end", 200, 200, 100.0))
    assert dash.wdict["progress"].value == 200
    assert dash.wdict["progress"].bar_style == "success"
    assert _state(dash) == "finished"
    epochs, values = _curve_sources(dash.plots)["total"]
    np.testing.assert_array_equal(epochs, np.arange(1, 201))
    np.testing.assert_allclose(values, 1.0 / np.arange(1, 201))
    assert dash.wdict["stop"].disabled


def test_dashboard_keeps_within_its_cpu_budget(monkeypatch):
    """Slow redraws (50 ms of CPU each) happen only as often as the budget pays for them."""
    dash = TrainingDashboard(update_every=0.0, overhead_budget=0.05)
    real_draw = dash._draw

    def slow_draw(snapshot):
        spin_until = time.thread_time() + 0.05  # CPU time: the budget counts CPU, not waiting
        while time.thread_time() < spin_until:
            pass
        return real_draw(snapshot)

    monkeypatch.setattr(dash, "_draw", slow_draw)
    dash.on_event(TrainingEvent("start", 0, 100, 0.0))
    for k in range(1, 101):  # 10 s of training, reported 0.1 s per epoch
        dash.on_event(TrainingEvent("epoch", k, 100, 0.1 * k, losses={"total": 1.0 / k}))
    allowance = 0.05 * 10.0 + dash.scheduler.grace
    assert dash.scheduler.spent <= allowance + 0.05 + 0.02  # at most one redraw over, plus the events
    assert 5 <= dash.redraws <= 12  # about one per second of training, not one per epoch
    dash.on_event(TrainingEvent("end", 100, 100, 10.0))
    assert dash.wdict["progress"].value == 100 and _state(dash) == "finished"


def test_dashboard_stop_button_requests_stop_through_the_control():
    dash = TrainingDashboard(update_every=0.0)
    control = TrainingControl()
    events = list(_events(5, control=control))
    for event in events[:3]:
        dash.on_event(event)
    dash.wdict["stop"].click()
    assert control.stop_requested and control.reason == "stopped from the dashboard"
    assert dash.wdict["stop"].disabled and dash.wdict["stop"].description.startswith("Stopping")
    assert _state(dash) == "stopping"
    dash.on_event(TrainingEvent("stop", 2, 5, 1.0, message="stopped from the dashboard", control=control))
    assert _state(dash) == "stopped"
    assert dash.wdict["progress"].bar_style == "warning"
    assert "stopped from the dashboard" in dash.wdict["state"].value
    assert dash.wdict["progress"].value == 2


def test_dashboard_stop_before_the_first_event_is_applied_when_training_starts():
    dash = TrainingDashboard()
    dash.wdict["stop"].click()
    control = TrainingControl()
    dash.on_event(TrainingEvent("start", 0, 5, 0.0, control=control))
    assert control.stop_requested


def test_dashboard_failed_state_is_visible():
    dash = TrainingDashboard()
    for event in list(_events(3))[:3]:
        dash.on_event(event)
    dash.on_event(TrainingEvent("fail", 2, 3, 1.0, message="the loss became NaN at epoch 3"))
    wd = dash.wdict
    assert _state(dash) == "failed"
    assert wd["progress"].bar_style == "danger"
    assert wd["error"].layout.display is None and "the loss became NaN at epoch 3" in wd["error"].value
    assert "FAILED" in wd["state"].value
    assert wd["stop"].disabled


def test_dashboard_log_axis_only_for_positive_losses_and_new_terms_rebuild():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 4, 0.0))
    dash.on_event(TrainingEvent("epoch", 1, 4, 0.1, losses={"total": 0.0}))
    dash.flush()
    plot = dash.plots.subplots("CurvePlot")[0]
    assert type(plot.handles["plot"].y_scale).__name__ == "LinearScale"
    first = dash.plots
    dash.on_event(TrainingEvent("epoch", 2, 4, 0.2, losses={"total": 0.5, "bundle": 0.1}))
    dash.flush()
    assert dash.plots is not first and dash.wdict["plots"].children == (dash.plots.widget,)
    curves = _curve_sources(dash.plots)
    np.testing.assert_array_equal(curves["total"][1], [0.0, 0.5])
    assert np.isnan(curves["bundle"][1][0]) and curves["bundle"][1][1] == 0.1


def test_dashboard_draws_the_curves_from_the_first_epoch():
    dash = TrainingDashboard()  # default throttle and budget
    dash.on_event(TrainingEvent("start", 0, 200, 0.0))
    dash.on_event(TrainingEvent("epoch", 1, 200, 0.1, losses={"total": 1.0}))
    assert dash.plots is not None, "no curves after the first epoch"
    assert dash.wdict["plots"].children == (dash.plots.widget,)
    np.testing.assert_array_equal(_curve_sources(dash.plots)["total"][0], [1])
    for k in range(2, 201):  # 0.1 s per epoch; the RMSE is evaluated every 5 epochs from epoch 5
        metrics = {"rmse": 0.5 / k} if k % 5 == 0 else {}
        dash.scheduler.next_at = 0.0  # the time throttle passed (the budget still applies)
        dash.on_event(TrainingEvent("epoch", k, 200, 0.1 * k, losses={"total": 1.0 / k}, metrics=metrics))
    # drawing the curves is not charged: the budget bounds the redraws that extend them
    assert dash.scheduler.build_cpu_seconds > 0
    assert dash.scheduler.spent <= 0.04 * 20.0 + dash.scheduler.grace + 0.05
    dash.on_event(TrainingEvent("end", 200, 200, 20.0))
    curves = _curve_sources(dash.plots)
    assert set(curves) == {"total", "rmse"}
    np.testing.assert_array_equal(curves["total"][0], np.arange(1, 201))
    np.testing.assert_array_equal(curves["rmse"][0], np.arange(5, 201, 5))


def test_dashboard_short_run_has_its_curves_while_it_runs():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 3, 0.0))
    for k in range(1, 4):
        dash.on_event(TrainingEvent("epoch", k, 3, 0.1 * k, losses={"total": 1.0 / k}))
        assert dash.plots is not None and len(_curve_sources(dash.plots)["total"][0]) == k
    dash.on_event(TrainingEvent("end", 3, 3, 0.3))
    assert len(_curve_sources(dash.plots)["total"][0]) == 3


def test_dashboard_panels_share_one_x_range_and_keep_every_point_in_view():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 300, 0.0))
    rmse = []
    for k in range(1, 121):
        # the RMSE rises at first, then falls; evaluated every 8 epochs only
        metrics = {"rmse": 0.05 + 0.3 * np.sin(k / 40.0)} if k % 8 == 0 else {}
        rmse += list(metrics.values())
        losses = {"total": 1.0 / k + 0.01 * k, "reconstruction": 0.5 / k}
        dash.on_event(TrainingEvent("epoch", k, 300, 0.1 * k, losses=losses, metrics=metrics, learning_rate=1e-3 * k))
        figures = {id(p.handles["plot"].x_range) for p in dash.plots.subplots("CurvePlot")}
        assert len(figures) == 1, "the panels show different epoch ranges"
        for plot in dash.plots.subplots("CurvePlot"):
            fig, data = plot.handles["plot"], plot.handles["source"].data
            ys = np.asarray(data[[c for c in data if c != "epoch"][0]], dtype=float)
            xs = np.asarray(data["epoch"], dtype=float)
            assert fig.x_range.start <= xs.min() and xs.max() <= fig.x_range.end
            ys = ys[np.isfinite(ys)]
            assert fig.y_range.start <= ys.min() and ys.max() <= fig.y_range.end, plot.current_frame.label
    assert max(rmse) > 0.3  # the metric did leave its first range


def test_dashboard_explains_the_weight_decay_term():
    dash = TrainingDashboard(update_every=0.0)
    note = dash.wdict["note"]
    dash.on_event(TrainingEvent("start", 0, 5, 0.0))
    dash.on_event(TrainingEvent("epoch", 1, 5, 0.1, losses={"total": 1.0, "reconstruction": 0.5}))
    assert note.layout.display == "none"
    dash.on_event(TrainingEvent("epoch", 2, 5, 0.2, losses={"total": 9.0, "reconstruction": 0.4, "weight_decay": 8.6}))
    assert note.layout.display is None and "weight_decay" in note.value and "rise" in note.value


def test_dashboard_x_axis_grows_with_the_run():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 1000, 0.0))
    ends = []
    for k in range(1, 61):
        dash.on_event(TrainingEvent("epoch", k, 1000, 0.1 * k, losses={"total": 1.0 / k}))
        dash.flush()
        x_range = dash.plots.subplots("CurvePlot")[0].handles["plot"].x_range
        assert x_range.start == 0 and x_range.end >= k
        ends.append(x_range.end)
    assert ends[0] == 10 and ends[-1] < 1000  # not squeezed into the left of a 1000-epoch axis
    assert len(set(ends)) <= 6  # grows in a few steps, not at every epoch


def test_dashboard_metrics_evaluated_every_few_epochs_draw_a_connected_curve():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 9, 0.0))
    for k in range(1, 10):
        metrics = {"rmse": 0.1 * k} if k % 3 == 0 else {}
        dash.on_event(TrainingEvent("epoch", k, 9, 0.1 * k, losses={"total": 1.0 / k}, metrics=metrics))
        if k in (4, 9):
            dash.flush()
    curves = _curve_sources(dash.plots)
    np.testing.assert_array_equal(curves["rmse"][0], [3, 6, 9])
    np.testing.assert_allclose(curves["rmse"][1], [0.3, 0.6, 0.9])
    np.testing.assert_array_equal(curves["total"][0], np.arange(1, 10))


def test_dashboard_resends_whole_plots_after_building_and_at_the_end():
    """jupyter_bokeh drops patches sent before the page renders a plot: resend it whole later."""
    dash = TrainingDashboard(update_every=0.0)
    events = list(_events(7))
    for event in events[:3]:
        dash.on_event(event)
    dash.flush()
    bundles = []
    real_resync = dash.plots.resync
    dash.plots.resync = lambda: (real_resync(), bundles.append(json.dumps(dash.plots.widget.render_bundle)))
    dash.on_event(events[3])
    dash.flush()  # just built: patches only, the page may not even have the plot yet
    assert bundles == []
    dash.layout.built_at -= 2.0
    dash.on_event(events[4])
    dash.flush()  # 2 s after the build: the whole document again, with epoch 4
    assert len(bundles) == 1 and "total" in bundles[0]
    dash.on_event(events[5])
    dash.flush()
    assert len(bundles) == 1  # once is enough
    dash.on_event(TrainingEvent("end", 5, 5, 3.0))
    assert len(bundles) == 2  # and once more at the end
    dash._dirty = True
    dash.flush()
    assert len(bundles) == 2


def test_dashboard_is_reusable_for_a_second_run():
    dash = TrainingDashboard(update_every=0.0)
    for event in _events(3):
        dash.on_event(event)
    dash.on_event(TrainingEvent("end", 3, 3, 1.5))
    for event in _events(2):
        dash.on_event(event)
    dash.flush()
    assert _state(dash) == "running" and not dash.wdict["stop"].disabled
    assert (dash.wdict["progress"].value, dash.wdict["progress"].max) == (2, 2)
    np.testing.assert_array_equal(_curve_sources(dash.plots)["total"][0], [1, 2])


def test_dashboard_curves_stream_rather_than_rebuild():
    dash = TrainingDashboard(update_every=0.0)
    events = list(_events(6))
    for event in events[:3]:
        dash.on_event(event)
    dash.flush()
    plots = dash.plots
    source = [p for p in plots.subplots("CurvePlot") if p.current_frame.label == "total"][0].handles["source"]
    sent = []
    plots.widget.send = lambda content, buffers=None: sent.append(content)
    for event in events[3:]:
        dash.on_event(event)
        dash.flush()
    assert dash.plots is plots
    np.testing.assert_array_equal(source.data["epoch"], np.arange(1, 7))
    assert sent, "the new points were not sent to the page"


def test_dashboard_run_in_background_thread_and_stop(cube):
    dash = TrainingDashboard(update_every=0.0, mode="notebook")
    run = dash.run(nmf_fit, cube, n_epochs=500, delay=0.01)
    assert run.thread is not None and run.thread is not threading.current_thread()
    deadline = time.time() + 20
    while dash.epoch < 5 and time.time() < deadline:
        time.sleep(0.02)
    assert dash.epoch >= 5 and not run.done()
    dash.wdict["stop"].click()
    out = run.result(timeout=20)
    assert isinstance(out, UnmixingResult) and out.partial
    assert out.ds.attrs["stop_reason"] == "stopped from the dashboard"
    assert _state(dash) == "stopped"
    assert dash.wdict["progress"].value == dash.epoch < 500
    assert dash.wdict["progress"].bar_style == "warning"
    assert len(out.history["loss_total"]) == dash.epoch


def test_dashboard_run_failure_shows_failed_state(cube):
    dash = TrainingDashboard(mode="notebook")
    run = dash.run(nmf_fit, cube, n_epochs=50, fail_at=7)
    assert isinstance(run.exception(timeout=20), TrainingError)
    with pytest.raises(TrainingError, match="NaN at epoch 7"):
        run.result()
    assert _state(dash) == "failed" and dash.wdict["progress"].bar_style == "danger"
    assert "NaN at epoch 7" in dash.wdict["error"].value
    assert "failed" in repr(run)


def test_dashboard_run_reports_a_crash_without_fail_event():
    dash = TrainingDashboard(mode="notebook")

    def broken_fit(callbacks):
        for cb in callbacks:
            cb.on_event(TrainingEvent("start", 0, 10, 0.0))
        raise ValueError("shapes do not match")

    run = dash.run(broken_fit)
    assert isinstance(run.exception(timeout=10), ValueError)
    assert _state(dash) == "failed"
    assert "ValueError: shapes do not match" in dash.wdict["error"].value


def test_dashboard_run_refuses_a_second_concurrent_run(cube):
    dash = TrainingDashboard(mode="notebook")
    run = dash.run(nmf_fit, cube, n_epochs=400, delay=0.01)
    try:
        with pytest.raises(InputError, match="already running"):
            dash.run(nmf_fit, cube)
    finally:
        run.stop()
        run.wait(20)
    assert run.done()


def test_dashboard_redraws_go_through_the_ui_loop_when_there_is_one(cube):
    """In a kernel the training thread must not touch widgets: redraws are handed to the loop."""
    threads = []

    async def main():
        dash = TrainingDashboard(update_every=0.0, mode="notebook")  # created on the loop's thread
        dash.loop_patience = 60.0  # the loop is free here; never fall back to drawing elsewhere
        real_draw = dash._draw

        def recording_draw(snapshot):
            threads.append(threading.current_thread())
            return real_draw(snapshot)

        dash._draw = recording_draw
        run = dash.run(nmf_fit, cube, n_epochs=30, delay=0.005)
        while not run.done():
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        return dash, run

    dash, run = asyncio.run(main())
    assert isinstance(run.result(), UnmixingResult)
    assert threads and all(t is threading.main_thread() for t in threads)
    assert _state(dash) == "finished" and dash.wdict["progress"].value == 30


def test_dashboard_keeps_drawing_while_the_kernel_loop_is_busy(cube):
    """A cell running for long blocks the loop: the training thread then draws by itself."""
    progress_seen = []

    async def main():
        dash = TrainingDashboard(update_every=0.0, mode="notebook")
        dash.loop_patience = 0.2
        run = dash.run(nmf_fit, cube, n_epochs=60, delay=0.02)
        for _ in range(40):  # a "cell" that keeps the loop's thread busy for about 2 s
            time.sleep(0.05)
            progress_seen.append(dash.wdict["progress"].value)
        run.wait(30)  # returns at once if done; pumps redraws otherwise
        return dash, run

    dash, run = asyncio.run(main())
    assert run.done() and run.exception() is None
    assert max(progress_seen) > 0, "nothing was drawn while the loop was busy"
    assert progress_seen[-1] > progress_seen[5]
    assert _state(dash) == "finished" and dash.wdict["progress"].value == 60


def test_dashboard_run_falls_back_to_console_outside_a_notebook(cube, capsys):
    dash = TrainingDashboard()  # mode="auto", and pytest is not a notebook kernel
    run = dash.run(nmf_fit, cube, n_epochs=12)
    assert run.done() and isinstance(run.result(), UnmixingResult)
    err = capsys.readouterr().err
    assert "12/12" in err and "nmf-demo" in err
    assert dash.wdict["progress"].value == 0  # the widget was not used
    with pytest.raises(TrainingError):
        dash.run(nmf_fit, cube, n_epochs=12, fail_at=3)
    assert "fail: the loss became NaN at epoch 3" in capsys.readouterr().err


def test_progress_callback_chooses_by_mode():
    assert isinstance(progress_callback(mode="console"), ConsoleProgress)
    assert isinstance(progress_callback(mode="auto"), ConsoleProgress)  # not in a kernel here
    assert isinstance(progress_callback("t", mode="notebook"), TrainingDashboard)
    with pytest.raises(InputError):
        progress_callback(mode="gui")


def test_dashboard_works_as_a_plain_callable(cube):
    dash = TrainingDashboard(update_every=0.0)
    out = nmf_fit(cube, n_epochs=8, callbacks=[dash])
    assert isinstance(out, UnmixingResult)
    assert _state(dash) == "finished" and dash.wdict["progress"].value == 8
    assert len(_curve_sources(dash.plots)["rmse"][0]) == 8


@pytest.mark.skipif(
    not (REPO / "egu_widgets" / "engine" / "estimator.py").exists(), reason="the EGU-Net engine has not landed yet"
)
def test_dashboard_drives_the_real_engine(cube):
    from egu_widgets.engine.estimator import EGUNet

    dash = TrainingDashboard(update_every=0.0, mode="notebook")
    run = dash.run(EGUNet(n_endmembers=3, epochs=400).fit, cube)
    deadline = time.time() + 60
    while dash.epoch < 2 and not run.done() and time.time() < deadline:
        time.sleep(0.05)
    dash.wdict["stop"].click()
    run.wait(120)
    assert run.exception() is None
    assert _state(dash) in ("stopped", "finished")
    assert dash.history["epoch"]
    # the default preset's stopping rule can end this run: the dashboard shows the rule's
    # progress (tests/test_dashboard_stopping.py), not an epoch bar over the 400-epoch bound
    assert dash.stopping.active and f" at epoch {dash.epoch} (" in dash.wdict["status"].value
    # the curves are the trainer's own history, the one the result keeps
    stored = run.result().result_.history
    np.testing.assert_array_equal(dash.history["loss:total"], stored["loss_total"])
    np.testing.assert_array_equal(dash.history["lr"], stored["learning_rate"])


# ---------------------------------------------------------------------------------- endmember pairs
def _pair_curves(view):
    return {
        p.current_frame.label: np.asarray(p.handles["source"].data["reflectance"])
        for p in view.plots.subplots("CurvePlot")
    }


def test_pairs_show_truth_and_estimate_with_sad_in_title(cube, result):
    from egu_widgets.metrics import sad

    view = EndmemberPairs(result, cube)
    expected = sad(result.endmembers.values, cube.true_endmembers)
    for i in range(3):
        view.select(i)
        curves = _pair_curves(view)
        np.testing.assert_allclose(curves["estimate"], result.endmembers.values[i])
        np.testing.assert_allclose(curves["truth"], cube.true_endmembers[i])
        title = view.plots.plot.state.title.text
        assert title == f"{cube.endmember_names[i]} — SAD {expected[i]:.2f}°"
        assert f"SAD {expected[i]:.2f}°" in view.wdict["title"].value
    xaxis = view.plots.plot.state.xaxis[0]
    assert xaxis.axis_label == "wavelength (nm)"
    x = view.plots.subplots("CurvePlot")[0].handles["source"].data["wavelength"]
    np.testing.assert_allclose(x, cube.wavelengths)


def test_pairs_selector_and_buttons_page_through(cube, result):
    view = EndmemberPairs(result, cube)
    wd = view.wdict
    wd["selector"].value = 2
    assert view.index == 2
    np.testing.assert_allclose(_pair_curves(view)["estimate"], result.endmembers.values[2])
    wd["next"].click()  # wraps around
    assert view.index == 0 and wd["selector"].value == 0
    np.testing.assert_allclose(_pair_curves(view)["estimate"], result.endmembers.values[0])
    wd["prev"].click()
    assert view.index == 2
    view.select("material B")
    assert wd["selector"].value == 1 and cube.endmember_names[1] in view.plots.plot.state.title.text
    with pytest.raises(InputError):
        view.select("granite")
    with pytest.raises(InputError):
        view.select(7)


def test_pairs_bundle_envelope_minmax_and_quantiles(cube, result):
    rng = np.random.default_rng(3)
    spectra, labels = [], []
    for p in (2, 0, 1):  # groups in another order than the result's endmembers
        for _ in range(6):
            spectra.append(cube.true_endmembers[p] * rng.uniform(0.8, 1.2))
            lab = np.full(3, 0.05)
            lab[[2, 0, 1].index(p)] = 0.9
            labels.append(lab)
    bundles = SimpleNamespace(
        spectra=np.array(spectra), labels=np.array(labels), reference=cube.true_endmembers[[2, 0, 1]]
    )
    view = EndmemberPairs(result, cube, bundles=bundles)
    group_of_b = np.array(spectra[12:18])  # material B's bundle (third group)
    view.select(1)

    # the area is drawn as one closed polygon through both edges: compare the set of its heights
    def polygon_heights(v):
        return np.sort(np.asarray(v.plots.subplots("AreaPlot")[0].handles["source"].data["y"], dtype=np.float64))

    expected = np.sort(np.concatenate([group_of_b.min(axis=0), group_of_b.max(axis=0)]))
    np.testing.assert_allclose(polygon_heights(view), expected, rtol=1e-6)
    assert "6 bundle spectra" in view.wdict["title"].value
    view_q = EndmemberPairs(result, cube, bundles=bundles, envelope=(0.25, 0.75))
    view_q.select(1)
    expected_q = np.sort(np.concatenate(np.quantile(group_of_b, [0.25, 0.75], axis=0)))
    np.testing.assert_allclose(polygon_heights(view_q), expected_q, rtol=1e-6)
    view_q.select(0)  # material A: the first bundle group's
    group_of_a = np.array(spectra[6:12])
    expected_a = np.sort(np.concatenate(np.quantile(group_of_a, [0.25, 0.75], axis=0)))
    np.testing.assert_allclose(polygon_heights(view_q), expected_a, rtol=1e-6)
    with pytest.raises(InputError):
        EndmemberPairs(result, cube, bundles=bundles, envelope="std")


def test_pairs_with_real_bundles(cube, result):
    from egu_widgets.engine.bundles import extract_bundles

    bundles = extract_bundles(cube, 3)
    view = EndmemberPairs(result, cube, bundles=bundles, envelope=(0.05, 0.95))
    assert len(view.plots.subplots("AreaPlot")) == 1
    counts = [env[2] for env in view.data.envelopes if env is not None]
    assert sum(counts) == bundles.n_bundles
    # no truth: the bundles' own reference (a whole-image N-FINDR) is what the estimate is compared to
    bare = cube.without_truth()
    bare_result = UnmixingResult.from_arrays(
        bare, result.abundances.values, result.endmembers.values, method="t", score=False
    )
    bare_bundles = extract_bundles(bare, 3)
    view = EndmemberPairs(bare_result, bare, bundles=bare_bundles)
    assert view.data.reference_label == "N-FINDR"
    assert view.data.sad is not None and np.all(np.isfinite(view.data.sad))
    assert "N-FINDR" in set(_pair_curves(view)) and "SAD" in view.plots.plot.state.title.text


def test_pairs_reference_options(cube, result):
    # explicit library reference given in a shuffled order, aligned by SAD
    library = cube.true_endmembers[[1, 2, 0]]
    view = EndmemberPairs(result, cube, reference=library, reference_label="library", align=True)
    np.testing.assert_allclose(_pair_curves(view)["library"], cube.true_endmembers[0])
    # no wavelengths: band axis
    bare = _tiny_cube(wavelengths=False)
    view = EndmemberPairs(_noisy_result(bare), bare)
    assert view.plots.plot.state.xaxis[0].axis_label == "band"
    # abundances only: the spectra come from least squares on the cube, against the truth
    ab_only = UnmixingResult.from_arrays(
        cube, cube.true_abundances, method="t", score=False, names=cube.endmember_names
    )
    view = EndmemberPairs(ab_only, cube)
    assert view.data.estimate_label.startswith("estimate (least squares")
    assert np.all(view.data.sad < 1.0)
    with pytest.raises(InputError, match="pass the cube"):
        EndmemberPairs(ab_only)
    # no truth and no reference: estimate only, no SAD
    view = EndmemberPairs(result)
    assert set(_pair_curves(view)) == {"estimate"} and "SAD" not in view.plots.plot.state.title.text


# ---------------------------------------------------------------------------------- inspector
def _probe_curves(view):
    """{label: values} of the spectrum and residual curves (the value column, not the x axis)."""
    out = {}
    for p in view.probe.subplots("CurvePlot"):
        data = p.handles["source"].data
        out[p.current_frame.label] = np.asarray(data[[k for k in data if k not in ("wavelength", "band")][0]])
    return out


def _bars(view):
    data = view.probe.subplots("BarPlot")[0].handles["source"].data
    return {(e, s): float(v) for e, s, v in zip(data["endmember"], data["source"], data["abundance"])}


def test_inspector_maps_truth_errors_and_shared_colour_scales(cube, result):
    view = AbundanceInspector(result, cube)
    rasters = view.maps.subplots("RasterPlot")
    assert len(rasters) == 9
    for p in rasters[:6]:
        mapper = p.handles["color_mapper"]
        assert (mapper.low, mapper.high) == (0.0, 1.0)
    lows = {p.handles["color_mapper"].low for p in rasters[6:]}
    highs = {p.handles["color_mapper"].high for p in rasters[6:]}
    assert len(lows) == len(highs) == 1
    low, high = lows.pop(), highs.pop()
    err = result.abundances.values - cube.true_abundances
    assert low == -high and high >= np.abs(err).max() - 1e-6
    # the error map shown is estimate - truth
    img = rasters[7].handles["source"].data["image"][0]
    np.testing.assert_allclose(img, err[1], atol=1e-6)
    # linked pan/zoom: one x range and one y range for all maps
    assert len({id(p.handles["x_range"]) for p in rasters}) == 1
    assert len({id(p.handles["y_range"]) for p in rasters}) == 1
    titles = [p.state.title.text for p in rasters]
    assert titles[:3] == cube.endmember_names and titles[3].startswith("truth: ") and titles[6].startswith("error: ")


def test_inspector_without_truth_shows_estimates_only(cube, result):
    bare = cube.without_truth()
    res = UnmixingResult.from_arrays(bare, result.abundances.values, result.endmembers.values, method="t", score=False)
    view = AbundanceInspector(res, bare)
    assert len(view.maps.subplots("RasterPlot")) == 3
    view.taps[0].event(x=1.0, y=2.0)
    assert set(_bars(view)) == {(n, "estimate") for n in res.abundances.coords["endmember"].values}


def test_inspector_tap_shows_pixel_spectrum_reconstruction_and_bars(cube, result):
    view = AbundanceInspector(result, cube)
    for tap, (x, y) in zip((view.taps[0], view.taps[5], view.taps[8]), ((3.2, 5.4), (19.4, 0.3), (0.0, 15.0))):
        tap.event(x=x, y=y)
        row, col = int(round(y)), int(round(x))
        assert view.pixel == (row, col)
        assert (view.wdict["row"].value, view.wdict["col"].value) == (row, col)
        curves = _probe_curves(view)
        np.testing.assert_allclose(curves["observed"], cube.image[row, col], rtol=1e-6)
        expected = result.abundances.values[:, row, col] @ result.endmembers.values
        np.testing.assert_allclose(curves["linear reconstruction"], expected)
        bars = _bars(view)
        for p, name in enumerate(cube.endmember_names):
            assert bars[(name, "estimate")] == pytest.approx(result.abundances.values[p, row, col])
            assert bars[(name, "truth")] == pytest.approx(cube.true_abundances[p, row, col])
        for point_plot in view.maps.subplots("PointPlot"):  # the marker moved on every map
            marker = point_plot.handles["source"].data
            assert (marker["x"][0], marker["y"][0]) == (col, row)
        y_range = view.probe.subplots("CurvePlot")[0].handles["plot"].y_range
        assert y_range.start < min(curves["observed"].min(), expected.min())
        assert y_range.end > max(curves["observed"].max(), expected.max())
        assert view.probe.plot.subplots[(0, 0)].subplots["main"].state.title.text == f"pixel (row {row}, col {col})"
        assert f"pixel (row {row}, col {col})" in view.wdict["info"].value


def test_inspector_bokeh_tap_event_reaches_the_spectrum(cube, result):
    """The path a browser click takes: a Bokeh Tap event on the map's figure, through HoloViews."""
    from bokeh.events import Tap

    view = AbundanceInspector(result, cube)
    figure = view.maps.subplots("RasterPlot")[4].state
    sent = []
    view.probe.widget.send = lambda content, buffers=None: sent.append(content)

    async def click():
        view.maps.document.callbacks.trigger_event(Tap(figure, x=7.2, y=11.4))
        for _ in range(50):
            await asyncio.sleep(0.02)
            if view.pixel == (11, 7):
                break

    asyncio.run(click())
    assert view.pixel == (11, 7)
    np.testing.assert_allclose(_probe_curves(view)["observed"], cube.image[11, 7], rtol=1e-6)
    assert sent, "the new spectrum was not sent to the page"


def test_inspector_row_col_boxes_select_pixel(cube, result):
    view = AbundanceInspector(result, cube)
    view.wdict["row"].value = 2
    view.wdict["col"].value = 9
    assert view.pixel == (2, 9)
    np.testing.assert_allclose(_probe_curves(view)["observed"], cube.image[2, 9], rtol=1e-6)
    with pytest.raises(InputError):
        view.select_pixel(16, 0)


def test_inspector_reconstruction_sources(cube, result):
    calls = []

    def reconstruct(i):
        calls.append(i)
        return np.full(cube.n_bands, 0.5)

    view = AbundanceInspector(result, cube, reconstruct=reconstruct)
    view.select_pixel(3, 4)
    assert calls[-1] == 3 * cube.width + 4
    np.testing.assert_allclose(_probe_curves(view)["reconstruction"], 0.5)
    # a reconstruction stored in the result wins over the linear mixture
    stored = result.ds.assign(reconstruction=(("y", "x", "band"), np.full(cube.image.shape, 0.25)))
    view = AbundanceInspector(UnmixingResult(stored), cube)
    view.select_pixel(1, 1)
    np.testing.assert_allclose(_probe_curves(view)["reconstruction"], 0.25)
    # an array of reconstructed pixels, as EGUNet.reconstruct(cube) returns: (N, B)
    rec = np.arange(cube.n_pixels * cube.n_bands, dtype=float).reshape(cube.n_pixels, cube.n_bands)
    view = AbundanceInspector(result, cube, reconstruct=rec)
    view.select_pixel(2, 5)
    np.testing.assert_allclose(_probe_curves(view)["reconstruction"], rec[2 * cube.width + 5])
    with pytest.raises(InputError, match="reconstruct must be"):
        AbundanceInspector(result, cube, reconstruct=rec[:10])
    # abundances only: observed spectrum alone
    view = AbundanceInspector(_noisy_result(cube, endmembers=False), cube)
    assert set(_probe_curves(view)) == {"observed"}
    with pytest.raises(InputError):
        AbundanceInspector(result, cube, reconstruct=lambda i: np.zeros(3))


def test_inspector_large_cube_is_downsampled_but_taps_are_exact():
    rng = np.random.default_rng(0)
    h, w, b, p = 1000, 1000, 4, 3
    ab = rng.dirichlet(np.ones(p), size=(h, w)).transpose(2, 0, 1)
    em = rng.uniform(0.1, 0.9, size=(p, b))
    image = np.einsum("phw,pb->hwb", ab, em).astype(np.float32)
    big = HyperCube.from_array(image, wavelengths=np.linspace(400, 900, b), endmembers=em, abundances=ab)
    res = UnmixingResult.from_arrays(big, ab, em, method="t", score=False, names=big.endmember_names)
    started = time.perf_counter()
    view = AbundanceInspector(res, big, max_side=250)
    assert time.perf_counter() - started < 30
    assert view.factor == 4
    total_cells = 0
    for plot in view.maps.subplots("RasterPlot"):
        image_shape = np.asarray(plot.handles["source"].data["image"][0]).shape
        assert max(image_shape) <= 250
        total_cells += int(np.prod(image_shape))
    assert total_cells <= 9 * 250 * 250
    np.testing.assert_allclose(
        view.maps.subplots("RasterPlot")[0].handles["source"].data["image"][0][0, 0], ab[0, :4, :4].mean(), rtol=1e-5
    )
    assert "block means" in view.widget.children[1].value
    view.taps[2].event(x=998.8, y=1.2)
    assert view.pixel == (1, 999)
    np.testing.assert_allclose(_probe_curves(view)["observed"], image[1, 999], rtol=1e-6)
    assert _bars(view)[(big.endmember_names[0], "truth")] == pytest.approx(ab[0, 1, 999])


def test_inspector_needs_the_cube(result):
    with pytest.raises(InputError, match="needs the cube"):
        AbundanceInspector(result, None)


# ---------------------------------------------------------------------------------- Stop while a cell waits
class _FakeUiEvents:
    """Stands in for jupyter_ui_poll.ui_events(): each poll may deliver a 'click' (a callable)."""

    def __init__(self, click_at: int, click):
        self.calls, self.click_at, self.click = 0, click_at, click

    def _poll(self, n=1):
        self.calls += 1
        if self.calls == self.click_at:
            self.click()

    def __enter__(self):
        return self._poll

    def __exit__(self, *exc):
        return False

    async def _apoll(self, n=1):
        self._poll(n)

    async def __aenter__(self):
        return self._apoll

    async def __aexit__(self, *exc):
        return False


def _kernel_serves(monkeypatch, how: str, fake=None):
    import jupyter_ui_poll

    from egu_widgets.widgets import dashboard as dashboard_module
    from egu_widgets.widgets import training_run, ui_events

    for module in (ui_events, training_run, dashboard_module):
        monkeypatch.setattr(module, "serving", lambda: how)
    monkeypatch.setattr(dashboard_module, "in_notebook", lambda: True)
    if fake is not None:
        monkeypatch.setattr(jupyter_ui_poll, "ui_events", lambda: fake)


def test_run_result_serves_widget_messages_so_stop_works_under_run_all(monkeypatch, cube):
    dash = TrainingDashboard(update_every=0.0, mode="notebook")
    fake = _FakeUiEvents(click_at=5, click=dash.wdict["stop"].click)
    _kernel_serves(monkeypatch, "poll", fake)
    run = dash.run(nmf_fit, cube, n_epochs=100000, delay=0.01)
    started = time.perf_counter()
    out = run.result(timeout=60)  # the click arrives through the poll while result() waits
    assert time.perf_counter() - started < 30
    assert fake.calls >= 5 and out.partial and _state(dash) == "stopped"
    assert out.history["loss_total"].size < 1000


def test_await_run_lets_the_loop_deliver_stop(monkeypatch, cube):
    _kernel_serves(monkeypatch, "await")

    async def main():
        dash = TrainingDashboard(update_every=0.0, mode="notebook")
        run = dash.run(nmf_fit, cube, n_epochs=100000, delay=0.01)
        # what ipykernel 7 does with a comm message while a cell awaits: runs it on the loop
        asyncio.get_running_loop().call_later(0.3, dash.wdict["stop"].click)
        return dash, await run

    dash, out = asyncio.run(main())
    assert out.partial and _state(dash) == "stopped"


def test_run_result_says_to_await_where_the_kernel_cannot_poll(monkeypatch, cube):
    from egu_widgets.widgets import training_run

    _kernel_serves(monkeypatch, "await")
    monkeypatch.setattr(training_run, "_WARNED", set())
    dash = TrainingDashboard(update_every=0.0, mode="notebook")
    run = dash.run(nmf_fit, cube, n_epochs=30, delay=0.02)
    with pytest.warns(UserWarning, match="await run"):
        run.result(timeout=60)


def test_foreground_training_polls_widget_messages_at_each_epoch(monkeypatch, cube):
    dash = TrainingDashboard(update_every=0.0)
    fake = _FakeUiEvents(click_at=3, click=dash.wdict["stop"].click)
    _kernel_serves(monkeypatch, "poll", fake)
    out = nmf_fit(cube, n_epochs=500, callbacks=[dash])  # a blocking fit on the cell's own thread
    assert out.partial and _state(dash) == "stopped" and dash.epoch <= 4
    assert dash.wdict["stop"].layout.display is None


def test_foreground_training_hides_stop_where_it_cannot_work(monkeypatch, cube):
    _kernel_serves(monkeypatch, "await")
    dash = TrainingDashboard(update_every=0.0)
    nmf_fit(cube, n_epochs=5, callbacks=[dash])
    assert dash.wdict["stop"].layout.display == "none"
    assert dash.wdict["stop_note"].layout.display is None and "dashboard.run" in dash.wdict["stop_note"].value


# ---------------------------------------------------------------------------------- inspector: issue 15
def test_inspector_shows_the_residual_beside_the_spectrum(cube, result):
    view = AbundanceInspector(result, cube)
    for row, col in ((2, 3), (10, 17)):
        view.select_pixel(row, col)
        curves = _probe_curves(view)
        np.testing.assert_allclose(curves["residual"], curves["observed"] - curves["linear reconstruction"], atol=1e-9)
        y_range = view._residual_figure.y_range
        assert y_range.start <= curves["residual"].min() and curves["residual"].max() <= y_range.end


def test_inspector_reconstruction_of_a_max_scaled_result_is_in_the_pixels_scale(cube):
    """EGU-Net's default labels are shares of max-scaled spectra: abundances @ endmembers in data
    units is not a reconstruction of the pixel (on Samson it averaged 1.84x the observed)."""
    em = cube.true_endmembers * np.array([[0.3], [1.0], [0.1]])  # materials of very different brightness
    units = em.max(axis=1, keepdims=True)
    c = cube.true_abundance_pixels  # physical fractions
    pixels = c @ em
    shares = c * units.T / (c * units.T).sum(axis=1, keepdims=True)  # what the network learns
    scene = HyperCube.from_array(pixels.reshape(cube.image.shape).astype(np.float32), wavelengths=cube.wavelengths)
    res = UnmixingResult.from_arrays(
        scene, shares, em, method="egu-pw", score=False, config={"bundles": {"label_scale": "max"}}
    )
    view = AbundanceInspector(res, scene)
    view.select_pixel(4, 6)
    curves = _probe_curves(view)
    label = next(k for k in curves if k.startswith("abundances × max-scaled"))
    np.testing.assert_allclose(curves[label], curves["observed"], rtol=1e-4, atol=1e-6)
    old = shares[4 * scene.width + 6] @ em  # what the inspector drew before
    assert not np.allclose(old, curves["observed"], rtol=0.05)


def test_inspector_draws_the_models_own_reconstruction_when_given_the_model(cube, result):
    class Model:  # stands in for a fitted EGUNet: reconstruct(cube) -> (N, B)
        def reconstruct(self, c):
            return c.pixels * 0.9 + 0.01

    view = AbundanceInspector(result, cube, reconstruct=Model())
    view.select_pixel(5, 5)
    curves = _probe_curves(view)
    label = next(k for k in curves if k.startswith("decoder output"))
    np.testing.assert_allclose(curves[label], cube.image[5, 5] * 0.9 + 0.01, rtol=1e-6)
    np.testing.assert_allclose(curves["residual"], cube.image[5, 5] - curves[label], rtol=1e-5, atol=1e-7)


def test_inspector_band_slider_changes_the_scene_image(cube, result):
    view = AbundanceInspector(result, cube)
    source = view._band_source
    np.testing.assert_allclose(source.data["image"][0], cube.image[:, :, cube.n_bands // 2], rtol=1e-6)
    view.wdict["band"].value = 3
    np.testing.assert_allclose(source.data["image"][0], cube.image[:, :, 3], rtol=1e-6)
    assert view._band_figure.title.text.startswith("band 3 (")
    with pytest.raises(InputError):
        view.show_band(cube.n_bands)
    view.taps[-1].event(x=4.0, y=9.0)  # a tap on the band image selects a pixel too
    assert view.pixel == (9, 4)


# ---------------------------------------------------------------------------------- pair view: normalise
def _max_scaled_truth_scene(cube):
    """The cube with its truth spectra scaled to a maximum of 1 (Samson's convention)."""
    em = cube.true_endmembers / cube.true_endmembers.max(axis=1, keepdims=True)
    return HyperCube.from_array(
        cube.image, wavelengths=cube.wavelengths, endmembers=em, abundances=cube.true_abundances,
        endmember_names=cube.endmember_names,
    )  # fmt: skip


def test_pair_view_normalises_when_the_truth_is_max_scaled(cube):
    scene = _max_scaled_truth_scene(cube)
    dim = UnmixingResult.from_arrays(scene, cube.true_abundances, cube.true_endmembers * 0.05, method="t", score=False)
    view = EndmemberPairs(dim, scene)
    assert view.normalise and view.wdict["normalise"].value  # on by default: the truth peaks at 1
    for index in range(3):
        view.select(index)
        curves = _pair_curves(view)
        assert curves["estimate"].max() == pytest.approx(1.0) and curves["truth"].max() == pytest.approx(1.0)
        np.testing.assert_allclose(curves["estimate"], curves["truth"], rtol=1e-6)  # same shape: same curve
    view.wdict["normalise"].value = False
    curves = _pair_curves(view)
    np.testing.assert_allclose(curves["estimate"], cube.true_endmembers[2] * 0.05, rtol=1e-6)
    assert curves["truth"].max() == pytest.approx(1.0)
    assert "max 1" not in view.plots.plot.state.yaxis[0].axis_label


def test_pair_view_leaves_spectra_alone_when_units_agree(cube, result):
    view = EndmemberPairs(result, cube)  # truth in reflectance: no scaling by default
    assert not view.normalise
    np.testing.assert_allclose(_pair_curves(view)["estimate"], result.endmembers.values[0], rtol=1e-6)
    view.set_normalise(True)
    assert _pair_curves(view)["estimate"].max() == pytest.approx(1.0)
    assert "max 1" in view.plots.plot.state.yaxis[0].axis_label


def test_dashboard_marks_a_metric_from_its_first_evaluation():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 100, 0.0))
    for k in range(1, 13):  # the RMSE is evaluated at epoch 8 only, so far: one point, no line
        metrics = {"rmse": 0.2} if k == 8 else {}
        dash.on_event(TrainingEvent("epoch", k, 100, 0.1 * k, losses={"total": 1.0 / k}, metrics=metrics))
    (markers,) = dash.plots.subplots("PointPlot")
    data = markers.handles["source"].data
    np.testing.assert_array_equal(np.asarray(data["epoch"]), [8])
    (curve,) = [p for p in dash.plots.subplots("CurvePlot") if p.current_frame.label == "rmse"]
    assert markers.handles["glyph"].fill_color == curve.handles["glyph"].line_color
    dash.on_event(TrainingEvent("epoch", 13, 100, 1.3, losses={"total": 0.1}, metrics={"rmse": 0.9}))
    np.testing.assert_array_equal(np.asarray(markers.handles["source"].data["epoch"]), [8, 13])
    y_range = markers.handles["plot"].y_range
    assert y_range.start <= 0.2 and y_range.end >= 0.9


# ---------------------------------------------------------------------------------- inspector: ensembles
def _ensemble_result(cube, n_members=3, seed=0):
    """An ensemble result from hand-made members (truth plus growing noise), no training."""
    from egu_widgets.engine.ensemble import ensemble_result, ensemble_statistics

    rng = np.random.default_rng(seed)
    truth = cube.true_abundances.reshape(cube.true_abundances.shape[0], -1).T
    stack = np.stack([np.clip(truth + rng.normal(0, 0.05 * (k + 1), truth.shape), 0, None) for k in range(n_members)])
    stack /= stack.sum(axis=-1, keepdims=True)
    stats = ensemble_statistics(stack)
    res = ensemble_result(cube, stats, stack, cube.true_endmembers, method="egu-pw", config={}, seconds=1.0)
    return res, stack


def test_inspector_spread_toggle_switches_the_estimate_maps(cube):
    res, _ = _ensemble_result(cube)
    view = AbundanceInspector(res, cube)
    assert view.wdict["layer"].options == ("mean", "spread (std)", "90 % interval width")
    rasters = view.maps.subplots("RasterPlot")[:3]
    mean = res.abundances.transpose("endmember", "y", "x").values
    std = res.ds["abundances_std"].transpose("endmember", "y", "x").values
    width = (res.ds["abundances_q95"] - res.ds["abundances_q05"]).transpose("endmember", "y", "x").values
    for layer, expected in (("spread (std)", std), ("90 % interval width", width), ("mean", mean)):
        view.wdict["layer"].value = layer
        assert view.layer == layer
        for p, plot in enumerate(rasters):
            np.testing.assert_allclose(plot.handles["source"].data["image"][0], expected[p], atol=1e-6)
            mapper = plot.handles["color_mapper"]
            if layer == "mean":
                assert (mapper.low, mapper.high) == (0.0, 1.0)
                assert plot.handles["plot"].title.text == cube.endmember_names[p]
            else:
                assert mapper.low == 0.0 and np.nanmax(expected) <= mapper.high < np.nanmax(expected) + 0.011
                assert plot.handles["plot"].title.text == f"{layer}: {cube.endmember_names[p]}"
    # the truth and error rows keep showing the mean's
    err = view.maps.subplots("RasterPlot")[7].handles["source"].data["image"][0]
    np.testing.assert_allclose(err, mean[1] - cube.true_abundances[1], atol=1e-6)
    with pytest.raises(InputError, match="layer must be one of"):
        view.show_layer("variance")


def test_inspector_tap_shows_every_members_abundances(cube):
    res, _ = _ensemble_result(cube)
    members = res.ds["abundances_members"].transpose("member", "endmember", "y", "x").values
    mean = res.abundances.transpose("endmember", "y", "x").values
    std = res.ds["abundances_std"].transpose("endmember", "y", "x").values
    view = AbundanceInspector(res, cube)
    bars, points = view.probe.subplots("BarPlot")[1], view.probe.subplots("PointPlot")[0]
    for x, y in ((3.2, 5.4), (19.0, 0.0)):
        view.taps[0].event(x=x, y=y)
        row, col = int(round(y)), int(round(x))
        data = points.handles["source"].data
        names = list(res.abundances.coords["endmember"].values)
        assert list(data["endmember"]) == names * 3
        np.testing.assert_allclose(data["abundance"], members[:, :, row, col].ravel(), atol=1e-6)
        np.testing.assert_allclose(bars.handles["source"].data["abundance"], mean[:, row, col], atol=1e-6)
        assert f"{mean[0, row, col]:.3f} ± {std[0, row, col]:.3f}" in view.wdict["info"].value


def test_inspector_of_a_single_fit_has_no_spread_toggle(cube, result):
    view = AbundanceInspector(result, cube)
    assert "layer" not in view.wdict and view.layers is None
    assert len(view.probe.subplots("BarPlot")) == 1
    with pytest.raises(InputError, match="only an ensemble result"):
        view.show_layer("spread (std)")
