"""Console progress for training runs: a tqdm bar fed by training events.

This is an ordinary callback; the trainer does not know it exists. It is what ``EGUNet.fit`` and
``run_egu`` use when no callbacks are given and ``progress=True``. Notebook displays live in
:mod:`egu_widgets.widgets`; nothing here imports IPython or widget libraries.

:class:`StoppingProgress` follows a run's stopping rule from the same events and says in words
how far it has got; the console bar and the notebook dashboard both show its text, so a run that
ends when it has converged is not drawn as a fixed bar of its upper bound.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from .events import TrainingEvent

__all__ = ["ConsoleProgress", "StoppingProgress"]


def _num(value: float) -> str:
    """A change or a tolerance in few characters: 0.0041, 0.005, 3.3e-05."""
    return f"{value:.2g}"


def _change(change: float, tol: float | None) -> str:
    """The change in few digits, but enough that it does not read as equal to ``tol``, or as on
    the wrong side of it (0.00498 is below tol 0.005; two digits would print 0.005)."""
    if tol is None or not math.isfinite(change):
        return _num(change)
    for digits in range(2, 7):
        text = f"{change:.{digits}g}"
        if (float(text) < tol) == (change < tol) and (float(text) != tol or change == tol):
            return text
    return text


class StoppingProgress:
    """What a run's stopping rule has seen so far, fed by the run's training events.

    The rule (``event.info["stopping"]`` at "start") checks every ``check_every`` epochs how much
    the abundances of a fixed pixel sample changed since the previous check
    (``event.metrics["change"]``) and ends the run after ``patience`` checks in a row below
    ``tol``, not before ``min_epochs``; ``n_epochs`` is then an upper bound. This object repeats
    that count from the events alone, so a display can say how close the run is to stopping.

    ``active`` is True when the rule can end the run before its bound: a positive ``tol``, and
    enough checks and epochs within the bound. Otherwise (no rule, ``tol=0``, a bound too short
    for the rule) every epoch will run and an ordinary epoch bar is exact.

    Examples
    --------
    >>> from egu_widgets.engine.events import TrainingEvent
    >>> rule = {"tol": 0.005, "check_every": 10, "patience": 3, "min_epochs": 60}
    >>> progress = StoppingProgress()
    >>> progress.on_event(TrainingEvent("start", 0, 200, 0.0, info={"stopping": rule}))
    >>> progress.on_event(TrainingEvent("epoch", 40, 200, 4.0, metrics={"change": 0.0041}))
    >>> progress.text()
    'converging: change 0.0041 (tol 0.005, 1/3 quiet checks) epoch 40 of at most 200'
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self, rule: dict | None = None, n_epochs: int = 0) -> None:
        """Forget the previous run; ``rule`` is the start event's ``info["stopping"]``."""
        rule = dict(rule or {})
        tol = rule.get("tol")
        self.tol: float | None = None if tol is None else float(tol)
        self.check_every = max(int(rule.get("check_every") or 1), 1)
        self.patience = max(int(rule.get("patience") or 1), 1)
        self.min_epochs = int(rule.get("min_epochs") or 0)
        self.n_epochs = int(n_epochs)
        self.epoch = 0
        self.change = math.nan  # the latest check's value (NaN before the second check)
        self.first_change = math.nan  # the first one: where the bar of fraction() starts
        self.quiet = 0  # checks in a row with change < tol, counted as the trainer counts them
        self.outcome = ""  # "", or at the end "converged", "bound", "stopped" or "failed"

    @property
    def active(self) -> bool:
        """Whether the rule can end this run before its bound (see the class notes)."""
        if self.tol is None or not self.tol > 0 or self.n_epochs < self.min_epochs:
            return False
        # checks at every multiple of check_every and at the bound; each after the first gives a change
        checks = self.n_epochs // self.check_every + (1 if self.n_epochs % self.check_every else 0)
        return checks - 1 >= self.patience

    def on_event(self, event: TrainingEvent) -> None:
        """Follow one event: "start" reads the rule, epochs with a change count quiet checks."""
        if event.kind == "start":
            self.reset(event.info.get("stopping"), event.n_epochs)
            return
        self.epoch = int(event.epoch)
        self.n_epochs = int(event.n_epochs)
        change = event.metrics.get("change")
        if event.kind == "epoch":
            if change is not None:
                self.change = float(change)
                if math.isnan(self.first_change):
                    self.first_change = self.change
                self.quiet = self.quiet + 1 if self.tol is not None and self.change < self.tol else 0
            return
        if change is not None and math.isnan(self.change):  # the final event repeats the last change
            self.change = float(change)
        if event.kind == "fail":
            self.outcome = "failed"
        elif event.kind == "stop":
            self.outcome = "stopped"
        else:  # "end": converged, or every epoch ran; the trainer says which when it can
            stop = event.info.get("stop")
            if stop is None:
                stop = "converged" if self.quiet >= self.patience and self.epoch >= self.min_epochs else "bound"
            self.outcome = "converged" if stop == "converged" else "bound"

    def _figures(self) -> str:
        """``change 0.0041, tol 0.005`` (or just the tolerance before any change)."""
        tol = f"tol {_num(self.tol)}" if self.tol is not None else "no tol"
        return f"change {_change(self.change, self.tol)}, {tol}" if math.isfinite(self.change) else tol

    def text(self) -> str:
        """One line on the rule's progress, or on how the run ended.

        Running: ``converging: change 0.0041 (tol 0.005, 1/3 quiet checks) epoch 37 of at most 200``;
        ended: ``converged at epoch 52 (change 0.0033, tol 0.005)``, ``reached the bound of 200
        epochs (…)``, ``stopped at epoch 37 (…)`` or ``failed at epoch 37 (…)``.
        """
        if self.outcome == "converged":
            return f"converged at epoch {self.epoch} ({self._figures()})"
        if self.outcome == "bound":
            return f"reached the bound of {self.n_epochs} epochs ({self._figures()})"
        if self.outcome in ("stopped", "failed"):
            return f"{self.outcome} at epoch {self.epoch} ({self._figures()})"
        where = f"epoch {self.epoch} of at most {self.n_epochs}"
        tol = f"tol {_num(self.tol)}" if self.tol is not None else "no tol"
        if not math.isfinite(self.change):
            first = 2 * self.check_every
            return f"converging: first change at epoch {first} ({tol}, a check every {self.check_every}) {where}"
        quiet = f"{min(self.quiet, self.patience)}/{self.patience} quiet checks"
        if self.quiet >= self.patience and self.epoch < self.min_epochs:
            quiet += f", waiting for epoch {self.min_epochs}"
        return f"converging: change {_change(self.change, self.tol)} ({tol}, {quiet}) {where}"

    def fraction(self) -> float:
        """How far the change has come from its first value down to ``tol``, on a log scale (0-1).

        0 before the second check; 1 once the change is below ``tol`` and when the run converged.
        It can fall again: the change is not monotone.
        """
        if self.outcome == "converged":
            return 1.0
        change, first, tol = self.change, self.first_change, self.tol
        if tol is None or not tol > 0 or not math.isfinite(change) or not math.isfinite(first):
            return 0.0
        if change < tol:
            return 1.0
        if first <= tol or change <= 0:
            return 0.0
        return min(max(math.log(first / change) / math.log(first / tol), 0.0), 1.0)


