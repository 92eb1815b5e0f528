"""The inspector's mean / spread toggle in a real browser: switching to the spread redraws the maps.

Uses the JupyterLab and Chromium fixtures' helpers of test_views_browser.py (same requirements;
skipped without them). The notebook is written by the test: a tiny demo scene, a three-member
EGU-Net ensemble of a few epochs, and the inspector.
"""

from __future__ import annotations

import time

import pytest
from test_views_browser import ARTIFACTS, _notebook_page, _shot, _wait

pytestmark = pytest.mark.browser

SETUP = """\
import torch
torch.set_num_threads(1)
from egu_widgets import unmix
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.widgets import abundance_inspector

cube = make_demo(20, 20, 20, 3)
result = unmix(cube, method="egu-pw", n_endmembers=3, epochs=3, seed=0, ensemble=3)
"""
VIEW = """\
view = abundance_inspector(result, cube)["view"]
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory, shared_lab, chromium):
    yield from _notebook_page(tmp_path_factory, shared_lab, chromium, "uncertainty", "uncertainty.ipynb", [SETUP, VIEW])


def test_spread_toggle_changes_the_maps(page):
    view = page.locator(".egu-abundance-inspector").first
    view.wait_for(timeout=300_000)
    maps = view.locator(".egu-maps").first
    maps.locator(".bk-Figure").first.wait_for(timeout=60_000)
    toggle = view.locator(".egu-layer")
    toggle.wait_for(timeout=30_000)
    time.sleep(1)
    before = _shot(maps, "uncertainty-maps-mean.png")
    toggle.get_by_text("spread (std)", exact=True).click()
    after = _wait(lambda: (png := maps.screenshot()) != before and png, 60, "the maps to show the spread")
    (ARTIFACTS / "uncertainty-maps-spread.png").write_bytes(after)
    # back to the mean: the page shows the mean's maps again (same data, same colour scale)
    toggle.get_by_text("mean", exact=True).click()
    _wait(lambda: maps.screenshot() != after, 60, "the maps to show the mean again")
    _shot(view, "uncertainty-inspector.png")
