"""Endmember-pair view: each endmember's reference spectrum with the matched estimate, page by page."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..errors import InputError
from ..figure_data import PairData, pair_data
from ._deps import holoviews, require_widgets
from ._view import HoloViewsWidget, View, build

ESTIMATE_COLOUR = "#d62728"
REFERENCE_COLOUR = "#222222"
ENVELOPE_COLOUR = "#9ecae1"


class EndmemberPairs(View):
    """Reference (truth, library or VCA) vs estimated spectrum of one endmember at a time.

    Parameters
    ----------
    result: an :class:`~egu_widgets.results.UnmixingResult`.
    cube: the :class:`~egu_widgets.cube.HyperCube` it came from: gives the truth reference, the
        wavelength axis, and the least-squares spectra when the result has abundances only.
    reference: (P, bands) reference spectra overriding the cube's truth; ``reference_label`` names
        them ("library", "VCA", ...).
    bundles: anything with ``spectra`` (K, bands) and ``labels`` (K, P) (such as
        :class:`egu_widgets.engine.bundles.SpectralBundles`): draws the envelope of the spectra
        assigned to each endmember; ``envelope`` is "minmax" or quantiles like (0.05, 0.95).
    align: reorder the reference rows to the estimates by least SAD (Hungarian).

    ``select(i)`` (or the selector, or the ◀/▶ buttons) changes the endmember shown.
    """

    def __init__(
        self,
        result: Any,
        cube: Any = None,
        *,
        reference: Any = None,
        reference_label: str | None = None,
        bundles: Any = None,
        envelope: Any = "minmax",
        align: bool = False,
        width: int = 760,
        height: int = 360,
    ):
        super().__init__()
        import ipywidgets as w

        hv = holoviews()
        self.data: PairData = pair_data(
            result, cube, reference=reference, reference_label=reference_label, bundles=bundles, envelope=envelope, align=align
        )
        d = self.data
        self._index = 0
        self._syncing = False
        self._x = hv.Dimension(d.axis.name, label=d.axis.label)
        self._y = hv.Dimension("reflectance")
        self._y2 = hv.Dimension("reflectance_high", label="reflectance (high)")
        self.stream = hv.streams.Stream.define("Endmember", index=0)()
        dmap = hv.DynamicMap(self._overlay, streams=[self.stream])
        dmap = dmap.opts(
            {
                "Curve": dict(width=width, height=height, show_grid=True, tools=["hover"], framewise=True),
                "Area": dict(width=width, height=height, framewise=True),
                "Overlay": dict(legend_position="right", framewise=True),
            },
            backend="bokeh",
        )
        self.dmap = dmap
        self.plots = HoloViewsWidget(dmap)

        options = [(f"{i + 1}. {name}", i) for i, name in enumerate(d.names)]
        selector = w.Dropdown(options=options, value=0, description="endmember", layout=w.Layout(width="320px"))
        selector.add_class("egu-endmember-select")
        prev = w.Button(icon="chevron-left", tooltip="previous endmember", layout=w.Layout(width="40px"))
        nxt = w.Button(icon="chevron-right", tooltip="next endmember", layout=w.Layout(width="40px"))
        prev.add_class("egu-prev")
        nxt.add_class("egu-next")
        title = w.HTML()
        title.add_class("egu-pair-title")
        selector.observe(self._on_selector, names="value")
        prev.on_click(lambda _b: self.select((self._index - 1) % d.n_endmembers))
        nxt.on_click(lambda _b: self.select((self._index + 1) % d.n_endmembers))
        self.wdict = {"selector": selector, "prev": prev, "next": nxt, "title": title, "plot": self.plots.widget}
        self.widget = w.VBox([w.HBox([prev, selector, nxt]), title, self.plots.widget])
        self.widget.add_class("egu-endmember-pairs")
        self._render_title()

    # ------------------------------------------------------------------ state
    @property
    def index(self) -> int:
        return self._index

    @property
    def names(self) -> list[str]:
        return list(self.data.names)

    def select(self, index: int | str) -> None:
        """Show endmember ``index`` (a position or a name)."""
        d = self.data
        if isinstance(index, str):
            if index not in d.names:
                raise InputError(f"no endmember named {index!r}; choose one of {d.names}")
            index = d.names.index(index)
        index = int(index)
        if not 0 <= index < d.n_endmembers:
            raise InputError(f"endmember index {index} out of range 0..{d.n_endmembers - 1}")
        self._index = index
        self._syncing = True
        try:
            self.wdict["selector"].value = index
        finally:
            self._syncing = False
        self._render_title()
        self.stream.event(index=index)

    def _on_selector(self, change) -> None:
        if not self._syncing and change["new"] is not None:
            self.select(change["new"])

    def _render_title(self) -> None:
        d, i = self.data, self._index
        bits = [f"<b>{html.escape(d.names[i])}</b>"]
        if d.sad is not None and np.isfinite(d.sad[i]):
            bits.append(f"SAD {d.sad[i]:.2f}° ({html.escape(d.estimate_label)} vs {html.escape(d.reference_label or '')})")
        if d.envelopes is not None:
            env = d.envelopes[i]
            bits.append(f"{env[2]} bundle spectra" if env is not None else "no bundle spectra")
        self.wdict["title"].value = " — ".join(bits)

    # ------------------------------------------------------------------ drawing
    def _overlay(self, index: int):
        hv = holoviews()
        d = self.data
        x = d.axis.values
        layers = []
        if d.envelopes is not None:
            env = d.envelopes[index]
            lo, hi = (env[0], env[1]) if env is not None else (np.full_like(x, np.nan), np.full_like(x, np.nan))
            layers.append(
                hv.Area((x, lo, hi), kdims=[self._x], vdims=[self._y, self._y2], label=d.envelope_label).opts(
                    color=ENVELOPE_COLOUR, alpha=0.5, line_alpha=0, backend="bokeh"
                )
            )
        if d.reference is not None:
            layers.append(
                hv.Curve((x, d.reference[index]), self._x, self._y, label=d.reference_label).opts(
                    color=REFERENCE_COLOUR, line_dash="dashed", line_width=2, backend="bokeh"
                )
            )
        layers.append(
            hv.Curve((x, d.estimate[index]), self._x, self._y, label=d.estimate_label).opts(color=ESTIMATE_COLOUR, line_width=2, backend="bokeh")
        )
        return hv.Overlay(layers).opts(title=d.title(index), backend="bokeh")


def endmember_pairs(result: Any, cube: Any = None, *, display: bool = True, **options: Any) -> dict:
    """Build an :class:`EndmemberPairs` view: ``{"widget", "wdict", "view"}``; shown unless ``display=False``."""
    require_widgets("the endmember-pair view")
    return build(EndmemberPairs(result, cube, **options), display)
