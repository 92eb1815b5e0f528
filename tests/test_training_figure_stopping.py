"""The training figure gives the stopping rule's change its own log panel, with its tolerance."""

from types import SimpleNamespace

import numpy as np

from egu_widgets import plotting


def _history(n: int = 60) -> dict:
    change = np.full(n, np.nan)
    change[9::10] = [0.08, 0.03, 0.012, 0.006, 0.004, 0.002]
    rmse = np.full(n, np.nan)
    rmse[7::8] = np.linspace(0.2, 0.05, len(rmse[7::8]))
    return {"loss_total": np.linspace(2, 1, n), "rmse": rmse, "change": change, "learning_rate": 0.97 ** np.arange(n)}


def test_change_gets_a_log_panel_with_the_tolerance_from_the_config():
    result = SimpleNamespace(history=_history(), config={"hyperparameters": {"tol": 0.005}})
    fig = plotting.training_figure(result)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["losses", "metrics", "change between checks", "learning rate"]
    metrics, change = fig.axes[1], fig.axes[2]
    assert [line.get_label() for line in metrics.get_lines()] == ["abundance RMSE"]
    assert change.get_yscale() == "log"
    curve, tol = change.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), [10, 20, 30, 40, 50, 60])
    np.testing.assert_allclose(tol.get_ydata(), [0.005, 0.005])
    assert tol.get_label() == "tol 0.005" and tol.get_linestyle() == "--"


def test_an_explicit_tol_wins_and_no_rule_draws_no_line():
    history = _history()
    fig = plotting.training_figure(history, tol=0.01)
    np.testing.assert_allclose(fig.axes[2].get_lines()[1].get_ydata(), [0.01, 0.01])
    paper = SimpleNamespace(history=history, config={"hyperparameters": {"tol": None}})
    assert len(plotting.training_figure(paper).axes[2].get_lines()) == 1
    no_change = {k: v for k, v in history.items() if k != "change"}
    assert "change between checks" not in [ax.get_title() for ax in plotting.training_figure(no_change).axes]
