"""A small but real training loop for driving the views before (or without) the EGU-Net engine.

Multiplicative-update NMF (Lee & Seung) with a damping exponent that plays the part of a learning
rate. It emits the engine's own :class:`~egu_widgets.engine.events.TrainingEvent` objects with a
:class:`~egu_widgets.engine.events.TrainingControl`, honours stop requests between epochs, can be
told to fail, and returns an :class:`~egu_widgets.results.UnmixingResult` (partial when stopped).
Used by tests/test_widgets.py, the browser notebook and benchmarks/bench_dashboard.py.
"""

from __future__ import annotations

import time

import numpy as np

from egu_widgets.engine.events import TrainingControl, TrainingEvent, dispatch
from egu_widgets.errors import TrainingError
from egu_widgets.results import UnmixingResult


def nmf_fit(
    cube,
    n_endmembers: int | None = None,
    *,
    n_epochs: int = 100,
    delay: float = 0.0,
    fail_at: int | None = None,
    callbacks=(),
    learning_rate: float = 1.0,
    seed: int = 0,
):
    """Unmix ``cube`` by NMF for ``n_epochs`` epochs; sleep ``delay`` s per epoch; fail at ``fail_at``."""
    control = TrainingControl()
    callbacks = list(callbacks)
    X = cube.pixels.astype(np.float64)
    n_em = int(n_endmembers or cube.n_true_endmembers)
    rng = np.random.default_rng(seed)
    E = X[rng.choice(X.shape[0], n_em, replace=False)].copy() + 1e-3
    A = np.full((X.shape[0], n_em), 1.0 / n_em)
    true_ab = cube.true_abundance_pixels
    true_em = cube.true_endmembers
    started = time.perf_counter()
    history: dict[str, list[float]] = {"loss_total": [], "loss_reconstruction": [], "loss_sum_to_one": []}
    info = {"method": "nmf-demo", "pixels": int(X.shape[0]), "bands": int(X.shape[1]), "device": "cpu"}

    def emit(kind, epoch, **fields):
        dispatch(
            callbacks, TrainingEvent(kind, epoch, n_epochs, time.perf_counter() - started, control=control, **fields)
        )

    emit("start", 0, info=info)
    epoch, final_kind, message = 0, "end", ""
    try:
        for epoch in range(1, n_epochs + 1):
            if control.stop_requested:
                epoch -= 1
                final_kind, message = "stop", control.reason
                break
            lr = learning_rate * (0.5 + 0.5 * np.cos(np.pi * (epoch - 1) / max(n_epochs, 1)))
            step = 0.3 + 0.7 * lr / max(learning_rate, 1e-12)
            A *= ((X @ E.T) / (A @ (E @ E.T) + 1e-12)) ** step
            E *= ((A.T @ X) / ((A.T @ A) @ E + 1e-12)) ** step
            rec = A @ E
            loss_rec = float(np.mean((X - rec) ** 2))
            loss_sto = float(np.mean((A.sum(axis=1) - 1.0) ** 2))
            if fail_at is not None and epoch >= fail_at:
                loss_rec = float("nan")
            if not np.isfinite(loss_rec):
                final_kind, message = "fail", f"the loss became NaN at epoch {epoch}"
                break
            metrics = {}
            if true_ab is not None and true_em is not None:
                from egu_widgets.metrics import align

                perm = align(est_endmembers=E, true_endmembers=true_em)
                ab = A[:, perm] / np.maximum(A[:, perm].sum(axis=1, keepdims=True), 1e-12)
                metrics["rmse"] = float(np.sqrt(np.mean((ab - true_ab) ** 2)))
            losses = {"total": loss_rec + 0.1 * loss_sto, "reconstruction": loss_rec, "sum_to_one": loss_sto}
            for k, v in losses.items():
                history[f"loss_{k}"].append(v)
            emit("epoch", epoch, losses=losses, learning_rate=float(lr), metrics=metrics)
            if delay:
                time.sleep(delay)
    except KeyboardInterrupt:
        final_kind, message = "stop", "KeyboardInterrupt"
    emit(final_kind, epoch, message=message)
    if final_kind == "fail":
        raise TrainingError(message)
    ab = A / np.maximum(A.sum(axis=1, keepdims=True), 1e-12)
    n_done = len(history["loss_total"])
    return UnmixingResult.from_arrays(
        cube,
        ab,
        E,
        method="nmf-demo",
        seconds=time.perf_counter() - started,
        history={k: v[:n_done] for k, v in history.items()},
        partial=final_kind == "stop",
        stop_reason=message,
    )
