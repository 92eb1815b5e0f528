"""The training loop: objectives for each variant, and a loop that only talks through events.

The loop knows nothing about displays. It sends :class:`~egu_widgets.engine.events.TrainingEvent`
objects to callbacks ("start", one "epoch" per completed epoch, then exactly one of "end",
"stop" or "fail") and reads one thing back: ``control.stop_requested``, checked between steps.

Outcomes, all returned rather than raised so that the caller always gets a usable model:

- all epochs ran → "end";
- a callback asked to stop, or a KeyboardInterrupt arrived (also from inside a callback) → "stop",
  ``partial=True``; on a stop request the model is the one after the last finished step, on an
  interrupt the one at the end of the last finished epoch (an interrupt can land half-way through
  an optimiser update);
- the loss became NaN or infinite → "fail", ``partial=True``, the model restored to the last
  state whose loss was finite (on the CPU: the weights before the step that diverged; on a GPU,
  where checking every step would cost a device sync, the end of the last finished epoch), and
  ``stop_reason`` says what happened and what to try.

Any other exception (a bug, out of memory) sends "fail" and is re-raised.

Speed matters on CPU (the paper's scene is 1 000 steps over 16 000 spectra of 224 bands): the
data live on the device as float32 tensors once, batches are index selections, losses are summed
on the device and read back once per epoch, and nothing runs per sample in Python.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .events import CallbackLike, TrainingControl, TrainingEvent, dispatch
from .history import TrainingHistory
from .networks import InputMoments, _EGUBase

__all__ = ["PixelObjective", "ImageObjective", "TrainOutcome", "train", "Adam", "LOSS_NAMES"]

#: Loss components every objective reports, in this order ("total" is what is minimised).
LOSS_NAMES = ("total", "reconstruction", "bundle", "weight_decay")


class _Objective:
    """Shared part of the objectives: the bundle (endmember stream) and weight-decay terms."""

    def __init__(self, model: _EGUBase, bundles: torch.Tensor | None, labels: torch.Tensor | None, *,
                 bundle_weight: float, reconstruction_weight: float, weight_decay: float):
        self.model = model
        self.bundles = bundles
        self.labels = labels
        # The bundle set is the same batch at every step: its moments are computed once.
        self.bundle_moments = InputMoments(bundles) if bundles is not None else None
        self.bundle_weight = float(bundle_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.weight_decay = float(weight_decay)

    def _combine(self, reconstruction: torch.Tensor) -> torch.Tensor:
        """Stack (total, reconstruction, bundle, weight decay) into one (4,) tensor."""
        zero = reconstruction.new_zeros(())
        if self.bundles is not None and self.bundle_weight != 0.0:
            # Soft-label cross-entropy: mean over bundles of −Σ_p y_p log softmax(z)_p.
            bundle = F.cross_entropy(self.model.bundle_logits(self.bundles, self.bundle_moments), self.labels)
        else:
            bundle = zero
        decay = self.weight_decay * self.model.weight_penalty() if self.weight_decay else zero
        total = self.bundle_weight * bundle + self.reconstruction_weight * reconstruction + decay
        return torch.stack([total, reconstruction, bundle, decay])


class PixelObjective(_Objective):
    """pw and ae: shuffled pixel mini-batches, and the whole bundle set at every step.

    The authors split each epoch into ⌊N / 8000⌋ mini-batches of 8 000 pixels and drop the rest;
    here the N valid pixels are split into max(1, round(N / batch_size)) near-equal batches, so
    every pixel is used every epoch and images smaller than one batch still train.
    """

    def __init__(self, model, pixels: torch.Tensor, bundles=None, labels=None, *, batch_size: int,
                 generator: torch.Generator, **weights):
        super().__init__(model, bundles, labels, **weights)
        self.pixels = pixels
        self.generator = generator
        n = pixels.shape[0]
        self.steps_per_epoch = max(1, int(round(n / max(int(batch_size), 1))))
        self._batches: tuple[torch.Tensor, ...] = ()

    def begin_epoch(self) -> int:
        if self.steps_per_epoch > 1:
            perm = torch.randperm(self.pixels.shape[0], generator=self.generator, device=self.pixels.device)
            self._batches = perm.tensor_split(self.steps_per_epoch)
        return self.steps_per_epoch

    def losses(self, step: int) -> torch.Tensor:
        # One batch = all pixels: no shuffling or copying needed (batch norm and the mean loss do
        # not depend on the order).
        x = self.pixels if self.steps_per_epoch == 1 else self.pixels.index_select(0, self._batches[step])
        _, reconstruction = self.model(x)
        return self._combine(F.mse_loss(reconstruction, x))


class ImageObjective(_Objective):
    """ss: the whole image through the convolutional stream at every step, as the authors do.

    ``steps_per_epoch`` keeps the authors' schedule: their epoch is ⌊N / 8000⌋ steps (each on the
    whole image), and the learning rate decays per step.
    """

    def __init__(self, model, image: torch.Tensor, bundles=None, labels=None, *, valid: torch.Tensor | None = None,
                 steps_per_epoch: int = 1, **weights):
        super().__init__(model, bundles, labels, **weights)
        self.image = image  # (1, B, H, W)
        self.valid = valid  # (1, 1, H, W) float mask, or None when every pixel is valid
        self.steps_per_epoch = max(1, int(steps_per_epoch))

    def begin_epoch(self) -> int:
        return self.steps_per_epoch

    def losses(self, step: int) -> torch.Tensor:
        _, reconstruction = self.model.image_stream(self.image)
        err = (reconstruction - self.image).pow(2)
        if self.valid is None:
            rec = err.mean()
        else:
            rec = (err * self.valid).sum() / (self.valid.sum() * self.image.shape[1])
        return self._combine(rec)


class Adam:
    """Adam (Kingma & Ba, 2015) with PyTorch's default constants, on a list of tensors.

    The arithmetic of ``torch.optim.Adam(params, lr, foreach=True)`` without weight decay (the
    weight penalty is part of the loss here), written out because constructing a
    ``torch.optim`` optimiser imports ``torch._dynamo``, which costs seconds in every new process
    (docs/engine.md, "Optimiser").
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr = float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        self.step_count += 1
        params = [self.params[i] for i in live]
        grads = [self.params[i].grad for i in live]
        exp_avg = [self.exp_avg[i] for i in live]
        exp_avg_sq = [self.exp_avg_sq[i] for i in live]
        torch._foreach_lerp_(exp_avg, grads, 1.0 - self.beta1)
        torch._foreach_mul_(exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1.0 - self.beta2)
        correction1 = 1.0 - self.beta1**self.step_count
        correction2 = 1.0 - self.beta2**self.step_count
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(correction2))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, -self.lr / correction1)


