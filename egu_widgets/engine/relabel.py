"""Relabelling: the bundles labelled again against endmembers that fit the trained network, then a fine-tune.

EGU-Net's bundles are labelled against reference spectra (whole-image N-FINDR or VCA), and
the network ends close to its labeller applied to every pixel (docs/bundles.md). Where the
scene has no pure pixels those reference spectra are themselves mixtures, so the labels are
wrong in a way no amount of training removes. One relabelling round (``EGUNet(relabel=1)``):

1. the trained network's abundances A of the image's valid pixels (whole-image batch-norm
   statistics, as the result reads them);
2. the endmembers that best reconstruct the image from them, M = argmin ‖Y − A M‖ with M ≥ 0
   (:func:`~egu_widgets.classic.endmember_fit.fit_endmembers`);
3. the fitted set replaces the current spectra only if it lowers the image's residual under the
   labelling rule the bundles were made with (FCLS in the data's units, or NNLS, whose cone does
   not depend on the spectra's scale) by at least :data:`~egu_widgets.engine.bundles.MIN_GAIN`; in a set that is taken,
   each spectrum whose current one gives the lower residual goes back to it, and an all-zero
   or non-finite fit (a material the others explain) keeps the current spectrum. The residual
   is read on a fixed, evenly spaced sample of pixels. This is the guard that keeps a good
   reference: where the scene has pure pixels the current spectra already explain it to the
   noise, and least squares on abundances with errors only moves the spectra a little;
4. the same bundle spectra are labelled against the accepted spectra by the same rule (bundles
   labelled with ``labeller="auto"`` have its sum-to-one test made again against them: a
   reference of mixed pixels is what fails that test), and training continues from the current
   (averaged) weights: a fresh Adam, the run's learning-rate schedule restarted (times
   :data:`LR_FACTOR`), the stopping rule as in the first run. Where nothing was taken, no
   fine-tune runs and the model is the one of ``relabel=0``.

The estimator's ``reference_`` (and so ``endmembers_`` and the result's endmembers) becomes the
last round's spectra; ``initial_reference_`` keeps the reference of the first labels, and the
bundles' ``config["relabel"]`` records each round (spectra replaced, reverted and degenerate,
their angles to the previous ones, the residuals, the labelling rule, the fine-tune's steps and
how it ended). docs/bundles.md measures where it helps; it is off by default.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from ..classic.endmember_fit import fit_endmembers
from ..errors import InputError
from ..validation import seed_sequence
from .bundles import (
    ASC_PIXELS,
    ASC_THRESHOLD,
    SpectralBundles,
    accept_endmembers,
    evenly_spaced,
    label_spectra,
    labeller_residual,
    sum_to_one_statistic,
)
from .networks import calibrate
from .trainer import TrainOutcome, train

#: The fine-tune's first learning rate as a fraction of the run's ``lr`` (the run's decay per
#: step follows); chosen by measurement (docs/bundles.md, "Relabelling against fitted endmembers").
LR_FACTOR = 1.0

__all__ = ["relabel_rounds", "labeller_residual", "accept_endmembers", "relabelled_bundles", "network_abundances"]


def _rule(bundles: SpectralBundles) -> tuple[str, str]:
    """(labeller, label_scale) the bundles were labelled with, from their config."""
    labeller = bundles.config.get("labeller")
    label_scale = bundles.config.get("label_scale", "none")
    if labeller not in ("nnls", "fcls") or label_scale not in ("none", "max"):
        raise InputError(
            "relabel needs bundles whose config names the labelling rule (labeller 'nnls' or 'fcls', "
            f"label_scale 'none' or 'max'); these have labeller={labeller!r}, label_scale={label_scale!r}. "
            "Build them with extract_bundles, or set relabel=0"
        )
    return labeller, label_scale


def _retested(bundles: SpectralBundles, endmembers: np.ndarray, pixels: np.ndarray) -> tuple[str, str, float]:
    """``labeller="auto"``'s sum-to-one test again, against ``endmembers``: (labeller, label_scale, statistic)."""
    statistic = sum_to_one_statistic(pixels, endmembers)
    if statistic <= ASC_THRESHOLD:
        return "fcls", "none", statistic
    return "nnls", bundles.config.get("label_scale_requested", "max"), statistic


def relabelled_bundles(
    bundles: SpectralBundles, endmembers: np.ndarray, record: dict, pixels: np.ndarray | None = None
) -> SpectralBundles:
    """The same bundle spectra labelled against ``endmembers`` (P, B) by the bundles' own rule.

    With ``pixels`` (N, B), bundles whose rule was chosen by ``labeller="auto"`` have that choice
    made again against ``endmembers`` (:func:`~egu_widgets.engine.bundles.sum_to_one_statistic`
    on ``pixels``): a reference of mixed pixels is what makes an image fail the sum-to-one test,
    so better spectra can pass it. The new set's reference is ``endmembers``; its
    ``config["relabel"]`` lists the rounds, with ``record`` appended, and keeps the reference of
    the first labels (``initial_reference``).
    """
    labeller, label_scale = _rule(bundles)
    m = np.asarray(endmembers, dtype=np.float64)
    config = dict(bundles.config)
    record = dict(record)
    if pixels is not None and config.get("labeller_requested") == "auto":
        labeller, label_scale, statistic = _retested(bundles, m, pixels)
        record.update(sum_to_one_statistic=statistic, labeller=labeller, label_scale=label_scale)
        config.update(labeller=labeller, label_scale=label_scale)
    labels, dead = label_spectra(bundles.spectra, m, labeller, label_scale)
    previous = dict(config.get("relabel") or {})
    rounds = [*previous.get("rounds", []), dict(record, uniform_labels=int(dead))]
    initial = previous.get("initial_reference", np.asarray(bundles.reference).tolist())
    config["relabel"] = dict(rounds=rounds, initial_reference=initial)
    return dataclasses.replace(bundles, labels=labels, reference=m, config=config)


