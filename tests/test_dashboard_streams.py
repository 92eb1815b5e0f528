"""The dashboard's streamed curves stay as recorded when the page sends its events back.

jupyter_bokeh's page replays the events of each patch it applies to the kernel; a stream echoed
back would append every row a second time (docs/dashboard.md). The widget drops streams and
patches coming from the page; other page events still arrive.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("holoviews")

from egu_widgets.engine.events import TrainingEvent
from egu_widgets.widgets import TrainingDashboard


def test_a_stream_echoed_by_the_page_is_not_appended_again():
    dash = TrainingDashboard(update_every=0.0)
    dash.on_event(TrainingEvent("start", 0, 10, 0.0))
    for k in range(1, 4):
        dash.on_event(TrainingEvent("epoch", k, 10, 0.1 * k, losses={"total": 1.0 / k}))
    widget = dash.plots.widget
    (curve,) = dash.plots.subplots("CurvePlot")
    source = curve.handles["source"]
    value = [k for k in source.data if k != "epoch"][0]
    # what the page sends after applying the stream of epoch 3 (jupyter_bokeh's "jsevent")
    echo = {
        "event": "jsevent",
        "kind": "ColumnsStreamed",
        "model": {"id": source.id},
        "data": {"epoch": [3.0], value: [1.0 / 3]},
        "rollover": None,
    }
    widget._sync_model(widget, echo, [])
    np.testing.assert_array_equal(np.asarray(source.data["epoch"]), [1, 2, 3])
    # a change made on the page (a zoom) still reaches the kernel
    x_range = curve.handles["plot"].x_range
    zoom = {"event": "jsevent", "kind": "ModelChanged", "model": {"id": x_range.id}, "attr": "start", "new": 2.0}
    widget._sync_model(widget, zoom, [])
    assert x_range.start == 2.0
