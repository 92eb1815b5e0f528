"""Live training dashboard: progress, loss/metric/learning-rate curves, Stop, and a clear end state.

The dashboard is a training callback (``on_event``); it never reaches into the trainer.

Cost
----
Everything the dashboard does is charged, in CPU time, against a budget of ``overhead_budget``
(4 %) of the training's elapsed time: recording an event (about ten microseconds), redrawing
(a few milliseconds: new epochs are appended to the curves' Bokeh data sources and only they are
sent to the page) and drawing the plots the first time (about 0.3 s, so the curves appear once
training has run several seconds; the progress bar and the numbers are live from the start). A
redraw happens when ``update_every`` seconds have passed and the budget allows it; the final
state is always drawn.

Stop in a live notebook
-----------------------
While a cell runs, the kernel handles no widget messages, so a Stop click made during a blocking
``fit(...)`` would only arrive after training ended. :meth:`TrainingDashboard.run` therefore starts
training in a background thread and returns at once: the cell finishes, the kernel is free to
deliver the click, and the button's handler calls ``event.control.request_stop()`` (thread-safe),
which the trainer checks between epochs.

Redraws requested from the training thread are handed to the kernel's event loop
(``call_soon_threadsafe``), so widgets and Bokeh documents are changed on the kernel's main thread,
not concurrently with the handling of a click or a tap. When the loop does not get to a redraw
within ``loop_patience`` seconds, a cell is running in the kernel; no widget message is being
handled then, so the training thread draws by itself and the dashboard stays live while the user
works in other cells.
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import InputError
from ..figure_data import format_duration, remaining_seconds
from ._deps import holoviews, in_notebook, require_widgets
from ._view import HoloViewsWidget, View, build

if TYPE_CHECKING:  # the views only read events; importing the engine would pull in torch
    from ..engine.events import TrainingEvent

_STATE_STYLE = {
    "waiting": ("#555", "waiting for training to start"),
    "running": ("#1f6feb", "running"),
    "stopping": ("#b26b00", "stopping after this epoch…"),
    "finished": ("#1a7f37", "finished"),
    "stopped": ("#b26b00", "stopped"),
    "failed": ("#cf222e", "FAILED"),
}
_BAR_STYLE = {"finished": "success", "stopped": "warning", "stopping": "warning", "failed": "danger"}
_METRIC_LABELS = {"rmse": "abundance RMSE", "sad": "SAD (deg)"}
#: CPU seconds the first drawing of the curves is expected to take (updated as plots are drawn)
_BUILD_ESTIMATE = {"seconds": 0.3}
_PLACEHOLDER = "<i>the curves are drawn once training has run a few seconds</i>"


def _fmt(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    return f"{v:.4g}" if np.isfinite(v) else str(v)


class TrainingDashboard(View):
    """A training callback that shows a live dashboard in a notebook.

    Parameters
    ----------
    title: optional heading.
    update_every: least seconds between two redraws (fastprogress-style throttle).
    overhead_budget: the largest share of training time the dashboard may spend (CPU time spent
        recording events and drawing, against the training's elapsed time); see the module doc.
    logy: log scale for the loss curves ("auto": when every loss is positive).
    mode: "auto" (a notebook kernel gets the widget, anything else console progress),
        "notebook" or "console". Only :meth:`run` looks at it.

    Use :meth:`run` to train in the background with a working Stop button, or pass the dashboard
    in ``callbacks=[...]`` yourself (then Stop clicks are only seen when the cell has finished).
    """

    def __init__(
        self,
        title: str | None = None,
        *,
        update_every: float = 0.2,
        overhead_budget: float = 0.04,
        logy: Any = "auto",
        plot_width: int = 340,
        plot_height: int = 230,
        mode: str = "auto",
    ):
        super().__init__()
        import ipywidgets as w

        holoviews()  # import the plotting stack now, on this thread, not in the training's first redraw
        if mode not in ("auto", "notebook", "console"):
            raise InputError(f"mode={mode!r}; choose 'auto', 'notebook' or 'console'")
        if update_every < 0 or not 0 < overhead_budget <= 1:
            raise InputError("update_every must be >= 0 and 0 < overhead_budget <= 1")
        self.mode = mode
        self.update_every = float(update_every)
        self.overhead_budget = float(overhead_budget)
        self.logy = logy
        self.plot_width = plot_width
        self.plot_height = plot_height

        self._lock = threading.RLock()  # guards the recorded state below
        self._flush_lock = threading.RLock()  # one redraw at a time
        self._reset_state()
        self._stop_requested = False
        self._control = None
        self._flush_scheduled = False
        self._flush_scheduled_at = 0.0
        self.loop_patience = 0.5  # seconds a redraw may wait for a busy kernel loop
        self._loop_flushed = threading.Event()
        self._next_flush = 0.0
        self._ui_thread = threading.current_thread()
        self._ui_loop = _running_loop()
        self._reset_plots = False
        self._run: TrainingRun | None = None
        self.redraws = 0
        self.redraw_seconds = 0.0  # wall time spent redrawing
        self.redraw_cpu_seconds = 0.0  # CPU time of the redrawing thread(s)
        self.event_cpu_seconds = 0.0  # CPU time spent recording events (redraws excluded)
        self.plots: HoloViewsWidget | None = None
        self._panels: dict = {}
        self._built_at = 0.0
        self._final_synced = False
        self.resync_after = (1.5,)  # seconds after a build at which the whole plot is sent again
        self.grace = 0.01  # CPU seconds the budget allows before training has taken any time
        self._spent = 0.0  # CPU seconds charged to this run
        self._started_at = 0.0  # perf_counter() when this run started (0: no start event seen)
        self._redraw_estimate = 0.005  # expected cost of a redraw that builds nothing
        self._resynced: set = set()
        self._columns: tuple[str, ...] = ()

        progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="100%"))
        progress.add_class("egu-progress")
        stop = w.Button(description="Stop", icon="stop", button_style="danger", tooltip="Stop training after the current epoch; the result so far is kept")
        stop.add_class("egu-stop")
        stop.on_click(lambda _button: self.request_stop())
        status = w.HTML("epoch 0 of ?")
        status.add_class("egu-status")
        values = w.HTML("")
        values.add_class("egu-values")
        state = w.HTML("")
        state.add_class("egu-state")
        error = w.HTML("", layout=w.Layout(display="none"))
        error.add_class("egu-error")
        plots = w.VBox([w.HTML(_PLACEHOLDER)])
        plots.add_class("egu-plots")
        heading = w.HTML(f"<b>{html.escape(title)}</b>" if title else "", layout=w.Layout(display=None if title else "none"))
        self.wdict = {
            "title": heading,
            "progress": progress,
            "stop": stop,
            "status": status,
            "values": values,
            "state": state,
            "error": error,
            "plots": plots,
        }
        self.widget = w.VBox(
            [heading, w.HBox([progress, stop], layout=w.Layout(width="100%", align_items="center")), w.HBox([state, status]), values, error, plots],
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("egu-dashboard")
        self._render_state("waiting")

    # ------------------------------------------------------------------ recorded state
    def _reset_state(self) -> None:
        self.state = "waiting"
        self.epoch = 0
        self.n_epochs = 0
        self.elapsed = 0.0
        self.losses: dict = {}
        self.metrics: dict = {}
        self.learning_rate: float | None = None
        self.message = ""
        self.info: dict = {}
        self.error_text = ""
        self.history: dict[str, list[float]] = {"epoch": []}
        self._pending_rows = 0
        self._dirty = True
        self.last_event: "TrainingEvent | None" = None

    # ------------------------------------------------------------------ callback
    def on_event(self, event: "TrainingEvent") -> None:
        """Record one training event (cheap); redraw when the throttle allows or the run ended."""
        now, cpu = time.perf_counter(), time.thread_time()
        try:
            due = self._record(event, now)
        finally:
            cost = time.thread_time() - cpu
            self.event_cpu_seconds += cost
            self._spent += cost
        if due:
            self._request_flush(final=event.is_final)

    def _record(self, event: "TrainingEvent", now: float) -> bool:
        with self._lock:
            if event.kind == "start":
                self._reset_state()
                self._reset_plots = True
                self._final_synced = False
                self._spent = 0.0
                self._started_at = now - float(event.elapsed)
                self.info = dict(event.info)
            if event.control is not None:
                self._control = event.control
                if self._stop_requested and not event.control.stop_requested:
                    event.control.request_stop("stopped from the dashboard")
            self.last_event = event
            self.epoch = int(event.epoch)
            self.n_epochs = int(event.n_epochs)
            self.elapsed = float(event.elapsed)
            if event.losses or event.metrics or event.learning_rate is not None:
                self.losses = dict(event.losses)
                self.metrics = dict(event.metrics)
                self.learning_rate = event.learning_rate
            if event.kind == "epoch" and (event.losses or event.metrics or event.learning_rate is not None):
                self._record_row(event)
            if event.kind in ("start", "epoch"):
                self.state = "stopping" if self._stop_requested else "running"
            elif event.kind == "end":
                self.state = "finished"
            elif event.kind == "stop":
                self.state = "stopped"
                self.message = event.message or "stop requested"
            elif event.kind == "fail":
                self.state = "failed"
                self.message = event.message or "training failed"
            if event.is_final:
                self._stop_requested = False  # a Stop belongs to one run
            self._dirty = True
            if event.kind != "epoch":
                return True
            return now >= self._next_flush and self._affordable(self._redraw_estimate)

    def _affordable(self, cost: float) -> bool:
        """Whether spending ``cost`` more CPU seconds now keeps this run within the budget."""
        # training time: the events' own clock, or ours if a loop does not fill it in
        trained = max(self.elapsed, time.perf_counter() - self._started_at if self._started_at else 0.0)
        return self._spent + cost <= self.overhead_budget * trained + self.grace

    def __call__(self, event: "TrainingEvent") -> None:
        self.on_event(event)

    def _record_row(self, event: "TrainingEvent") -> None:
        hist = self.history
        n = len(hist["epoch"])
        row = {"epoch": float(event.epoch)}
        row.update({f"loss:{k}": v for k, v in event.losses.items()})
        row.update({f"metric:{k}": v for k, v in event.metrics.items()})
        if event.learning_rate is not None:
            row["lr"] = event.learning_rate
        for key in row:
            if key not in hist:
                hist[key] = [float("nan")] * n
        for key, column in hist.items():
            value = row.get(key, float("nan"))
            try:
                column.append(float(value))
            except (TypeError, ValueError):
                column.append(float("nan"))
        self._pending_rows += 1

    # ------------------------------------------------------------------ stopping
    def request_stop(self, reason: str = "stopped from the dashboard") -> None:
        """What the Stop button does: ask the running training to stop after its current epoch."""
        with self._lock:
            self._stop_requested = True
            control = self._control
            if self.state in ("waiting", "running"):
                self.state = "stopping"
            self._dirty = True
        if control is not None:
            control.request_stop(reason)
        stop = self.wdict["stop"]
        stop.disabled = True
        stop.description = "Stopping…"
        self._request_flush()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    # ------------------------------------------------------------------ redraw scheduling
    def _request_flush(self, final: bool = False) -> None:
        """Redraw soon: now on the UI thread, else via the kernel's loop (see the module doc).

        ``final`` (the run ended): make sure the last state gets drawn even if the loop stays
        busy, waiting at most ``loop_patience`` for it before drawing from this thread.
        """
        if threading.current_thread() is self._ui_thread or self._ui_loop is None:
            self.flush(budgeted=True)
            return
        now = time.perf_counter()
        with self._lock:
            if self._flush_scheduled:
                # The kernel's loop has not run the last redraw yet: a cell is executing. Then no
                # widget message is being handled either, so drawing from this thread is safe,
                # and it keeps the dashboard live while the user works in other cells.
                if now - self._flush_scheduled_at < self.loop_patience:
                    return
                inline = True
            else:
                self._flush_scheduled, self._flush_scheduled_at = True, now
                inline = False
        if inline:
            self.flush(budgeted=True)
            return
        self._loop_flushed.clear()
        try:
            self._ui_loop.call_soon_threadsafe(self._flush_on_loop)
        except RuntimeError:  # the loop is closed (kernel shutting down): draw here instead
            self._flush_scheduled = False
            self.flush(budgeted=True)
            return
        if final and not self._loop_flushed.wait(self.loop_patience):
            self.flush(budgeted=True)

    def _flush_if_due(self) -> None:
        with self._lock:
            due = self._dirty and time.perf_counter() >= self._next_flush and self._affordable(self._redraw_estimate)
        if due:
            self.flush(budgeted=True)

    def _flush_on_loop(self) -> None:
        with self._lock:
            self._flush_scheduled = False
        self.flush(budgeted=True)
        self._loop_flushed.set()

    def flush(self, budgeted: bool = False) -> None:
        """Redraw now with everything recorded so far.

        The throttle calls it with ``budgeted=True``: the plots are then (re)drawn from scratch
        only when the budget allows it (the bar and the numbers are always updated). Called
        without it (in tests, or to force a full picture), everything is drawn.
        """
        with self._flush_lock:
            with self._lock:
                if not self._dirty and (budgeted or not self._plots_owed()):
                    return
                self._dirty = False
                snapshot = self._snapshot(budgeted)
            t0, c0 = time.perf_counter(), time.thread_time()
            built = self._draw(snapshot)
            # charged in CPU time of this thread: while training runs in another thread, a
            # redraw's wall time mostly measures waiting for the GIL
            cost = time.thread_time() - c0
            self.redraws += 1
            self.redraw_seconds += time.perf_counter() - t0
            self.redraw_cpu_seconds += cost
            with self._lock:
                self._spent += cost
                if built:
                    _BUILD_ESTIMATE["seconds"] = 0.5 * _BUILD_ESTIMATE["seconds"] + 0.5 * cost
                else:
                    self._redraw_estimate = 0.7 * self._redraw_estimate + 0.3 * cost
                self._next_flush = time.perf_counter() + self.update_every

    def _plots_owed(self) -> bool:
        """Recorded curves that the plots do not show yet (never drawn, or new terms since)."""
        columns = [c for c in self.history if c != "epoch"]
        return bool(columns) and (self._reset_plots or self.plots is None or bool(set(columns) - set(self._columns)))

    def _snapshot(self, budgeted: bool = False) -> dict:
        rows = self._pending_rows
        self._pending_rows = 0
        reset = self._reset_plots
        self._reset_plots = False
        n_hist = len(self.history["epoch"])
        columns = tuple(c for c in self.history if c != "epoch")
        # the whole history is copied only when the plots are (re)built from it
        build = bool(columns) and n_hist > 0 and (reset or self.plots is None or bool(set(columns) - set(self._columns)))
        if build and budgeted and self.state in ("running", "stopping"):
            # drawing the plots costs ~0.3 s: wait until the budget has room for it (by then
            # metrics evaluated every few epochs have shown up too, so it is drawn only once)
            build = self._affordable(_BUILD_ESTIMATE["seconds"])
        return {
            "state": self.state,
            "epoch": self.epoch,
            "n_epochs": self.n_epochs,
            "elapsed": self.elapsed,
            "losses": dict(self.losses),
            "metrics": dict(self.metrics),
            "lr": self.learning_rate,
            "message": self.message,
            "error": self.error_text,
            "info": dict(self.info),
            "columns": tuple(self.history),
            "new_rows": {k: np.asarray(v[n_hist - rows:], dtype=np.float64) for k, v in self.history.items()} if rows else None,
            "all_rows": {k: np.asarray(v, dtype=np.float64) for k, v in self.history.items()} if build else None,
            "n_rows": n_hist,
            "reset": reset,
        }

    # ------------------------------------------------------------------ drawing (UI thread)
    def _draw(self, s: dict) -> bool:
        wd = self.wdict
        progress = wd["progress"]
        with progress.hold_sync(), wd["status"].hold_sync(), wd["values"].hold_sync():
            progress.max = max(s["n_epochs"], 1)
            progress.value = min(s["epoch"], progress.max)
            progress.bar_style = _BAR_STYLE.get(s["state"], "info" if s["state"] == "running" else "")
            parts = [f"epoch {s['epoch']} of {s['n_epochs'] or '?'}", f"elapsed {format_duration(s['elapsed'])}"]
            if s["state"] in ("running", "stopping"):
                parts.append(f"remaining ~{format_duration(remaining_seconds(s['elapsed'], s['epoch'], s['n_epochs']))}")
            wd["status"].value = " · ".join(parts)
            values = [f"{html.escape(str(k))} {_fmt(v)}" for k, v in s["losses"].items()]
            values += [f"{html.escape(_METRIC_LABELS.get(k, k))} {_fmt(v)}" for k, v in s["metrics"].items()]
            if s["lr"] is not None:
                values.append(f"lr {s['lr']:.3g}")
            wd["values"].value = "<span style='font-family:monospace'>" + " · ".join(values) + "</span>"
        self._render_state(s["state"], s["message"], s["error"], s["info"])
        return self._draw_curves(s)

    def _render_state(self, state: str, message: str = "", error: str = "", info: dict | None = None) -> None:
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
        if state in ("finished", "stopped", "failed"):
            stop.disabled = True
            stop.description = "Stop"
        elif state == "stopping":
            stop.disabled = True
            stop.description = "Stopping…"
        else:
            stop.disabled = False
            stop.description = "Stop"
        err = wd["error"]
        if state == "failed":
            body = html.escape(error or message or "training failed")
            err.value = f"<div style='color:#cf222e'><b>Training failed.</b><pre style='white-space:pre-wrap'>{body}</pre></div>"
            err.layout.display = None
        else:
            err.value = ""
            err.layout.display = "none"

    def _draw_curves(self, s: dict) -> bool:
        if s["reset"] and self.plots is not None:  # a new run: drop the previous run's curves
            import ipywidgets as w

            self.plots.close()
            self.plots, self._panels, self._columns = None, {}, ()
            self.wdict["plots"].children = (w.HTML(_PLACEHOLDER),)
        if s["all_rows"] is not None:
            self._build_plots(s)
            return True
        if self.plots is None:
            return False
        resync = False
        if s["new_rows"] is not None and len(s["new_rows"]["epoch"]):
            with self.plots.hold():
                for panel in self._panels.values():
                    panel.extend(s["new_rows"])
            # jupyter_bokeh drops patches that reach the page before the plot's view is rendered:
            # send the whole document again once the page has had time to render it
            since = time.perf_counter() - self._built_at
            due = [t for t in self.resync_after if since >= t and t not in self._resynced]
            if due:
                self._resynced.update(due)
                resync = True
        final = s["state"] in ("finished", "stopped", "failed")
        if resync or (final and not self._final_synced):
            # also once at the end: a view rendered later (page reload) starts from the full curves
            self._final_synced = final
            self.plots.resync()
        return False

    def _build_plots(self, s: dict) -> None:
        """Draw the panels once with HoloViews; later epochs are streamed into their Bokeh sources.

        Re-rendering HoloViews elements per redraw (a ``Buffer`` + ``DynamicMap``) costs ~50 ms
        per panel; appending to the ``ColumnDataSource`` of each curve costs about a millisecond
        and sends only the new points to the page.
        """
        hv = holoviews()
        data = s["all_rows"]
        self._columns = tuple(c for c in data if c != "epoch")
        groups = {
            "losses": [c for c in self._columns if c.startswith("loss:")],
            "metrics": [c for c in self._columns if c.startswith("metric:")],
            "learning rate": [c for c in self._columns if c == "lr"],
        }
        logy = self.logy
        if logy == "auto":
            losses = groups["losses"]
            finite = np.concatenate([data[c][np.isfinite(data[c])] for c in losses]) if losses else np.array([])
            logy = bool(finite.size) and bool((finite > 0).all())
        # no hover tool: the latest values are in the text line, and it makes building slower
        common = dict(width=self.plot_width, height=self.plot_height, show_grid=True)
        overlays, specs = [], []
        for group, cols in groups.items():
            if not cols:
                continue
            log = group == "losses" and bool(logy)
            if group == "losses":
                vdim = "loss"
            elif group == "metrics":
                vdim = _METRIC_LABELS.get(cols[0][len("metric:"):], "metric") if len(cols) == 1 else "metric"
            else:
                vdim = "learning rate"
            # only the epochs that have this panel's values: metrics may be evaluated every few
            # epochs, and a curve with NaN between its points would not be drawn
            rows = _rows_with_values(data, cols)
            curves = [hv.Curve((rows["epoch"], _for_axis(rows[c], log)), "epoch", vdim, label=c.split(":", 1)[-1]) for c in cols]
            style = dict(common, logy=log, **({"color": "#6e7781"} if group == "learning rate" else {}))
            overlays.append(
                hv.Overlay(curves).opts(
                    {"Curve": style, "Overlay": dict(
                            title=group,
                            legend_position="top_right",
                            legend_opts={"background_fill_alpha": 0.6, "label_text_font_size": "8pt", "spacing": 0},
                            logy=log,
                            show_legend=group != "learning rate",
                        )},
                    backend="bokeh",
                )
            )
            specs.append((group, cols, log))
        layout = hv.Layout(overlays).cols(3).opts(shared_axes=False)
        panels: dict = {}

        def frame_panels(plot) -> None:  # runs before the widget exists: the page gets these ranges
            curve_plots = {p.current_frame.label: p for p in plot.traverse(lambda p: p) if type(p).__name__ == "CurvePlot"}
            for group, cols, log in specs:
                plots = [curve_plots[c.split(":", 1)[-1]] for c in cols]
                panels[group] = _LivePanel(cols, plots, log, _rows_with_values(data, cols), s["n_epochs"])

        old = self.plots
        import param

        with param.logging_level("ERROR"):  # a log axis with one point makes HoloViews warn; we frame it
            self.plots = HoloViewsWidget(layout, prepare=frame_panels)
        self._panels = panels
        self._built_at = time.perf_counter()
        self._resynced = set()
        self.wdict["plots"].children = (self.plots.widget,)
        if old is not None:
            old.close()

    # ------------------------------------------------------------------ running training
    def _notebook_mode(self) -> bool:
        return self.mode == "notebook" or (self.mode == "auto" and in_notebook())

    def run(self, fit: Callable[..., Any], *args: Any, background: bool | None = None, **kwargs: Any) -> "TrainingRun":
        """Train with this dashboard attached: ``dashboard.run(EGUNet(...).fit, cube)``.

        ``fit`` is called as ``fit(*args, callbacks=[..., dashboard], **kwargs)`` (callbacks you
        pass are kept). In a notebook training runs in a background thread (``background=False``
        to block instead) and a :class:`TrainingRun` is returned at once: ``run.result()`` waits
        for and returns what ``fit`` returned. Outside a notebook the same call shows console
        progress, trains in the calling thread and returns a finished :class:`TrainingRun`
        (exceptions propagate as from any function call).
        """
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not self._notebook_mode():
            from ..engine.progress import ConsoleProgress

            console = ConsoleProgress()
            started = time.perf_counter()
            value = fit(*args, callbacks=callbacks + [console], **kwargs)
            return TrainingRun.completed(value, time.perf_counter() - started)
        if self._run is not None and not self._run.done():
            raise InputError("a training is already running on this dashboard; press Stop (or run.stop()) and wait for it first")
        self._ui_thread = threading.current_thread()
        self._ui_loop = _running_loop()
        with self._lock:
            self._reset_state()
            self._stop_requested = False
            self._control = None
            self._dirty = True
        self.flush()
        if not self._shown and in_notebook():
            self.show()
        run = TrainingRun(self, fit, args, dict(kwargs, callbacks=callbacks + [self]))
        self._run = run
        run._start(background=True if background is None else background)
        return run

    # called by TrainingRun when fit() returned or raised
    def _run_finished(self, error: BaseException | None) -> None:
        with self._lock:
            if error is not None:
                self.error_text = "".join(traceback.format_exception_only(type(error), error)).strip()
                if self.state != "failed":
                    self.message = self.error_text
                self.state = "failed"
            elif self.state not in ("finished", "stopped", "failed"):
                self.state = "stopped" if self._stop_requested else "finished"
                if self._stop_requested:
                    self.message = self.message or "stopped from the dashboard"
            self._dirty = True
        self._request_flush(final=True)


class TrainingRun:
    """A training started by :meth:`TrainingDashboard.run`; like a small future.

    ``result(timeout=None)`` waits and returns what ``fit`` returned (or raises its exception);
    ``done()``, ``exception()``, ``stop()``. While ``result()`` waits on the notebook's main
    thread it keeps the dashboard redrawing.
    """

    def __init__(self, dashboard: TrainingDashboard | None, fit=None, args=(), kwargs=None):
        self.dashboard = dashboard
        self._fit = fit
        self._args = args
        self._kwargs = kwargs or {}
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.seconds: float | None = None

    @classmethod
    def completed(cls, value: Any, seconds: float | None = None) -> "TrainingRun":
        run = cls(None)
        run._value = value
        run.seconds = seconds
        run._done.set()
        return run

    def _start(self, background: bool) -> None:
        if background:
            self.thread = threading.Thread(target=self._target, name="egu-training", daemon=True)
            self.thread.start()
        else:
            self._target()

    def _target(self) -> None:
        started = time.perf_counter()
        try:
            self._value = self._fit(*self._args, **self._kwargs)
        except BaseException as exc:  # noqa: BLE001  - reported on the dashboard and by result()
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - started
            if self.dashboard is not None:
                self.dashboard._run_finished(self._error)
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (redrawing the dashboard meanwhile); True if it has ended."""
        dash = self.dashboard
        pump = dash is not None and threading.current_thread() is dash._ui_thread
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 0.05 if pump else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._done.is_set()
                step = left if step is None else min(step, left)
            if self._done.wait(step):
                break
            if pump:
                dash._flush_if_due()
        if pump:
            dash.flush(budgeted=True)
        return True

    def result(self, timeout: float | None = None) -> Any:
        if not self.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not self.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        return self._error

    def stop(self, reason: str = "stopped from the dashboard") -> None:
        if self.dashboard is not None:
            self.dashboard.request_stop(reason)

    def __repr__(self) -> str:
        if not self.done():
            state = "running"
        elif self._error is not None:
            state = f"failed: {type(self._error).__name__}: {self._error}"
        else:
            state = "done"
        return f"<TrainingRun {state}>"


def _for_axis(values: np.ndarray, log: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(values > 0, values, np.nan) if log else values


class _LivePanel:
    """One dashboard panel after its first drawing: appends epochs to its curves' sources.

    HoloViews draws fixed axis ranges, so the panel frames the data itself, cheaply: an axis only
    changes when a point falls outside it, and then grows with room to spare (x by half again, up
    to the planned epochs; y by a margin), so most redraws send nothing but the new points.
    """

    def __init__(self, columns: list, plots: list, log: bool, rows: dict, n_epochs: int):
        self.columns = columns
        self.sources = [p.handles["source"] for p in plots]
        # the value column, plus any copy HoloViews keeps for the hover tool (names sanitised)
        self.ycols = [[k for k in src.data if k != "epoch"] for src in self.sources]
        figure = plots[0].handles["plot"]
        self.x_range, self.y_range = figure.x_range, figure.y_range
        self.log = log
        self.n_epochs = int(n_epochs)
        self._frame_x(rows, force=True)
        self._frame_y(rows, force=True)

    def extend(self, new_rows: dict) -> None:
        rows = _rows_with_values(new_rows, self.columns)
        if not len(rows["epoch"]):
            return
        for column, source, ycols in zip(self.columns, self.sources, self.ycols):
            values = _for_axis(rows[column], self.log)
            source.stream({"epoch": rows["epoch"], **{k: values for k in ycols}})
        self._frame_x(rows)
        self._frame_y(rows)

    def _frame_x(self, rows: dict, force: bool = False) -> None:
        last = float(np.max(rows["epoch"])) if len(rows["epoch"]) else 1.0
        end = self.x_range.end
        if not force and self.x_range.start == 0.0 and end is not None and last <= end:
            return
        # room for half as many epochs again (a handful of range changes over a whole run),
        # but never past the planned number of epochs
        end = max(10.0, np.ceil(1.5 * last))
        if self.n_epochs >= last:
            end = min(end, float(self.n_epochs))
        _set_range(self.x_range, 0.0, end)

    def _frame_y(self, rows: dict, force: bool = False) -> None:
        values = np.concatenate([_for_axis(rows[c], self.log) for c in self.columns])
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


def _set_range(rng, start: float, end: float) -> None:
    rng.update(start=start, end=end, reset_start=start, reset_end=end)


def _rows_with_values(rows: dict, columns: list) -> dict:
    """The rows (epochs) where at least one of ``columns`` has a finite value."""
    keep = np.zeros(len(rows["epoch"]), dtype=bool)
    for c in columns:
        keep |= np.isfinite(rows[c])
    return {k: np.asarray(rows[k])[keep] for k in ("epoch", *columns)}


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def training_dashboard(title: str | None = None, *, display: bool = True, **options: Any) -> dict:
    """Build a :class:`TrainingDashboard`: ``{"widget", "wdict", "view"}``; shown unless ``display=False``.

    ``view`` is the dashboard itself: pass it as a training callback or call ``view.run(fit, cube)``.
    """
    require_widgets("the training dashboard")
    return build(TrainingDashboard(title, **options), display)
