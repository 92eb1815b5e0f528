"""EGU-Net as an estimator (``EGUNet(...).fit(cube).transform(cube)``) and the one-call ``run_egu``.

Data flow: cube → :func:`~egu_widgets.engine.bundles.extract_bundles` → network
(:mod:`~egu_widgets.engine.networks`) → :func:`~egu_widgets.engine.trainer.train` →
:class:`~egu_widgets.results.UnmixingResult`. Nothing here draws anything; progress goes through
callbacks.

:class:`EGUNet` follows scikit-learn's estimator conventions without depending on scikit-learn:
``__init__`` stores its arguments unchanged, ``fit`` merges the preset, validates and picks the
device, fitted state ends in an underscore, and ``get_params``/``set_params`` make
``sklearn.base.clone`` work.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path
from ..cube import HyperCube
from ..errors import CheckpointError, InputError
from ..memory import ONE_PASS_PIXELS, STATISTICS_BLOCK, release_freed_memory
from ..results import UnmixingResult, _jsonable
from ..validation import (
    check_choice,
    check_float,
    check_int,
    check_int_sequence,
    check_n_endmembers,
    check_seed,
    numpy_rng,
    seed_int,
    seed_sequence,
)
from .bundles import (
    BUNDLE_MODES,
    BUNDLE_OPTIONS,
    CHECKPOINT_PREFIX,
    SpectralBundles,
    extract_bundles,
    resolve_bundle_options,
)
from .events import CallbackLike, TrainingControl
from .inference import PixelUnmixer
from .networks import _EGUBase, batch_statistics, build_model, calibrate
from .trainer import ImageObjective, PixelObjective, train

__all__ = [
    "EGUNet",
    "run_egu",
    "resolve_hyperparameters",
    "PRESETS",
    "HYPERPARAMETERS",
    "METHOD_VARIANTS",
    "VARIANT_PRESETS",
]

#: The default preset's moving-average decay per step and stopping tolerance (docs/convergence.md).
AVERAGE = 0.98
TOL = 3e-3
#: The default preset's learning-rate decay per step: faster than the authors' 0.99, so that a
#: scene of one step per epoch anneals within the bound as a five-step one does.
LR_DECAY = 0.97
#: The default preset's weight of the unmixing stream's reconstruction loss in "pw", against the
#: bundle loss's 1 (the authors': 1): the two streams still share the encoder while the labels lead
#: it. Measured on the robustness suite for "pw" and "ss"; only "pw" met the rule, so "ss" keeps 1
#: (docs/convergence.md, "The reconstruction weight").
RECONSTRUCTION_WEIGHT = 0.1
#: ``epochs="auto"``: the upper bound on the epochs, and the stopping rule's schedule in optimiser
#: steps (a check every CHECK_STEPS steps, at least MIN_STEPS steps, PATIENCE quiet checks).
AUTO_EPOCHS = 200
CHECK_STEPS = 10
MIN_STEPS = 60
PATIENCE = 3
#: Pixels in the stopping rule's fixed probe sample (all valid pixels when there are fewer).
PROBE_PIXELS = 4096

#: The authors' settings (EGU-Net-pw.py / EGU-Net-ss.py) and ours. "default" is chosen by
#: measurement (docs/engine.md, docs/bundles.md); "paper" stays available.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(
        epochs=200,
        lr=0.1,
        lr_decay=0.99,  # per optimiser step
        batch_size=8000,
        weight_decay=0.005,  # × ½Σ‖W‖²
        dropout=0.1,
        encoder_widths=(256, 128, 32),
        decoder_widths=(32, 128, 256),
        kernels=(5, 3),
        bn_eps=1e-3,  # TensorFlow's batch-norm default
        bundle_weight=1.0,
        reconstruction_weight=1.0,
        bundle_mode="faithful",
        conv_width=None,  # ss: first convolution's width; None = encoder_widths[0], as the authors
        image_steps=None,  # ss: whole-image steps per epoch; None = round(N / batch_size), as the authors
        image_crop=None,  # ss: side of the random window each step trains on; None = the whole image, as the authors
        bundle_batch=8000,  # bundles per step when there are more (the authors' scenes have at most 8 000)
        average=None,  # decay per step of the weights' moving average; None: the last weights
        tol=None,  # stopping rule's tolerance on the probe's change; None: run all epochs
        precision="float32",  # or "bf16": bfloat16 autocast in the training passes
        relabel=0,  # relabelling rounds after training (engine/relabel.py); 0: none, as the authors
    ),
}
# Ours: the authors' network settings; bundles labelled against N-FINDR spectra (bundles.py);
# averaged weights and a stopping rule with ``epochs`` as an upper bound (docs/convergence.md).
PRESETS["default"] = dict(
    PRESETS["paper"], bundle_mode="default", epochs="auto", lr_decay=LR_DECAY, average=AVERAGE, tol=TOL
)

#: Per-variant changes to a preset (applied before the user's keywords). The default ss keeps the
#: architecture but makes the convolutional stream cheaper (a 64-wide first convolution and
#: decoder), takes one step per epoch, and each step sees a random 64 × 64 window of the image,
#: so that a step costs the same on any scene: the authors' ss costs hours on the CPU for
#: comparable accuracy (docs/engine.md, "The light ss"; docs/convergence.md for the window).
VARIANT_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "default": {
        "pw": dict(reconstruction_weight=RECONSTRUCTION_WEIGHT),
        "ss": dict(conv_width=64, decoder_widths=(32, 64, 64), image_steps=1, image_crop=64),
    },
}

#: Settings of a run that are not part of a preset, with their defaults.
_RUN_SETTINGS: dict[str, Any] = {
    "eval_every": None,
    "num_threads": None,
    "chunk_size": 262144,
    # A lazy cube's training sample (engine/lazy_fit.py; defaults measured in docs/scale.md).
    "sample_pixels": 131072,
    "sample_patches": 4096,
}
#: Hyperparameters accepted as keyword arguments (the presets' and the run settings).
HYPERPARAMETERS = tuple(PRESETS["paper"]) + tuple(_RUN_SETTINGS)
METHOD_VARIANTS = {"egu-pw": "pw", "egu-ss": "ss", "ae": "ae"}
_VARIANT_METHODS = {v: k for k, v in METHOD_VARIANTS.items()}
_CHECKPOINT_FORMAT = "egu_widgets.EGUNet"
_CHECKPOINT_VERSION = 1
_REFERENCE_KEY = "__reference_endmembers__"
_INITIAL_REFERENCE_KEY = "__initial_reference_endmembers__"


def _resolve_device(device: Any) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {device!r} is not a device name; use 'cpu' or 'cuda' (or 'cuda:N')") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device!r} was requested but PyTorch sees no CUDA GPU here "
                f"(torch {torch.__version__}, torch.cuda.is_available() is False); use device='cpu' "
                "or install a CUDA build of PyTorch on a machine with an NVIDIA GPU"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif dev.type != "cpu":
        raise InputError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def _check_hyperparameters(hp: dict) -> dict:
    """``hp`` with every value checked and in its canonical type (lists for the widths)."""
    hp = dict(hp)
    if hp["epochs"] != "auto":
        hp["epochs"] = check_int("epochs", hp["epochs"], 0)
    hp["bundle_batch"] = check_int("bundle_batch", hp["bundle_batch"], 1)
    hp["average"] = check_float("average", hp["average"], 0, 1, max_inclusive=False, allow_none=True)
    hp["tol"] = check_float("tol", hp["tol"], 0, allow_none=True)
    hp["precision"] = check_choice("precision", hp["precision"], ("float32", "bf16"))
    hp["relabel"] = check_int("relabel", hp["relabel"], 0, what="a whole number of rounds")
    if hp["epochs"] == "auto" and hp["tol"] is None:
        raise InputError(
            "epochs='auto' ends when the stopping rule says so, and this preset has no rule (tol=None); "
            f"give tol (e.g. {TOL:g}) or a number of epochs"
        )
    hp["batch_size"] = check_int("batch_size", hp["batch_size"], 1)
    hp["lr"] = check_float("lr", hp["lr"], 0, min_inclusive=False)
    for name in ("weight_decay", "bundle_weight", "reconstruction_weight", "bn_eps"):
        hp[name] = check_float(name, hp[name], 0)
    hp["lr_decay"] = check_float("lr_decay", hp["lr_decay"], 0, 1, min_inclusive=False)
    hp["dropout"] = check_float("dropout", hp["dropout"], 0, 1, max_inclusive=False)
    for name, n in (("encoder_widths", 3), ("decoder_widths", 3), ("kernels", 2)):
        hp[name] = check_int_sequence(name, hp[name], n)
    if any(k % 2 == 0 for k in hp["kernels"]):
        raise InputError(f"kernels must be odd (so that 'same' padding is symmetric); got {hp['kernels']}")
    for name in ("eval_every", "num_threads", "conv_width", "image_steps", "image_crop"):
        hp[name] = check_int(name, hp[name], 1, allow_none=True)
    hp["chunk_size"] = check_int("chunk_size", hp["chunk_size"], 1)
    hp["sample_pixels"] = check_int("sample_pixels", hp["sample_pixels"], 1)
    hp["sample_patches"] = check_int("sample_patches", hp["sample_patches"], 1)
    hp["bundle_mode"] = check_choice("bundle_mode", hp["bundle_mode"], sorted(BUNDLE_MODES))
    return hp


def resolve_hyperparameters(variant: str = "pw", preset: str = "default", **overrides: Any) -> dict:
    """The checked hyperparameters of a run: the preset's, its changes for ``variant``, then ``overrides``.

    An override of None keeps the preset's value. Raises InputError for an unknown variant, preset
    or hyperparameter name, or a value out of range.
    """
    check_choice("variant", variant, tuple(_VARIANT_METHODS))
    check_choice("preset", preset, tuple(PRESETS))
    unknown = sorted(set(overrides) - set(HYPERPARAMETERS))
    if unknown:
        raise InputError(f"unknown hyperparameter(s) {unknown}; known: {', '.join(HYPERPARAMETERS)}")
    hp = dict(PRESETS[preset], **_RUN_SETTINGS)
    hp.update(VARIANT_PRESETS[preset].get(variant, {}))
    hp.update({k: v for k, v in overrides.items() if v is not None})
    hp = _check_hyperparameters(hp)
    if variant == "ae" and hp["relabel"]:
        raise InputError(
            f"relabel={hp['relabel']} relabels spectral bundles, and 'ae' trains without any; use relabel=0"
        )
    return hp


class EGUNet:
    """Endmember-guided unmixing network (EGU-Net), pixel-wise ("pw") or spatial-spectral ("ss").

    The constructor only records its arguments; ``fit`` merges them into the preset, checks them
    and picks the device, so an estimator can be built, cloned and configured anywhere.

    Parameters
    ----------
    variant : {"pw", "ss", "ae"}
        Pixel-wise, spatial-spectral, or the autoencoder ablation (the unmixing stream alone, no
        bundles).
    n_endmembers : int, optional
        P; None takes the cube's truth count at ``fit``.
    epochs : int or "auto", optional
        The most training epochs; None: the preset's ("auto" in the default preset: up to
        AUTO_EPOCHS epochs, ended by the stopping rule; 200 fixed epochs with "paper"). With a
        stopping tolerance ``tol`` an integer is an upper bound too.
    seed : int
        Every random choice derives from it through named streams
        (:func:`egu_widgets.validation.seed_sequence`: bundles, init, dropout, batches); on the CPU
        with ``num_threads=1`` the same seed gives bit-identical abundances in any process. The
        global NumPy and torch random states are not touched.
    device : str or torch.device
        "cpu" or "cuda" ("cuda:N"); checked at ``fit``, where asking for CUDA without one raises
        InputError.
    preset : {"default", "paper"}
        Where the hyperparameters left at None come from ("paper": the authors' settings).
    bundles : None, str, dict or SpectralBundles
        How to build the spectral bundles: None (the preset's ``bundle_mode``), a mode name, a dict
        of :func:`extract_bundles` options, or a ready :class:`SpectralBundles`.
    progress : bool
        Show a console progress bar when ``fit`` gets no callbacks.
    lr, lr_decay, batch_size, weight_decay, dropout : optional
        Adam's learning rate, its decay factor per step, pixels per mini-batch, the weight penalty
        (× ½Σ‖W‖²) and the dropout rate; None: the preset's.
    encoder_widths, decoder_widths, kernels, bn_eps : optional
        Hidden widths (three each), the ss convolution kernels (two odd sizes) and the batch-norm
        epsilon; None: the preset's.
    conv_width, image_steps, image_crop : int, optional
        ss only: the first convolution's width, the image steps per epoch and the side of the
        random square window of the image each step trains on (clipped to the image); None: the
        preset's (the default preset's light ss: 64, 1 and 64; "paper": the encoder's first width,
        round(N / batch_size) and the whole image).
    bundle_weight, reconstruction_weight : float, optional
        Weights of the bundle (cross-entropy) and reconstruction (squared error) losses (default
        preset: 1 and :data:`RECONSTRUCTION_WEIGHT` for "pw", 1 and 1 for "ss" and "ae"; "paper":
        1 and 1).
    bundle_mode : str, optional
        The bundle mode used when ``bundles`` names none (:data:`~egu_widgets.engine.bundles.BUNDLE_MODES`).
    bundle_batch : int, optional
        Bundles per optimiser step when there are more (a fresh random batch each step, from the
        seed's "batches" stream), so a step costs the same on any image; with fewer, all of them
        every step, as the authors (their scenes have at most 8 000).
    average : float, optional
        Decay per step of the exponential moving average of the weights that the result uses
        (0: the last weights; "paper": None, the last weights). Batch-norm statistics are
        computed for the averaged weights after training.
    tol : float, optional
        Stopping rule: training ends when the averaged model's abundances on a fixed sample of
        pixels change by less than ``tol`` (root mean square) between checks, several checks in a
        row. It never reads ground truth. 0: never stop early; "paper": None, no rule.
    precision : {"float32", "bf16"}, optional
        "bf16" runs the training passes under bfloat16 autocast (opt-in; docs/convergence.md).
    relabel : int, optional
        Relabelling rounds (:mod:`~egu_widgets.engine.relabel`): after training, endmembers fitted
        to the image on the network's abundances replace reference spectra where they lower the
        labelling rule's residual, the bundles are labelled again against them and training
        continues from the current weights. ``endmembers_`` are then the last round's spectra,
        ``initial_reference_`` the first labels' reference. 0 (both presets): none.
    eval_every : int, optional
        Epochs between RMSE evaluations when the cube has truth (None: about 25 over the epoch
        bound, and one at the epoch where the stopping rule ends the run). The monitor scores the
        averaged weights and never influences training.
    num_threads : int, optional
        Torch threads while fitting (None: :func:`~egu_widgets.engine.threads.choose_num_threads`
        picks them from the CPUs free for this process); torch's setting is restored afterwards.
    chunk_size : int, optional
        Pixels per inference pass (None: 262 144).
    sample_pixels, sample_patches : int, optional
        A lazy (dask-backed) cube is never loaded to fit: the network trains on about
        ``sample_pixels`` pixels (for "ss", tiles with halos of as many pixels) and bundles come
        from ``sample_patches`` patches, all drawn spatially stratified from the seed
        (:mod:`~egu_widgets.engine.lazy_fit`); ``result_`` is then lazy. A lazy cube of at most
        ``sample_pixels`` pixels and ``sample_patches`` patches is read whole and fitted as if
        loaded. None: 131 072 and 4 096 (docs/scale.md measures the choice). In-memory cubes
        ignore them.
    ensemble : int, optional
        K > 1 trains K members, with seeds drawn from ``seed`` (:mod:`~egu_widgets.engine.ensemble`),
        and makes this estimator their ensemble: ``transform`` and ``result_`` give the members'
        aligned mean, ``result_`` also their spread (``abundances_std``, ``abundances_q05``,
        ``abundances_q95``); ``members_`` holds the fitted members. None or 1: one network.

    Attributes
    ----------
    model_, bundles_, result_, outcome_ : the trained network, the bundles it was trained on, the
        :class:`~egu_widgets.results.UnmixingResult` of the training cube, and how training ended
        (``outcome_.stop``: "converged", "bound", "requested", "interrupted" or "diverged"; also
        in ``result_``'s ``config["training"]``).
    hyperparameters_, device_, n_endmembers_, n_bands_ : the resolved settings of the fit.
    initial_reference_ : (P, B) the reference the first labels were computed against; after
        ``relabel`` rounds that took fitted spectra, ``endmembers_`` differs from it.

    Notes
    -----
    ``transform`` reads the **endmember stream** on every pixel, with batch normalisation fixed
    to the statistics of all training pixels, which is how the authors read their abundances.
    For "pw" and "ae" the unmixing stream is the same encoder, so both streams agree. For "ss" the
    convolutional unmixing stream predicts at 1/8 resolution and upsamples, which blurs
    boundaries, and only the endmember stream is trained against the bundle labels; it is the
    more accurate of the two (docs/engine.md, "Which stream"). ``stream="unmixing"`` gives the
    other one.

    ``endmembers_`` (P, B), also stored in ``result_``: for "pw" and "ss" the reference spectra
    the bundle labels were computed against (whole-image N-FINDR by default, or VCA where it
    explains the image clearly better; refined where the picks are mixtures and replaced by the
    means of the purest pixels where brightness varies: ``reference``, ``reference_rounds`` and
    ``reference_purest`` of :func:`~egu_widgets.engine.extract_bundles`;
    "paper": VCA), in the data's units, since output p is trained to be the abundance of reference spectrum p. The
    decoder's own spectra are ``decoder_endmembers_``; they are poorer estimates and are not used
    for the result (docs/engine.md). For "ae", which has no reference, ``endmembers_`` is the
    decoder's spectra.

    Examples
    --------
    >>> from egu_widgets.cube.synthetic import make_demo
    >>> cube = make_demo(16, 16, 20, 3)
    >>> model = EGUNet("pw", 3, epochs=2, progress=False)
    >>> model.fit_transform(cube).shape
    (256, 3)
    """

    def __init__(
        self,
        variant: str = "pw",
        n_endmembers: int | None = None,
        *,
        epochs: int | None = None,
        seed: int = 0,
        device: Any = "cpu",
        preset: str = "default",
        bundles: Any = None,
        progress: bool = True,
        lr: float | None = None,
        lr_decay: float | None = None,
        batch_size: int | None = None,
        weight_decay: float | None = None,
        dropout: float | None = None,
        encoder_widths: Sequence[int] | None = None,
        decoder_widths: Sequence[int] | None = None,
        kernels: Sequence[int] | None = None,
        conv_width: int | None = None,
        image_steps: int | None = None,
        image_crop: int | None = None,
        bn_eps: float | None = None,
        bundle_weight: float | None = None,
        reconstruction_weight: float | None = None,
        bundle_mode: str | None = None,
        bundle_batch: int | None = None,
        average: float | None = None,
        tol: float | None = None,
        precision: str | None = None,
        relabel: int | None = None,
        eval_every: int | None = None,
        num_threads: int | None = None,
        chunk_size: int | None = None,
        sample_pixels: int | None = None,
        sample_patches: int | None = None,
        ensemble: int | None = None,
    ):
        self.variant = variant
        self.n_endmembers = n_endmembers
        self.epochs = epochs
        self.seed = seed
        self.device = device
        self.preset = preset
        self.bundles = bundles
        self.progress = progress
        self.lr = lr
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.encoder_widths = encoder_widths
        self.decoder_widths = decoder_widths
        self.kernels = kernels
        self.conv_width = conv_width
        self.image_steps = image_steps
        self.image_crop = image_crop
        self.bn_eps = bn_eps
        self.bundle_weight = bundle_weight
        self.reconstruction_weight = reconstruction_weight
        self.bundle_mode = bundle_mode
        self.bundle_batch = bundle_batch
        self.average = average
        self.tol = tol
        self.precision = precision
        self.relabel = relabel
        self.eval_every = eval_every
        self.num_threads = num_threads
        self.chunk_size = chunk_size
        self.sample_pixels = sample_pixels
        self.sample_patches = sample_patches
        self.ensemble = ensemble

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The constructor's parameter names, in order (scikit-learn's convention)."""
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items() if name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments as stored, by name (for ``sklearn.base.clone`` and grid searches).

        With ``deep=True`` a parameter that has ``get_params`` itself also contributes its own
        parameters as ``"<name>__<its parameter>"``.
        """
        params = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{k}": v for k, v in value.get_params(deep=True).items()})
            params[name] = value
        return params

    def set_params(self, **params: Any) -> EGUNet:
        """Set constructor arguments by name (``"<name>__<sub>"`` for a nested one); returns ``self``.

        Values are stored as given and checked at the next ``fit``.
        """
        known = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in known:
                raise InputError(f"EGUNet has no parameter {name!r}; its parameters: {', '.join(known)}")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def get_hyperparameters(self) -> dict:
        """The checked hyperparameters ``fit`` would use: the preset's, the variant's, then the explicit ones."""
        return resolve_hyperparameters(
            self.variant, self.preset, **{name: getattr(self, name) for name in HYPERPARAMETERS}
        )

    # ------------------------------------------------------------------ helpers
    @property
    def method(self) -> str:
        """The method name of this variant ("egu-pw", "egu-ss" or "ae")."""
        return _VARIANT_METHODS.get(self.variant, str(self.variant))

    def _torch_generator(self, stream: str, device: torch.device, child: int | None = None) -> torch.Generator:
        """A torch generator on ``device`` for one named stream of the seed (or its ``child``-th child)."""
        generator = torch.Generator(device=device)
        if child is None:
            generator.manual_seed(seed_int(self.seed_, stream))
        else:
            state = seed_sequence(self.seed_, stream).spawn(child + 1)[child].generate_state(1, np.uint64)[0]
            generator.manual_seed(int(state >> np.uint64(1)))
        return generator

    def _bundles_for(self, cube: HyperCube, p: int, bundles: Any) -> SpectralBundles:
        spec = self.bundles if bundles is None else bundles
        if isinstance(spec, SpectralBundles):
            b = spec
        else:
            opts = resolve_bundle_options(spec, self.hyperparameters_["bundle_mode"])
            opts.setdefault("seed", self.seed_)
            b = extract_bundles(cube, p, **opts)
        if b.n_bands != cube.n_bands:
            raise InputError(f"the bundles have {b.n_bands} bands but the cube has {cube.n_bands}")
        if b.n_endmembers != p:
            raise InputError(f"the bundles are labelled with {b.n_endmembers} endmembers but P={p}")
        return b

    def _check_input(self, cube: Any) -> HyperCube:
        """A cube this fitted model can be applied to (a HyperCube with the training band count)."""
        self._require_fitted()
        cube = self._check_cube(cube)
        if cube.n_bands != self.n_bands_:
            raise InputError(f"this model was trained on {self.n_bands_} bands; the cube has {cube.n_bands}")
        return cube

    def _check_cube(self, cube: Any) -> HyperCube:
        if not isinstance(cube, HyperCube):
            raise InputError(f"EGUNet works on a HyperCube; got {type(cube).__name__} (use egu_widgets.open_cube)")
        return cube

    def _pixels_tensor(self, cube: HyperCube, valid_only: bool) -> torch.Tensor:
        """The pixels (N, B) as a float32 tensor: on the CPU a view of the cube's array when every
        pixel is valid (nothing writes into it), otherwise the valid pixels' copy."""
        pixels = cube.pixels
        if valid_only:
            valid = cube.valid_mask.ravel()
            if not valid.all():
                pixels = pixels[valid]
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        if not pixels.flags.writeable:  # torch warns on wrapping a read-only array
            pixels = pixels.copy()
        return torch.from_numpy(pixels).to(self.device_)

    def _image_tensor(self, cube: HyperCube) -> torch.Tensor:
        img = np.ascontiguousarray(cube.image.transpose(2, 0, 1), dtype=np.float32)[None]
        return torch.from_numpy(img).to(self.device_)

    def _chunks(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = max(1, -(-x.shape[0] // self.hyperparameters_["chunk_size"]))
        return list(x.tensor_split(n)) if n > 1 else [x]

    def _statistics_chunks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x`` whole up to ONE_PASS_PIXELS rows (and ``chunk_size``), else blocks of STATISTICS_BLOCK.

        For the passes that need whole-image batch statistics (the monitor, the calibration):
        a small image gets them from one pass, a large one from float64 sums over blocks, whose
        activations are those of one block.
        """
        size = self.hyperparameters_["chunk_size"]
        if x.shape[0] <= min(size, ONE_PASS_PIXELS):
            return [x]
        n = -(-x.shape[0] // min(size, STATISTICS_BLOCK))
        return list(x.tensor_split(n))

    def _resolve(self, cube: HyperCube) -> int:
        """Check every parameter against ``cube`` and store the resolved ones; returns P."""
        check_choice("variant", self.variant, tuple(_VARIANT_METHODS))
        hp = self.get_hyperparameters()
        seed = check_seed(self.seed)
        device = _resolve_device(self.device)
        p = check_n_endmembers(
            self.n_endmembers, n_bands=cube.n_bands, n_pixels=int(cube.valid_mask.sum()), default=cube.n_true_endmembers
        )
        self.hyperparameters_, self.seed_, self.device_ = hp, seed, device
        return p

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        cube: HyperCube,
        bundles: Any = None,
        callbacks: Sequence[CallbackLike] | None = None,
        control: TrainingControl | None = None,
    ) -> EGUNet:
        """Train on ``cube`` and return ``self``. Bundles are built from the cube unless given.

        ``callbacks`` receive training events; with none and ``progress=True`` a console bar is
        shown. ``control`` (optional) lets other code stop the run (``control.request_stop()``).
        A stopped, interrupted or diverged run still yields a model and ``result_``
        (``result_.partial`` is True and ``result_.ds.attrs["stop_reason"]`` says why).
        Raises InputError for a parameter out of range (checked here, not in the constructor).
        A lazy (dask-backed) cube is never loaded: the fit draws its training set from stratified
        samples of it (``sample_pixels``, ``sample_patches``) and ``result_`` stays lazy.
        """
        self._fit(cube, bundles, callbacks, control)
        return self

    def fit_transform(
        self,
        cube: HyperCube,
        bundles: Any = None,
        callbacks: Sequence[CallbackLike] | None = None,
        control: TrainingControl | None = None,
    ) -> np.ndarray:
        """``fit(cube, ...)`` then ``transform(cube)``, computed once: (N, P) float64."""
        abundances = self._fit(cube, bundles, callbacks, control)
        return self.transform(cube) if abundances is None else abundances  # None: a lazy cube's fit

    def _fit(
        self,
        cube: HyperCube,
        bundles: Any,
        callbacks: Sequence[CallbackLike] | None,
        control: TrainingControl | None,
        _sampled: bool = False,
    ) -> np.ndarray | None:
        cube = self._check_cube(cube)
        if not _sampled and cube.reflectance.chunks is not None:  # a lazy cube: fit on samples of it
            from .lazy_fit import fit_lazy

            return fit_lazy(self, cube, bundles, callbacks, control)
        if self.ensemble is not None and self.ensemble != 1:  # K members (engine/ensemble.py)
            from .ensemble import fit_ensemble

            return fit_ensemble(self, cube, bundles, callbacks, control)
        self.members_ = None
        p = self._resolve(cube)
        hp, device = self.hyperparameters_, self.device_
        t0 = time.perf_counter()
        old_threads = torch.get_num_threads()
        from .threads import choose_num_threads  # num_threads, else torch's count lowered to the free CPUs

        torch.set_num_threads(choose_num_threads(hp["num_threads"], torch_default=old_threads))
        try:
            bset = None if self.variant == "ae" else self._bundles_for(cube, p, bundles)
            release_freed_memory()  # the bundle search's freed blocks, before training's own
            # Weights are drawn on the CPU (then moved), so CPU and GPU runs start from the same ones.
            init = self._torch_generator("init", torch.device("cpu"))
            # torch's layers draw default weights from the global stream before ours replace them:
            # fork it so that fitting leaves the caller's random state as it was.
            with torch.random.fork_rng(devices=[]):
                model = build_model(self.variant, cube.n_bands, p, hp, generator=init)
            model.to(device)
            valid = cube.valid_mask
            pixels = self._pixels_tensor(cube, valid_only=True)
            weights = dict(
                bundle_weight=hp["bundle_weight"] if bset is not None else 0.0,
                reconstruction_weight=hp["reconstruction_weight"],
                weight_decay=hp["weight_decay"],
                bundle_batch=hp["bundle_batch"],
                bundle_generator=self._torch_generator("batches", device, child=1),
            )
            xb = yb = None
            if bset is not None:
                xb = torch.from_numpy(bset.spectra).to(device)
                yb = torch.from_numpy(bset.labels).to(device)
            if self.variant == "ss":
                vmask = None
                if not valid.all():
                    vmask = torch.from_numpy(valid.astype(np.float32))[None, None].to(device)
                steps = hp["image_steps"] or max(1, int(round(pixels.shape[0] / hp["batch_size"])))
                objective = ImageObjective(
                    model,
                    self._image_tensor(cube),
                    xb,
                    yb,
                    valid=vmask,
                    steps_per_epoch=steps,
                    crop=hp["image_crop"],
                    generator=self._torch_generator("batches", torch.device("cpu"), child=2),
                    **weights,
                )
            else:
                objective = PixelObjective(
                    model,
                    pixels,
                    xb,
                    yb,
                    batch_size=hp["batch_size"],
                    generator=self._torch_generator("batches", device),
                    **weights,
                )
            evaluate = self._monitor(model, cube, pixels) if cube.true_abundances is not None else None
            probe = self._probe(model, pixels)
            if callbacks is None:
                callbacks = []
                if self.progress:
                    from .progress import ConsoleProgress

                    callbacks = [ConsoleProgress()]
            info = dict(
                method=self.method,
                variant=self.variant,
                preset=self.preset,
                cube=cube.name,
                height=cube.height,
                width=cube.width,
                n_bands=cube.n_bands,
                n_endmembers=p,
                n_pixels=int(pixels.shape[0]),
                n_bundles=0 if bset is None else bset.n_bundles,
                steps_per_epoch=objective.steps_per_epoch,
                device=str(device),
                seed=self.seed_,
                n_parameters=int(sum(q.numel() for q in model.parameters())),
                bundle_seconds=time.perf_counter() - t0,
            )
            schedule = self._schedule(objective.steps_per_epoch)
            # The run's training settings; a relabelling round's fine-tune takes the same ones.
            options = dict(
                lr=hp["lr"],
                lr_decay=hp["lr_decay"],
                callbacks=callbacks,
                control=control,
                evaluate=evaluate,
                info=info,
                probe=probe,
                average=hp["average"] or None,
                tol=hp["tol"],
                precision=hp["precision"],
                **schedule,
            )
            # Dropout masks: torch's generator on a GPU, NumPy's on the CPU (see MaskDropout).
            outcome = train(
                model,
                objective,
                generator=self._torch_generator("dropout", device),
                rng=numpy_rng(self.seed_, "dropout"),
                **options,
            )
            initial_reference = None if bset is None else np.array(bset.reference, dtype=np.float64)
            if hp["relabel"]:  # label again against endmembers fitted to the network (engine/relabel.py)
                from .relabel import relabel_rounds

                outcome, bset = relabel_rounds(
                    self, model, objective, bset, pixels, outcome, rounds=hp["relabel"], train_options=options
                )
            release_freed_memory()  # the training steps' freed blocks, before the whole-image passes
            self.schedule_ = schedule
            self.model_, self.bundles_, self.outcome_ = model, bset, outcome
            self.n_bands_, self.n_endmembers_ = cube.n_bands, p
            self.reference_ = None if bset is None else np.array(bset.reference, dtype=np.float64)
            self.initial_reference_ = initial_reference  # before any relabelling
            self._image_batch_statistics = False
            self._calibrate(cube)
            abundances = self.transform(cube)
            endmembers = self.endmembers_
        finally:
            torch.set_num_threads(old_threads)
        seconds = time.perf_counter() - t0
        self.result_ = UnmixingResult.from_arrays(
            cube,
            abundances,
            endmembers,
            method=self.method,
            config=self.get_config(),
            seconds=seconds,
            history=outcome.history,
            partial=outcome.partial,
            stop_reason=outcome.stop_reason,
        )
        return abundances

    def _schedule(self, steps_per_epoch: int) -> dict:
        """Epoch bound and the stopping rule's and the monitor's spacing, in epochs, for this run.

        The rule is laid out in optimiser steps (a check every CHECK_STEPS, none before MIN_STEPS)
        so that it means the same on a scene of one step per epoch and on one of five.
        """
        hp = self.hyperparameters_
        epochs = AUTO_EPOCHS if hp["epochs"] == "auto" else hp["epochs"]
        steps = max(int(steps_per_epoch), 1)
        check_every = max(1, int(round(CHECK_STEPS / steps)))
        # Each RMSE evaluation (truth known) is a full-image forward pass: about 25 over the bound
        # keeps their cost small; a converged run is also evaluated at its last epoch.
        eval_every = hp["eval_every"] or max(1, epochs // 25)
        return dict(
            epochs=epochs,
            check_every=check_every,
            eval_every=eval_every,
            patience=PATIENCE,
            min_epochs=-(-MIN_STEPS // steps),
        )

    def _probe(self, model: _EGUBase, pixels: torch.Tensor):
        """The stopping rule's probe: abundances of a fixed sample of training pixels, no truth.

        Up to PROBE_PIXELS pixels drawn once from the seed's "batches" stream; batch norms use the
        sample's own statistics (the whole-image statistics are only stored after training).
        """
        n = pixels.shape[0]
        if n > PROBE_PIXELS:
            rng = np.random.default_rng(seed_sequence(self.seed_, "batches").spawn(2)[0])
            index = np.sort(rng.choice(n, PROBE_PIXELS, replace=False))
            sample = pixels[torch.from_numpy(index).to(pixels.device)]
        else:
            sample = pixels

        def probe() -> torch.Tensor:
            model.eval()
            try:
                with torch.no_grad(), batch_statistics(model):
                    return model.unmix(sample)
            finally:
                model.train()

        return probe

    def _monitor(self, model: _EGUBase, cube: HyperCube, pixels: torch.Tensor):
        """RMSE against truth during training, read the authors' way (whole-image statistics)."""
        from .. import metrics

        truth = cube.true_abundance_pixels[cube.valid_mask.ravel()]
        chunks = self._statistics_chunks(pixels)

        def evaluate() -> dict:
            model.eval()
            try:
                with torch.no_grad():
                    if len(chunks) == 1:
                        with batch_statistics(model):
                            ab = model.unmix(pixels)
                    else:  # too many pixels for one pass: exact whole-image statistics, in chunks
                        calibrate(model.pixel_norms(), model.unmix, chunks)
                        ab = torch.cat([model.unmix(c) for c in chunks])
            finally:
                model.train()
            est = ab.double().cpu().numpy()
            if not np.isfinite(est).all():  # a diverging run: the trainer's checks handle it
                return {"rmse": float("nan")}
            return {"rmse": metrics.score(est, truth)["rmse"]}

        return evaluate

    def _calibrate(self, cube: HyperCube) -> None:
        """Fix every batch norm's statistics to the training image's (see networks.calibrate)."""
        model = self.model_
        model.eval()
        pixels = self._pixels_tensor(cube, valid_only=True)
        chunks = self._statistics_chunks(pixels)
        # No gradients: a pass that builds an autograd graph keeps every activation alive.
        with torch.no_grad():
            calibrate(model.pixel_norms(), model.unmix, chunks)
            if self.variant == "ss":
                # The image stream's one batch is the whole image: one pass records every statistic
                # on its path (the shared third layer's into model.image_bn3, so the pixel statistics
                # above stay), after which eval mode reproduces that batch-statistics pass, in tiles too.
                calibrate(model.image_norms(), model.image_stream, [self._image_tensor(cube)])
            else:
                ab = torch.cat([model.unmix(c) for c in chunks])
                calibrate(list(model.decoder.norms), model.decode, self._statistics_chunks(ab))

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> _EGUBase:
        model = getattr(self, "model_", None)
        if model is None:
            if getattr(self, "members_", None):
                raise InputError(
                    "this EGUNet is an ensemble: transform gives its members' mean; one network's "
                    "weights, maps or checkpoint are a member's (members_[i])"
                )
            raise InputError("this EGUNet is not fitted yet; call fit(cube) or EGUNet.load(path) first")
        return model

    def transform(self, cube: HyperCube, stream: str = "endmember") -> np.ndarray:
        """Abundances of every pixel of ``cube``: a NumPy array (N, P) float64, rows in row-major pixel order.

        Always computed, also for a lazy cube (use :meth:`abundance_maps` for a lazy, labelled
        ``(endmember, y, x)`` DataArray). Pixels the cube marks invalid get the abundances of their
        stored (filled) spectra; ``result_`` sets them to NaN. ``stream="endmember"`` (default, see
        the class notes) or ``"unmixing"`` (for "ss" the convolutional stream with stored
        statistics, in tiles; for "pw"/"ae" the same numbers as "endmember").
        """
        check_choice("stream", stream, ("endmember", "unmixing"))
        if getattr(self, "members_", None):  # an ensemble: the members' aligned mean
            from .ensemble import ensemble_transform

            return ensemble_transform(self, self._check_cube(cube), stream)
        if stream == "unmixing" and self.variant == "ss":
            maps, _ = self._image_stream(self._check_input(cube), reconstruct=False)
            return maps[0].reshape(maps.shape[1], -1).T.double().cpu().numpy()
        maps = self.abundance_maps(cube)  # (endmember, y, x); computed chunk by chunk if lazy
        return np.asarray(maps.values, dtype=np.float64).reshape(maps.shape[0], -1).T

    def pixel_unmixer(self, precision: str = "float32", chunk_size: int | None = None) -> PixelUnmixer:
        """The trained endmember stream as a plain function (..., bands) array → (..., P) float32.

        Batch norms are folded into the linear layers (see :mod:`~egu_widgets.engine.inference`);
        the result equals ``transform`` to float32 rounding. ``precision="bfloat16"`` (or ``"bf16"``)
        does the matrix products in bfloat16, close to float32; it is refused on a CPU without
        bfloat16 hardware, where torch would emulate it (docs/engine.md gives its error and speed).
        The object pickles, so it can be shipped to dask workers.
        """
        model = self._require_fitted()
        if chunk_size is None:
            chunk_size = min(self.hyperparameters_["chunk_size"], 65536)
        return PixelUnmixer.from_encoder(model.encoder, precision=precision, chunk_size=chunk_size)

    def transform_array(self, pixels: np.ndarray, precision: str = "float32") -> np.ndarray:
        """Abundances (..., P) float32 of a raw array of spectra (..., bands): no cube, no copies
        beyond one chunk. The fastest way to apply a trained model to many pixels."""
        return self.pixel_unmixer(precision)(pixels)  # which checks the band count

    def abundance_maps(self, cube: HyperCube, precision: str = "float32"):
        """The endmember stream's abundances as an ``(endmember, y, x)`` float32 DataArray.

        For a lazy (dask-backed) cube, e.g. ``open_cube("big.nc", chunks={"y": 512})``, the result
        is lazy too: each chunk is unmixed when computed (``.compute()``, ``.to_netcdf(...)``), on
        whatever dask scheduler is active, so scenes larger than memory stream through.
        """
        from ..chunked import map_pixels

        model = self._require_fitted()
        maps = map_pixels(self._check_input(cube), self.pixel_unmixer(precision), model.n_endmembers, dtype=np.float32)
        names = [f"endmember {i + 1}" for i in range(model.n_endmembers)]
        return maps.assign_coords(endmember=names)

    def _image_stream(self, cube: HyperCube, reconstruct: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ss unmixing stream on the cube: maps (1, P, H, W) and reconstruction (1, B, H, W) or None.

        Batch norms use the training image's stored statistics, and the image is processed in
        tiles (``tiled_image_stream``: the whole-image result within float rounding, with working
        memory bounded by the tile size).
        """
        model = self.model_
        model.eval()
        image = self._image_tensor(cube)
        if getattr(self, "_image_batch_statistics", False):
            with torch.no_grad(), batch_statistics(model):
                return model.image_stream(image)
        return model.tiled_image_stream(image, reconstruct=reconstruct)

    def reconstruct(self, cube: HyperCube) -> np.ndarray:
        """The unmixing stream's reconstruction of the cube's pixels, (N, B) float64.

        For "ss" the convolutional stream, with the training image's stored statistics, in tiles.
        """
        cube = self._check_input(cube)
        model = self.model_
        model.eval()
        with torch.no_grad():
            if self.variant == "ss":
                _, rec = self._image_stream(cube)
                out = rec[0].permute(1, 2, 0).reshape(-1, rec.shape[1])
            else:
                pixels = self._pixels_tensor(cube, valid_only=False)
                out = torch.cat([model(c)[1] for c in self._chunks(pixels)])
        return out.double().cpu().numpy()

    @property
    def endmembers_(self) -> np.ndarray:
        """(P, B) float64 endmembers that go with the abundances (see the class notes).

        EGU-Net ("pw", "ss"): the reference endmembers the bundle labels were computed against;
        output p is trained to be the abundance of reference spectrum p. "ae": the decoder's
        spectra (it has no reference). With ``relabel`` rounds, the spectra of the last round's
        labels (``initial_reference_`` keeps the first reference).
        """
        self._require_fitted()
        if self.reference_ is not None:
            return np.array(self.reference_, dtype=np.float64)
        return self.decoder_endmembers_

    @property
    def decoder_endmembers_(self) -> np.ndarray:
        """(P, B) float64: the decoder applied to each pure (one-hot) abundance vector.

        For "ss" the decoder is convolutional and is applied to a spatially uniform pure patch
        (its centre pixel is read). Batch norms use the training image's statistics. These are
        the network's own reconstruction of a pure pixel, shaped by the sigmoid output layer;
        they are further from the truth than the reference spectra, which is why they are not
        what ``endmembers_`` returns.
        """
        model = self._require_fitted()
        model.eval()
        eye = torch.eye(model.n_endmembers, device=next(model.parameters()).device)
        with torch.no_grad():
            return model.decode(eye).double().cpu().numpy()

    @property
    def history_(self) -> dict:
        """Per-epoch training curves of the fit (empty before fitting and for a loaded model)."""
        outcome = getattr(self, "outcome_", None)
        return {} if outcome is None else dict(outcome.history)

    def get_config(self) -> dict:
        """Everything needed to rebuild this estimator (JSON-able); resolved values once fitted."""
        fitted = getattr(self, "model_", None) is not None
        hp = self.hyperparameters_ if fitted else self.get_hyperparameters()
        cfg = dict(
            variant=self.variant,
            method=self.method,
            n_endmembers=self.n_endmembers,
            seed=self.seed,
            preset=self.preset,
            hyperparameters=hp,
            device=str(self.device_ if fitted else self.device),
        )
        if fitted:
            cfg["n_endmembers"] = self.model_.n_endmembers
            cfg["n_bands"] = self.n_bands_
        if getattr(self, "bundles_", None) is not None:
            cfg["bundles"] = self.bundles_.config
        outcome = getattr(self, "outcome_", None)
        if outcome is not None:
            cfg["training"] = dict(
                epochs_done=outcome.epochs_done,
                steps_done=outcome.steps_done,
                partial=outcome.partial,
                stop_reason=outcome.stop_reason,
                seconds=outcome.seconds,
                stop=outcome.stop,
                converged=outcome.converged,
                failed=outcome.failed,
                change=None if np.isnan(outcome.change) else outcome.change,
                averaged=outcome.averaged,
                **getattr(self, "schedule_", {}),
            )
        return cfg

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike) -> None:
        """Write weights and configuration to one file, atomically.

        The file is a ``torch.save`` dict of tensors and strings only (loadable with
        ``weights_only=True``), with a SHA-256 digest of the weights so that edits or corruption
        are detected on load.
        """
        model = self._require_fitted()
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        config = json.dumps(self.get_config(), sort_keys=True, default=_jsonable)
        if self.reference_ is not None:  # kept beside the weights, covered by the digest
            state = dict(state, **{_REFERENCE_KEY: torch.from_numpy(np.ascontiguousarray(self.reference_))})
        initial = getattr(self, "initial_reference_", None)
        if initial is not None and self.reference_ is not None and not np.array_equal(initial, self.reference_):
            state = dict(state, **{_INITIAL_REFERENCE_KEY: torch.from_numpy(np.ascontiguousarray(initial))})
        if getattr(self, "bundles_", None) is not None and self.bundles_.curated:  # the curated set goes with it
            arrays = self.bundles_.arrays().items()
            state = dict(state, **{CHECKPOINT_PREFIX + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays})
        payload = {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "config": config,
            "state": state,
            "digest": _digest(state, config),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Any = "cpu") -> EGUNet:
        """Rebuild a fitted estimator from :meth:`save`'s file; never executes code from it.

        ``outcome_`` and ``result_`` are None: a checkpoint keeps the model, not its training run;
        ``bundles_`` is the curated bundle set the model was trained on when it had one, else None.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path!r} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle refusals, truncation, not-a-zip...
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise CheckpointError(
                f"{path!r} is not a readable EGU-Net checkpoint ({type(exc).__name__}: {first})"
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path!r} is not an EGU-Net checkpoint (format marker missing)")
        if payload.get("version") != _CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path!r} has checkpoint version {payload.get('version')!r}; this version reads {_CHECKPOINT_VERSION}"
            )
        state, config = payload.get("state"), payload.get("config")
        if (
            not isinstance(state, dict)
            or not isinstance(config, str)
            or not all(isinstance(v, torch.Tensor) for v in state.values())
        ):
            raise CheckpointError(f"{path!r} is damaged: weights or configuration missing")
        if payload.get("digest") != _digest(state, config):
            raise CheckpointError(f"{path!r} was modified or corrupted: its weights do not match their recorded digest")
        try:
            cfg = json.loads(config)
            hp = cfg["hyperparameters"]
            est = cls(
                cfg["variant"],
                cfg["n_endmembers"],
                seed=cfg["seed"],
                device=device,
                preset=cfg["preset"],
                progress=False,
                **{k: hp[k] for k in HYPERPARAMETERS if k in hp},
            )
            est.hyperparameters_ = est.get_hyperparameters()
            est.seed_ = check_seed(est.seed)
            n_bands, p = int(cfg["n_bands"]), int(cfg["n_endmembers"])
            state = dict(state)
            reference = state.pop(_REFERENCE_KEY, None)
            initial = state.pop(_INITIAL_REFERENCE_KEY, None)
            saved = {
                k[len(CHECKPOINT_PREFIX) :]: state.pop(k).numpy()
                for k in list(state)
                if k.startswith(CHECKPOINT_PREFIX)
            }
            curated = SpectralBundles.from_arrays(saved, cfg.get("bundles")) if saved else None
            with torch.random.fork_rng(devices=[]):
                model = build_model(est.variant, n_bands, p, est.hyperparameters_)
            image_keys = [k for k in model.state_dict() if k.startswith("image_bn3.")]
            legacy = bool(image_keys) and not any(k in state for k in image_keys)
            if legacy:  # written before the image stream's statistics were stored: placeholders
                state.update({k: v for k, v in model.state_dict().items() if k in image_keys})
            model.load_state_dict(state, strict=True)
            if reference is not None and tuple(reference.shape) != (p, n_bands):
                raise ValueError(f"reference endmembers of shape {tuple(reference.shape)}")
        except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
            raise CheckpointError(f"{path!r} does not describe a model this version can rebuild ({exc})") from exc
        est.device_ = _resolve_device(device)
        model.to(est.device_).eval()
        est.model_, est.n_bands_, est.n_endmembers_ = model, n_bands, p
        est.outcome_ = est.result_ = None
        est.bundles_ = curated
        # True only for ss checkpoints written before the image stream's statistics were stored:
        # that stream then runs on the whole image with batch statistics, as it did.
        est._image_batch_statistics = legacy
        est.reference_ = None if reference is None else reference.double().numpy()
        est.initial_reference_ = est.reference_ if initial is None else initial.double().numpy()
        return est

    def __repr__(self) -> str:
        state = "fitted" if getattr(self, "model_", None) is not None else "not fitted"
        return (
            f"EGUNet(variant={self.variant!r}, n_endmembers={self.n_endmembers}, preset={self.preset!r}, "
            f"seed={self.seed}, {state})"
        )


def _digest(state: dict, config: str) -> str:
    h = hashlib.sha256(config.encode())
    for key in sorted(state):
        t = state[key]
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        buf = io.BytesIO()
        buf.write(t.detach().cpu().contiguous().numpy().tobytes())
        h.update(buf.getvalue())
    return h.hexdigest()


def run_egu(
    cube: HyperCube,
    *,
    method: str,
    n_endmembers: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    device: Any = "cpu",
    callbacks: Sequence[CallbackLike] | None = None,
    progress: bool = False,
    **options: Any,
) -> UnmixingResult:
    """Train EGU-Net (``method`` "egu-pw", "egu-ss") or the ``ae`` ablation on ``cube``; return the result.

    ``options``: ``preset``; hyperparameters (see :class:`EGUNet`); bundle options
    (``bundle_mode`` or ``mode``, ``patch_size``, ``stride``, ``dedup``, ``project``,
    ``reference``, ``label_scale``), or ``bundles=`` as in EGUNet; ``control`` (a TrainingControl);
    ``ensemble`` (K members, as in EGUNet).
    """
    if method not in METHOD_VARIANTS:
        raise InputError(f"method {method!r} is not an EGU-Net method; choose one of {', '.join(METHOD_VARIANTS)}")
    options = dict(options)
    preset = options.pop("preset", "default")
    control = options.pop("control", None)
    ensemble = options.pop("ensemble", None)
    bundles = options.pop("bundles", None)
    bundle_opts = {k: options.pop(k) for k in list(options) if k in BUNDLE_OPTIONS}
    if "mode" in bundle_opts:
        options.setdefault("bundle_mode", bundle_opts.pop("mode"))
    if bundle_opts:
        if bundles is not None:
            raise InputError(f"give bundle options either in bundles= or as keywords, not both ({sorted(bundle_opts)})")
        bundles = bundle_opts
    unknown = sorted(set(options) - set(HYPERPARAMETERS))
    if unknown:
        raise InputError(
            f"unknown option(s) {unknown} for {method}; hyperparameters: {', '.join(HYPERPARAMETERS)}; "
            f"bundle options: {', '.join(BUNDLE_OPTIONS)}"
        )
    est = EGUNet(
        METHOD_VARIANTS[method],
        n_endmembers,
        epochs=epochs,
        seed=seed,
        device=device,
        preset=preset,
        bundles=bundles,
        progress=progress,
        ensemble=ensemble,
        **options,
    )
    est.fit(cube, callbacks=callbacks, control=control)
    return est.result_
