"""The widget extra: check that it is installed, and load HoloViews' Bokeh backend once.

Nothing here imports a widget library at module level, so this module can be imported by anything
in the package.
"""

from __future__ import annotations

import importlib

from ..errors import MissingDependencyError

#: import name -> distribution name, for the error message
WIDGET_MODULES = {
    "ipywidgets": "ipywidgets",
    "holoviews": "holoviews",
    "bokeh": "bokeh",
    "jupyter_bokeh": "jupyter_bokeh",
}

INSTALL_HINT = 'pip install "egu_widgets[widgets]"'

_checked = False


def require_widgets(what: str = "the notebook views") -> None:
    """Raise :class:`MissingDependencyError` naming what to install when the extra is missing."""
    global _checked
    if _checked:
        return
    missing = []
    for module in WIDGET_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(WIDGET_MODULES[module])
    if missing:
        raise MissingDependencyError(
            f"{what} need {', '.join(missing)} (the widget extra); install it with: {INSTALL_HINT}"
        )
    _checked = True


def holoviews():
    """HoloViews with its Bokeh plotting backend registered (without printing notebook JS)."""
    require_widgets()
    import holoviews as hv
    import holoviews.plotting.bokeh

    return hv


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not in a terminal IPython or a plain interpreter)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
