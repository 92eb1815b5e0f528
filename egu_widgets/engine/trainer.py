"""The training loop: objectives for each variant, and a loop that only talks through events.

The loop knows nothing about displays. It sends :class:`~egu_widgets.engine.events.TrainingEvent`
objects to callbacks ("start", one "epoch" per completed epoch, then exactly one of "end",
"stop" or "fail") and reads one thing back: ``control.stop_requested``, checked between steps.

Outcomes, all returned rather than raised so that the caller always gets a usable model:

- all epochs ran → "end";
- the stopping rule found the averaged model converged → "end", ``converged=True``, with the
  epoch and the criterion's last value in ``stop_reason``;
- a callback asked to stop, or a KeyboardInterrupt arrived (also from inside a callback) → "stop",
  ``partial=True``; on a stop request the model is the one after the last finished step, on an
  interrupt the one at the end of the last finished epoch (an interrupt can land half-way through
  an optimiser update);
- the run diverged → "fail", ``partial=True``, ``failed=True``, the model restored to the last
  good state, and ``stop_reason`` says what happened and what to try. Divergence is a loss that
  became NaN or infinite, a loss more than ``max_growth`` times its first value (an exploding
  run stays finite for a long time: lr=1e6 reaches 1e12), weights that are no longer finite, or
  abundances that collapsed to one constant map on the probe's pixels. The last good state is,
  on the CPU, the weights before the step whose loss was bad (on a GPU, where checking every step
  would cost a device sync, the end of the last finished epoch), and for a collapse the state at
  the last check that was not collapsed.

Stopping rule (``tol``): every ``check_every`` epochs ``probe()`` gives the abundances of a fixed
pixel sample under the (averaged) weights; ``change`` is the root-mean-square difference from the
previous check. After ``patience`` checks in a row with ``change < tol`` (and at least
``min_epochs`` epochs) the run ends as converged; ``epochs`` is then only an upper bound. Nothing
in the rule reads ground truth. Weight averaging (``average``): an exponential moving average of
the weights, updated after every step, is what the probe, the metrics and the returned model use,
which removes the step-to-step noise of Adam, dropout and batch statistics from the answer.

Any other exception (a bug, out of memory) sends "fail" and is re-raised.

Speed matters on CPU (the paper's scene is 1 000 steps over 16 000 spectra of 224 bands): the
data live on the device as float32 tensors once, batches are index selections, losses are summed
on the device and read back once per epoch, and nothing runs per sample in Python.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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

    def __init__(
        self,
        model: _EGUBase,
        bundles: torch.Tensor | None,
        labels: torch.Tensor | None,
        *,
        bundle_weight: float,
        reconstruction_weight: float,
        weight_decay: float,
        bundle_batch: int | None = None,
        bundle_generator: torch.Generator | None = None,
    ):
        self.model = model
        self.bundles = bundles
        self.labels = labels
        n_bundles = 0 if bundles is None else bundles.shape[0]
        # More bundles than one batch: a fresh random batch of them at every step, so that a
        # step costs the same on any image size. Otherwise the whole set at every step (the
        # authors' scheme), whose first-layer moments are then computed once.
        self.bundle_batch = int(bundle_batch) if bundle_batch is not None and n_bundles > bundle_batch else None
        if self.bundle_batch is not None and bundle_generator is None:
            raise ValueError("sampling bundle batches needs a generator")
        self.bundle_generator = bundle_generator
        self.bundle_moments = InputMoments(bundles) if bundles is not None and self.bundle_batch is None else None
        self.bundle_weight = float(bundle_weight)
        self.reconstruction_weight = float(reconstruction_weight)
        self.weight_decay = float(weight_decay)

    def _bundle_batch(self) -> tuple[torch.Tensor, torch.Tensor, InputMoments | None]:
        """The bundles (and labels) of this step, and their moments when they are the fixed set."""
        if self.bundle_batch is None:
            return self.bundles, self.labels, self.bundle_moments
        n = self.bundles.shape[0]
        idx = torch.randperm(n, generator=self.bundle_generator, device=self.bundle_generator.device)
        idx = idx[: self.bundle_batch].to(self.bundles.device)
        return self.bundles.index_select(0, idx), self.labels.index_select(0, idx), None

    def _combine(self, reconstruction: torch.Tensor) -> torch.Tensor:
        """Stack (total, reconstruction, bundle, weight decay) into one (4,) tensor."""
        zero = reconstruction.new_zeros(())
        if self.bundles is not None and self.bundle_weight != 0.0:
            # Soft-label cross-entropy: mean over bundles of −Σ_p y_p log softmax(z)_p.
            spectra, labels, moments = self._bundle_batch()
            bundle = F.cross_entropy(self.model.bundle_logits(spectra, moments), labels)
        else:
            bundle = zero
        decay = self.weight_decay * self.model.weight_penalty() if self.weight_decay else zero
        total = self.bundle_weight * bundle + self.reconstruction_weight * reconstruction + decay
        return torch.stack([total, reconstruction, bundle, decay])


class PixelObjective(_Objective):
    """pw and ae: shuffled pixel mini-batches, and the bundle set (or a batch of it) at every step.

    The authors split each epoch into ⌊N / 8000⌋ mini-batches of 8 000 pixels and drop the rest;
    here the N valid pixels are split into max(1, round(N / batch_size)) near-equal batches (at
    most N // 2, so that no batch holds a single pixel), so every pixel is used every epoch and
    images smaller than one batch still train.
    """

    def __init__(
        self,
        model,
        pixels: torch.Tensor,
        bundles=None,
        labels=None,
        *,
        batch_size: int,
        generator: torch.Generator,
        **weights,
    ):
        super().__init__(model, bundles, labels, **weights)
        self.pixels = pixels
        self.generator = generator
        n = pixels.shape[0]
        # Near-equal batches of at least two pixels (batch norm needs two): a split that would
        # leave a batch of one has one batch fewer, its pixels shared among the others.
        self.steps_per_epoch = max(1, min(int(round(n / max(int(batch_size), 1))), n // 2))
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
    """ss: the image through the convolutional stream at every step.

    ``crop=None`` feeds the whole image, as the authors do. ``crop=s`` feeds a random s × s window
    of it instead (clipped to the image), a fresh one each step from ``generator``: the
    convolutional stream's cost per step then no longer grows with the scene, as a pixel batch's
    does not in "pw"; batch statistics are the window's while training and the whole image's
    afterwards (the estimator calibrates them). ``steps_per_epoch`` is the schedule's epoch in
    steps (the authors': round(N / 8000) whole-image steps); the learning rate decays per step.
    """

    def __init__(
        self,
        model,
        image: torch.Tensor,
        bundles=None,
        labels=None,
        *,
        valid: torch.Tensor | None = None,
        steps_per_epoch: int = 1,
        crop: int | None = None,
        generator: torch.Generator | None = None,
        **weights,
    ):
        super().__init__(model, bundles, labels, **weights)
        self.image = image  # (1, B, H, W)
        self.valid = valid  # (1, 1, H, W) float mask, or None when every pixel is valid
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        h, w = image.shape[-2:]
        self.window = None if crop is None else (min(int(crop), h), min(int(crop), w))
        if self.window == (h, w):
            self.window = None  # the window is the image: no drawing, the authors' step exactly
        if self.window is not None and generator is None:
            raise ValueError("drawing image windows needs a generator (a seeded torch.Generator on the CPU)")
        self.generator = generator  # a CPU generator: window corners never need a device sync

    def begin_epoch(self) -> int:
        return self.steps_per_epoch

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's image (and valid mask): the whole image, or a random window of it."""
        if self.window is None:
            return self.image, self.valid
        (h, w), (wh, ww) = self.image.shape[-2:], self.window
        top = int(torch.randint(h - wh + 1, (1,), generator=self.generator))
        left = int(torch.randint(w - ww + 1, (1,), generator=self.generator))
        rows, cols = slice(top, top + wh), slice(left, left + ww)
        valid = None if self.valid is None else self.valid[..., rows, cols]
        return self.image[..., rows, cols], valid

    def losses(self, step: int) -> torch.Tensor:
        image, valid = self._batch()
        _, reconstruction = self.model.image_stream(image)
        err = (reconstruction - image).pow(2)
        if valid is None:
            rec = err.mean()
        else:
            # A window can hold no valid pixel; it then adds no reconstruction term (not a NaN).
            rec = (err * valid).sum() / (valid.sum().clamp_min(1) * image.shape[1])
        return self._combine(rec)


class Adam:
    """Adam (Kingma & Ba, 2015) with PyTorch's default constants, on a list of tensors.

    The arithmetic of ``torch.optim.Adam(params, lr, foreach=True)`` without weight decay (the
    weight penalty is part of the loss here), written out because constructing a
    ``torch.optim`` optimiser imports ``torch._dynamo``, which costs seconds in every new process
    (docs/engine.md, "Optimiser").
    """

    def __init__(
        self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
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
    """How a run ended: counts, the per-epoch history and, for early ends, why.

    ``stop`` is one word for the way it ended: "bound" (ran all ``epochs``), "converged" (the
    stopping rule), "requested" (a stop request), "interrupted" (KeyboardInterrupt) or "diverged".
    ``change`` is the stopping criterion's last value (NaN before the second check).
    """

    epochs_done: int
    steps_done: int
    history: dict = field(default_factory=dict)
    partial: bool = False
    stop_reason: str = ""
    failed: bool = False
    seconds: float = 0.0
    stop: str = "bound"
    converged: bool = False
    change: float = math.nan
    averaged: bool = False


@torch.no_grad()
def _copy_into(dst: list, src: list) -> None:
    for d, s in zip(dst, src):
        d.copy_(s)


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class _Swap:
    """Context manager: ``params`` hold ``values`` inside, their own values again after."""

    def __init__(self, params: list, values: list | None):
        self.params, self.values = params, values

    def __enter__(self):
        if self.values is not None:
            self.saved = [p.detach().clone() for p in self.params]
            _copy_into(self.params, self.values)
        return self

    def __exit__(self, *exc):
        if self.values is not None:
            _copy_into(self.params, self.saved)
        return False


def collapsed(abundances: torch.Tensor, spread: float = 1e-4) -> bool:
    """True when every abundance map is one constant over the pixels (max − min below ``spread``)."""
    if abundances.shape[0] < 2:
        return False
    extent = abundances.amax(dim=0) - abundances.amin(dim=0)
    return bool((extent < spread).all())


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
    probe: Callable[[], torch.Tensor] | None = None,
    check_every: int = 1,
    tol: float | None = None,
    patience: int = 3,
    min_epochs: int = 0,
    average: float | None = None,
    max_growth: float = 1e3,
    precision: str = "float32",
) -> TrainOutcome:
    """Run up to ``epochs`` epochs of Adam on ``objective``; see the module doc for the outcomes.

    The learning rate is ``lr · lr_decay^step`` (the authors' exponential decay, one factor per
    step). ``evaluate()`` (called every ``eval_every`` epochs and after the last) returns metrics
    such as ``{"rmse": ...}`` for the epoch events; it must leave the model in training mode.
    ``probe()`` (every ``check_every`` epochs) returns the abundances of a fixed pixel sample and
    must also leave the model in training mode; it feeds the collapse check and, with ``tol``,
    the stopping rule, whose ``change`` goes into the epoch events' metrics. ``average``: the
    decay per step of the weights' moving average (None: no averaging); the averaged weights
    are the ones evaluated, probed and returned in ``model``. ``precision="bf16"`` runs the
    forward passes under bfloat16 autocast (weights, optimiser state and losses stay float32).
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
    # On the CPU a per-step loss check costs nothing; on a GPU it would force a sync per step, so
    # there the check happens once per epoch on the summed losses.
    check_each_step = device.type == "cpu"
    # Exponential moving average of the weights, with the usual warm-up: the decay of update t
    # is min(average, (1 + t) / (10 + t)), so the first steps are not averaged with the start.
    ema = [p.detach().clone() for p in params] if average is not None else None
    good_state = _snapshot(model)
    good_ema = None if ema is None else [e.clone() for e in ema]
    # State at the last check whose abundances were not collapsed (the collapse rollback).
    checked_state, checked_ema = good_state, good_ema
    # Weights and buffers before the latest optimiser step, kept only where the loss is checked
    # every step: the newest state known to give a good loss. Preallocated, refreshed in place.
    tracked = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
    backup = [t.detach().clone() for t in tracked] if check_each_step else None
    ema_backup = [e.clone() for e in ema] if ema is not None and check_each_step else None
    epoch = step = 0
    final_kind, reason, partial, failed, stop = "end", "", False, False, "bound"
    current_lr = lr
    first_loss = math.nan  # the early value that divergence by growth is measured against
    previous_probe: torch.Tensor | None = None
    change, below, converged = math.nan, 0, False
    rule = dict(
        tol=tol,
        check_every=int(check_every),
        patience=int(patience),
        min_epochs=int(min_epochs),
        average=average,
        precision=precision,
    )

    def emit(kind: str, **kw) -> None:
        event = TrainingEvent(
            kind=kind,
            epoch=epoch,
            n_epochs=epochs,
            elapsed=time.perf_counter() - start,
            control=control,
            history=history,
            **kw,
        )
        history.on_event(event)
        dispatch(callbacks, event)

    def restore(state: dict, ema_state: list | None) -> None:
        model.load_state_dict(state)
        if ema is not None and ema_state is not None:
            _copy_into(ema, ema_state)

    def too_large(value: float) -> bool:
        return math.isfinite(first_loss) and first_loss > 0 and value > max_growth * first_loss

    try:
        emit("start", info=dict(info or {}, stopping=rule), learning_rate=lr)
        while epoch < epochs and not control.stop_requested:
            n_steps = objective.begin_epoch()
            sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float64, device=device)
            done_in_epoch = 0
            bad = ""
            for i in range(n_steps):
                current_lr = lr * lr_decay**step
                optimizer.lr = current_lr
                if precision == "bf16":
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        losses = objective.losses(i).float()
                else:
                    losses = objective.losses(i)
                if check_each_step:
                    value = float(losses[0].detach())
                    if not math.isfinite(value):
                        bad = "the loss became NaN or infinite"
                    elif too_large(value):
                        bad = f"the loss grew from {first_loss:.4g} to {value:.4g} (over {max_growth:g} times its first value)"
                    if bad:
                        break
                    if step == 0:
                        first_loss = value
                optimizer.zero_grad()
                losses[0].backward()
                if backup is not None:
                    _copy_into(backup, tracked)
                optimizer.step()
                if ema is not None:
                    if ema_backup is not None:
                        _copy_into(ema_backup, ema)
                    decay = min(float(average), (1.0 + step) / (10.0 + step))
                    torch._foreach_lerp_(ema, [p.detach() for p in params], 1.0 - decay)
                sums += losses.detach().double()
                step += 1
                done_in_epoch += 1
                if control.stop_requested:
                    break
            if not bad and not check_each_step and done_in_epoch:
                mean_total = float(sums[0]) / done_in_epoch
                if epoch == 0:
                    first_loss = mean_total
                if not torch.isfinite(sums).all():
                    bad = "the loss became NaN or infinite"
                elif too_large(mean_total):
                    bad = f"the mean loss grew from {first_loss:.4g} to {mean_total:.4g} (over {max_growth:g} times its first value)"
            if not bad and not all(bool(torch.isfinite(p).all()) for p in params):
                bad = "the weights became NaN or infinite"
            if bad:
                if backup is not None:
                    _copy_into(tracked, backup)
                    if ema_backup is not None:
                        _copy_into(ema, ema_backup)
                    kept = "the weights from before the step that diverged were kept"
                else:
                    restore(good_state, good_ema)
                    kept = f"the model from the end of epoch {epoch} was kept"
                failed, partial, final_kind, stop = True, True, "fail", "diverged"
                reason = (
                    f"training diverged: {bad} in epoch {epoch + 1} (step {step + 1}); {kept}. "
                    f"Lower the learning rate (lr={lr:g}) or check the input for extreme values"
                )
                break
            if done_in_epoch < n_steps:  # stopped mid-epoch: that epoch is not counted
                break
            epoch += 1
            metrics: dict = {}
            if probe is not None and (epoch % max(int(check_every), 1) == 0 or epoch == epochs):
                with _Swap(params, ema):
                    sample = probe().detach()
                if not bool(torch.isfinite(sample).all()) or collapsed(sample):
                    restore(checked_state, checked_ema)
                    failed, partial, final_kind, stop = True, True, "fail", "diverged"
                    what = "NaN" if not bool(torch.isfinite(sample).all()) else "one constant map"
                    reason = (
                        f"training diverged: the abundances became {what} at epoch {epoch}; the model "
                        f"from the last check before was kept. Lower the learning rate (lr={lr:g}) or "
                        "check the input (a scene whose pixels barely differ)"
                    )
                    break
                if previous_probe is not None:
                    change = float((sample - previous_probe).double().pow(2).mean().sqrt())
                    metrics["change"] = change
                    below = below + 1 if tol is not None and change < tol else 0
                previous_probe = sample
                checked_state = _snapshot(model)
                checked_ema = None if ema is None else [e.clone() for e in ema]
                if tol is not None and below >= max(int(patience), 1) and epoch >= min_epochs:
                    converged = True
            good_state = _snapshot(model)
            good_ema = None if ema is None else [e.clone() for e in ema]
            means = (sums / max(done_in_epoch, 1)).tolist()
            loss_dict = dict(zip(LOSS_NAMES, means))
            if evaluate is not None and (epoch % max(int(eval_every), 1) == 0 or epoch == epochs or converged):
                with _Swap(params, ema):
                    metrics.update({k: float(v) for k, v in evaluate().items()})
            emit("epoch", losses=loss_dict, learning_rate=current_lr, metrics=metrics)
            if converged:
                stop = "converged"
                reason = (
                    f"converged at epoch {epoch} of at most {epochs}: the abundances of the probe "
                    f"pixels changed by {change:.2g} (RMS) between checks, below tol={tol:g}, "
                    f"{below} checks in a row"
                )
                break
        if final_kind == "end" and not converged and (epoch < epochs or control.stop_requested):
            final_kind, partial, stop = "stop", True, "requested"
            reason = control.reason or "stop requested"
            if epoch == epochs:  # the request came after the last epoch: nothing was cut short
                final_kind, partial, reason, stop = "end", False, "", "bound"
    except KeyboardInterrupt:
        restore(good_state, good_ema)
        final_kind, partial, stop = "stop", True, "interrupted"
        reason = f"interrupted (KeyboardInterrupt) after {epoch} of {epochs} epochs"
    except BaseException as exc:
        restore(good_state, good_ema)
        emit("fail", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        model.set_generator(None, None)
    if ema is not None:  # the answer is the averaged model
        _copy_into(params, ema)
    seconds = time.perf_counter() - start
    # info["stop"]: how the run ended, in TrainOutcome.stop's words, for displays of the rule
    emit(final_kind, message=reason, metrics={} if math.isnan(change) else {"change": change}, info={"stop": stop})
    return TrainOutcome(
        epochs_done=epoch,
        steps_done=step,
        history=history.as_dict(),
        partial=partial,
        stop_reason=reason,
        failed=failed,
        seconds=seconds,
        stop=stop,
        converged=converged,
        change=change,
        averaged=ema is not None,
    )
