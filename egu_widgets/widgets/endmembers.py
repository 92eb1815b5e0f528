"""Endmember-pair view: each endmember's reference spectrum with the matched estimate, page by page."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from ..errors import InputError
from ..figure_data import PairData, pair_data
from ._deps import holoviews, require_widgets
from ._view import HoloViewsWidget, View, build

__all__ = ["EndmemberPairs", "endmember_pairs"]

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
    width, height: largest width (the plot narrows to fit the notebook cell) and height, in pixels.
    normalise: draw each spectrum scaled to a maximum of 1 (compare shapes, whatever the units);
        by default on when the reference is max-scaled (as Samson's truth is) and the estimate is
        not. The "normalise to max 1" checkbox switches it.

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
        normalise: bool | None = None,
    ):
        super().__init__()
        import ipywidgets as w

        hv = holoviews()
        self.data: PairData = pair_data(
            result,
            cube,
            reference=reference,
            reference_label=reference_label,
            bundles=bundles,
            envelope=envelope,
            align=align,
        )
        d = self.data
        if normalise is None:
            estimate_peaks = np.nanmax(d.estimate, axis=1)
            normalise = d.reference_is_max_scaled and not np.allclose(estimate_peaks, 1.0, atol=1e-3)
        self._normalise = bool(normalise)
        self._index = 0
        self._syncing = False
        self._x = hv.Dimension(d.axis.name, label=d.axis.label)
        self._y = hv.Dimension("reflectance")
        self._y2 = hv.Dimension("reflectance_high", label="reflectance (high)")
        self.stream = hv.streams.Stream.define("Endmember", index=0, normalise=self._normalise)()
        dmap = hv.DynamicMap(self._overlay, streams=[self.stream])
        dmap = dmap.opts(
            {
                "Curve": dict(
                    responsive=True,
                    height=height,
                    min_width=320,
                    max_width=width,
                    show_grid=True,
                    tools=["hover"],
                    framewise=True,
                ),
                "Area": dict(responsive=True, height=height, min_width=320, max_width=width, framewise=True),
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
        norm = w.Checkbox(
            value=self._normalise, description="normalise to max 1", indent=False, layout=w.Layout(width="auto")
        )
        norm.add_class("egu-normalise")
        norm.observe(lambda ch: self.set_normalise(ch["new"]), names="value")
        selector.observe(self._on_selector, names="value")
        prev.on_click(lambda _b: self.select((self._index - 1) % d.n_endmembers))
        nxt.on_click(lambda _b: self.select((self._index + 1) % d.n_endmembers))
        self.wdict = {
            "selector": selector,
            "prev": prev,
            "next": nxt,
            "normalise": norm,
            "title": title,
            "plot": self.plots.widget,
        }
        controls = w.HBox([prev, selector, nxt, norm], layout=w.Layout(flex_flow="row wrap", align_items="center"))
        self.widget = w.VBox([controls, title, self.plots.widget], layout=w.Layout(width="100%"))
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
        self.stream.event(index=index, normalise=self._normalise)

    @property
    def normalise(self) -> bool:
        """Whether the spectra are drawn scaled to a maximum of 1."""
        return self._normalise

    def set_normalise(self, normalise: bool) -> None:
        """Draw the spectra scaled to a maximum of 1 (True) or as they are (False)."""
        self._normalise = bool(normalise)
        if self.wdict["normalise"].value != self._normalise:
            self.wdict["normalise"].value = self._normalise
        self.stream.event(index=self._index, normalise=self._normalise)

    def _on_selector(self, change) -> None:
        if not self._syncing and change["new"] is not None:
            self.select(change["new"])

    def _render_title(self) -> None:
        d, i = self.data, self._index
        bits = [f"<b>{html.escape(d.names[i])}</b>"]
        if d.sad is not None and np.isfinite(d.sad[i]):
            bits.append(
                f"SAD {d.sad[i]:.2f}° ({html.escape(d.estimate_label)} vs {html.escape(d.reference_label or '')})"
            )
        if d.envelopes is not None:
            env = d.envelopes[i]
            bits.append(f"{env[2]} bundle spectra" if env is not None else "no bundle spectra")
        self.wdict["title"].value = " — ".join(bits)

    # ------------------------------------------------------------------ drawing
    def _overlay(self, index: int, normalise: bool = False):
        hv = holoviews()
        d = self.data
        x = d.axis.values
        curves = d.curves(index, normalise)
        layers = []
        if d.envelopes is not None:
            env = curves["envelope"]
            lo, hi = (env[0], env[1]) if env is not None else (np.full_like(x, np.nan), np.full_like(x, np.nan))
            layers.append(
                hv.Area((x, lo, hi), kdims=[self._x], vdims=[self._y, self._y2], label=d.envelope_label).opts(
                    color=ENVELOPE_COLOUR, alpha=0.5, line_alpha=0, backend="bokeh"
                )
            )
        if d.reference is not None:
            layers.append(
                hv.Curve((x, curves["reference"]), self._x, self._y, label=d.reference_label).opts(
                    color=REFERENCE_COLOUR, line_dash="dashed", line_width=2, backend="bokeh"
                )
            )
        layers.append(
            hv.Curve((x, curves["estimate"]), self._x, self._y, label=d.estimate_label).opts(
                color=ESTIMATE_COLOUR, line_width=2, backend="bokeh"
            )
        )
        ylabel = "reflectance (each scaled to max 1)" if normalise else "reflectance"
        return hv.Overlay(layers).opts(title=d.title(index), ylabel=ylabel, backend="bokeh")


def endmember_pairs(result: Any, cube: Any = None, *, display: bool = True, **options: Any) -> dict:
    """Build an :class:`EndmemberPairs` view: ``{"widget", "wdict", "view"}``; shown unless ``display=False``."""
    require_widgets("the endmember-pair view")
    return build(EndmemberPairs(result, cube, **options), display)
