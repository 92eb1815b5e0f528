"""Session-wide JupyterLab and Chromium for the browser tests.

Starting a JupyterLab server and a Chromium costs tens of seconds on a loaded machine, so the
modules share one of each: the server serves one root folder, each module copies its notebook
into a subfolder of its own and gets its own kernel (shut down when the module ends, so that no
module's training keeps running behind the next one) and its own page (a fresh browser context).
A module whose kernel needs environment variables the others must not see starts a server of its
own with ``test_views_browser._lab`` and still opens its page in the shared browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory):
    """One JupyterLab server for the session, serving an initially empty root folder."""
    from test_views_browser import _lab  # skips (or fails under EGU_REQUIRE_BROWSER=1) without a browser

    yield from _lab(tmp_path_factory, {}, start_kernel=False)


#: The running Playwright and its Chromium, between the first browser test and the last one.
_CHROMIUM: dict = {}


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium shared by the browser modules; each opens its own page in it.

    Playwright's synchronous API keeps an asyncio loop running in the main thread while it is
    started, which would break every later test that calls ``asyncio.run``; so the browser is
    stopped as soon as the next test is not a browser test (``pytest_runtest_teardown`` below)
    and started again if a browser module follows.
    """
    if "browser" not in _CHROMIUM:
        from playwright.sync_api import sync_playwright
        from test_views_browser import CHROMIUM, CHROMIUM_ARGS  # skips without a browser, as above

        pw = sync_playwright().start()
        try:
            _CHROMIUM["browser"] = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except BaseException:
            pw.stop()
            raise
        _CHROMIUM["playwright"] = pw
    return _CHROMIUM["browser"]


def _stop_chromium() -> None:
    browser, pw = _CHROMIUM.pop("browser", None), _CHROMIUM.pop("playwright", None)
    try:
        if browser is not None:
            browser.close()
    finally:
        if pw is not None:
            pw.stop()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Stop the shared Chromium after the last browser test before a test of another folder."""
    here = Path(__file__).parent
    if nextitem is None or here not in Path(nextitem.path).parents:
        _stop_chromium()