@dataclass
class TrainOutcome:
    epochs_done: int
    steps_done: int
    history: dict = field(default_factory=dict)
    partial: bool = False
    stop_reason: str = ""
    failed: bool = False
    seconds: float = 0.0


@torch.no_grad()
def _copy_into(dst: list, src: list) -> None:
    for d, s in zip(dst, src):
        d.copy_(s)


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train(
    model: _EGUBase,
    objective,
    *,
    epochs: int,
    lr: float,
    lr_decay: float,
    callbacks: Sequence[CallbackLike] = (),
    control: TrainingControl | None = None,
    evaluate: Callable[[], dict] | None = None,
    eval_every: int = 1,
    info: dict | None = None,
    generator: torch.Generator | None = None,
    rng: np.random.Generator | None = None,
) -> TrainOutcome:
    """Run ``epochs`` epochs of Adam on ``objective``; see the module doc for the outcomes.

    The learning rate is ``lr · lr_decay^step`` (the authors' exponential decay, one factor per
    step). ``evaluate()`` (called every ``eval_every`` epochs and after the last) returns metrics
    such as ``{"rmse": ...}`` for the epoch events; it must leave the model in training mode.
    """
    control = control or TrainingControl()
    callbacks = list(callbacks)
    model.train()
    model.set_generator(generator, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device
    optimizer = Adam(params, lr=lr)
    # filled from the run's own events; callbacks get the same recorder as ``event.history``
    history = TrainingHistory(loss_names=LOSS_NAMES)
    start = time.perf_counter()
    # On the CPU a per-step finiteness check costs nothing; on a GPU it would force a sync per
    # step, so there the check happens once per epoch on the summed losses.
    check_each_step = device.type == "cpu"
    good_state = _snapshot(model)
    # Weights and buffers before the latest optimiser step, kept only where the loss is checked
    # every step: the newest state known to give a finite loss. Preallocated, refreshed in place.
    tracked = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    backup = [t.detach().clone() for t in tracked] if check_each_step else None
    epoch = step = 0
    final_kind, reason, partial, failed = "end", "", False, False
    current_lr = lr

    def emit(kind: str, **kw) -> None:
        event = TrainingEvent(kind=kind, epoch=epoch, n_epochs=epochs, elapsed=time.perf_counter() - start,
                              control=control, history=history, **kw)
        history.on_event(event)
        dispatch(callbacks, event)

    try:
        emit("start", info=dict(info or {}), learning_rate=lr)
        while epoch < epochs and not control.stop_requested:
            n_steps = objective.begin_epoch()
            sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float64, device=device)
            done_in_epoch = 0
            bad = False
            for i in range(n_steps):
                current_lr = lr * lr_decay**step
                optimizer.lr = current_lr
                losses = objective.losses(i)
                if check_each_step and not bool(torch.isfinite(losses[0])):
                    bad = True
                    break
                optimizer.zero_grad()
                losses[0].backward()
                if backup is not None:
                    _copy_into(backup, tracked)
                optimizer.step()
                sums += losses.detach().double()
                step += 1
                done_in_epoch += 1
                if control.stop_requested:
                    break
            if not bad and not torch.isfinite(sums).all():
                bad = True
            if bad:
                if backup is not None:
                    _copy_into(tracked, backup)
                    kept = "the weights from before the step that diverged were kept"
                else:
                    model.load_state_dict(good_state)
                    kept = f"the model from the end of epoch {epoch} was kept"
                failed, partial, final_kind = True, True, "fail"
                reason = (f"the loss became NaN or infinite in epoch {epoch + 1} (step {step + 1}); {kept}. "
                          f"Lower the learning rate (lr={lr:g}) or check the input for extreme values")
                break
            if done_in_epoch < n_steps:  # stopped mid-epoch: that epoch is not counted
                break
            epoch += 1
            good_state = _snapshot(model)
            means = (sums / max(done_in_epoch, 1)).tolist()
            loss_dict = dict(zip(LOSS_NAMES, means))
            metrics: dict = {}
            if evaluate is not None and (epoch % max(int(eval_every), 1) == 0 or epoch == epochs):
                metrics = {k: float(v) for k, v in evaluate().items()}
            emit("epoch", losses=loss_dict, learning_rate=current_lr, metrics=metrics)
        if final_kind == "end" and (epoch < epochs or control.stop_requested):
            final_kind, partial = "stop", True
            reason = control.reason or "stop requested"
            if epoch == epochs:  # the request came after the last epoch: nothing was cut short
                final_kind, partial, reason = "end", False, ""
    except KeyboardInterrupt:
        model.load_state_dict(good_state)
        final_kind, partial = "stop", True
        reason = f"interrupted (KeyboardInterrupt) after {epoch} of {epochs} epochs"
    except BaseException as exc:
        model.load_state_dict(good_state)
        emit("fail", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        model.set_generator(None, None)
    seconds = time.perf_counter() - start
    emit(final_kind, message=reason)
    return TrainOutcome(epochs_done=epoch, steps_done=step, history=history.as_dict(), partial=partial,
                        stop_reason=reason, failed=failed, seconds=seconds)
