"""Abundance inspector: every abundance map (and truth and error), tap a pixel to look inside it.

Maps larger than ``max_side`` pixels on a side are shown as block means (a 1000 x 1000 cube at
max_side=250 sends 4 x 4 block averages), so the page never receives millions of cells; a tap
still selects the exact full-resolution pixel under the pointer, because the downsampled images
keep the original pixel coordinates.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError
from ..figure_data import (
    block_centres,
    block_mean,
    downsample_factor,
    make_reconstructor,
    map_data,
    member_maps,
    residual,
    spectral_axis,
    spread_layers,
    spread_limit,
)
from ._deps import holoviews, require_widgets
from ._view import HoloViewsWidget, View, build

__all__ = ["AbundanceInspector", "abundance_inspector"]

OBSERVED_COLOUR = "#222222"
RECONSTRUCTION_COLOUR = "#d62728"
RESIDUAL_COLOUR = "#1f77b4"
MARKER_COLOUR = "#ff00ff"
MEMBER_COLOUR = "#ff7f0e"


class AbundanceInspector(View):
    """Abundance maps side by side, truth and error under each when known, and a pixel probe.

    Parameters
    ----------
    result: an :class:`~egu_widgets.results.UnmixingResult`.
    cube: the :class:`~egu_widgets.cube.HyperCube` it was computed from (observed spectra, truth,
        wavelengths).
    reconstruct: the fitted model (e.g. the ``EGUNet`` the result came from: its decoder's output
        is shown), a ``pixel_index -> spectrum`` function (pixel_index in row-major order, as in
        ``cube.pixels``), or the reconstructed pixels as an (N, B) or (H, W, B) array; by default
        a ``reconstruction`` stored in the result, else the mixture of the result's endmembers in
        the scale of its abundances (see :func:`egu_widgets.figure_data.make_reconstructor`; the
        legend names which one is drawn).
    max_side: largest side, in cells, of a map sent to the page (bigger maps are block-averaged).
    map_size: largest screen width of one map in pixels (maps narrow to fit the notebook cell;
        so do the spectrum plots, up to ``spectrum_width``).
    pixel: (row, col) selected first; the centre by default.

    Tap any map (or type a row and column) to select a pixel: the spectrum plot shows its observed
    spectrum and reconstruction, the plot beside it the residual (observed - reconstruction), the
    bars its abundances (estimate vs truth). All maps share pan and zoom; estimates and truths
    share one 0-1 colour scale, errors a symmetric one. Below the maps, one band of the cube
    (chosen with the band slider) shows the scene itself; tapping it selects a pixel too.

    An ensemble result (``unmix(..., ensemble=K)``: it has ``abundances_std``) adds a "maps"
    toggle that switches the estimate row between the mean abundances, their per-pixel standard
    deviation across members and the width of the 90 % interval (see :meth:`show_layer`), and a
    plot beside the bars with every member's abundances at the selected pixel as points over the
    mean's bars, so the spread behind a pixel's estimate is in view when it is tapped.
    """

    def __init__(
        self,
        result: Any,
        cube: Any,
        *,
        reconstruct: Callable[[int], Any] | np.ndarray | None = None,
        max_side: int = 250,
        map_size: int = 220,
        cmap: str = "viridis",
        error_cmap: str = "RdBu_r",
        spectrum_width: int = 520,
        spectrum_height: int = 280,
        pixel: tuple[int, int] | None = None,
    ):
        super().__init__()
        import ipywidgets as w

        hv = holoviews()
        if cube is None or not hasattr(cube, "image"):
            raise InputError("the abundance inspector needs the cube the result came from (for the observed spectra)")
        self.maps_data = md = map_data(result, cube)
        n_em, height, width = md.estimate.shape
        if cube.image.shape[:2] != (height, width):
            raise InputError(
                f"the result is {height}x{width} pixels but the cube is {cube.image.shape[0]}x{cube.image.shape[1]}"
            )
        self.height, self.width = height, width
        self._image = cube.image  # (H, W, B) view, indexed per tap (cube.pixels would copy)
        self._estimate = md.estimate
        self._truth = md.truth
        self.layers = spread_layers(result)  # None unless the result is an ensemble's
        self._members = member_maps(result) if self.layers is not None else None
        self.layer = "mean"
        self.reconstruct, self.reconstruction_label = make_reconstructor(result, cube, reconstruct)
        self.axis = spectral_axis(self._image.shape[2], cube, result)
        self.factor = downsample_factor(height, width, max_side)
        self._syncing = False

        row0, col0 = pixel if pixel is not None else (height // 2, width // 2)
        self._check_pixel(row0, col0)
        self._pixel = (int(row0), int(col0))

        # ---- maps: one row of estimates, then truths and errors when truth is known
        xs, ys = block_centres(width, self.factor), block_centres(height, self.factor)
        xdim, ydim = hv.Dimension("x", label="column"), hv.Dimension("y", label="row")
        shown = "" if self.factor == 1 else f" (1/{self.factor})"
        rows = [("abundance", md.estimate, "", cmap, (0.0, 1.0))]
        if md.truth is not None:
            lim = md.error_limit
            rows.append(("abundance", md.truth, "truth: ", cmap, (0.0, 1.0)))
            rows.append(("error", md.error, "error: ", error_cmap, (-lim, lim)))
        self.images: list = []
        self.taps: list = []
        panels = []
        for r, (vname, maps, prefix, colormap, clim) in enumerate(rows):
            vdim = hv.Dimension(vname, range=clim)
            # colour bars under every map of the last row only: a grid aligns the frames of a row,
            # so one bar in a row would shrink its neighbours; the abundance rows share 0-1
            bar = r == len(rows) - 1
            for p in range(n_em):
                img = hv.Image((xs, ys, block_mean(maps[p], self.factor)), kdims=[xdim, ydim], vdims=[vdim])
                img = img.opts(
                    cmap=colormap,
                    clim=clim,
                    colorbar=bar,
                    colorbar_position="bottom",
                    colorbar_opts={"height": 8},
                    invert_yaxis=True,
                    **_map_size(map_size, height, width, colorbar=bar),
                    title=f"{prefix}{md.names[p]}{shown}",
                    tools=["hover", "tap"],
                    active_tools=["wheel_zoom", "tap"],
                    backend="bokeh",
                )
                tap = hv.streams.Tap(source=img, x=None, y=None)
                tap.add_subscriber(self._on_tap)
                self.images.append(img)
                self.taps.append(tap)
                panels.append(img * self._marker(row0, col0))
        self.maps = HoloViewsWidget(
            hv.Layout(panels).cols(n_em), prepare=lambda plot: _scale_with_width(plot, map_size + 10)
        )
        self._marker_sources = [p.handles["source"] for p in self.maps.subplots("PointPlot")]
        self._estimate_rasters = self.maps.subplots("RasterPlot")[:n_em]
        self._map_titles = [f"{md.names[p]}{shown}" for p in range(n_em)]

        # ---- the selected pixel: spectrum + reconstruction, abundance bars
        spectrum = self._spectrum(row0, col0).opts(
            {
                "Curve": dict(
                    responsive=True,
                    min_width=200,
                    max_width=spectrum_width,
                    height=spectrum_height,
                    show_grid=True,
                    tools=["hover"],
                ),
                "Overlay": dict(legend_position="top_right", legend_opts={"background_fill_alpha": 0.7}),
            },
            backend="bokeh",
        )
        resid = self._residual(row0, col0).opts(
            {"Curve": dict(responsive=True, min_width=150, max_width=max(260, spectrum_width // 2), height=spectrum_height,
                           show_grid=True, tools=["hover"])},
            backend="bokeh",
        )  # fmt: skip
        bars = self._bars(row0, col0).opts(
            responsive=True, min_width=150, max_width=max(260, 70 * n_em + 80), height=spectrum_height,
            ylim=(0, 1.05), tools=["hover"], xrotation=30, backend="bokeh",
        )  # fmt: skip
        panels = [spectrum, resid, bars] if self.reconstruct is not None else [spectrum, bars]
        if self._members is not None:
            panels.append(
                self._member_plot(row0, col0).opts(
                    {"Bars": dict(responsive=True, min_width=150, max_width=max(260, 60 * n_em + 80),
                                  height=spectrum_height, ylim=(0, 1.05), tools=["hover"], xrotation=30,
                                  color="#c6dbef", line_color="#6baed6"),
                     "Scatter": dict(color=MEMBER_COLOUR, size=8, jitter=0.4, tools=["hover"])},
                    backend="bokeh",
                )
            )  # fmt: skip
        self.probe = HoloViewsWidget(hv.Layout(panels).opts(shared_axes=False))
        # Later selections rewrite these Bokeh sources in place: re-rendering HoloViews elements
        # for every tap costs seconds on a page of maps, a few data columns cost milliseconds.
        curves = {p.current_frame.label: p for p in self.probe.subplots("CurvePlot")}
        self._residual_figure = curves["residual"].handles["plot"] if "residual" in curves else None
        self._curve_columns = {
            label: _value_columns(p.handles["source"], p.current_frame.dimension_values(1))
            for label, p in curves.items()
        }
        self._curve_sources = {label: p.handles["source"] for label, p in curves.items()}
        first = curves["observed"].handles["plot"]
        self._spectrum_figure = first
        bar_plot = self.probe.subplots("BarPlot")[0]
        self._bar_source = bar_plot.handles["source"]
        self._bar_columns = _value_columns(self._bar_source, bar_plot.current_frame.dimension_values(2))
        self._member_sources: list = []
        if self._members is not None:
            mean_plot = self.probe.subplots("BarPlot")[1]
            point_plot = self.probe.subplots("PointPlot")[0]
            self._member_sources = [
                (mean_plot.handles["source"], _value_columns(mean_plot.handles["source"], self._estimate[:, row0, col0]), "mean"),
                (point_plot.handles["source"], _value_columns(point_plot.handles["source"], self._member_values(row0, col0)), "members"),
            ]  # fmt: skip

        row_w = w.BoundedIntText(value=row0, min=0, max=height - 1, description="row", layout=w.Layout(width="150px"))
        col_w = w.BoundedIntText(value=col0, min=0, max=width - 1, description="col", layout=w.Layout(width="150px"))
        row_w.add_class("egu-row")
        col_w.add_class("egu-col")
        info = w.HTML()
        info.add_class("egu-pixel-info")
        # ---- the scene itself: one band, chosen with a slider (HyperSpy's navigator image)
        n_bands = self._image.shape[2]
        self.band = n_bands // 2
        band_img = hv.Image(
            (xs, ys, block_mean(self._band_image(self.band), self.factor)), kdims=[xdim, ydim], vdims=["reflectance"]
        ).opts(
            cmap="gray", colorbar=True, invert_yaxis=True, data_aspect=1, frame_width=map_size,
            title=self._band_title(self.band), tools=["hover", "tap"], active_tools=["wheel_zoom", "tap"],
            backend="bokeh",
        )  # fmt: skip
        band_tap = hv.streams.Tap(source=band_img, x=None, y=None)
        band_tap.add_subscriber(self._on_tap)
        self.taps.append(band_tap)
        self.band_view = HoloViewsWidget(band_img * self._marker(row0, col0))
        self._marker_sources += [p.handles["source"] for p in self.band_view.subplots("PointPlot")]
        band_plot = self.band_view.subplots("RasterPlot")[0]
        self._band_source, self._band_figure = band_plot.handles["source"], band_plot.handles["plot"]
        band_w = w.IntSlider(
            value=self.band, min=0, max=n_bands - 1, description="band", continuous_update=False,
            layout=w.Layout(width="100%", max_width="420px"),
        )  # fmt: skip
        band_w.add_class("egu-band")
        band_w.observe(lambda ch: self.show_band(ch["new"]), names="value")

        row_w.observe(lambda ch: self._on_text(row=ch["new"]), names="value")
        col_w.observe(lambda ch: self._on_text(col=ch["new"]), names="value")
        header = [row_w, col_w, info]
        if self.layers is not None:
            layer_w = w.ToggleButtons(options=list(self.layers), value="mean", description="maps")
            layer_w.add_class("egu-layer")
            layer_w.observe(lambda ch: self.show_layer(ch["new"]), names="value")
            header.insert(0, layer_w)
        self.wdict = {
            "row": row_w,
            "col": col_w,
            "info": info,
            "maps": self.maps.widget,
            "probe": self.probe.widget,
            "band": band_w,
            "band_image": self.band_view.widget,
        }
        if self.layers is not None:
            self.wdict["layer"] = layer_w
        note = w.HTML(
            f"<small>{height}×{width} pixels"
            + (
                f", maps shown as {self.factor}×{self.factor} block means; taps pick the exact pixel"
                if self.factor > 1
                else ""
            )
            + ". Estimates and truths share one 0–1 colour scale"
            + (", the bars under the error maps give theirs" if md.truth is not None else "")
            + ". Tap a map to inspect a pixel.</small>"
        )
        self.maps.widget.add_class("egu-maps")
        self.probe.widget.add_class("egu-probe")
        band_box = w.VBox([band_w, self.band_view.widget])
        band_box.add_class("egu-band-view")
        self.widget = w.VBox(
            [
                w.HBox(header, layout=w.Layout(flex_flow="row wrap")),
                note,
                self.maps.widget,
                self.probe.widget,
                band_box,
            ]
        )
        self.widget.add_class("egu-abundance-inspector")
        self._render_info()

    # ------------------------------------------------------------------ selection
    @property
    def pixel(self) -> tuple[int, int]:
        """The selected (row, col)."""
        return self._pixel

    def _check_pixel(self, row: int, col: int) -> None:
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise InputError(f"pixel ({row}, {col}) is outside the {self.height}x{self.width} image")

    def select_pixel(self, row: int, col: int) -> None:
        """Select pixel (row, col): updates the marker, the spectrum, the bars and the text boxes."""
        row, col = int(row), int(col)
        self._check_pixel(row, col)
        self._pixel = (row, col)
        # plots first, then the text boxes: whoever sees the new row and column sees the new plots
        with self.maps.hold(), self.probe.hold():
            self._update_plots(row, col)
        self._syncing = True
        try:
            self.wdict["row"].value = row
            self.wdict["col"].value = col
        finally:
            self._syncing = False
        self._render_info()

    def _update_plots(self, row: int, col: int) -> None:
        for source in self._marker_sources:
            source.data = {**source.data, "x": np.array([float(col)]), "y": np.array([float(row)])}
        observed, reconstruction = self._pixel_spectra(row, col)
        values = {"observed": observed}
        if reconstruction is not None:
            values[self.reconstruction_label] = reconstruction
        res = residual(observed, reconstruction)
        if res is not None:
            values["residual"] = res
        for label, source in self._curve_sources.items():
            source.data = {**source.data, **{k: values[label] for k in self._curve_columns[label]}}
        figure = self._spectrum_figure
        figure.title.text = f"pixel (row {row}, col {col})"
        _fit_y(figure, [v for k, v in values.items() if k != "residual"])
        if res is not None and self._residual_figure is not None:
            _fit_y(self._residual_figure, [res, np.zeros(1)])
        bars = self._bar_values(row, col)
        self._bar_source.data = {**self._bar_source.data, **{k: bars for k in self._bar_columns}}
        for source, columns, kind in self._member_sources:
            values = self._member_values(row, col) if kind == "members" else self._estimate[:, row, col]
            values = np.asarray(values, dtype=np.float64)
            source.data = {**source.data, **{k: values for k in columns}}

    def _on_tap(self, x=None, y=None, **_ignored) -> None:
        if x is None or y is None:
            return
        col = int(np.clip(np.floor(x + 0.5), 0, self.width - 1))
        row = int(np.clip(np.floor(y + 0.5), 0, self.height - 1))
        self.select_pixel(row, col)

    def _on_text(self, row=None, col=None) -> None:
        if self._syncing:
            return
        r, c = self._pixel
        self.select_pixel(r if row is None else row, c if col is None else col)

    def _render_info(self) -> None:
        r, c = self._pixel
        est = self._estimate[:, r, c]
        parts = [f"<b>pixel (row {r}, col {c})</b>"]
        for p, name in enumerate(self.maps_data.names):
            truth = f" (truth {self._truth[p, r, c]:.3f})" if self._truth is not None else ""
            spread = f" ± {self.layers['spread (std)'][p, r, c]:.3f}" if self.layers is not None else ""
            parts.append(f"{html.escape(name)} {est[p]:.3f}{spread}{truth}")
        self.wdict["info"].value = " · ".join(parts)

    # ------------------------------------------------------------------ ensemble spread
    def show_layer(self, layer: str) -> None:
        """Show ``layer`` of an ensemble result in the estimate row: "mean", "spread (std)" or the
        90 % interval width (what the "maps" toggle does).

        The mean keeps the shared 0-1 colour scale; the spread layers share one scale from 0 to
        their largest value, so materials compare at a glance.
        """
        if self.layers is None:
            raise InputError("only an ensemble result (unmix(..., ensemble=K)) has spread maps to show")
        if layer not in self.layers:
            raise InputError(f"layer must be one of {', '.join(self.layers)}; got {layer!r}")
        maps = self.layers[layer]
        low, high = (0.0, 1.0) if layer == "mean" else (0.0, spread_limit(maps))
        with self.maps.hold():
            for p, plot in enumerate(self._estimate_rasters):
                source = plot.handles["source"]
                source.data = {**source.data, "image": [block_mean(maps[p], self.factor)]}
                plot.handles["color_mapper"].update(low=low, high=high)
                prefix = "" if layer == "mean" else f"{layer}: "
                plot.handles["plot"].title.text = prefix + self._map_titles[p]
        self.layer = layer
        if self.wdict["layer"].value != layer:
            self.wdict["layer"].value = layer

    def _member_values(self, row: int, col: int) -> np.ndarray:
        """Every member's abundances at (row, col), member by member (the points' order)."""
        return self._members[:, :, row, col].astype(np.float64).ravel()

    def _member_plot(self, row: int, col: int):
        hv = holoviews()
        names = list(self.maps_data.names)
        k = self._members.shape[0]
        mean = hv.Bars(
            [(n, float(v)) for n, v in zip(names, self._estimate[:, row, col])],
            kdims=["endmember"], vdims=[hv.Dimension("abundance", range=(0, 1))], label="ensemble mean",
        )  # fmt: skip
        points = hv.Scatter(
            [(names[i % len(names)], float(v)) for i, v in enumerate(self._member_values(row, col))],
            kdims=["endmember"], vdims=[hv.Dimension("abundance", range=(0, 1))], label=f"{k} members",
        )  # fmt: skip
        return (mean * points).opts(title="ensemble members", legend_position="top_right", backend="bokeh")

    # ------------------------------------------------------------------ drawing
    def pixel_index(self, row: int, col: int) -> int:
        return int(row) * self.width + int(col)

    def _marker(self, row: int, col: int):
        hv = holoviews()
        return hv.Points([(col, row)], kdims=["x", "y"]).opts(
            marker="circle_x",
            size=14,
            color=None,
            line_color=MARKER_COLOUR,
            line_width=2,
            fill_alpha=0,
            backend="bokeh",
        )

    def _pixel_spectra(self, row: int, col: int):
        observed = np.asarray(self._image[row, col], dtype=np.float64)
        if self.reconstruct is None:
            return observed, None
        rec = np.asarray(self.reconstruct(self.pixel_index(row, col)), dtype=np.float64).ravel()
        if rec.shape != observed.shape:
            raise InputError(f"reconstruct() returned {rec.shape[0]} values for a {observed.shape[0]}-band pixel")
        return observed, rec

    def _spectrum(self, row: int, col: int):
        hv = holoviews()
        x = self.axis.values
        xdim = hv.Dimension(self.axis.name, label=self.axis.label)
        observed, rec = self._pixel_spectra(row, col)
        layers = [
            hv.Curve((x, observed), xdim, "reflectance", label="observed").opts(
                color=OBSERVED_COLOUR, line_width=2, backend="bokeh"
            )
        ]
        if rec is not None:
            layers.append(
                hv.Curve((x, rec), xdim, "reflectance", label=self.reconstruction_label).opts(
                    color=RECONSTRUCTION_COLOUR, line_dash="dashed", line_width=2, backend="bokeh"
                )
            )
        return hv.Overlay(layers).opts(title=f"pixel (row {row}, col {col})", backend="bokeh")

    def _residual(self, row: int, col: int):
        hv = holoviews()
        x = self.axis.values
        xdim = hv.Dimension(self.axis.name, label=self.axis.label)
        observed, rec = self._pixel_spectra(row, col)
        res = residual(observed, rec)
        if res is None:
            res = np.full_like(observed, np.nan)
        curve = hv.Curve((x, res), xdim, hv.Dimension("residual", label="observed − reconstruction"), label="residual")
        zero = hv.HLine(0.0).opts(color="#999999", line_width=1, backend="bokeh")
        return (curve.opts(color=RESIDUAL_COLOUR, line_width=2, backend="bokeh") * zero).opts(
            title="residual", show_legend=False, backend="bokeh"
        )

    # ------------------------------------------------------------------ the band image
    def _band_image(self, band: int) -> np.ndarray:
        return np.asarray(self._image[:, :, band], dtype=np.float32)

    def _band_title(self, band: int) -> str:
        value = self.axis.values[band]
        where = f" ({value:g} {self.axis.label.split('(')[-1].rstrip(')')})" if self.axis.name == "wavelength" else ""
        return f"band {band}{where}"

    def show_band(self, band: int) -> None:
        """Show band ``band`` of the cube in the image beside the maps (what the slider does)."""
        band = int(band)
        n_bands = self._image.shape[2]
        if not 0 <= band < n_bands:
            raise InputError(f"band {band} is outside 0..{n_bands - 1}")
        self.band = band
        image = block_mean(self._band_image(band), self.factor)
        with self.band_view.hold():
            self._band_source.data = {**self._band_source.data, "image": [image]}
            self._band_figure.title.text = self._band_title(band)
            mapper = self.band_view.subplots("RasterPlot")[0].handles.get("color_mapper")
            finite = image[np.isfinite(image)]
            if mapper is not None and finite.size:
                mapper.update(low=float(finite.min()), high=float(finite.max()))
        if self.wdict["band"].value != band:
            self.wdict["band"].value = band

    def _bar_values(self, row: int, col: int) -> np.ndarray:
        """Abundances in the bars' order: every estimate, then every truth."""
        values = [self._estimate[:, row, col]]
        if self._truth is not None:
            values.append(self._truth[:, row, col])
        return np.concatenate(values).astype(np.float64)

    def _bars(self, row: int, col: int):
        hv = holoviews()
        names = self.maps_data.names
        kinds = ["estimate"] + (["truth"] if self._truth is not None else [])
        keys = [(name, kind) for kind in kinds for name in names]
        data = [(name, kind, float(v)) for (name, kind), v in zip(keys, self._bar_values(row, col))]
        return hv.Bars(data, kdims=["endmember", "source"], vdims=[hv.Dimension("abundance", range=(0, 1))]).opts(
            title="abundances", backend="bokeh"
        )


