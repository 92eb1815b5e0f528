"""The per-epoch training history: one recorder that the trainer fills and every view reads.

A :class:`TrainingHistory` receives training events, as livelossplot's logger does, and keeps one
row per recorded epoch: the epoch number, each loss term, the learning rate and each metric. The
trainer builds ``TrainOutcome.history`` from it and sends it along with its events
(``event.history``), so a display reads the same columns instead of keeping a copy of its own.
Nothing here imports torch or a widget library.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .events import TrainingEvent

__all__ = ["TrainingHistory"]

_LR = "lr"


class TrainingHistory:
    """Per-epoch columns of one training run, filled from its events.

    Every "epoch" event that carries losses, metrics or a learning rate adds a row; "start"
    empties the record. A term first seen at a later epoch gets NaN in the rows before, a term
    missing from a row gets NaN in that row, so every column has one value per recorded epoch
    (metrics evaluated every few epochs are NaN in between).

    Columns are named by kind: ``"loss:<name>"``, ``"metric:<name>"`` and ``"lr"``, in the order
    they were first seen; :meth:`table` adds ``"epoch"``. :meth:`as_dict` gives the form results
    store (``loss_<name>``, ``learning_rate``, then the metrics by name).

    It is safe to record from the training thread while a view reads from another one.

    Parameters
    ----------
    loss_names
        Loss terms that have a column from the start (empty until the first epoch), so that a run
        stopped before its first epoch still reports which terms it would have recorded.

    Examples
    --------
    >>> history = TrainingHistory()
    >>> history.record(1, losses={"total": 0.5}, learning_rate=1e-3)
    >>> history.record(2, losses={"total": 0.25}, learning_rate=1e-3, metrics={"rmse": 0.1})
    >>> history.as_dict()["rmse"]
    [nan, 0.1]
    """

    def __init__(self, loss_names: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._loss_names = tuple(str(name) for name in loss_names)
        self._epochs: list[float] = []
        self._columns: dict[str, list[float]] = {}
        self.clear()

    def clear(self) -> None:
        """Forget every row (a new run starts); declared loss columns stay, empty."""
        with self._lock:
            self._epochs = []
            self._columns = {f"loss:{name}": [] for name in self._loss_names}

    # ------------------------------------------------------------------ recording
    def on_event(self, event: TrainingEvent) -> None:
        """Training callback: "start" clears the record, an epoch with values adds a row."""
        if event.kind == "start":
            self.clear()
        elif event.kind == "epoch" and (event.losses or event.metrics or event.learning_rate is not None):
            self.record(event.epoch, event.losses, event.learning_rate, event.metrics)

    def record(
        self,
        epoch: float,
        losses: Mapping[str, Any] | None = None,
        learning_rate: float | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """Add the row of one epoch; values that are not numbers are recorded as NaN."""
        row = {f"loss:{k}": v for k, v in (losses or {}).items()}
        row.update({f"metric:{k}": v for k, v in (metrics or {}).items()})
        if learning_rate is not None:
            row[_LR] = learning_rate
        with self._lock:
            n = len(self._epochs)
            for key in row:
                if key not in self._columns:
                    self._columns[key] = [math.nan] * n
            self._epochs.append(float(epoch))
            for key, column in self._columns.items():
                column.append(_as_float(row.get(key, math.nan)))

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._epochs)

    @property
    def columns(self) -> tuple[str, ...]:
        """The recorded columns (``"loss:…"``, ``"metric:…"``, ``"lr"``), first seen first."""
        with self._lock:
            return tuple(self._columns)

    def table(self, start: int = 0) -> dict[str, np.ndarray]:
        """The rows from ``start`` on as float64 arrays: ``"epoch"`` then every column.

        Read in one step, so the columns have equal lengths even while training appends rows.
        """
        with self._lock:
            out = {"epoch": np.asarray(self._epochs[start:], dtype=np.float64)}
            out.update({k: np.asarray(v[start:], dtype=np.float64) for k, v in self._columns.items()})
        return out

    def as_dict(self) -> dict[str, list[float]]:
        """The history as results store it: ``loss_<name>`` columns, ``learning_rate``, metrics.

        ``learning_rate`` is always present (NaN where no rate was reported); lists are copies.
        """
        with self._lock:
            n = len(self._epochs)
            out = {f"loss_{k[5:]}": list(v) for k, v in self._columns.items() if k.startswith("loss:")}
            out["learning_rate"] = list(self._columns[_LR]) if _LR in self._columns else [math.nan] * n
            out.update({k[7:]: list(v) for k, v in self._columns.items() if k.startswith("metric:")})
        return out

    def __repr__(self) -> str:
        return f"<TrainingHistory: {len(self)} epochs, columns {list(self.columns)}>"


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
