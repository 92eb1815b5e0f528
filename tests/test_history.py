"""The training-history recorder: rows from events, NaN for missing terms, and the form results store."""

from __future__ import annotations

import math
import threading

import numpy as np

from egu_widgets.engine.events import TrainingEvent
from egu_widgets.engine.history import TrainingHistory


def test_rows_from_events_with_late_and_missing_terms():
    history = TrainingHistory()
    history.on_event(TrainingEvent("start", 0, 3, 0.0))
    history.on_event(TrainingEvent("epoch", 1, 3, 0.1, losses={"total": 1.0}, learning_rate=1e-3))
    history.on_event(TrainingEvent("epoch", 2, 3, 0.2, losses={"total": 0.5, "bundle": 0.2}, metrics={"rmse": 0.3}))
    history.on_event(TrainingEvent("epoch", 3, 3, 0.3))  # nothing to record: no row
    history.on_event(TrainingEvent("end", 3, 3, 0.3))
    assert len(history) == 2
    assert history.columns == ("loss:total", "lr", "loss:bundle", "metric:rmse")
    table = history.table()
    np.testing.assert_array_equal(table["epoch"], [1, 2])
    np.testing.assert_array_equal(table["loss:total"], [1.0, 0.5])
    np.testing.assert_array_equal(table["loss:bundle"], [np.nan, 0.2])
    np.testing.assert_array_equal(table["lr"], [1e-3, np.nan])
    np.testing.assert_array_equal(table["metric:rmse"], [np.nan, 0.3])
    np.testing.assert_array_equal(history.table(start=1)["loss:total"], [0.5])
    stored = history.as_dict()
    assert list(stored) == ["loss_total", "loss_bundle", "learning_rate", "rmse"]
    assert stored["loss_bundle"][1] == 0.2 and math.isnan(stored["loss_bundle"][0])


def test_declared_losses_exist_before_any_epoch_and_start_clears():
    history = TrainingHistory(loss_names=("total", "reconstruction"))
    assert history.as_dict() == {"loss_total": [], "loss_reconstruction": [], "learning_rate": []}
    history.record(1, losses={"total": "not a number"}, learning_rate=0.1)
    assert math.isnan(history.as_dict()["loss_total"][0]) and math.isnan(history.as_dict()["loss_reconstruction"][0])
    history.on_event(TrainingEvent("start", 0, 1, 0.0))
    assert len(history) == 0 and history.columns == ("loss:total", "loss:reconstruction")


def test_reading_while_another_thread_records_gives_equal_lengths():
    history = TrainingHistory()
    done = threading.Event()

    def train():
        for k in range(1, 3001):
            history.record(k, losses={"total": 1.0 / k}, metrics={"rmse": 0.1} if k % 7 == 0 else {})
        done.set()

    thread = threading.Thread(target=train)
    thread.start()
    while not done.is_set():
        table = history.table()
        assert len({len(v) for v in table.values()}) == 1
    thread.join()
    assert len(history.table()["metric:rmse"]) == 3000


def test_the_trainer_shares_its_recorder_with_callbacks():
    import torch

    from egu_widgets.engine import trainer

    seen = []

    class Objective:
        steps_per_epoch = 1

        def __init__(self, model):
            self.model = model

        def begin_epoch(self):
            return 1

        def losses(self, step):
            loss = (self.model.weight**2).sum()
            return torch.stack([loss, loss, loss.new_zeros(()), loss.new_zeros(())])

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(3))

        def set_generator(self, *args, **kwargs):  # the trainer seeds dropout through it
            pass

    model = Model()
    outcome = trainer.train(
        model,
        Objective(model),
        epochs=3,
        lr=0.1,
        lr_decay=1.0,
        callbacks=[seen.append],
        evaluate=lambda: {"rmse": 0.5},
        eval_every=2,
    )
    recorders = {id(e.history) for e in seen}
    assert len(recorders) == 1 and seen[0].history is not None
    assert outcome.history == seen[-1].history.as_dict()
    assert list(outcome.history) == [
        "loss_total",
        "loss_reconstruction",
        "loss_bundle",
        "loss_weight_decay",
        "learning_rate",
        "rmse",
    ]
    assert len(outcome.history["loss_total"]) == 3
    assert math.isnan(outcome.history["rmse"][0]) and outcome.history["rmse"][1:] == [0.5, 0.5]
