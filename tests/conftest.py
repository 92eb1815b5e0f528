"""Fixtures and hooks shared by several test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for the module, restored afterwards: the tensors in these tests are
    small, and on a shared 2-core machine one thread is as fast and does not stall under load."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Work a test module can start ahead of its tests: a module that defines
# ``background_start(test_names)`` is called once, with the names of its selected tests, before
# the first test outside tests/browser runs. tests/test_notebooks.py executes its notebooks that
# way, in a separate process beside the rest of the suite (the browser tests, themselves several
# processes, run before it starts).
_early = pytest.StashKey[dict]()


def pytest_collection_finish(session):
    early: dict = {}
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "background_start"):
            early.setdefault(module, []).append(getattr(item, "originalname", item.name))
    session.config.stash[_early] = early


def pytest_runtest_setup(item):
    early = item.config.stash.get(_early, None)
    if early and item.path.parent.name != "browser":
        item.config.stash[_early] = {}
        for module, names in early.items():
            module.background_start(names)
