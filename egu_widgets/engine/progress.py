"""Console progress for training runs: a tqdm bar fed by training events.

This is an ordinary callback; the trainer does not know it exists. It is what ``EGUNet.fit`` and
``run_egu`` use when no callbacks are given and ``progress=True``. Notebook displays live in
:mod:`egu_widgets.widgets`; nothing here imports IPython or widget libraries.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .events import TrainingEvent

__all__ = ["ConsoleProgress"]


class ConsoleProgress:
    """One tqdm bar per run: epochs done, the total loss, the learning rate and RMSE if known.

    tqdm itself throttles redraws (``mininterval``, seconds), so a fast run does not spend its time
    printing. A stopped run leaves its bar with the reason; a failed one turns it red.
    """

    def __init__(self, file: TextIO | None = None, mininterval: float = 0.2, leave: bool = True):
        self.file = file
        self.mininterval = mininterval
        self.leave = leave
        self._bar = None

    def on_event(self, event: TrainingEvent) -> None:
        from tqdm import tqdm

        if event.kind == "start":
            name = event.info.get("method", "training")
            self._bar = tqdm(
                total=event.n_epochs,
                desc=name,
                unit="epoch",
                file=self.file or sys.stderr,
                mininterval=self.mininterval,
                leave=self.leave,
                dynamic_ncols=True,
            )
            return
        bar = self._bar
        if bar is None:
            return
        if event.kind == "epoch":
            post = {"loss": f"{event.losses.get('total', float('nan')):.4g}"}
            if event.learning_rate is not None:
                post["lr"] = f"{event.learning_rate:.2g}"
            if "rmse" in event.metrics:
                post["rmse"] = f"{event.metrics['rmse']:.4f}"
            bar.set_postfix(post, refresh=False)
            if bar.total is not None and event.epoch >= bar.total:
                bar.n = event.epoch  # the last epoch: drawn once, by close() below
            else:
                bar.update(event.epoch - bar.n)
            return
        # Final events. close() draws the bar's last state once (a refresh before it would draw
        # the same line a second time, and the last epoch's update a third).
        if event.kind == "fail":
            bar.colour = "red"
            bar.set_description(f"{bar.desc} failed", refresh=False)
        elif event.kind == "stop":
            bar.set_description(f"{bar.desc} stopped", refresh=False)
        bar.close()
        if event.message and event.kind != "end":
            print(f"{event.kind}: {event.message}", file=self.file or sys.stderr)
        self._bar = None
