"""The how-many-materials view, rendered without a browser."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("holoviews")
pytest.importorskip("ipywidgets")

from egu_widgets.classic.subspace import estimate_n_endmembers
from egu_widgets.cube import make_demo
from egu_widgets.widgets import subspace_view


@pytest.fixture(scope="module")
def cube():
    return make_demo(seed=0)


def _sources(view):
    return [p.handles["source"].data for p in view.plots.subplots()]


def test_view_draws_the_spectrum_and_marks_the_count(cube):
    built = subspace_view(cube, display=False, n_shown=12)
    view = built["view"]
    assert set(built["wdict"]) == {"criterion", "summary", "plot"}
    assert view.criterion == "hysime"
    expected = estimate_n_endmembers(cube, "hysime")
    assert view.n_endmembers == expected.n_endmembers
    curves = [d for d in _sources(view) if "component" in d and len(d["component"]) == 12]
    assert curves, "eigenvalue curves are drawn"
    np.testing.assert_allclose(curves[0]["power"], np.maximum(expected.signal_power[:12], np.finfo(float).tiny))
    assert f"hysime</b>: {expected.n_endmembers}" in view.summary.value
    marks = view.plots.plot.traverse(lambda p: p, [lambda p: type(p).__name__ == "LineAnnotationPlot"])
    assert len(marks) == 1, "the count is marked"
    assert marks[0].handles["glyph"].location == expected.n_endmembers + 0.5


def test_switching_criterion_redraws(cube):
    view = subspace_view(cube, display=False, n_shown=12)["view"]
    n_plots = len(view.plots.subplots())
    view.wdict["criterion"].value = "rmt"
    assert view.criterion == "rmt"
    rmt = estimate_n_endmembers(cube, "rmt")
    assert view.n_endmembers == rmt.n_endmembers
    assert len(view.plots.subplots()) == n_plots, "the sources are updated in place"
    np.testing.assert_allclose(_sources(view)[0]["power"], rmt.signal_power[:12])
    assert "rmt</b>" in view.summary.value and "Marchenko" in view.summary.value


def test_precomputed_estimates_and_bad_criterion(cube):
    estimates = {c: estimate_n_endmembers(cube, c) for c in ("hysime", "hfc")}
    view = subspace_view(estimates, display=False, criteria=("hysime", "hfc"))["view"]
    assert view.estimates is not estimates and view.estimates["hfc"] is estimates["hfc"]
    from egu_widgets.errors import InputError

    with pytest.raises(InputError, match="criterion must be one of"):
        view.select("rmt")
