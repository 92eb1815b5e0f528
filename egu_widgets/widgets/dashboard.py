"""Live training dashboard: progress, loss/metric/learning-rate curves, Stop, and a clear end state.

A run that its stopping rule can end before its bound (``epochs="auto"``) shows the rule's
progress instead of an epoch bar over the bound: the same line as the console bar
(:class:`~egu_widgets.engine.progress.StoppingProgress`), a bar that fills as the change between
checks comes down to ``tol`` (log scale), and the change on its own log axis with ``tol`` drawn.

The dashboard is a training callback (``on_event``); it never reaches into the trainer. It is
made of three parts, each testable alone:

- the run's per-epoch columns, a :class:`~egu_widgets.engine.history.TrainingHistory`: the
  trainer's own recorder, which arrives with every event (``event.history``), so the curves show
  exactly what the result's ``history`` will hold; a loop that sends no recorder gets one kept
  here and fed with its events;
- when to redraw and on which thread: :class:`~egu_widgets.widgets.redraw.RedrawScheduler` (at
  most every ``update_every`` seconds, within ``overhead_budget`` of the training time; the curves
  are drawn at the first epoch, later epochs are appended to them) and
  :class:`~egu_widgets.widgets.redraw.LoopHandoff`;
- what it looks like: :class:`~egu_widgets.widgets.dashboard_layout.DashboardLayout`.

Stop in a live notebook
-----------------------
While a cell runs, the kernel handles no widget messages, so a Stop click made during a blocking
``fit(...)`` would only arrive after training ended. :meth:`TrainingDashboard.run` therefore starts
training in a background thread and returns at once: the cell finishes, the kernel is free to
deliver the click, and the button's handler calls ``event.control.request_stop()`` (thread-safe),
which the trainer checks between epochs. A later cell that waits for the run (``await run``, or
``run.result()`` where jupyter-ui-poll can drive the kernel) keeps serving widget messages, so
Stop also works under Run All. Training in the foreground (the dashboard passed as a callback)
serves them at each epoch's end where jupyter-ui-poll works, and hides Stop where it cannot
(:mod:`egu_widgets.widgets.ui_events`). Redraws requested from the training thread go through the
kernel's event loop (see :class:`~egu_widgets.widgets.redraw.LoopHandoff`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..validation import check_choice
from ._deps import holoviews, in_notebook, require_widgets
from ._view import HoloViewsWidget, View, build
from .dashboard_layout import DashboardLayout, Frame, RunStatus
from .redraw import LoopHandoff, RedrawScheduler
from .training_run import TrainingRun
from .ui_events import serving, ui_poll

if TYPE_CHECKING:  # importing the engine package loads torch: only when a dashboard is made
    from ..engine.events import TrainingEvent
    from ..engine.history import TrainingHistory

__all__ = ["TrainingDashboard", "TrainingRun", "training_dashboard"]

_MODES = ("auto", "notebook", "console")
_FINAL = ("finished", "stopped", "failed")


class TrainingDashboard(View):
    """A training callback that shows a live dashboard in a notebook.

    Parameters
    ----------
    title
        Optional heading.
    update_every
        Least seconds between two redraws (fastprogress-style throttle).
    overhead_budget
        Largest share of training time the dashboard may spend (CPU time spent recording events
        and drawing, against the training's elapsed time); see :class:`RedrawScheduler`.
    logy
        Log scale for the loss curves (``"auto"``: when every loss is positive).
    plot_width, plot_height
        Largest width and the height of each curve panel, in pixels (panels narrow to fit the
        notebook cell).
    mode
        ``"auto"`` (a notebook kernel gets the widget, anything else console progress),
        ``"notebook"`` or ``"console"``. Only :meth:`run` looks at it.

    Use :meth:`run` to train in the background with a working Stop button, or pass the dashboard
    in ``callbacks=[...]`` yourself (then Stop clicks are only seen when the cell has finished).
    The parts are attributes: ``layout`` (widgets and drawing), ``scheduler`` (throttle, budget
    and cost counters) and ``handoff`` (which thread draws).
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
        from ..engine.history import TrainingHistory  # here, not at import: the engine package loads torch
        from ..engine.progress import StoppingProgress

        holoviews()  # import the plotting stack now, on this thread, not in the training's first redraw
        self.mode = check_choice("mode", mode, _MODES)
        # the curves are drawn at the first epoch: that drawing is not charged to the budget,
        # which then bounds the redraws that append epochs to them
        self.scheduler = RedrawScheduler(update_every, overhead_budget, charge_builds=False)
        self.layout = DashboardLayout(
            title, logy=logy, plot_width=plot_width, plot_height=plot_height, on_stop=self.request_stop
        )
        self.widget, self.wdict = self.layout.widget, self.layout.wdict
        self.handoff = LoopHandoff(lambda: self.flush(budgeted=True))
        self._lock = threading.RLock()  # guards the recorded state below
        self._flush_lock = threading.RLock()  # one redraw at a time
        self._own_history = TrainingHistory()  # for loops whose events carry no recorder
        #: the stopping rule's progress, followed from the events (the console bar shows the same)
        self.stopping = StoppingProgress()
        self._stop_requested = False
        self._control = None
        self._run: TrainingRun | None = None
        self._foreground = None  # the ui_poll() context while training runs on the UI thread
        self._foreground_poll = None
        self._reset_plots = False
        self._reset_state()

    # ------------------------------------------------------------------ recorded state
    def _reset_state(self) -> None:
        self.status = RunStatus()  # what the next redraw shows
        self._history: TrainingHistory | None = None  # the current run's columns
        self._rows_drawn = 0  # rows of it already handed to a redraw
        self._dirty = True

    @property
    def history(self) -> dict[str, list[float]]:
        """The current run's curves so far: ``"epoch"``, ``"loss:…"``, ``"metric:…"``, ``"lr"``."""
        history = self._history
        if history is None:
            return {"epoch": []}
        return {k: v.tolist() for k, v in history.table().items()}

    @property
    def state(self) -> str:
        """``"waiting"``, ``"running"``, ``"stopping"``, ``"finished"``, ``"stopped"`` or ``"failed"``."""
        return self.status.state

    @property
    def epoch(self) -> int:
        """Epochs completed so far in the current run."""
        return self.status.epoch

    @property
    def plots(self) -> HoloViewsWidget | None:
        """The drawn curves (None until they are first drawn)."""
        return self.layout.plots

    @property
    def redraws(self) -> int:
        """Redraws so far."""
        return self.scheduler.redraws

    @property
    def loop_patience(self) -> float:
        """Seconds a redraw handed to a busy kernel loop may wait before the training thread draws."""
        return self.handoff.patience

    @loop_patience.setter
    def loop_patience(self, seconds: float) -> None:
        self.handoff.patience = float(seconds)

    # ------------------------------------------------------------------ callback
    def on_event(self, event: TrainingEvent) -> None:
        """Record one training event (cheap); redraw when the throttle allows or the run ended."""
        scheduler = self.scheduler
        cpu = scheduler.cpu_clock()
        try:
            due = self._record(event)
        finally:
            scheduler.charge_event(scheduler.cpu_clock() - cpu)
        if due:
            self.handoff.request(final=event.is_final)
        self._serve_foreground(event)

    def __call__(self, event: TrainingEvent) -> None:
        self.on_event(event)

    def _record(self, event: TrainingEvent) -> bool:
        with self._lock:
            if event.kind == "start":
                self._reset_state()
                self._reset_plots = True
                self.scheduler.start(event.elapsed)
                self.status.info = dict(event.info)
            st = self.status
            self.stopping.on_event(event)
            history = event.history
            if history is None:
                history = self._own_history
                history.on_event(event)
            self._history = history
            if event.control is not None:
                self._control = event.control
                if self._stop_requested and not event.control.stop_requested:
                    event.control.request_stop("stopped from the dashboard")
            st.epoch = int(event.epoch)
            st.n_epochs = int(event.n_epochs)
            st.elapsed = float(event.elapsed)
            if event.is_final:  # repeats the last change at most: the last epoch's values stay
                st.metrics.update(event.metrics)
            elif event.losses or event.metrics or event.learning_rate is not None:
                st.losses = dict(event.losses)
                # metrics come every few epochs: each keeps its latest value until the next one
                st.metrics = {**st.metrics, **event.metrics}
                st.learning_rate = event.learning_rate
            rule = self.stopping
            st.tol = rule.tol
            st.stopping = rule.text() if rule.active else ""
            st.stopping_fraction = rule.fraction()
            if event.kind in ("start", "epoch"):
                st.state = "stopping" if self._stop_requested else "running"
            elif event.kind == "end":
                st.state = "finished"
            elif event.kind == "stop":
                st.state = "stopped"
                st.message = event.message or "stop requested"
            elif event.kind == "fail":
                st.state = "failed"
                st.message = event.message or "training failed"
            if event.is_final:
                self._stop_requested = False  # a Stop belongs to one run
            self._dirty = True
            if event.kind != "epoch":
                return True
            # curves not drawn yet (the first epoch, or a new term) are drawn at once
            return self.scheduler.due(st.elapsed) or self._plots_owed()

    # ------------------------------------------------------------------ training in the foreground
    def _serve_foreground(self, event: TrainingEvent) -> None:
        """Training on the notebook's main thread (``callbacks=[dashboard]``, ``progress_callback``).

        The cell is busy, so a Stop click can only arrive if this epoch's end serves widget
        messages: with jupyter-ui-poll it does; where that cannot work the Stop button is hidden
        rather than shown without effect.
        """
        if event.kind == "start":
            self._end_foreground()
            if not (in_notebook() and self.handoff.on_ui_thread()):
                return
            if serving() == "poll":
                self._foreground = ui_poll()
                self._foreground_poll = self._foreground.__enter__()
            else:
                self.layout.set_stoppable(False)
        elif self._foreground_poll is not None and not event.is_final:
            self._foreground_poll(20)
        if event.is_final:
            self._end_foreground()

    def _end_foreground(self) -> None:
        context, self._foreground, self._foreground_poll = self._foreground, None, None
        if context is not None:
            context.__exit__(None, None, None)

    # ------------------------------------------------------------------ stopping
    def request_stop(self, reason: str = "stopped from the dashboard") -> None:
        """What the Stop button does: ask the running training to stop after its current epoch."""
        with self._lock:
            self._stop_requested = True
            control = self._control
            if self.status.state in ("waiting", "running"):
                self.status.state = "stopping"
            self._dirty = True
        if control is not None:
            control.request_stop(reason)
        self.layout.show_stopping()
        self.handoff.request()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    # ------------------------------------------------------------------ redrawing
    def _flush_if_due(self) -> None:
        with self._lock:
            due = self._dirty and self.scheduler.due(self.status.elapsed)
        if due:
            self.flush(budgeted=True)

    def flush(self, budgeted: bool = False) -> None:
        """Redraw now with everything recorded so far.

        The throttle calls it with ``budgeted=True``: the plots are then drawn from scratch only
        when the budget allows it (the bar and the numbers are always updated). Called without it
        (in tests, or to force a full picture), everything is drawn.
        """
        with self._flush_lock:
            with self._lock:
                if not self._dirty and (budgeted or not self._plots_owed()):
                    return
                self._dirty = False
                frame = self._frame(budgeted)
            self.scheduler.redraw(lambda: self._draw(frame))

    def _draw(self, frame: Frame) -> bool:
        return self.layout.draw(frame)

    def _plots_owed(self) -> bool:
        """Recorded curves that the plots do not show yet (never drawn, or new terms since)."""
        history = self._history
        if history is None or not len(history):  # declared columns without rows draw nothing
            return False
        columns = history.columns
        return bool(columns) and (self._reset_plots or self.layout.owes(columns))

    def _frame(self, budgeted: bool) -> Frame:
        """What the next redraw shows; the rows are read from the run's history in one step each."""
        reset = self._reset_plots
        self._reset_plots = False
        history = self._history
        new_rows = all_rows = None
        if history is not None:
            columns = history.columns
            # the curves are drawn from the first recorded epoch on (as livelossplot does): a
            # short run must not end with none; later epochs are appended to them
            build = bool(columns) and len(history) > 0 and (reset or self.layout.owes(columns))
            if build:  # the whole history is copied only when the plots are drawn from it
                all_rows = history.table()
                self._rows_drawn = len(all_rows["epoch"])
            else:
                rows = history.table(self._rows_drawn)
                if len(rows["epoch"]):
                    new_rows = rows
                    self._rows_drawn += len(rows["epoch"])
        return Frame(status=self.status.copy(), new_rows=new_rows, all_rows=all_rows, reset=reset)

    # ------------------------------------------------------------------ running training
    def _notebook_mode(self) -> bool:
        return self.mode == "notebook" or (self.mode == "auto" and in_notebook())

    def run(self, fit: Callable[..., Any], *args: Any, background: bool | None = None, **kwargs: Any) -> TrainingRun:
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
            raise InputError(
                "a training is already running on this dashboard; press Stop (or run.stop()) and wait for it first"
            )
        self.handoff.bind()
        self.layout.set_stoppable(True)
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
            st = self.status
            if error is not None:
                st.error = "".join(traceback.format_exception_only(type(error), error)).strip()
                if st.state != "failed":
                    st.message = st.error
                st.state = "failed"
            elif st.state not in _FINAL:
                st.state = "stopped" if self._stop_requested else "finished"
                if self._stop_requested:
                    st.message = st.message or "stopped from the dashboard"
            self._dirty = True
        self.handoff.request(final=True)


def training_dashboard(title: str | None = None, *, display: bool = True, **options: Any) -> dict:
    """Build a :class:`TrainingDashboard`: ``{"widget", "wdict", "view"}``; shown unless ``display=False``.

    ``view`` is the dashboard itself: pass it as a training callback or call ``view.run(fit, cube)``.
    """
    require_widgets("the training dashboard")
    return build(TrainingDashboard(title, **options), display)
