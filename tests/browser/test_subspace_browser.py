"""The how-many-materials view in a real browser: the eigenvalue plot renders with the count.

Uses the JupyterLab and Chromium fixtures' helpers of test_views_browser.py (same requirements;
skipped without them). The notebook is written by the test: a four-material demo scene and the
view, given a CSS class by the notebook so that the test can find it.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from test_views_browser import _notebook_page, _shot

pytestmark = pytest.mark.browser

SETUP = """\
from egu_widgets.cube.synthetic import make_demo
from egu_widgets.classic.subspace import estimate_n_endmembers
from egu_widgets.widgets import subspace_view

cube = make_demo(30, 30, 40, 4, snr_db=35, seed=3)
expected = estimate_n_endmembers(cube, "hysime").n_endmembers
print("expected count", expected)
"""
VIEW = """\
built = subspace_view(cube, display=False)
built["widget"].add_class("egu-subspace")
built["view"].show()  # loads BokehJS, then displays
"""
COUNT_RGB = np.array([0x2C, 0xA0, 0x2C])  # the marker's colour (egu_widgets.widgets.subspace.COUNT_COLOUR)


@pytest.fixture(scope="module")
def page(tmp_path_factory, shared_lab, chromium):
    yield from _notebook_page(tmp_path_factory, shared_lab, chromium, "subspace", "subspace.ipynb", [SETUP, VIEW])


def test_eigenvalue_view_renders_with_the_count(page):
    from PIL import Image

    view = page.locator(".egu-subspace").first
    view.wait_for(timeout=300_000)
    figure = view.locator(".bk-Figure").first
    figure.wait_for(timeout=60_000)
    printed = page.locator(".jp-OutputArea-output", has_text="expected count").first.text_content()
    expected = int(re.search(r"expected count (\d+)", printed).group(1))
    summary = view.text_content()
    assert re.search(rf"hysime\s*:\s*{expected}\b", summary), summary
    time.sleep(1)
    png = _shot(figure, "subspace-eigenvalues.png")
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    marker = np.all(np.abs(pixels - COUNT_RGB) <= 12, axis=-1)
    assert marker.sum() > 50, "the dashed count marker is not drawn"
    _shot(view, "subspace-view.png")
