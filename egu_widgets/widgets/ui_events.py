"""Widget messages while the notebook kernel is busy: what can serve them, and how to wait.

A Stop click is a widget message. The kernel handles widget messages between cells, so a cell that
blocks (``run.result()`` under Run All, a ``fit`` in the foreground) keeps the click from
arriving until it ends. Two ways round that, depending on the kernel:

- ``jupyter-ui-poll`` (``ui_events()``) handles the messages that are waiting, from inside the
  busy cell, and holds back later cells' execute requests until the cell ends. It drives the
  kernel through ``kernel.do_one_iteration()``, which ipykernel 6 and early 7 releases have;
- ipykernel releases without that method dispatch widget messages by themselves while a cell
  *awaits* (the cell keeps its place in the queue; comm messages skip it). There ``await run``
  serves Stop, and nothing can serve it from a cell that blocks.

:func:`serving` says which of the two applies; the training views use it to poll while they wait,
or to say what to do instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator

from ._deps import in_notebook

__all__ = ["AWAIT_HINT", "poll_while", "serving", "ui_poll"]

#: what to tell a user whose kernel cannot serve widget messages during a blocking wait
AWAIT_HINT = "use `await run` (instead of `run.result()`) to wait in a cell with Stop still working"


def _kernel():
    from IPython import get_ipython

    shell = get_ipython()
    return getattr(shell, "kernel", None)


def serving() -> str:
    """How widget messages can be served from a busy cell of this kernel.

    ``"poll"``: jupyter-ui-poll works here (a blocking wait can poll); ``"await"``: only a cell
    that awaits lets them through (the kernel dispatches them concurrently); ``"none"``: not in a
    notebook kernel, or neither applies (jupyter-ui-poll missing on a kernel that needs it).
    """
    if not in_notebook():
        return "none"
    kernel = _kernel()
    if hasattr(kernel, "do_one_iteration"):
        return "poll" if importlib.util.find_spec("jupyter_ui_poll") is not None else "none"
    if hasattr(kernel, "shell_channel_thread"):  # ipykernel 7: comm messages bypass a waiting cell
        return "await"
    return "none"


@contextlib.contextmanager
def ui_poll() -> Iterator[Callable[[int], None] | None]:
    """``with ui_poll() as poll:`` -- ``poll(n)`` handles up to ``n`` waiting widget messages.

    ``poll`` is None where jupyter-ui-poll cannot work (see :func:`serving`).
    """
    if serving() != "poll":
        yield None
        return
    from jupyter_ui_poll import ui_events

    with ui_events() as poll:
        yield poll


def poll_while(busy: Callable[[float], bool], tick: Callable[[], None], *, interval: float = 0.05) -> None:
    """Call ``busy(interval)`` (which waits up to ``interval`` seconds and says whether to go on)
    and ``tick()`` in turn, serving widget messages between them when this kernel allows it."""
    with ui_poll() as poll:
        while busy(interval):
            if poll is not None:
                poll(20)
            tick()
