"""The bundle-curation view in a real browser: select bundles, reject them, retrain, the maps change.

Uses the JupyterLab and Chromium fixtures' helpers of test_views_browser.py (same requirements;
skipped without them). The notebook is written by the test: a tiny demo scene, a short EGU-Net
fit, and the view.
"""

from __future__ import annotations

import re
import time

import pytest
from test_views_browser import ARTIFACTS, _notebook_page, _shot, _wait

pytestmark = pytest.mark.browser

SETUP = """\
import torch
torch.set_num_threads(1)
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.engine import EGUNet
from egu_widgets.widgets import bundle_curation

cube = make_demo(20, 20, 20, 3)
model = EGUNet("pw", 3, epochs=3, progress=False, num_threads=1).fit(cube)
"""
VIEW = """\
view = bundle_curation(cube, model)["view"]
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory, shared_lab, chromium):
    yield from _notebook_page(tmp_path_factory, shared_lab, chromium, "curation", "curation.ipynb", [SETUP, VIEW])


def _selected(view) -> int:
    m = re.search(r"(\d+)\s*selected", view.locator(".egu-curation-status").text_content() or "")
    return int(m.group(1)) if m else -1


def test_tap_on_the_image_selects_a_patch(page):
    view = page.locator(".egu-bundle-curation").first
    view.wait_for(timeout=300_000)
    figure = view.locator(".egu-curation-bundles .bk-Figure").nth(1)  # projection, then positions
    figure.wait_for(timeout=60_000)
    figure.scroll_into_view_if_needed()
    time.sleep(1)
    box = figure.bounding_box()
    page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.55 * box["height"])
    _wait(lambda: _selected(view) > 0, 30, "the tapped patch's bundles to be selected")
    _shot(view, "curation-tapped.png")


def test_select_reject_retrain_changes_the_maps(page):
    view = page.locator(".egu-bundle-curation").first
    view.wait_for(timeout=300_000)
    maps = view.locator(".egu-curation-maps").first
    maps.locator(".bk-Figure").first.wait_for(timeout=60_000)
    status = view.locator(".egu-curation-status")
    bundles_before = int(re.search(r"(\d+)", status.text_content()).group(1))
    view.locator(".egu-curation-material select").select_option(index=1)
    view.locator("button.egu-curation-select-material").click()
    _wait(lambda: _selected(view) > 0, 30, "the material's bundles to be selected")
    time.sleep(1)
    before = _shot(maps, "curation-maps-before.png")
    view.locator("button.egu-curation-reject").click()
    _wait(lambda: "curated" in status.text_content(), 30, "the curated set")
    assert int(re.search(r"(\d+)", status.text_content()).group(1)) < bundles_before
    view.locator("button.egu-curation-retrain").click()
    _wait(lambda: "was" in status.text_content(), 300, "the retrained model's RMSE")
    after = _wait(lambda: (png := maps.screenshot()) != before and png, 60, "the maps to redraw")
    (ARTIFACTS / "curation-maps-after.png").write_bytes(after)
    _shot(view, "curation-view.png")
