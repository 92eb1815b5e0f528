"""What every view shares: the builder's dict, notebook display, and HoloViews plots as widgets.

HoloViews objects are rendered by a Bokeh renderer in "server" mode into a Document of their own,
and that Document's root is wrapped in a :class:`jupyter_bokeh.BokehModel` widget. jupyter_bokeh
keeps the Document in sync both ways, the way a Bokeh server would: Python-side changes (a
DynamicMap redrawn by a stream, a data source updated in place) are sent to the page as patches,
and page events (a tap on a map) come back as Bokeh events, where HoloViews' stream callbacks pick
them up. So the plots sit inside ordinary ipywidgets layouts: one container toolkit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._deps import holoviews, in_notebook, require_widgets

_BOKEHJS_LOADED = False


def ensure_bokehjs() -> None:
    """Load BokehJS into the notebook page once per kernel (jupyter_bokeh needs it on the page).

    Only Bokeh's own libraries are sent, inline (so views work offline). ``output_notebook()``
    would also bundle every Bokeh extension imported in the kernel; HoloViews imports Panel,
    whose bundle references a script under a server path that JupyterLab does not serve, and
    BokehJS never finishes loading when one of its scripts fails.
    """
    global _BOKEHJS_LOADED
    if _BOKEHJS_LOADED or not in_notebook():
        return
    from bokeh.resources import Resources

    resources = Resources(mode="inline", components=["bokeh", "bokeh-gl", "bokeh-widgets", "bokeh-tables"])
    try:
        from bokeh.embed.bundle import Bundle
        from bokeh.io.notebook import JS_MIME_TYPE, LOAD_MIME_TYPE, _loading_js
        from IPython.display import publish_display_data
    except ImportError:  # a Bokeh without these internals: fall back to the public call
        from bokeh.io import output_notebook

        output_notebook(resources=resources, hide_banner=True)
    else:
        bundle = Bundle(js_files=[], js_raw=list(resources.js_raw), css_files=[], css_raw=list(resources.css_raw))
        publish_display_data(
            {
                JS_MIME_TYPE: _loading_js(bundle, None, 20000, register_mime=True),
                LOAD_MIME_TYPE: _loading_js(bundle, None, 20000, register_mime=False),
            }
        )
    _BOKEHJS_LOADED = True


class HoloViewsWidget:
    """A HoloViews object rendered once, its live Bokeh plot, and the widget that shows it."""

    def __init__(self, obj: Any, prepare: Callable[[Any], None] | None = None):
        """Render ``obj``; ``prepare(plot)`` may adjust the Bokeh models before the widget exists.

        Changes made after that reach the page as patches, which jupyter_bokeh only applies to
        views already rendered (a patch arriving before the view exists is dropped, and a view
        rendered later starts from the state the widget was created with); see :meth:`resync`.
        """
        hv = holoviews()
        from bokeh.document import Document

        self.obj = obj
        self.document = Document()
        renderer = hv.renderer("bokeh").instance(mode="server")
        self.plot = renderer.get_plot(obj, doc=self.document)
        self.document.add_root(self.plot.state)
        if prepare is not None:
            prepare(self.plot)
        self.widget = _bokeh_model_class()(self.plot.state)

    def resync(self) -> None:
        """Send the whole current document to the page (views re-render from it)."""
        self.widget.update_from_model(self.plot.state)

    def subplots(self, kind: str | None = None) -> list:
        """Every element plot (not layouts/overlays containers) in this plot, in drawing order.

        ``kind`` filters by the plot class name, e.g. ``"CurvePlot"`` or ``"RasterPlot"``.
        """
        found = self.plot.traverse(lambda p: p)
        out = [p for p in found if "source" in getattr(p, "handles", {})]
        if kind is not None:
            out = [p for p in out if type(p).__name__ == kind]
        return out

    def hold(self):
        """Context manager: combine the Document changes made inside into one batch of patches."""
        return _DocumentHold(self.document)

    def close(self) -> None:
        self.widget.close()


_BOKEH_MODEL = None


def _bokeh_model_class():
    """jupyter_bokeh's widget with a close() that may be called twice (explicitly, then by __del__)."""
    global _BOKEH_MODEL
    if _BOKEH_MODEL is None:
        from jupyter_bokeh import BokehModel

        class BokehPlotWidget(BokehModel):
            _egu_closed = False

            def close(self) -> None:
                if self._egu_closed:
                    return
                self._egu_closed = True
                super().close()

            def _sync_model(self, model, content, buffers) -> None:
                # The page sends back the events of every patch it applies (jupyter_bokeh 4.1), so
                # each row streamed from here would be appended a second time; in these views data
                # only flows from the kernel to the page, so streams and patches from it are dropped.
                if content.get("kind") in ("ColumnsStreamed", "ColumnsPatched"):
                    return
                super()._sync_model(model, content, buffers)

        _BOKEH_MODEL = BokehPlotWidget
    return _BOKEH_MODEL


class _DocumentHold:
    def __init__(self, document):
        self.document = document

    def __enter__(self):
        self.document.hold("combine")
        return self

    def __exit__(self, *exc):
        self.document.unhold()
        return False


class View:
    """Base of the notebook views: ``.widget`` (an ipywidgets container) and ``.wdict`` (its parts).

    Displaying the object in a notebook displays the widget; :meth:`show` does it explicitly.
    """

    widget: Any
    wdict: dict

    def __init__(self) -> None:
        require_widgets()
        self._shown = False

    def show(self) -> View:
        from IPython.display import display

        ensure_bokehjs()
        self._shown = True
        display(self.widget)
        return self

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        ensure_bokehjs()
        self._shown = True
        return self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)

    def as_dict(self) -> dict:
        """The builder form: ``{"widget": container, "wdict": {name: child}, "view": self}``."""
        return {"widget": self.widget, "wdict": self.wdict, "view": self}

    def close(self) -> None:
        """Close every widget of the view (frees the kernel-side models)."""
        for child in self.wdict.values():
            close = getattr(child, "close", None)
            if close is not None:
                close()
        self.widget.close()


def build(view: View, display: bool) -> dict:
    """Shared tail of the builders: optionally display, then return the builder dict."""
    if display:
        view.show()
    return view.as_dict()
