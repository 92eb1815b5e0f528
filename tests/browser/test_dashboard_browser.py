"""The dashboard of an ``epochs="auto"`` run in a real browser: the stopping rule's progress.

Uses the JupyterLab and Chromium helpers of test_views_browser.py (same requirements; skipped
without them). The notebook is written by the test: a small demo scene trained by EGU-Net-pw with
the default preset (a stopping rule, at most 200 epochs) through ``dashboard.run``. A callback
that sleeps a little after each epoch keeps the run going long enough to be watched.

Pictures go to ``artifacts/browser/``; with ``EGU_SCREENSHOTS=<tag>`` the converging and the
converged dashboards are also kept as ``docs/screenshots/dashboard-converging-<tag>.png`` and
``dashboard-converged-<tag>.png``.
"""

from __future__ import annotations

import re
import time

import pytest
from test_views_browser import _notebook_page, _shot, _wait

from egu_widgets.engine.estimator import TOL

pytestmark = pytest.mark.browser

SETUP = """\
import time
import torch
torch.set_num_threads(1)
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.widgets import training_dashboard

cube = make_demo(24, 24, 30, 3)
"""
RUN = """\
dashboard = training_dashboard("egu-pw, epochs='auto'")["view"]
slow = lambda event: time.sleep(0.12) if event.kind == "epoch" else None  # time to watch the rule
run = dashboard.run(EGUNet("pw", 3, epochs="auto", seed=0, progress=False).fit, cube, callbacks=[slow])
"""

TOL_SHOWN = re.escape(f"{TOL:g}")  # the default preset's tolerance, as the status line prints it
CONVERGING = re.compile(
    rf"converging: change [0-9.e-]+ \(tol {TOL_SHOWN}, [0-3]/3 quiet checks(, waiting for epoch \d+)?\) "
    r"epoch (\d+) of at most 200"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory, shared_lab, chromium):
    yield from _notebook_page(tmp_path_factory, shared_lab, chromium, "dashboard", "dashboard_auto.ipynb", [SETUP, RUN])


def test_dashboard_shows_the_stopping_rules_progress(page):
    dash = page.locator(".egu-dashboard").first
    dash.wait_for(timeout=300_000)
    dash.scroll_into_view_if_needed()
    status = dash.locator(".egu-status")
    # the first change comes at the second check (epoch 20 on a scene of one step per epoch)
    first = _wait(lambda: CONVERGING.search(status.text_content() or ""), 300, "the converging line")
    assert not re.search(r"epoch \d+ of 200", status.text_content()), "the epoch bar's line is still shown"
    assert "running" in dash.locator(".egu-state").text_content()
    # the curves: losses, the RMSE (the demo has truth), the change against tol, the learning rate
    _wait(lambda: dash.locator(".egu-plots .bk-Figure").count() >= 4, 120, "the four curve panels")
    later = _wait(
        lambda: (
            (m := CONVERGING.search(status.text_content() or "")) and int(m.group(2)) >= int(first.group(2)) + 10 and m
        ),
        300,
        "a later check",
    )
    assert int(later.group(2)) > int(first.group(2))
    time.sleep(1)  # the curves' new points arrive in messages of their own, after the text
    _shot(dash, "dashboard-converging.png", doc="dashboard-converging")

    done = re.compile(
        rf"(converged at epoch \d+|reached the bound of 200 epochs) \(change [0-9.e-]+, tol {TOL_SHOWN}\)"
    )
    _wait(lambda: done.search(status.text_content() or ""), 600, "the end of the run")
    _wait(lambda: "finished" in dash.locator(".egu-state").text_content(), 60, "the finished state")
    assert "progress-bar-success" in (dash.locator(".egu-progress .progress-bar").get_attribute("class") or "")
    _shot(dash, "dashboard-converged.png", doc="dashboard-converged")
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert not [o for o in outputs if "Traceback" in o], "a notebook cell raised"
