"""Session-wide JupyterLab and Chromium for the browser tests.

Starting a JupyterLab server and a Chromium costs tens of seconds on a loaded machine, so the
modules share one of each: the server serves one root folder, each module copies its notebook
into a subfolder of its own and gets its own kernel (shut down when the module ends, so that no
module's training keeps running behind the next one) and its own page (a fresh browser context).
A module whose kernel needs environment variables the others must not see starts a server of its
own with ``test_views_browser._lab`` and still opens its page in the shared browser.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory):
    """One JupyterLab server for the session, serving an initially empty root folder."""
    from test_views_browser import _lab  # skips (or fails under EGU_REQUIRE_BROWSER=1) without a browser

    yield from _lab(tmp_path_factory, {}, start_kernel=False)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session; each module opens its own page in it."""
    from playwright.sync_api import sync_playwright
    from test_views_browser import CHROMIUM, CHROMIUM_ARGS  # skips without a browser, as above

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
