"""Fixtures shared by several test modules."""

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