def _scale_with_width(plot, max_width: int) -> None:
    """Maps take their width from the cell and their height from their aspect (not the page's).

    HoloViews gives responsive fixed-aspect plots ``scale_both``, whose height follows the
    container's; a notebook output has no height of its own, so they would collapse.
    """
    from bokeh.models import Plot

    root = plot.state
    root.sizing_mode = "stretch_width"
    for figure in root.select({"type": Plot}):
        figure.sizing_mode = "scale_width"
        figure.max_width = max_width
        figure.min_border_bottom = figure.min_border_top = 4
        figure.min_border_left = figure.min_border_right = 4


def _map_size(frame: int, height: int, width: int, *, colorbar: bool) -> dict:
    """Options that size a map by the width of the cell it is shown in, up to ``frame`` pixels.

    The maps scale with the output's width (Bokeh ``scale_both`` at a fixed aspect), so any
    number of columns fits a narrow notebook; they carry no axes (hover and the row and column
    boxes give positions) and colour bars go below the maps, so every column is equally wide and
    the frame keeps the image's aspect at every size.
    """
    frame_h = frame * height / max(width, 1)
    fig_w = frame
    fig_h = frame_h + 30 + (80 if colorbar else 0)  # the title, the colour bar below the map
    return dict(
        responsive=True, aspect=fig_w / fig_h, min_width=int(0.3 * fig_w), max_width=int(fig_w),
        xaxis=None, yaxis=None,
    )  # fmt: skip


def _fit_y(figure, arrays) -> None:
    """Frame ``figure``'s y axis on every finite value of ``arrays``, with a small margin."""
    every = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in arrays])
    every = every[np.isfinite(every)]
    if every.size:
        lo, hi = float(every.min()), float(every.max())
        pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1e-3)
        figure.y_range.update(start=lo - pad, end=hi + pad, reset_start=lo - pad, reset_end=hi + pad)


def _value_columns(source, values) -> list[str]:
    """The columns of ``source`` that hold ``values`` (the value column and any hover copy)."""
    values = np.asarray(values, dtype=np.float64)
    out = []
    for key, column in source.data.items():
        column = np.asarray(column)
        if column.dtype.kind in "fiu" and column.shape == values.shape and np.allclose(column, values, equal_nan=True):
            out.append(key)
    if not out:
        raise RuntimeError(f"no column of the plot holds the expected values (columns: {list(source.data)})")
    return out


def abundance_inspector(result: Any, cube: Any, *, display: bool = True, **options: Any) -> dict:
    """Build an :class:`AbundanceInspector`: ``{"widget", "wdict", "view"}``; shown unless ``display=False``."""
    require_widgets("the abundance inspector")
    return build(AbundanceInspector(result, cube, **options), display)
