"""How-many-materials view: the signal's eigenvalue spectrum against the noise, with the count marked."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..classic.subspace import CRITERIA, SubspaceEstimate, estimate_n_endmembers
from ._deps import holoviews
from ._view import HoloViewsWidget, View, build

__all__ = ["SubspaceView", "subspace_view"]

SIGNAL_COLOUR = "#1f77b4"
NOISE_COLOUR = "#d62728"
COUNT_COLOUR = "#2ca02c"

_CURVES = {
    # criterion -> (label of the signal curve, label of the noise curve)
    "hysime": ("signal power along each eigenvector", "2 × noise power (keep where above)"),
    "hfc": ("correlation − covariance eigenvalue", "threshold at the false-alarm rate"),
    "rmt": ("whitened covariance eigenvalue", "noise edge (Marchenko–Pastur + Tracy–Widom)"),
}


class SubspaceView(View):
    """Eigenvalue spectrum of a cube against its noise estimate, for each criterion of
    :func:`~egu_widgets.classic.subspace.estimate_n_endmembers`, with the estimated number of
    materials marked; a selector switches criterion.

    ``estimates`` maps criterion -> :class:`SubspaceEstimate`; ``n_shown`` eigenvalues are drawn
    (on a log scale: they span many orders of magnitude).
    """

    def __init__(self, data: Any, *, criteria=CRITERIA, n_shown: int = 30, width: int | None = None, height: int = 320):
        super().__init__()
        import ipywidgets as w

        hv = holoviews()
        self.estimates: dict[str, SubspaceEstimate] = {
            c: (data[c] if isinstance(data, dict) else estimate_n_endmembers(data, c)) for c in criteria
        }
        self.n_shown = int(n_shown)
        self.stream = hv.streams.Stream.define("Criterion", criterion=criteria[0])()
        sizing = dict(responsive=True, min_width=320) if width is None else dict(width=width)
        dmap = hv.DynamicMap(self._overlay, streams=[self.stream]).opts(
            {
                "Curve": dict(height=height, logy=True, show_grid=True, framewise=True, tools=["hover"], **sizing),
                "Scatter": dict(size=6, framewise=True),
                "VLine": dict(color=COUNT_COLOUR, line_dash="dashed", line_width=2),
                "Overlay": dict(legend_position="top_right", framewise=True),
            },
            backend="bokeh",
        )
        self.dmap = dmap
        self.plots = HoloViewsWidget(dmap)
        selector = w.ToggleButtons(options=[(c, c) for c in criteria], value=criteria[0], description="criterion")
        selector.observe(lambda change: self.select(change["new"]), names="value")
        self.summary = w.HTML(self._summary_html())
        self.wdict = {"criterion": selector, "summary": self.summary, "plot": self.plots.widget}
        self.widget = w.VBox(
            [w.HBox([selector]), self.summary, self.plots.widget], layout=w.Layout(width="100%", max_width="100%")
        )

    @property
    def criterion(self) -> str:
        return self.stream.criterion

    @property
    def n_endmembers(self) -> int:
        """The count of the criterion shown."""
        return self.estimates[self.criterion].n_endmembers

    def select(self, criterion: str) -> None:
        """Show ``criterion``'s curves."""
        if criterion not in self.estimates:
            from ..errors import InputError

            raise InputError(f"criterion must be one of {', '.join(self.estimates)}; got {criterion!r}")
        self.stream.event(criterion=criterion)
        self.wdict["criterion"].value = criterion
        self.summary.value = self._summary_html()

    def _summary_html(self) -> str:
        parts = [f"<b>{c}</b>: {e.n_endmembers}" for c, e in self.estimates.items()]
        signal, noise = _CURVES[self.criterion]
        return (
            "estimated number of materials — "
            + " · ".join(parts)
            + f"<br><small>{self.criterion}: signal = {signal}; noise threshold = {noise}; "
            "the dashed line separates the counted directions</small>"
        )

    def _overlay(self, criterion: str):
        hv = holoviews()
        est = self.estimates[criterion]
        k = min(self.n_shown, len(est.signal_power))
        index = np.arange(1, k + 1)
        # Log axes cannot show values <= 0 (HFC's differences can be negative): floor them.
        floor = np.finfo(float).tiny
        signal = np.maximum(est.signal_power[:k], floor)
        noise = np.maximum((2.0 * est.noise_power if criterion == "hysime" else est.noise_power)[:k], floor)
        x = hv.Dimension("component", label="eigenvector (largest first)")
        y = hv.Dimension("power")
        # Same labels for every criterion, so that switching updates the plot's sources in place.
        curves = hv.Curve((index, signal), x, y, label="signal").opts(color=SIGNAL_COLOUR)
        points = hv.Scatter((index, signal), x, y).opts(color=SIGNAL_COLOUR)
        threshold = hv.Curve((index, noise), x, y, label="noise threshold").opts(color=NOISE_COLOUR, line_dash="dotted")
        # rmt counts the directions above the edge after centring, plus one (the mean's direction).
        above = est.n_endmembers - 1 if criterion == "rmt" else est.n_endmembers
        marker = hv.VLine(above + 0.5)
        return (curves * points * threshold * marker).opts(title=f"{criterion}: {est.n_endmembers} materials")


def subspace_view(data: Any, *, display: bool = True, **options: Any) -> dict:
    """Build a :class:`SubspaceView` of ``data`` (a HyperCube, pixels, or a dict of estimates).

    Returns ``{"widget", "wdict", "view"}``; ``display=False`` for tests.
    """
    return build(SubspaceView(data, **options), display)
