"""Console progress for training: the fallback of the dashboard outside a notebook.

Needs only tqdm (a core dependency), never the widget extra.
"""

from __future__ import annotations

import sys
from typing import Any

from ..engine.events import TrainingEvent
from ._data import format_duration


def _short(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


class ConsoleProgress:
    """A tqdm bar over epochs with the latest losses and metrics; says how a run ended.

    Use it as a training callback: ``EGUNet(...).fit(cube, callbacks=[ConsoleProgress()])``.
    Redraws are throttled by tqdm (``mininterval`` seconds).
    """

    def __init__(self, *, file=None, mininterval: float = 0.2, desc: str | None = None, leave: bool = True):
        self.file = file
        self.mininterval = mininterval
        self.desc = desc
        self.leave = leave
        self.bar = None
        self.last_event: TrainingEvent | None = None

    def _open(self, event: TrainingEvent) -> None:
        from tqdm import tqdm

        desc = self.desc or str(event.info.get("method") or "training")
        self.bar = tqdm(
            total=max(int(event.n_epochs), 0),
            desc=desc,
            unit="epoch",
            file=self.file if self.file is not None else sys.stderr,
            mininterval=self.mininterval,
            leave=self.leave,
            dynamic_ncols=True,
        )

    def on_event(self, event: TrainingEvent) -> None:
        self.last_event = event
        if self.bar is None or event.kind == "start":
            if self.bar is not None:
                self.bar.close()
            self._open(event)
        bar = self.bar
        if event.epoch > bar.n:
            postfix = {k: _short(v) for k, v in event.losses.items()}
            postfix.update({k: _short(v) for k, v in event.metrics.items()})
            if event.learning_rate is not None:
                postfix["lr"] = f"{event.learning_rate:.2g}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(event.epoch - bar.n)
        if event.is_final:
            where = f"epoch {event.epoch} of {event.n_epochs}, {format_duration(event.elapsed)}"
            if event.kind == "stop":
                bar.set_description(f"{bar.desc} (stopped)", refresh=False)
                bar.colour = "yellow"
            elif event.kind == "fail":
                bar.set_description(f"{bar.desc} (failed)", refresh=False)
                bar.colour = "red"
            bar.refresh()
            bar.close()
            if event.kind == "stop":
                bar.write(f"training stopped at {where}: {event.message or 'stop requested'}", file=bar.fp)
            elif event.kind == "fail":
                bar.write(f"training FAILED at {where}: {event.message or 'unknown error'}", file=bar.fp)
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
