"""The training dashboard and the stopping rule: its text, its bar and the change's own panel.

Widgets without a browser, as in tests/test_widgets.py: events go in, the widgets' values and the
rendered Bokeh models are read back.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("holoviews")

from egu_widgets.engine.events import TrainingEvent
from egu_widgets.widgets import TrainingDashboard

RULE = {"tol": 0.005, "check_every": 10, "patience": 3, "min_epochs": 30, "average": 0.98, "precision": "float32"}
PAPER = dict(RULE, tol=None, average=None)


def _feed(dash, changes: dict, *, last: int, n_epochs=200, rule=RULE, rmse_every=8, final=None, stop=None):
    """A run of ``last`` epochs; ``changes`` {epoch: change}; RMSE every ``rmse_every`` epochs."""
    dash.on_event(
        TrainingEvent("start", 0, n_epochs, 0.0, info={"method": "egu-pw", "stopping": rule}, learning_rate=0.1)
    )
    for epoch in range(1, last + 1):
        metrics = {"change": changes[epoch]} if epoch in changes else {}
        if rmse_every and epoch % rmse_every == 0:
            metrics["rmse"] = 0.1 / epoch**0.3
        dash.on_event(
            TrainingEvent(
                "epoch",
                epoch,
                n_epochs,
                0.1 * epoch,
                losses={"total": 1.0 / epoch, "reconstruction": 0.5 / epoch},
                learning_rate=0.1 * 0.97**epoch,
                metrics=metrics,
            )
        )
    if final is not None:
        metrics = {"change": changes[max(changes)]} if changes else {}
        dash.on_event(TrainingEvent(final, last, n_epochs, 0.1 * last, metrics=metrics, info={"stop": stop}))
    dash.flush()
    return dash


def _figure(dash, label: str):
    """The Bokeh figure of the panel holding the curve called ``label``."""
    (plot,) = [p for p in dash.plots.subplots("CurvePlot") if p.current_frame.label == label]
    return plot.handles["plot"]


def _hlines(dash):
    """The plots of horizontal lines (hv.HLine draws a Bokeh Span)."""
    return dash.plots.subplots("LineAnnotationPlot")


def _dashboard(curves: bool = False):
    """Redraws only when curves are new, at the end and at flush(): the tests read the final state.

    Without ``curves`` the plots are not drawn (a HoloViews drawing costs a large part of a
    second): the text, the bar and the state are drawn before the curves and do not depend on them.
    """
    dash = TrainingDashboard(update_every=3600.0)
    if not curves:
        dash.layout._draw_curves = lambda frame: False
    return dash


def test_dashboard_shows_the_rules_progress_instead_of_an_epoch_bar():
    dash = _feed(_dashboard(), {20: 0.05, 30: 0.0041}, last=37)
    wd = dash.wdict
    status = wd["status"].value
    assert status.startswith(
        "converging: change 0.0041 (tol 0.005, 1/3 quiet checks) epoch 37 of at most 200 · elapsed 0:04"
    )
    assert "at most ~" in status and "left" in status and "remaining" not in status
    assert "epoch 37 of 200" not in status
    # the bar is how far the change has come from its first value down to tol (log scale): all the way
    assert (wd["progress"].max, wd["progress"].value) == (1000, 1000) and "tol" in wd["progress"].tooltip
    assert dash.stopping.text() in status  # the console bar shows the same words


def test_dashboard_bar_fills_on_a_log_scale_towards_tol():
    dash = _feed(_dashboard(), {20: 0.05, 30: float(np.sqrt(0.05 * 0.005))}, last=33)
    assert dash.wdict["progress"].value == 500
    assert "(tol 0.005, 0/3 quiet checks) epoch 33 of at most 200" in dash.wdict["status"].value


def test_dashboard_ends_with_converged_or_the_bound():
    changes = {20: 0.05, 30: 0.004, 40: 0.003, 50: 0.002}
    dash = _feed(_dashboard(), changes, last=50, final="end", stop="converged")
    wd = dash.wdict
    assert wd["status"].value.startswith("converged at epoch 50 (change 0.002, tol 0.005) · elapsed 0:05")
    assert "left" not in wd["status"].value
    assert wd["progress"].value == wd["progress"].max and wd["progress"].bar_style == "success"
    assert dash.state == "finished"
    # the final event repeats the change: the losses and the RMSE of the last epoch stay on show
    assert "total 0.02" in wd["values"].value and "abundance RMSE" in wd["values"].value

    changes = {k: 0.02 for k in range(20, 201, 10)}
    dash = _feed(_dashboard(), changes, last=200, final="end", stop="bound")
    assert dash.wdict["status"].value.startswith("reached the bound of 200 epochs (change 0.02, tol 0.005)")
    assert dash.wdict["progress"].value == dash.wdict["progress"].max  # the run is complete


def test_dashboard_stopped_with_a_rule_says_where_it_was():
    dash = _feed(_dashboard(), {20: 0.05, 30: 0.02}, last=34, final="stop", stop="requested")
    assert dash.wdict["status"].value.startswith("stopped at epoch 34 (change 0.02, tol 0.005)")
    assert dash.state == "stopped" and dash.wdict["progress"].value < 1000


def test_the_change_has_its_own_log_axis_with_the_tolerance_line():
    dash = _feed(_dashboard(curves=True), {20: 0.05, 30: 0.02, 40: 0.009}, last=40)
    change, rmse = _figure(dash, "change"), _figure(dash, "rmse")
    assert change is not rmse, "the change and the RMSE share a panel"
    assert type(change.y_scale).__name__ == "LogScale" and type(rmse.y_scale).__name__ == "LinearScale"
    assert change.yaxis[0].axis_label == "change (RMS)" and "tol 0.005" in change.title.text
    assert rmse.yaxis[0].axis_label == "abundance RMSE"  # not "metric"
    # a span under two decades still gets a label at every 1-2-5 tick, and one at tol
    axis = change.yaxis[0]
    assert {0.005, 0.01, 0.02, 0.05} <= set(axis.ticker.ticks) and axis.major_label_overrides[0.005] == "0.005"
    (line,) = _hlines(dash)
    assert line.handles["plot"] is change
    assert line.handles["glyph"].location == pytest.approx(0.005)
    # the axis shows the tolerance and every change, also as the change falls below it
    for epoch, value in ((50, 0.004), (60, 0.0005)):
        dash.on_event(TrainingEvent("epoch", epoch, 200, 0.1 * epoch, losses={"total": 0.1}, metrics={"change": value}))
        dash.flush()
        assert change.y_range.start < min(value, 0.005) and change.y_range.end > 0.05
    data = [p for p in dash.plots.subplots("CurvePlot") if p.current_frame.label == "change"][0].handles["source"].data
    np.testing.assert_array_equal(np.asarray(data["epoch"]), [20, 30, 40, 50, 60])
    # the markers show the checks, in the curve's colour
    (markers,) = [p for p in dash.plots.subplots("PointPlot") if p.current_frame.label == "change"]
    np.testing.assert_array_equal(np.asarray(markers.handles["source"].data["epoch"]), [20, 30, 40, 50, 60])


def test_paper_preset_keeps_the_epoch_bar_and_plots_the_change_without_a_tolerance():
    dash = _feed(_dashboard(curves=True), {20: 0.05, 30: 0.02}, last=36, rule=PAPER, rmse_every=0)
    wd = dash.wdict
    assert wd["status"].value.startswith("epoch 36 of 200 · elapsed 0:04 · remaining ~")
    assert (wd["progress"].value, wd["progress"].max) == (36, 200)
    assert "converging" not in wd["status"].value
    change = _figure(dash, "change")
    assert change.title.text == "change between checks" and not _hlines(dash)
    assert type(change.y_scale).__name__ == "LogScale"


@pytest.mark.parametrize("rule, n_epochs", [(dict(RULE, tol=0.0), 200), (RULE, 25)])
def test_runs_the_rule_cannot_end_keep_the_epoch_bar(rule, n_epochs):
    """tol=0 never fires; a bound below min_epochs leaves the rule no chance: every epoch runs."""
    dash = _feed(_dashboard(), {20: 0.05}, last=22, rule=rule, n_epochs=n_epochs)
    assert dash.wdict["status"].value.startswith(f"epoch 22 of {n_epochs}")
    assert dash.wdict["progress"].max == n_epochs


def test_metrics_keep_their_latest_value_between_evaluations():
    dash = _feed(_dashboard(), {20: 0.05, 30: 0.02}, last=35)  # RMSE at 32, change at 30
    values = dash.wdict["values"].value
    assert f"abundance RMSE {0.1 / 32**0.3:.4g}" in values and "change 0.02" in values


def test_a_second_run_starts_its_rule_afresh():
    dash = _feed(_dashboard(), {20: 0.004, 30: 0.003}, last=30)
    assert "2/3 quiet checks" in dash.wdict["status"].value
    _feed(dash, {20: 0.05}, last=21, rmse_every=0)
    assert "change 0.05 (tol 0.005, 0/3 quiet checks) epoch 21" in dash.wdict["status"].value
    assert dash.wdict["progress"].value == 0