class ConsoleProgress:
    """One tqdm bar per run: epochs done, the total loss, the learning rate and RMSE if known.

    A run whose stopping rule can end it early (:attr:`StoppingProgress.active`) gets no epoch
    bar over its upper bound: the line says how the rule stands instead, e.g. ``egu-pw
    converging: change 0.0041 (tol 0.005, 1/3 quiet checks) epoch 37 of at most 200``, and ends with
    ``converged at epoch 52 (…)`` or ``reached the bound of 200 epochs (…)``.

    tqdm itself throttles redraws (``mininterval``, seconds), so a fast run does not spend its time
    printing. A stopped run leaves its bar with the reason; a failed one turns it red.
    """

    def __init__(self, file: TextIO | None = None, mininterval: float = 0.2, leave: bool = True):
        self.file = file
        self.mininterval = mininterval
        self.leave = leave
        self._bar = None
        self._name = "training"
        self.stopping = StoppingProgress()

    def _converging(self) -> bool:
        return self._bar is not None and self._bar.total is None

    def on_event(self, event: TrainingEvent) -> None:
        from tqdm import tqdm

        self.stopping.on_event(event)
        if event.kind == "start":
            self._name = name = event.info.get("method", "training")
            options = dict(
                unit="epoch",
                file=self.file or sys.stderr,
                mininterval=self.mininterval,
                leave=self.leave,
                dynamic_ncols=True,
            )
            if self.stopping.active:  # no bar: the run ends when the rule says so
                self._bar = tqdm(
                    total=None,
                    desc=f"{name} {self.stopping.text()}",
                    bar_format="{desc} [{elapsed}{postfix}]",
                    **options,
                )
            else:
                self._bar = tqdm(total=event.n_epochs, desc=name, **options)
            return
        bar = self._bar
        if bar is None:
            return
        converging = self._converging()
        if event.kind == "epoch":
            post = {"loss": f"{event.losses.get('total', float('nan')):.4g}"}
            if event.learning_rate is not None:
                post["lr"] = f"{event.learning_rate:.2g}"
            if "rmse" in event.metrics:
                post["rmse"] = f"{event.metrics['rmse']:.4f}"
            bar.set_postfix(post, refresh=False)
            if converging:
                bar.set_description_str(f"{self._name} {self.stopping.text()}", refresh=False)
            if bar.total is not None and event.epoch >= bar.total:
                bar.n = event.epoch  # the last epoch: drawn once, by close() below
            else:
                bar.update(event.epoch - bar.n)
            return
        # Final events. close() draws the bar's last state once (a refresh before it would draw
        # the same line a second time, and the last epoch's update a third).
        if event.kind == "fail":
            bar.colour = "red"
        if converging:
            bar.n = max(bar.n, event.epoch)
            bar.set_description_str(f"{self._name} {self.stopping.text()}", refresh=False)
        elif event.kind == "fail":
            bar.set_description(f"{bar.desc} failed", refresh=False)
        elif event.kind == "stop":
            bar.set_description(f"{bar.desc} stopped", refresh=False)
        bar.close()
        if event.message and event.kind != "end":
            print(f"{event.kind}: {event.message}", file=self.file or sys.stderr)
        self._bar = None
