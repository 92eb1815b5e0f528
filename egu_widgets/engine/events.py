"""Training events: the only thing a training loop tells the outside world.

The trainer builds a :class:`TrainingEvent` at start, after every epoch, and at the end, and
hands it to each callback. Callbacks (console progress, the notebook dashboard, a logger of your
own) never reach into the trainer; to end a run early they call ``event.control.request_stop()``,
which is thread-safe so a button handled on another thread can use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .history import TrainingHistory

__all__ = ["EVENT_KINDS", "Callback", "CallbackLike", "TrainingControl", "TrainingEvent", "dispatch"]

#: Kinds of event, in the order a run emits them. A run emits exactly one of "end", "stop" or
#: "fail" last: "end" when all epochs ran or the stopping rule found the run converged (n_epochs
#: is then an upper bound), "stop" when a callback or KeyboardInterrupt ended it early, "fail"
#: when training diverged (a NaN or exploding loss, collapsed abundances).
EVENT_KINDS = ("start", "epoch", "end", "stop", "fail")


class TrainingControl:
    """Shared between a trainer and its callbacks; lets any of them ask the run to stop."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.reason = ""

    def request_stop(self, reason: str = "stop requested") -> None:
        if not self._stop.is_set():
            self.reason = reason
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()


@dataclass(frozen=True)
class TrainingEvent:
    """One message from the training loop to its callbacks.

    ``kind`` is "start", "epoch", or one final "end", "stop" or "fail"; the fields below carry the
    epoch's losses, learning rate and metrics, and ``control`` lets a callback stop the run.
    """

    kind: str
    epoch: int  # epochs completed so far (0 at "start")
    n_epochs: int  # epochs planned
    elapsed: float  # seconds since the run started
    losses: dict = field(default_factory=dict)  # name -> float, e.g. total, reconstruction, bundle
    learning_rate: float | None = None
    # e.g. {"rmse": 0.04} when truth is known; {"change": 0.003} at each stopping-rule check: the
    # RMS change of the probe pixels' abundances since the previous check, to compare with
    # info["stopping"]["tol"] (the run converges after info["stopping"]["patience"] checks below
    # it); the final event repeats the last "change"
    metrics: dict = field(default_factory=dict)
    message: str = ""  # why a run stopped or failed
    control: TrainingControl | None = field(default=None, repr=False, compare=False)
    # run description at "start" (method, sizes, device; "stopping": tol, check_every, patience,
    # min_epochs, average, precision; tol None: no stopping rule, n_epochs epochs will run); the
    # trainer's final event gives {"stop": "converged" | "bound" | "requested" | ...}
    info: dict = field(default_factory=dict)
    # the run's per-epoch columns, shared by the trainer with every callback (None: not recorded)
    history: TrainingHistory | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}; expected one of {EVENT_KINDS}")

    @property
    def is_final(self) -> bool:
        return self.kind in ("end", "stop", "fail")


class Callback(Protocol):
    def on_event(self, event: TrainingEvent) -> None: ...


CallbackLike = Callback | Callable[[TrainingEvent], None]


def dispatch(callbacks: Iterable[CallbackLike], event: TrainingEvent) -> None:
    """Send ``event`` to every callback: objects with ``on_event`` or plain callables."""
    for cb in callbacks:
        handler = getattr(cb, "on_event", None)
        (handler if handler is not None else cb)(event)
