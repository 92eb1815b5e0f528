"""A training started by :meth:`TrainingDashboard.run`: a small future over a background thread."""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from .ui_events import AWAIT_HINT, poll_while, serving

if TYPE_CHECKING:
    from .dashboard import TrainingDashboard

__all__ = ["TrainingRun"]


class TrainingRun:
    """A training started by :meth:`TrainingDashboard.run`; like a small future.

    ``result(timeout=None)`` waits and returns what ``fit`` returned (or raises its exception);
    ``await run`` does the same from an async cell; ``done()``, ``exception()``, ``stop()``.
    While either waits on the notebook's main thread it keeps the dashboard redrawing and serves
    widget messages where the kernel allows it, so Stop works under Run All too.
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
        """Wait for the run to end, redrawing the dashboard meanwhile; True if it has ended.

        On the notebook's main thread the wait serves widget messages (jupyter-ui-poll), so the
        dashboard's Stop keeps working even when this cell was queued by Run All. Kernels that
        jupyter-ui-poll cannot drive serve them only while a cell awaits: there a warning says to
        ``await run`` instead (see :mod:`egu_widgets.widgets.ui_events`).
        """
        dash = self.dashboard
        if dash is None or not dash.handoff.on_ui_thread():
            return self._done.wait(timeout)
        if not self._done.is_set() and serving() == "await":
            _warn_once(
                f"this kernel handles no widget messages while a cell blocks, so Stop cannot work during run.result(); {AWAIT_HINT}"
            )
        deadline = None if timeout is None else time.monotonic() + timeout

        def busy(step: float) -> bool:
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return False
            return not self._done.wait(step)

        poll_while(busy, dash._flush_if_due)
        dash.flush(budgeted=True)
        return self._done.is_set()

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Await the end of the run (True if it has ended), serving widget messages meanwhile.

        What ``await run`` uses. An awaiting cell lets the kernel's event loop run: redraws handed
        over by the training thread happen at once, and on ipykernel 7 widget messages (Stop) are
        dispatched; on kernels jupyter-ui-poll drives it polls them too.
        """
        import asyncio

        dash = self.dashboard
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = _async_poller() if dash is not None else None
        async with poller or _nothing() as poll:
            while not self._done.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if poll is not None:
                    await poll(20)
                await asyncio.sleep(0.05)
                if dash is not None and dash.handoff.on_ui_thread():
                    dash._flush_if_due()
        if dash is not None and dash.handoff.on_ui_thread():
            dash.flush(budgeted=True)
        return self._done.is_set()

    def __await__(self):
        """``await run``: wait (serving Stop clicks) and return what ``fit`` returned."""
        return self._result_async().__await__()

    async def _result_async(self) -> Any:
        await self.wait_async()
        if self._error is not None:
            raise self._error
        return self._value

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


_WARNED: set = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


def _async_poller():
    """jupyter-ui-poll's async context where it can drive this kernel, else None."""
    if serving() != "poll":
        return None
    from jupyter_ui_poll import ui_events

    return ui_events()


@contextlib.asynccontextmanager
async def _nothing():
    yield None