def network_abundances(est: Any, model: torch.nn.Module, pixels: torch.Tensor) -> np.ndarray:
    """The endmember stream's abundances (N, P) float64 of ``pixels``, with their batch statistics.

    Batch norms are set to the statistics of all ``pixels`` (as the result's are), so this is what
    the model would answer if training ended here. The model is left in training mode.
    """
    model.eval()
    try:
        with torch.no_grad():
            chunks = est._statistics_chunks(pixels)
            calibrate(model.pixel_norms(), model.unmix, chunks)
            ab = torch.cat([model.unmix(c) for c in est._chunks(pixels)])
    finally:
        model.train()
    return ab.double().cpu().numpy()


def _merged(first: TrainOutcome, later: list[TrainOutcome]) -> TrainOutcome:
    """One outcome for the whole fit: counts and seconds summed, the histories one after the other,
    the ending (stop, reason, change) of the last run."""
    runs = [first, *later]
    history: dict[str, list[float]] = {}
    lengths = [max((len(v) for v in run.history.values()), default=0) for run in runs]
    for key in dict.fromkeys(k for run in runs for k in run.history):
        column: list[float] = []
        for run, n in zip(runs, lengths):
            column.extend(run.history.get(key, [math.nan] * n))
        history[key] = column
    last = runs[-1]
    return dataclasses.replace(
        last,
        epochs_done=sum(r.epochs_done for r in runs),
        steps_done=sum(r.steps_done for r in runs),
        seconds=sum(r.seconds for r in runs),
        history=history,
        partial=any(r.partial for r in runs),
        failed=any(r.failed for r in runs),
    )


def relabel_rounds(
    est: Any,
    model: torch.nn.Module,
    objective: Any,
    bundles: SpectralBundles,
    pixels: torch.Tensor,
    outcome: TrainOutcome,
    *,
    rounds: int,
    train_options: dict,
) -> tuple[TrainOutcome, SpectralBundles]:
    """Run ``rounds`` relabelling rounds after the first training (see the module doc).

    ``objective`` is the first run's, whose bundle labels are replaced in place before each
    fine-tune; ``train_options`` are the first run's keyword arguments to
    :func:`~egu_widgets.engine.trainer.train` except the random generators, which each round
    draws afresh from children of the seed's "dropout" stream. A run that did not end normally
    (stopped, interrupted, diverged) is not relabelled further. Callbacks see each fine-tune as a
    run of its own ("start", its epochs, then its end). Returns the merged outcome and the last
    round's bundles.
    """
    if bundles is None:
        raise InputError("relabel needs spectral bundles to relabel; the 'ae' variant has none, use relabel=0")
    if bundles.curated:
        raise InputError(
            "relabel would overwrite the labels of a curated bundle set (select/reject/relabel); "
            "use relabel=0 with curated bundles"
        )
    labeller, _ = _rule(bundles)
    y = pixels.detach().double().cpu().numpy()
    sample = y[evenly_spaced(len(y), ASC_PIXELS)]
    later: list[TrainOutcome] = []
    device = pixels.device
    for r in range(int(rounds)):
        if (later[-1] if later else outcome).partial:
            break
        abundances = network_abundances(est, model, pixels)
        fitted = fit_endmembers(y, abundances)
        accepted, record = accept_endmembers(sample, bundles.reference, fitted, labeller)
        bundles = relabelled_bundles(bundles, accepted, record, sample)
        if not record["replaced"]:  # the same spectra: the same labels, and the next round would agree
            bundles.config["relabel"]["rounds"][-1].update(steps=0, epochs=0, stop="unchanged")
            break
        objective.labels = torch.from_numpy(bundles.labels).to(device)
        dropout = seed_sequence(est.seed_, "dropout").spawn(r + 1)[r]
        generator = torch.Generator(device=device)
        generator.manual_seed(int(dropout.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        options = dict(train_options, lr=train_options["lr"] * LR_FACTOR)
        run = train(model, objective, generator=generator, rng=np.random.default_rng(dropout.spawn(1)[0]), **options)
        later.append(run)
        round_record = bundles.config["relabel"]["rounds"][-1]
        round_record.update(steps=run.steps_done, epochs=run.epochs_done, stop=run.stop)
    return (_merged(outcome, later) if later else outcome), bundles
