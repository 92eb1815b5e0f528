"""Bundle-curation view: look at EGU-Net's spectral bundles, keep, reject or relabel them, retrain.

The view draws, for the current bundle set, the spectra of one material (their envelope, mean
and individual lines), a 2-D PCA projection of every bundle coloured by its pseudo-label, their
positions on the image, and the abundance maps of the current model. Bundles are selected with
the box or lasso tool on the projection, by tapping the image (the bundles of the patch under the
tap) or by material; "reject", "keep only" and "relabel as" make a new set through
:meth:`~egu_widgets.engine.SpectralBundles.select` / ``reject`` / ``relabel``; "retrain" fits the
model again on the curated set (``EGUNet.fit(cube, bundles=curated)``) and redraws the maps. The
engine knows nothing of this view; the view only calls the engine's public API.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from ..figure_data.bundles import BundleData, bundle_data, covering, in_box, in_polygon
from ..figure_data.spectra import match_rows_by_sad
from ._deps import holoviews
from ._view import HoloViewsWidget, View, build

__all__ = ["BundleCuration", "bundle_curation"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SELECTED_COLOUR = "#000000"
#: Individual spectra drawn per material at most (the envelope covers them all).
MAX_LINES = 150


class BundleCuration(View):
    """Curate the spectral bundles of an EGU-Net fit and retrain from the curated set.

    Parameters
    ----------
    cube : HyperCube
        The training cube (its image is drawn under the bundle positions).
    model : EGUNet, optional
        A fitted estimator: its ``bundles_`` are curated, its ``result_`` gives the first maps,
        and retraining fits a fresh estimator with the same parameters on the curated set.
    bundles, result : optional
        The bundle set and maps to start from when no model is given (or to override its own).
    fit : callable, optional
        ``fit(cube, bundles) -> (result, model)`` used by "retrain" instead of the default.
    map_size : int
        Pixel size of the longer side of each map (the plots scale with the output's width).
    """

    def __init__(
        self,
        cube: Any,
        model: Any = None,
        *,
        bundles: Any = None,
        result: Any = None,
        fit: Callable[[Any, Any], tuple[Any, Any]] | None = None,
        map_size: int = 220,
    ):
        super().__init__()
        import ipywidgets as w

        hv = holoviews()
        self.cube = cube
        self.model = model
        bundles = bundles if bundles is not None else getattr(model, "bundles_", None)
        if bundles is None:
            raise InputError("the curation view needs bundles: pass a fitted EGU-Net model or bundles=")
        self.result = result if result is not None else getattr(model, "result_", None)
        self._fit = fit if fit is not None else self._default_fit
        self.original = bundles
        self.bundles = bundles
        self.undo_stack: list = []
        self.previous_result = None
        self.map_size = int(map_size)
        self._names = self._material_names()
        self.data: BundleData = bundle_data(bundles, (cube.height, cube.width), names=self._names)
        self._basis = self.data.basis
        self.selected = np.zeros(bundles.n_bundles, dtype=bool)
        self.state = hv.streams.Stream.define("Curation", material=0, version=0, maps=0)()

        self._cmap = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(self._names)}
        # The projection and the positions are drawn once, with the streams on their elements
        # (a Tap or Selection1D whose source is a DynamicMap gets no page events); later sets are
        # written into their Bokeh sources in place (:meth:`_draw_bundles`).
        points, chosen = self._projection()
        self.selection = hv.streams.Selection1D(source=points)
        self.selection.add_subscriber(self._on_selection)
        image, located, located_chosen = self._positions()
        self.tap = hv.streams.Tap(source=image, x=None, y=None)
        self.tap.add_subscriber(self._on_tap)
        # One Bokeh layout for both: it sizes its two frames itself (responsive plots side by side
        # in an ipywidgets box collapse to their minimum width).
        layout = hv.Layout([points * chosen, (image * located * located_chosen).opts(show_legend=False)]).cols(2)
        self.scatter = HoloViewsWidget(layout, prepare=self._all_factors)
        self.projection = self.positions = self.scatter
        self.spectra = HoloViewsWidget(hv.DynamicMap(self._spectra, streams=[self.state]))
        n_maps = 0 if self.result is None else self.result.n_endmembers
        self.maps = HoloViewsWidget(
            hv.Layout([hv.DynamicMap(self._map_of(p), streams=[self.state]) for p in range(n_maps)]).cols(
                max(n_maps, 1)
            )
            if n_maps
            else hv.Div("<i>no maps yet: retrain to see them</i>")
        )
        self._drawing = False

        options = [(f"{i + 1}. {name}", i) for i, name in enumerate(self._names)]
        material = w.Dropdown(options=options, value=0, description="material", layout=w.Layout(width="260px"))
        material.add_class("egu-curation-material")
        material.observe(lambda ch: self._event(material=ch["new"]), names="value")
        relabel_to = w.Dropdown(options=options, value=0, description="as", layout=w.Layout(width="220px"))
        relabel_to.add_class("egu-curation-relabel-to")

        def button(label: str, css: str, action: Callable[[], None], style: str = "") -> Any:
            b = w.Button(description=label, button_style=style, layout=w.Layout(width="auto"))
            b.add_class(css)
            b.on_click(lambda _b: self._guard(action))
            return b

        self.wdict = {
            "material": material,
            "select_material": button("select its bundles", "egu-curation-select-material", self.select_material),
            "clear": button("clear selection", "egu-curation-clear", self.clear_selection),
            "reject": button("reject selected", "egu-curation-reject", self.reject_selected, "warning"),
            "keep": button("keep only selected", "egu-curation-keep", self.keep_selected),
            "relabel_to": relabel_to,
            "relabel": button(
                "relabel selected", "egu-curation-relabel", lambda: self.relabel_selected(relabel_to.value)
            ),
            "undo": button("undo", "egu-curation-undo", self.undo),
            "reset": button("reset", "egu-curation-reset", self.reset),
            "retrain": button("retrain", "egu-curation-retrain", self.retrain, "primary"),
            "status": w.HTML(),
            "bundles_plot": self.scatter.widget,
            "spectra": self.spectra.widget,
            "maps": self.maps.widget,
        }
        self.wdict["status"].add_class("egu-curation-status")
        d = self.wdict
        row = dict(flex_flow="row wrap", align_items="center")
        controls = w.VBox(
            [
                w.HBox([d["material"], d["select_material"], d["clear"]], layout=w.Layout(**row)),
                w.HBox([d["reject"], d["keep"], d["relabel"], d["relabel_to"]], layout=w.Layout(**row)),
                w.HBox([d["undo"], d["reset"], d["retrain"]], layout=w.Layout(**row)),
            ]
        )
        self.widget = w.VBox(
            [controls, d["status"], self.scatter.widget, self.spectra.widget, self.maps.widget],
            layout=w.Layout(width="100%", max_width="100%"),
        )
        self.widget.add_class("egu-bundle-curation")
        for plots, css in (
            (self.scatter, "egu-curation-bundles"),
            (self.spectra, "egu-curation-spectra"),
            (self.maps, "egu-curation-maps"),
        ):
            plots.widget.add_class(css)
        self._render_status()

    # ------------------------------------------------------------------ state
    @property
    def n_selected(self) -> int:
        """How many bundles of the current set are selected."""
        return int(self.selected.sum())

    @property
    def names(self) -> list[str]:
        """The bundle materials' names (the order of the network's outputs)."""
        return list(self._names)

    def _material_names(self) -> list[str]:
        """Material i is named after the result's endmember closest to reference spectrum i."""
        p = self.original.n_endmembers
        self._map_order = list(range(p))
        if self.result is None:
            return [f"material {i + 1}" for i in range(p)]
        names = [str(n) for n in self.result.ds["endmember"].values]
        em = self.result.endmembers
        if em is not None and em.shape[0] == p:
            self._map_order = [int(i) for i in match_rows_by_sad(em.values, np.asarray(self.original.reference))]
            return [names[i] for i in self._map_order]
        return names[:p] if len(names) >= p else [f"material {i + 1}" for i in range(p)]

    def _event(self, **changes: Any) -> None:
        self._drawing = True
        try:
            self.state.event(**changes)
        finally:
            self._drawing = False

    def _guard(self, action: Callable[[], None]) -> None:
        """Run a button's action; a refusal (InputError) is shown in the status line, not raised."""
        try:
            action()
        except InputError as exc:
            self._render_status(error=str(exc))

    def set_selection(self, mask: Any) -> None:
        """Select the bundles in ``mask`` (a (K,) bool mask or bundle indices of the current set)."""
        arr = np.asarray(mask)
        if arr.dtype == bool:
            if arr.shape != self.selected.shape:
                raise InputError(f"a selection mask needs {self.selected.size} entries; got {arr.shape}")
            new = arr.copy()
        else:
            new = np.zeros_like(self.selected)
            new[arr.astype(np.int64)] = True
        self.selected = new
        self._draw_selection()
        self._render_status()

    def select_box(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Select the bundles inside a box of the projection (what the box tool does)."""
        self.set_selection(in_box(self.data.projection, x0, x1, y0, y1))

    def select_lasso(self, xs: Any, ys: Any) -> None:
        """Select the bundles inside a polygon of the projection (what the lasso tool does)."""
        self.set_selection(in_polygon(self.data.projection, xs, ys))

    def select_patch(self, row: int, col: int) -> None:
        """Select the bundles whose patch covers image pixel (row, col)."""
        self.set_selection(covering(self.data, int(row), int(col)))

    def select_material(self, material: int | None = None) -> None:
        """Select every bundle whose pseudo-label is ``material`` (default: the one shown)."""
        m = self.state.material if material is None else int(material)
        self.set_selection(self.data.group == m)

    def clear_selection(self) -> None:
        """Select nothing."""
        self.set_selection(np.zeros_like(self.selected))

    def _require_selection(self, what: str) -> None:
        if not self.selected.any():
            raise InputError(
                f"nothing selected to {what}: box or lasso on the projection, tap the image, or pick a material"
            )

    def _curate(self, new: Any) -> None:
        self.undo_stack.append(self.bundles)
        self._set_bundles(new)

    def _set_bundles(self, bundles: Any) -> None:
        self.bundles = bundles
        self.data = bundle_data(bundles, (self.cube.height, self.cube.width), names=self._names, basis=self._basis)
        self.selected = np.zeros(bundles.n_bundles, dtype=bool)
        self._draw_bundles()
        self._event(version=self.state.version + 1)
        self._render_status()

    def reject_selected(self) -> None:
        """Drop the selected bundles."""
        self._require_selection("reject")
        self._curate(self.bundles.reject(self.selected))

    def keep_selected(self) -> None:
        """Keep only the selected bundles."""
        self._require_selection("keep")
        self._curate(self.bundles.select(self.selected))

    def relabel_selected(self, material: int) -> None:
        """Label the selected bundles pure ``material``."""
        self._require_selection("relabel")
        self._curate(self.bundles.relabel(self.selected, int(material)))

    def undo(self) -> None:
        """Go back to the set before the last change."""
        if self.undo_stack:
            self._set_bundles(self.undo_stack.pop())

    def reset(self) -> None:
        """Back to the bundles the view started with."""
        if self.bundles is not self.original:
            self.undo_stack.append(self.bundles)
            self._set_bundles(self.original)

    def _default_fit(self, cube: Any, bundles: Any) -> tuple[Any, Any]:
        from ..engine import EGUNet

        params = {} if self.model is None else self.model.get_params(deep=False)
        params.update(progress=False, ensemble=None)
        params.setdefault("n_endmembers", bundles.n_endmembers)
        model = EGUNet(**params).fit(cube, bundles=bundles)
        return model.result_, model

    def retrain(self) -> None:
        """Fit the model again on the current (curated) bundles and show its maps."""
        self._render_status(busy=True)
        result, model = self._fit(self.cube, self.bundles)
        self.previous_result, self.result, self.model = self.result, result, model
        if result.endmembers is not None and result.n_endmembers == self.bundles.n_endmembers:
            self._map_order = [int(i) for i in match_rows_by_sad(result.endmembers.values, self.bundles.reference)]
        self._event(maps=self.state.maps + 1)
        self._render_status()

    # ------------------------------------------------------------------ events
    def _on_selection(self, index: list | None = None, **_: Any) -> None:
        if self._drawing or index is None:
            return
        self.selected = np.zeros(self.bundles.n_bundles, dtype=bool)
        valid = [i for i in index if 0 <= i < self.bundles.n_bundles]
        self.selected[valid] = True
        self._draw_selection()
        self._render_status()

    def _on_tap(self, x: float | None = None, y: float | None = None, **_: Any) -> None:
        if x is None or y is None:
            return
        row, col = int(round(y)), int(round(x))
        if 0 <= row < self.cube.height and 0 <= col < self.cube.width:
            self.select_patch(row, col)

    # ------------------------------------------------------------------ drawing
    def _point_sources(self, selected: bool) -> dict[str, Any]:
        """The Bokeh sources of the bundle layers ("projection", "positions"), or of their
        'selected' layers."""
        out = {}
        for plot in self.scatter.subplots("PointPlot"):
            if plot.current_frame is None or (plot.current_frame.label == "selected") != selected:
                continue
            source = plot.handles["source"]
            out["projection" if "pc1" in source.data else "positions"] = source
        return out

    def _all_factors(self, plot: Any) -> None:
        """Every material in the colour mappers, also one without bundles at first (relabelling
        may give it some later)."""
        from bokeh.models import CategoricalColorMapper

        for model in plot.state.references():
            if isinstance(model, CategoricalColorMapper):
                model.factors = list(self._names)
                model.palette = [self._cmap[n] for n in self._names]

    def _draw_bundles(self) -> None:
        """Write the current set into the plots' sources in place (no re-render)."""
        d = self.data
        names = np.array(d.names)[d.group]
        known = np.isfinite(d.row)
        columns = {
            "projection": {
                "pc1": d.projection[:, 0],
                "pc2": d.projection[:, 1],
                "material": names,
                "bundle": np.arange(len(names)),
                "color": names,
            },
            "positions": {"x": d.col[known], "y": d.row[known], "material": names[known], "color": names[known]},
        }
        with self.scatter.hold():
            for key, source in self._point_sources(selected=False).items():
                source.selected.indices = []
                source.data = {k: np.asarray(v) for k, v in columns[key].items() if k in source.data}
        self._draw_selection()

    def _draw_selection(self) -> None:
        """Rewrite the 'selected' layers' sources in place (no re-render of the plots)."""
        d, sel = self.data, self.selected
        columns = {
            "projection": {"pc1": d.projection[sel, 0], "pc2": d.projection[sel, 1]},
            "positions": {"x": d.col[sel], "y": d.row[sel]},
        }
        with self.scatter.hold():
            for key, source in self._point_sources(selected=True).items():
                source.data = {k: np.asarray(v) for k, v in columns[key].items()}

    def _projection(self):
        hv = holoviews()
        d = self.data
        names = np.array(d.names)[d.group]
        pc1 = hv.Dimension("pc1", label=f"PC 1 ({d.basis.explained[0]:.0%})")
        pc2 = hv.Dimension("pc2", label=f"PC 2 ({d.basis.explained[1]:.0%})")
        points = hv.Points(
            (d.projection[:, 0], d.projection[:, 1], names, np.arange(len(names))),
            kdims=[pc1, pc2],
            vdims=["material", "bundle"],
        ).opts(
            color="material",
            cmap=self._cmap,
            size=6,
            alpha=0.7,
            tools=["box_select", "lasso_select", "hover"],
            active_tools=["box_select"],
            frame_width=300,
            frame_height=260,
            show_legend=True,
            legend_position="right",
            title="bundles: PCA of their spectra",
            framewise=True,
            backend="bokeh",
        )
        chosen = hv.Points(([], []), kdims=[pc1, pc2], label="selected").opts(
            color="white", line_color=SELECTED_COLOUR, line_width=2, size=9, fill_alpha=0.0, backend="bokeh"
        )
        return points, chosen

    def _image(self) -> np.ndarray:
        image = np.asarray(self.cube.image, dtype=np.float64).mean(axis=2)
        image = np.where(self.cube.valid_mask, image, np.nan)
        return image

    def _positions(self):
        hv = holoviews()
        d = self.data
        h, w = self.cube.height, self.cube.width
        xdim, ydim = hv.Dimension("x", label="column"), hv.Dimension("y", label="row")
        if not hasattr(self, "_mean_image"):
            self._mean_image = self._image()
        image = hv.Image(
            (np.arange(w), np.arange(h), self._mean_image), kdims=[xdim, ydim], vdims=["reflectance"]
        ).opts(
            cmap="gray",
            invert_yaxis=True,
            tools=["tap"],
            active_tools=["tap"],
            frame_width=int(260 * min(1.0, w / h)),
            frame_height=int(260 * min(1.0, h / w)),
            title="bundle positions (tap: that patch)",
            backend="bokeh",
        )
        names = np.array(d.names)[d.group]
        known = np.isfinite(d.row)
        points = hv.Points((d.col[known], d.row[known], names[known]), kdims=[xdim, ydim], vdims=["material"]).opts(
            color="material", cmap=self._cmap, size=5, alpha=0.8, show_legend=False, backend="bokeh"
        )
        chosen = hv.Points(([], []), kdims=[xdim, ydim], label="selected").opts(
            color="white", line_color=SELECTED_COLOUR, line_width=2, size=9, fill_alpha=0.0, backend="bokeh"
        )
        return image, points, chosen

    def _spectra(self, material: int, version: int, maps: int):
        hv = holoviews()
        d = self.data
        x = self._axis()
        xdim, ydim = hv.Dimension("band", label=self._axis_label), hv.Dimension("reflectance")
        colour = self._cmap[d.names[material]]
        members = np.flatnonzero(d.group == material)
        lines = [np.column_stack([x, d.spectra[i]]) for i in members[:MAX_LINES]]
        layers = [hv.Path(lines, kdims=[xdim, ydim]).opts(color=colour, alpha=0.25, line_width=1, backend="bokeh")]
        env = d.envelopes[material]
        if env is not None:
            low, high, _ = env
            layers.insert(0, hv.Area((x, low, high), kdims=[xdim], vdims=[ydim, "high"]).opts(
                color=colour, alpha=0.2, line_alpha=0, backend="bokeh"
            ))  # fmt: skip
            layers.append(hv.Curve((x, d.means[material]), xdim, ydim, label="mean").opts(color=colour, line_width=3))
        count = int(len(members))
        title = f"{d.names[material]}: {count} bundle{'s' if count != 1 else ''}"
        if count > MAX_LINES:
            title += f" ({MAX_LINES} lines drawn, envelope of all)"
        overlay = hv.Overlay(layers).opts(title=title, backend="bokeh")
        return overlay.opts(
            {"Path": dict(responsive=True, min_width=320, height=260, show_grid=True, framewise=True)}, backend="bokeh"
        )

    def _axis(self) -> np.ndarray:
        if "wavelength" in self.cube.ds.coords:
            self._axis_label = "wavelength"
            return np.asarray(self.cube.ds["wavelength"].values, dtype=np.float64)
        self._axis_label = "band"
        return np.arange(self.cube.n_bands, dtype=np.float64)

    def _map_of(self, position: int) -> Callable:
        def draw(material: int, version: int, maps: int):
            hv = holoviews()
            index = self._map_order[position] if position < len(self._map_order) else position
            maps_ = self.result.abundances.values
            h, w = self.cube.height, self.cube.width
            name = str(self.result.ds["endmember"].values[index])
            side = self.map_size
            width, height = (side, max(60, int(side * h / w))) if w >= h else (max(60, int(side * w / h)), side)
            return hv.Image(
                (np.arange(w), np.arange(h), maps_[index]),
                kdims=[hv.Dimension("x", label="column"), hv.Dimension("y", label="row")],
                vdims=[hv.Dimension("abundance", range=(0.0, 1.0))],
            ).opts(
                cmap="viridis",
                clim=(0.0, 1.0),
                invert_yaxis=True,
                frame_width=width,
                frame_height=height,
                xaxis=None,
                yaxis=None,
                title=name,
                tools=["hover"],
                backend="bokeh",
            )

        return draw

    def _render_status(self, error: str | None = None, busy: bool = False) -> None:
        b = self.bundles
        counts = ", ".join(f"{n}: {c}" for n, c in zip(self.data.names, self.data.counts))
        parts = [f"<b>{b.n_bundles}</b> bundles ({counts}); <b>{self.n_selected}</b> selected"]
        if b.curated:
            parts.append(
                f"curated from {b.config.get('n_bundles_extracted', '?')} ({len(b.config.get('curation', []))} steps)"
            )
        if self.result is not None and self.result.rmse is not None:
            text = f"RMSE {self.result.rmse:.4f}"
            if self.previous_result is not None and self.previous_result.rmse is not None:
                text += f" (was {self.previous_result.rmse:.4f})"
            parts.append(text)
        if busy:
            parts.append("<i>retraining…</i>")
        html_text = " · ".join(parts)
        if error:
            html_text += f"<br><span class='egu-curation-error' style='color:#d62728'>{html.escape(error)}</span>"
        self.wdict["status"].value = html_text


def bundle_curation(cube: Any, model: Any = None, *, display: bool = True, **options: Any) -> dict:
    """Build a :class:`BundleCuration` view of ``model``'s bundles on ``cube``.

    Returns ``{"widget", "wdict", "view"}``; ``display=False`` for tests.
    """
    return build(BundleCuration(cube, model, **options), display)
