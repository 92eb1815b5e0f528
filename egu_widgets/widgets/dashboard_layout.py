"""The training dashboard's layout: ipywidgets for progress and state, HoloViews curves in Bokeh.

:class:`DashboardLayout` builds the widgets once and draws a :class:`Frame` (what the dashboard
recorded since the last redraw) into them. It knows nothing of threads, timing or training: the
dashboard decides when to draw and hands it the frame. When the frame's status carries the stopping
rule's text (``RunStatus.stopping``) the bar shows the rule's progress instead of epochs.

The curves are drawn once with HoloViews; later epochs are appended to the Bokeh data sources of
the curves (:class:`LivePanel`), which sends only the new points to the page instead of rendering
the plots again.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..figure_data import format_duration, remaining_seconds
from ._deps import holoviews
from ._view import HoloViewsWidget

__all__ = ["STATES", "DashboardLayout", "Frame", "LivePanel", "RunStatus"]

_STATE_STYLE = {
    "waiting": ("#555", "waiting for training to start"),
    "running": ("#1f6feb", "running"),
    "stopping": ("#b26b00", "stopping after this epoch…"),
    "finished": ("#1a7f37", "finished"),
    "stopped": ("#b26b00", "stopped"),
    "failed": ("#cf222e", "FAILED"),
}
#: the states a dashboard shows, in the order a run goes through them
STATES = tuple(_STATE_STYLE)
_FINAL = ("finished", "stopped", "failed")
_BAR_STYLE = {"finished": "success", "stopped": "warning", "stopping": "warning", "failed": "danger"}
_METRIC_LABELS = {"rmse": "abundance RMSE", "sad": "SAD (deg)", "change": "change"}
_METRIC_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
#: the stopping rule's criterion: its own panel, log scale, with the tolerance as a dashed line
_CHANGE = "metric:change"
_CHANGE_COLOUR = "#8250df"
_TOL_COLOUR = "#cf222e"
#: the progress bar's resolution when it shows the stopping rule's progress (a fraction)
_FRACTION_STEPS = 1000
_RULE_TOOLTIP = (
    "How far the change between checks has come from its first value down to tol (log scale); full once it is below tol"
)
_EPOCH_TOOLTIP = "Epochs done of those planned"
_PLACEHOLDER = "<i>the curves appear after the first epoch</i>"
#: why the total loss can rise at first (shown when the run reports a weight-decay term)
WEIGHT_DECAY_NOTE = (
    "<small>The total loss includes <code>weight_decay</code>, the L2 penalty on the network's "
    "weights: it dominates the first epochs, so the total can rise then while the reconstruction "
    "falls.</small>"
)
_NO_STOP_NOTE = "<small>Stop needs training in the background here: <code>dashboard.run(fit, cube)</code>.</small>"


@dataclass
class RunStatus:
    """The latest state of a run as the dashboard shows it: state, progress, values, messages."""

    state: str = "waiting"
    epoch: int = 0
    n_epochs: int = 0
    elapsed: float = 0.0
    losses: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    learning_rate: float | None = None
    message: str = ""
    error: str = ""
    info: dict = field(default_factory=dict)
    #: the stopping rule's progress in words (StoppingProgress.text) when the rule can end the
    #: run before its bound; empty: every epoch runs, the bar counts epochs
    stopping: str = ""
    #: the bar's fill while ``stopping`` is shown (StoppingProgress.fraction)
    stopping_fraction: float = 0.0
    #: the rule's tolerance, drawn on the change's panel (None: no rule)
    tol: float | None = None

    def copy(self) -> RunStatus:
        """A copy that later events do not change."""
        return replace(self, losses=dict(self.losses), metrics=dict(self.metrics), info=dict(self.info))


@dataclass(frozen=True)
class Frame:
    """What one redraw shows: the run's status and the rows of curves to draw.

    ``new_rows`` are the history rows recorded since the previous frame (column -> array) and
    are appended to the curves; ``all_rows`` (every row) is given when the plots are to be drawn
    from scratch; ``reset`` (a new run) drops the previous run's curves first.
    """

    status: RunStatus
    new_rows: dict | None = None
    all_rows: dict | None = None
    reset: bool = False


class DashboardLayout:
    """The dashboard's widgets (``widget``, ``wdict``) and the drawing of frames into them.

    Parameters
    ----------
    title
        Optional heading.
    logy
        Log scale for the loss curves; ``"auto"``: when every loss drawn is positive.
    plot_width, plot_height
        Largest width and the height of each curve panel, in pixels (panels narrow to fit the
        notebook cell).
    on_stop
        Called (with no arguments) when the Stop button is clicked.
    """

    def __init__(
        self,
        title: str | None = None,
        *,
        logy: Any = "auto",
        plot_width: int = 340,
        plot_height: int = 230,
        on_stop=None,
    ):
        import ipywidgets as w

        self.logy = logy
        self.plot_width = plot_width
        self.plot_height = plot_height
        self.plots: HoloViewsWidget | None = None
        self.columns: tuple[str, ...] = ()  # the history columns the plots show
        self.built_at = 0.0  # perf_counter() when the plots were last drawn from scratch
        #: seconds after a build at which the whole plot is sent to the page again
        self.resync_after: tuple[float, ...] = (1.5,)
        self._panels: dict[str, LivePanel] = {}
        self._resynced: set = set()
        self._final_synced = False

        progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="100%"))
        progress.add_class("egu-progress")
        stop = w.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            tooltip="Stop training after the current epoch; the result so far is kept",
        )
        stop.add_class("egu-stop")
        if on_stop is not None:
            stop.on_click(lambda _button: on_stop())
        status = w.HTML("epoch 0 of ?")
        status.add_class("egu-status")
        values = w.HTML("")
        values.add_class("egu-values")
        state = w.HTML("")
        state.add_class("egu-state")
        note = w.HTML(WEIGHT_DECAY_NOTE, layout=w.Layout(display="none"))
        note.add_class("egu-note")
        stop_note = w.HTML(_NO_STOP_NOTE, layout=w.Layout(display="none"))
        stop_note.add_class("egu-stop-note")
        error = w.HTML("", layout=w.Layout(display="none"))
        error.add_class("egu-error")
        plots = w.VBox([w.HTML(_PLACEHOLDER)])
        plots.add_class("egu-plots")
        heading = w.HTML(
            f"<b>{html.escape(title)}</b>" if title else "", layout=w.Layout(display=None if title else "none")
        )
        self.wdict = {
            "title": heading,
            "progress": progress,
            "stop": stop,
            "status": status,
            "values": values,
            "note": note,
            "stop_note": stop_note,
            "state": state,
            "error": error,
            "plots": plots,
        }
        self.widget = w.VBox(
            [
                heading,
                w.HBox([progress, stop], layout=w.Layout(width="100%", align_items="center")),
                w.HBox([state, status], layout=w.Layout(flex_flow="row wrap")),
                values,
                note,
                stop_note,
                error,
                plots,
            ],
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("egu-dashboard")
        self.render_state("waiting")

    # ------------------------------------------------------------------ questions from the dashboard
    def owes(self, columns: tuple[str, ...]) -> bool:
        """Whether recorded ``columns`` are missing from the plots (never drawn, or new terms)."""
        return bool(columns) and (self.plots is None or bool(set(columns) - set(self.columns)))

    def set_stoppable(self, stoppable: bool) -> None:
        """Show the Stop button, or hide it (with a line saying how to get it) where it cannot work."""
        self.wdict["stop"].layout.display = None if stoppable else "none"
        self.wdict["stop_note"].layout.display = "none" if stoppable else None

    def show_stopping(self) -> None:
        """The Stop button right after a click: disabled until the run has stopped."""
        stop = self.wdict["stop"]
        stop.disabled = True
        stop.description = "Stopping…"

    # ------------------------------------------------------------------ drawing
    def draw(self, frame: Frame) -> bool:
        """Show ``frame``; True when the plots were drawn from scratch (the dear kind of redraw)."""
        wd, st = self.wdict, frame.status
        progress = wd["progress"]
        with progress.hold_sync(), wd["status"].hold_sync(), wd["values"].hold_sync():
            progress.bar_style = _BAR_STYLE.get(st.state, "info" if st.state == "running" else "")
            left = remaining_seconds(st.elapsed, st.epoch, st.n_epochs)
            if st.stopping:  # the run ends when the rule says so: no bar over the upper bound
                progress.max = _FRACTION_STEPS
                fill = 1.0 if st.state == "finished" else st.stopping_fraction
                progress.value = int(round(_FRACTION_STEPS * min(max(fill, 0.0), 1.0)))
                progress.tooltip = _RULE_TOOLTIP
                parts = [html.escape(st.stopping), f"elapsed {format_duration(st.elapsed)}"]
                if st.state in ("running", "stopping") and left is not None:
                    parts.append(f"at most ~{format_duration(left)} left")
            else:
                progress.max = max(st.n_epochs, 1)
                progress.value = min(st.epoch, progress.max)
                progress.tooltip = _EPOCH_TOOLTIP
                parts = [f"epoch {st.epoch} of {st.n_epochs or '?'}", f"elapsed {format_duration(st.elapsed)}"]
                if st.state in ("running", "stopping"):
                    parts.append(f"remaining ~{format_duration(left)}")
            wd["status"].value = " · ".join(parts)
            values = [f"{html.escape(str(k))} {_fmt(v)}" for k, v in st.losses.items()]
            values += [f"{html.escape(_METRIC_LABELS.get(k, k))} {_fmt(v)}" for k, v in st.metrics.items()]
            if st.learning_rate is not None:
                values.append(f"lr {st.learning_rate:.3g}")
            wd["values"].value = "<span style='font-family:monospace'>" + " · ".join(values) + "</span>"
            if "weight_decay" in st.losses and "total" in st.losses:
                wd["note"].layout.display = None
        self.render_state(st.state, st.message, st.error, st.info)
        return self._draw_curves(frame)

    def render_state(self, state: str, message: str = "", error: str = "", info: dict | None = None) -> None:
        """The state line, the Stop button and the error box for ``state``."""
        wd = self.wdict
        colour, text = _STATE_STYLE[state]
        extra = ""
        if state in ("stopped", "failed") and message:
            extra = f": {html.escape(message)}"
        elif state == "running" and info:
            bits = [str(info[k]) for k in ("method", "device") if info.get(k)]
            extra = f" ({html.escape(', '.join(bits))})" if bits else ""
        wd["state"].value = f"<b style='color:{colour}' data-state='{state}'>{text}{extra}</b>&nbsp;·&nbsp;"
        stop = wd["stop"]
        if state in _FINAL:
            stop.disabled = True
            stop.description = "Stop"
        elif state == "stopping":
            self.show_stopping()
        else:
            stop.disabled = False
            stop.description = "Stop"
        err = wd["error"]
        if state == "failed":
            body = html.escape(error or message or "training failed")
            err.value = (
                f"<div style='color:#cf222e'><b>Training failed.</b>"
                f"<pre style='white-space:pre-wrap'>{body}</pre></div>"
            )
            err.layout.display = None
        else:
            err.value = ""
            err.layout.display = "none"

    def _draw_curves(self, frame: Frame) -> bool:
        if frame.reset:  # a new run: drop the previous run's curves
            self._final_synced = False
            if self.plots is not None:
                import ipywidgets as w

                self.plots.close()
                self.plots, self._panels, self.columns = None, {}, ()
                self.wdict["plots"].children = (w.HTML(_PLACEHOLDER),)
        if frame.all_rows is not None:
            self._build_plots(frame.all_rows, frame.status.n_epochs, frame.status.tol)
            return True
        if self.plots is None:
            return False
        resync = False
        if frame.new_rows is not None and len(frame.new_rows["epoch"]):
            with self.plots.hold():
                for panel in self._panels.values():
                    panel.extend(frame.new_rows)
                self._frame_x(float(np.max(frame.new_rows["epoch"])), frame.status.n_epochs)
            # jupyter_bokeh drops patches that reach the page before the plot's view is rendered:
            # send the whole document again once the page has had time to render it
            since = time.perf_counter() - self.built_at
            due = [t for t in self.resync_after if since >= t and t not in self._resynced]
            if due:
                self._resynced.update(due)
                resync = True
        final = frame.status.state in _FINAL
        if resync or (final and not self._final_synced):
            # also once at the end: a view rendered later (page reload) starts from the full curves
            self._final_synced = final
            self.plots.resync()
        return False

    def _frame_x(self, last: float, n_epochs: int, force: bool = False) -> None:
        """Grow the shared epoch axis to show epoch ``last``, with room for half as many again.

        A handful of range changes over a whole run; never past the planned number of epochs.
        """
        x_range = getattr(self, "_x_range", None)
        if x_range is None:
            return
        end = x_range.end
        if not force and x_range.start == 0.0 and end is not None and last <= end:
            return
        end = max(10.0, float(np.ceil(1.5 * last)))
        if n_epochs >= last:
            end = min(end, float(n_epochs))
        _set_range(x_range, 0.0, end)

    def _build_plots(self, data: dict, n_epochs: int, tol: float | None = None) -> None:
        """Draw the panels once with HoloViews; later epochs are streamed into their Bokeh sources.

        Rendering HoloViews elements again at every redraw (a ``Buffer`` and a ``DynamicMap``)
        would cost far more than appending to each curve's ``ColumnDataSource``. The panels are
        the losses, the metrics known from the truth, the stopping rule's change between checks
        (log scale, with ``tol`` as a dashed line when the rule has one) and the learning rate.
        """
        hv = holoviews()
        self.columns = tuple(c for c in data if c != "epoch")
        groups = {
            "losses": [c for c in self.columns if c.startswith("loss:")],
            "metrics": [c for c in self.columns if c.startswith("metric:") and c != _CHANGE],
            "change": [c for c in self.columns if c == _CHANGE],
            "learning rate": [c for c in self.columns if c == "lr"],
        }
        logy = self.logy
        if logy == "auto":
            losses = groups["losses"]
            finite = np.concatenate([data[c][np.isfinite(data[c])] for c in losses]) if losses else np.array([])
            logy = bool(finite.size) and bool((finite > 0).all())
        tol_line = tol is not None and np.isfinite(tol) and tol > 0
        # no hover tool: the latest values are in the text line, and it makes building slower
        # each panel as wide as the cell allows, up to plot_width: three side by side fit a
        # narrow notebook (Bokeh stretches them over the output's width)
        common = dict(
            responsive=True, min_width=150, max_width=self.plot_width, height=self.plot_height, show_grid=True
        )
        overlays, specs = [], []
        for group, cols in groups.items():
            if not cols:
                continue
            log = (group == "losses" and bool(logy)) or group == "change"
            title = group
            if group == "losses":
                vdim = "loss"
            elif group == "metrics":
                vdim = " / ".join(_METRIC_LABELS.get(c[len("metric:") :], c[len("metric:") :]) for c in cols)
            elif group == "change":
                vdim = "change (RMS)"
                title = f"change between checks, tol {tol:g}" if tol_line else "change between checks"
            else:
                vdim = "learning rate"
            # only the epochs that have this panel's values: metrics may be evaluated every few
            # epochs, and a curve with NaN between its points would not be drawn
            rows = _rows_with_values(data, cols)
            curves = [
                hv.Curve((rows["epoch"], _for_axis(rows[c], log)), "epoch", vdim, label=c.split(":", 1)[-1])
                for c in cols
            ]
            if group in ("metrics", "change"):
                # metrics and the change come every few epochs: markers show them from the first
                # value on (a line needs two points), in the curve's colour
                if group == "change":
                    colours = [_CHANGE_COLOUR]
                else:
                    colours = [_METRIC_COLOURS[i % len(_METRIC_COLOURS)] for i in range(len(cols))]
                curves = [curve.opts(color=colour, backend="bokeh") for curve, colour in zip(curves, colours)]
                curves += [
                    hv.Scatter((rows["epoch"], _for_axis(rows[c], log)), "epoch", vdim, label=c.split(":", 1)[-1]).opts(
                        color=colour, backend="bokeh"
                    )
                    for c, colour in zip(cols, colours)
                ]
            extra = {}
            if group == "change":
                # Bokeh's log ticker labels a span under two decades linearly (0.05, 0.1 and
                # nothing below): fixed 1-2-5 ticks, and the tolerance, label every decade shown
                extra["yticks"] = _log_ticks(float(tol) if tol_line else None)
            if group == "change" and tol_line:
                curves.append(
                    hv.HLine(float(tol)).opts(color=_TOL_COLOUR, line_dash="dashed", line_width=1.5, backend="bokeh")
                )
            style = dict(common, logy=log, **({"color": "#6e7781"} if group == "learning rate" else {}))
            overlays.append(
                hv.Overlay(curves).opts(
                    {
                        "Curve": style,
                        "Scatter": dict(common, logy=log, size=5, show_legend=False),
                        "HLine": dict(common, logy=log),
                        "Overlay": dict(
                            title=title,
                            **extra,
                            legend_position="top_right",
                            legend_opts={"background_fill_alpha": 0.6, "label_text_font_size": "8pt", "spacing": 0},
                            logy=log,
                            show_legend=group in ("losses", "metrics"),
                        ),
                    },
                    backend="bokeh",
                )
            )
            specs.append((group, cols, log))
        layout = hv.Layout(overlays).cols(3).opts(shared_axes=False)
        panels: dict = {}

        def frame_panels(plot) -> None:  # runs before the widget exists: the page gets these ranges
            every = list(plot.traverse(lambda p: p))
            curve_plots = {p.current_frame.label: p for p in every if type(p).__name__ == "CurvePlot"}
            marker_plots = {p.current_frame.label: p for p in every if type(p).__name__ == "PointPlot"}
            for group, cols, log in specs:
                plots = [curve_plots[c.split(":", 1)[-1]] for c in cols]
                streamed = list(cols)
                if group in ("metrics", "change"):
                    plots += [marker_plots[c.split(":", 1)[-1]] for c in cols]
                    streamed += list(cols)
                # the tolerance stays in view: the change is read against it
                keep = (float(tol),) if group == "change" and tol_line else ()
                panels[group] = LivePanel(streamed, plots, log, _rows_with_values(data, cols), n_epochs, keep=keep)
            # one x range for every panel: metrics evaluated every few epochs end earlier than the
            # losses, and the panels still show the same epochs
            figures = [panel.figure for panel in panels.values()]
            for figure in figures[1:]:
                figure.x_range = figures[0].x_range
            self._x_range = figures[0].x_range if figures else None
            epochs = data["epoch"]
            self._frame_x(float(np.max(epochs)) if len(epochs) else 1.0, n_epochs, force=True)

        old = self.plots
        import param

        with param.logging_level("ERROR"):  # a log axis with one point makes HoloViews warn; we frame it
            self.plots = HoloViewsWidget(layout, prepare=frame_panels)
        self._panels = panels
        self.built_at = time.perf_counter()
        self._resynced = set()
        self.wdict["plots"].children = (self.plots.widget,)
        if old is not None:
            old.close()


class LivePanel:
    """One dashboard panel after its first drawing: appends epochs to its curves' sources.

    HoloViews draws fixed axis ranges, so the panel frames its values itself, cheaply: the y axis
    only changes when a point falls outside it, and then grows by a margin, so most redraws send
    nothing but the new points. The epoch axis is one range shared by every panel, framed by
    :class:`DashboardLayout`.
    """

    def __init__(self, columns: list, plots: list, log: bool, rows: dict, n_epochs: int, keep: tuple = ()):
        self.columns = columns
        self.keep = np.asarray(keep, dtype=np.float64)  # values the y axis always shows (a tolerance)
        self.sources = [p.handles["source"] for p in plots]
        # the value column, plus any copy HoloViews keeps for the hover tool (names sanitised)
        self.ycols = [[k for k in src.data if k != "epoch"] for src in self.sources]
        self.figure = figure = plots[0].handles["plot"]
        self.y_range = figure.y_range
        self.log = log
        self.n_epochs = int(n_epochs)
        self._frame_y(rows, force=True)

    def extend(self, new_rows: dict) -> None:
        """Append the rows that have values for this panel's columns."""
        rows = _rows_with_values(new_rows, self.columns)
        if not len(rows["epoch"]):
            return
        for column, source, ycols in zip(self.columns, self.sources, self.ycols):
            values = _for_axis(rows[column], self.log)
            source.stream({"epoch": rows["epoch"], **{k: values for k in ycols}})
        self._frame_y(rows)

    def _frame_y(self, rows: dict, force: bool = False) -> None:
        values = np.concatenate([_for_axis(rows[c], self.log) for c in self.columns] + [_for_axis(self.keep, self.log)])
        values = values[np.isfinite(values)]
        if not values.size:
            return
        lo, hi = float(values.min()), float(values.max())
        start, end = self.y_range.start, self.y_range.end
        if not force and start is not None and end is not None and start <= lo and hi <= end:
            return
        if not force:
            lo, hi = min(lo, start), max(hi, end)
        if self.log:
            llo, lhi = np.log10(lo), np.log10(hi)
            pad = 0.25 * max(lhi - llo, 0.2)
            _set_range(self.y_range, 10 ** (llo - pad), 10 ** (lhi + pad))
        else:
            pad = 0.2 * (hi - lo) or max(abs(hi) * 0.1, 1e-12)
            _set_range(self.y_range, lo - pad, hi + pad)


def _log_ticks(tol: float | None) -> list[tuple[float, str]]:
    """Ticks 1, 2, 5 times every power of ten from 1e-8 to 100, and ``tol``, with short labels."""
    values = [m * 10.0**e for e in range(-8, 3) for m in (1, 2, 5)] + ([tol] if tol is not None else [])
    by_label = {f"{v:g}": v for v in values}  # one tick per label: tol may equal a 1-2-5 tick
    return sorted(((v, label) for label, v in by_label.items()), key=lambda tick: tick[0])


def _fmt(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return f"{v:.4g}" if np.isfinite(v) else str(v)


def _for_axis(values: np.ndarray, log: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan) if log else values


def _set_range(rng, start: float, end: float) -> None:
    rng.update(start=start, end=end, reset_start=start, reset_end=end)


def _rows_with_values(rows: dict, columns: list) -> dict:
    """The rows (epochs) where at least one of ``columns`` has a finite value."""
    keep = np.zeros(len(rows["epoch"]), dtype=bool)
    for c in columns:
        keep |= np.isfinite(rows[c])
    return {k: np.asarray(rows[k])[keep] for k in ("epoch", *columns)}
