"""A training started by :meth:`TrainingDashboard.run`: a small future over a background thread."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dashboard import TrainingDashboard

__all__ = ["TrainingRun"]


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
    def completed(cls, value: Any, seconds: float | None = None) -> TrainingRun:
        """A run that has already finished with ``value`` (training ran in the calling thread)."""
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
        except BaseException as exc:  # reported on the dashboard and by result()
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
        pump = dash is not None and dash.handoff.on_ui_thread()
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
        """What ``fit`` returned, once it has; its exception is raised here."""
        if not self.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception ``fit`` raised (None if it returned)."""
        if not self.wait(timeout):
            raise TimeoutError(f"training still running after {timeout} s")
        return self._error

    def stop(self, reason: str = "stopped from the dashboard") -> None:
        """Ask the training to stop after its current epoch (as the Stop button does)."""
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
