"""When a live view redraws, and on which thread: a time throttle with a CPU budget, and a hand-off
of redraws from a training thread to the notebook kernel's event loop.

Both are plain objects with injectable clocks, so they are tested without widgets and without
waiting: the training dashboard owns one of each and asks them, the view itself keeps no timing
state.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from ..validation import check_float

__all__ = ["LoopHandoff", "RedrawScheduler"]


class RedrawScheduler:
    """Decide when a redraw is due: at most every ``update_every`` seconds, within a CPU budget.

    The throttle is fastprogress': after a redraw the next one waits ``update_every`` seconds
    (``0`` redraws at every epoch). The budget keeps a live view from slowing the training it
    shows: everything charged to it (recording events with :meth:`charge_event`, redraws timed by
    :meth:`redraw`) must stay within ``overhead_budget`` times the training time so far, plus
    ``grace`` CPU seconds for the very start. A redraw is allowed when the expected cost of one
    fits; drawing plots from scratch (much dearer) is asked for separately with
    :meth:`can_build`. Both expected costs are running averages of what this scheduler measured.
    With ``charge_builds=False`` drawings from scratch are counted (``build_cpu_seconds``) but not
    charged: a view that draws its curves at the first epoch, once per new set of curves, keeps
    its whole budget for the ordinary redraws that follow.

    Costs are CPU seconds of the thread that spends them (``cpu_clock``): while training runs in
    another thread, a redraw's wall time mostly measures waiting for the GIL.

    Parameters
    ----------
    update_every
        Least seconds between two redraws.
    overhead_budget
        Largest share of the training time (0 < share <= 1) the view may spend.
    grace
        CPU seconds allowed before training has taken any time.
    build_estimate, redraw_estimate
        Expected CPU seconds of a first drawing and of an ordinary redraw, before any is measured.
    clock, cpu_clock
        Wall clock and CPU clock, in seconds (``time.perf_counter`` and ``time.thread_time``).
    charge_builds
        Whether drawings from scratch are charged to the budget.
    """

    def __init__(
        self,
        update_every: float = 0.2,
        overhead_budget: float = 0.04,
        *,
        grace: float = 0.01,
        build_estimate: float = 0.3,
        redraw_estimate: float = 0.005,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
        charge_builds: bool = True,
    ) -> None:
        self.update_every = check_float("update_every", update_every, 0.0)
        self.overhead_budget = check_float("overhead_budget", overhead_budget, 0.0, 1.0, min_inclusive=False)
        self.grace = check_float("grace", grace, 0.0)
        self.build_estimate = float(build_estimate)
        self.redraw_estimate = float(redraw_estimate)
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.charge_builds = bool(charge_builds)
        self.build_cpu_seconds = 0.0  # CPU time of drawings from scratch
        self._lock = threading.Lock()  # charges come from the training thread and the UI thread
        self.spent = 0.0  # CPU seconds charged to the current run
        self.started_at = 0.0  # clock() at the run's start (0: no start seen)
        self.next_at = 0.0  # clock() before which no throttled redraw is due
        self.redraws = 0
        self.redraw_seconds = 0.0  # wall time spent redrawing
        self.redraw_cpu_seconds = 0.0  # CPU time of the redrawing thread(s)
        self.event_cpu_seconds = 0.0  # CPU time spent recording events

    def start(self, elapsed: float = 0.0) -> None:
        """A run started ``elapsed`` seconds ago: its budget starts from nothing spent."""
        with self._lock:
            self.spent = 0.0
            self.started_at = self.clock() - float(elapsed)

    def training_time(self, elapsed: float) -> float:
        """Seconds trained: the events' own clock, or ours when a loop does not fill it in."""
        ours = self.clock() - self.started_at if self.started_at else 0.0
        return max(float(elapsed), ours)

    def affordable(self, cost: float, elapsed: float) -> bool:
        """Whether spending ``cost`` more CPU seconds now keeps the run within its budget."""
        return self.spent + cost <= self.overhead_budget * self.training_time(elapsed) + self.grace

    def due(self, elapsed: float) -> bool:
        """Whether a throttled redraw may happen now (time has come and the budget has room)."""
        return self.clock() >= self.next_at and self.affordable(self.redraw_estimate, elapsed)

    def can_build(self, elapsed: float) -> bool:
        """Whether the budget has room for drawing the plots from scratch."""
        return self.affordable(self.build_estimate, elapsed)

    def charge_event(self, cpu_seconds: float) -> None:
        """Charge the CPU time of recording one event."""
        with self._lock:
            self.event_cpu_seconds += cpu_seconds
            self.spent += cpu_seconds

    def redraw(self, draw: Callable[[], bool]) -> bool:
        """Run ``draw()`` (True when it drew plots from scratch), charge it, restart the throttle."""
        t0, c0 = self.clock(), self.cpu_clock()
        built = draw()
        cost = self.cpu_clock() - c0
        with self._lock:
            self.redraws += 1
            self.redraw_seconds += self.clock() - t0
            self.redraw_cpu_seconds += cost
            if built:
                self.build_cpu_seconds += cost
            if self.charge_builds or not built:
                self.spent += cost
            if built:
                self.build_estimate = 0.5 * self.build_estimate + 0.5 * cost
            else:
                self.redraw_estimate = 0.7 * self.redraw_estimate + 0.3 * cost
            self.next_at = self.clock() + self.update_every
        return built


