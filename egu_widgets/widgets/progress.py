"""One call for "show me training progress here": the dashboard in a notebook, tqdm elsewhere."""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import MissingDependencyError
from ..validation import check_choice
from ._deps import in_notebook, require_widgets

__all__ = ["progress_callback"]


def progress_callback(title: str | None = None, *, mode: str = "auto", **options: Any):
    """A training callback chosen once for where the code runs.

    In a notebook kernel (``mode="auto"`` or ``"notebook"``): a displayed
    :class:`~egu_widgets.widgets.TrainingDashboard` (``options`` go to it). Elsewhere, or with
    ``mode="console"``: the engine's tqdm bar (:class:`egu_widgets.engine.progress.ConsoleProgress`).
    In ``"auto"`` mode a notebook without the widget extra gets the console bar and a warning
    saying what to install.

    Usage: ``EGUNet(...).fit(cube, callbacks=[progress_callback()])``. For a Stop button that works
    while training runs, prefer ``TrainingDashboard().run(fit, cube)``.
    """
    check_choice("mode", mode, ("auto", "notebook", "console"))
    from ..engine.progress import ConsoleProgress

    if mode == "console" or (mode == "auto" and not in_notebook()):
        return ConsoleProgress()
    try:
        require_widgets("the training dashboard")
    except MissingDependencyError as exc:
        if mode == "notebook":
            raise
        warnings.warn(f"{exc}; showing console progress instead", stacklevel=2)
        return ConsoleProgress()
    from .dashboard import TrainingDashboard

    dashboard = TrainingDashboard(title, **options)
    if in_notebook():
        dashboard.show()
    return dashboard