class LoopHandoff:
    """Run redraws on the UI thread while training runs in another one.

    While a notebook cell runs, the kernel handles no widget messages; between cells it does, on
    its event loop. A redraw requested from the training thread is therefore handed to that loop
    (``call_soon_threadsafe``), so widgets and Bokeh documents change on the kernel's main thread
    and never concurrently with the handling of a click or a tap. When the loop has not got to a
    hand-off within ``patience`` seconds, a cell is running: no widget message is being handled
    then, so the training thread draws by itself and the view stays live.

    Parameters
    ----------
    draw
        The redraw; called with no arguments.
    patience
        Seconds a hand-off may wait for a busy loop.
    clock
        Wall clock in seconds.
    """

    def __init__(
        self, draw: Callable[[], None], *, patience: float = 0.5, clock: Callable[[], float] = time.perf_counter
    ):
        self.draw = draw
        self.patience = float(patience)
        self.clock = clock
        self._lock = threading.Lock()
        self._scheduled = False  # a hand-off is waiting for the loop
        self._scheduled_at = 0.0
        self._drawn = threading.Event()  # the loop ran the latest hand-off
        self.bind()

    def bind(self) -> None:
        """Make the calling thread, and its running event loop if any, the UI side."""
        self.ui_thread = threading.current_thread()
        self.loop = _running_loop()

    def on_ui_thread(self) -> bool:
        return threading.current_thread() is self.ui_thread

    def request(self, final: bool = False) -> None:
        """Redraw soon: now on the UI thread (or without a loop), else through the loop.

        ``final`` (the run ended): the last state must be drawn even if the loop stays busy, so
        wait at most ``patience`` for the loop before drawing from this thread.
        """
        if self.on_ui_thread() or self.loop is None:
            self.draw()
            return
        now = self.clock()
        with self._lock:
            if self._scheduled:
                # the loop has not run the last hand-off yet: a cell is executing
                if now - self._scheduled_at < self.patience:
                    return
                inline = True
            else:
                self._scheduled, self._scheduled_at = True, now
                inline = False
        if inline:
            self.draw()
            return
        self._drawn.clear()
        try:
            self.loop.call_soon_threadsafe(self._on_loop)
        except RuntimeError:  # the loop is closed (kernel shutting down): draw here instead
            self._scheduled = False
            self.draw()
            return
        if final and not self._drawn.wait(self.patience):
            self.draw()

    def _on_loop(self) -> None:
        with self._lock:
            self._scheduled = False
        self.draw()
        self._drawn.set()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
