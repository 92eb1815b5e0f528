"""EGU-Net as an estimator (``EGUNet(...).fit(cube).transform(cube)``) and the one-call ``run_egu``.

Data flow: cube → :func:`~egu_widgets.engine.bundles.extract_bundles` → network
(:mod:`~egu_widgets.engine.networks`) → :func:`~egu_widgets.engine.trainer.train` →
:class:`~egu_widgets.results.UnmixingResult`. Nothing here draws anything; progress goes through
callbacks.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .._atomic import atomic_path
from ..cube.hypercube import HyperCube
from ..errors import CheckpointError, InputError
from ..results import UnmixingResult, _jsonable
from .bundles import BUNDLE_MODES, BUNDLE_OPTIONS, SpectralBundles, extract_bundles
from .events import CallbackLike, TrainingControl
from .inference import PixelUnmixer
from .networks import _EGUBase, batch_statistics, build_model, calibrate
from .trainer import ImageObjective, PixelObjective, TrainOutcome, train

__all__ = ["EGUNet", "run_egu", "PRESETS", "HYPERPARAMETERS", "METHOD_VARIANTS"]

#: The authors' settings (EGU-Net-pw.py / EGU-Net-ss.py) and ours. "default" is chosen by
#: measurement (see benchmarks/bench_engine.py); "paper" stays available.
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
    ),
}
# Ours: the authors' network settings; bundles labelled against N-FINDR spectra (bundles.py).
PRESETS["default"] = dict(PRESETS["paper"], bundle_mode="default")

#: Per-variant changes to a preset (applied before the user's keywords). The default ss keeps the
#: architecture but makes the convolutional stream ~4x cheaper (64-wide first convolution and
#: decoder) and takes one whole-image step per epoch instead of round(N / 8000): the authors'
#: ss needs ~8 s per step on the 200x200x224 scene on one CPU core, i.e. hours for their 1 000
#: steps. On Samson (seed 0, one core, the authors' bundle labels) the authors' ss took 700 s
#: for RMSE 0.128, the light one 93 s for 0.135 (0.122-0.136 over seeds 0-2): comparable
#: accuracy at a seventh of the time.
VARIANT_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "default": {"ss": dict(conv_width=64, decoder_widths=(32, 64, 64), image_steps=1)},
}

#: Hyperparameters accepted as keyword arguments (besides those of the presets).
HYPERPARAMETERS = tuple(PRESETS["paper"]) + ("eval_every", "num_threads", "chunk_size")
METHOD_VARIANTS = {"egu-pw": "pw", "egu-ss": "ss", "ae": "ae"}
_VARIANT_METHODS = {v: k for k, v in METHOD_VARIANTS.items()}
_CHECKPOINT_FORMAT = "egu_widgets.EGUNet"
_CHECKPOINT_VERSION = 1
_REFERENCE_KEY = "__reference_endmembers__"


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
            raise InputError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type != "cpu":
        raise InputError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def _check_whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    return int(value)


def _check_hyperparameters(hp: dict) -> dict:
    hp = dict(hp)
    hp["epochs"] = _check_whole("epochs", hp["epochs"], 0)
    hp["batch_size"] = _check_whole("batch_size", hp["batch_size"], 1)
    for name in ("lr", "weight_decay", "bundle_weight", "reconstruction_weight", "bn_eps"):
        v = hp[name]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v) or v < 0:
            raise InputError(f"{name} must be a finite number >= 0; got {v!r}")
        hp[name] = float(v)
    if hp["lr"] <= 0:
        raise InputError(f"lr must be > 0; got {hp['lr']}")
    if not (0 < float(hp["lr_decay"]) <= 1):
        raise InputError(f"lr_decay must be in (0, 1]; got {hp['lr_decay']!r}")
    hp["lr_decay"] = float(hp["lr_decay"])
    if not (0 <= float(hp["dropout"]) < 1):
        raise InputError(f"dropout must be in [0, 1); got {hp['dropout']!r}")
    hp["dropout"] = float(hp["dropout"])
    for name, n in (("encoder_widths", 3), ("decoder_widths", 3), ("kernels", 2)):
        v = hp[name]
        if isinstance(v, str) or not hasattr(v, "__len__") or len(v) != n:
            raise InputError(f"{name} must be {n} whole numbers; got {v!r}")
        hp[name] = [_check_whole(f"{name} entries", w, 1) for w in v]
    if any(k % 2 == 0 for k in hp["kernels"]):
        raise InputError(f"kernels must be odd (so that 'same' padding is symmetric); got {hp['kernels']}")
    if hp.get("eval_every") is not None:
        hp["eval_every"] = _check_whole("eval_every", hp["eval_every"], 1)
    if hp.get("num_threads") is not None:
        hp["num_threads"] = _check_whole("num_threads", hp["num_threads"], 1)
    hp["chunk_size"] = _check_whole("chunk_size", hp.get("chunk_size") or 262144, 1)
    for name in ("conv_width", "image_steps"):
        if hp.get(name) is not None:
            hp[name] = _check_whole(name, hp[name], 1)
    if hp["bundle_mode"] not in BUNDLE_MODES:
        raise InputError(f"bundle_mode {hp['bundle_mode']!r} is unknown; choose one of {', '.join(sorted(BUNDLE_MODES))}")
    return hp


class EGUNet:
    """Endmember-guided unmixing network (EGU-Net), pixel-wise ("pw") or spatial-spectral ("ss").

    Parameters
    ----------
    variant : "pw", "ss", or "ae" (the autoencoder ablation: the unmixing stream alone, no bundles).
    n_endmembers : P; None takes the cube's truth count at ``fit``.
    epochs : training epochs (None: the preset's, 200).
    seed : everything random (VCA directions, initial weights, shuffling, dropout) derives from it;
        on the CPU with ``num_threads=1`` the same seed gives bit-identical abundances (with more
        threads separate processes can differ: see README). The global NumPy and
        torch random states are not touched.
    device : "cpu" or "cuda" ("cuda:N"); asking for CUDA without one raises InputError.
    preset : "default" or "paper" (the authors' settings); keyword hyperparameters override it:
        lr, lr_decay (per step), batch_size, weight_decay, dropout, encoder_widths, decoder_widths,
        kernels, conv_width and image_steps (ss), bn_eps, bundle_weight, reconstruction_weight,
        bundle_mode; and eval_every
        (epochs between RMSE evaluations when the cube has truth), num_threads (torch threads while
        fitting), chunk_size (pixels per inference pass).
    bundles : how to build the spectral bundles: None (the preset's ``bundle_mode``), a mode name,
        a dict of :func:`extract_bundles` options, or a ready :class:`SpectralBundles`.
    progress : show a console progress bar when ``fit`` gets no callbacks.

    Which abundances are returned
    -----------------------------
    ``transform`` (and ``result_``) give the **endmember stream applied to every pixel**, with batch
    normalisation using the statistics of all the training image's pixels (stored after training),
    which is how the authors read their abundances. For "pw" and "ae" the unmixing stream is the
    very same encoder, so the two streams' abundances are identical; ``stream="unmixing"`` gives the
    same numbers. For "ss" they differ: the convolutional unmixing stream predicts abundances at
    1/8 resolution and upsamples them with a transposed convolution, which blurs every boundary,
    while the pixel-wise endmember stream keeps full resolution; the endmember stream is also the
    one trained against the bundle labels, so it is the one the pseudo-labels calibrate. Measured
    (benchmarks/bench_engine.py --streams, default preset with the authors' bundle labels, i.e.
    ``bundle_mode="faithful"``, seeds 0-2): endmember stream RMSE
    0.122-0.136 on Samson and 0.108-0.122 on Jasper Ridge, unmixing stream 0.37-0.40 and
    0.33-0.34 (no better than the ``ae`` ablation: only the shared third layer ties it to the
    labels). ``transform(cube, stream="unmixing")`` gives the unmixing stream's maps, computed with
    the image stream's own stored whole-training-image statistics, tile by tile (equal to one
    whole-image pass with batch statistics on the training image, within float rounding).

    ``endmembers_`` (P, B), also stored in ``result_``: for "pw" and "ss" the reference endmembers
    the bundle labels were computed against (whole-image N-FINDR by default; "paper": VCA), in
    the data's units. The network's output p
    is trained to be the abundance of reference spectrum p, so these are the spectra the
    abundances refer to, and aligning results to the truth by them is reliable. The decoder's own
    spectra (the decoder applied to one-hot abundances) are ``decoder_endmembers_``; they are not
    used for the result because they are poor estimates (pw on Samson: 10-15 degrees from the
    truth; ss: aligning by them mislabelled the materials and turned an abundance RMSE of 0.14
    into 0.51). For "ae" there is no reference and ``endmembers_`` is the decoder's spectra.
    """

    def __init__(self, variant: str = "pw", n_endmembers: int | None = None, *, epochs: int | None = None,
                 seed: int = 0, device: Any = "cpu", preset: str = "default", bundles: Any = None,
                 progress: bool = True, **hyperparameters: Any):
        if variant not in ("pw", "ss", "ae"):
            raise InputError(f"variant {variant!r} is unknown; choose 'pw', 'ss' or 'ae'")
        if preset not in PRESETS:
            raise InputError(f"preset {preset!r} is unknown; choose one of {', '.join(PRESETS)}")
        unknown = sorted(set(hyperparameters) - set(HYPERPARAMETERS))
        if unknown:
            raise InputError(f"unknown hyperparameter(s) {unknown}; known: {', '.join(HYPERPARAMETERS)}")
        if n_endmembers is not None:
            n_endmembers = _check_whole("n_endmembers", n_endmembers, 2)
        hp = dict(PRESETS[preset])
        hp.update(VARIANT_PRESETS[preset].get(variant, {}))
        hp.update({k: v for k, v in hyperparameters.items() if v is not None})
        if epochs is not None:
            hp["epochs"] = epochs
        self.variant = variant
        self.n_endmembers = n_endmembers
        self.seed = _check_whole("seed", seed, 0)
        self.device = _resolve_device(device)
        self.preset = preset
        self.hyperparameters = _check_hyperparameters(hp)
        self.bundles = bundles
        self.progress = bool(progress)
        self.model_: _EGUBase | None = None
        self.bundles_: SpectralBundles | None = None
        self.result_: UnmixingResult | None = None
        self.outcome_: TrainOutcome | None = None
        self.n_bands_: int | None = None
        self.reference_: np.ndarray | None = None
        self.endmember_order_: str = ""
        # True only for ss checkpoints written before the image stream's statistics were stored
        # (see load): that stream then runs on the whole image with batch statistics, as it did.
        self._image_batch_statistics = False

    # ------------------------------------------------------------------ helpers
    @property
    def method(self) -> str:
        return _VARIANT_METHODS[self.variant]

    def _generator(self, offset: int, device: torch.device | None = None) -> torch.Generator:
        # Separate streams for initialisation and for training noise, both from the one seed.
        g = torch.Generator(device=self.device if device is None else device)
        g.manual_seed(self.seed * 1000003 + offset)
        return g

    def _bundles_for(self, cube: HyperCube, p: int, bundles: Any) -> SpectralBundles:
        spec = self.bundles if bundles is None else bundles
        if isinstance(spec, SpectralBundles):
            b = spec
        else:
            if spec is None:
                opts: dict = {"mode": self.hyperparameters["bundle_mode"]}
            elif isinstance(spec, str):
                opts = {"mode": spec}
            elif isinstance(spec, Mapping):
                opts = dict(spec)
                opts.setdefault("mode", self.hyperparameters["bundle_mode"])
            else:
                raise InputError(f"bundles= takes None, a mode name, a dict of options or SpectralBundles; got {type(spec).__name__}")
            unknown = sorted(set(opts) - set(BUNDLE_OPTIONS) - {"seed"})
            if unknown:
                raise InputError(f"unknown bundle option(s) {unknown}; known: {', '.join(BUNDLE_OPTIONS)}")
            opts.setdefault("seed", self.seed)
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
        pixels = cube.pixels
        if valid_only:
            pixels = pixels[cube.valid_mask.ravel()]
        return torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)

    def _image_tensor(self, cube: HyperCube) -> torch.Tensor:
        img = np.ascontiguousarray(cube.image.transpose(2, 0, 1), dtype=np.float32)[None]
        return torch.from_numpy(img).to(self.device)

    def _chunks(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = max(1, -(-x.shape[0] // self.hyperparameters["chunk_size"]))
        return list(x.tensor_split(n)) if n > 1 else [x]

    # ------------------------------------------------------------------ fit
    def fit(self, cube: HyperCube, bundles: Any = None, callbacks: Sequence[CallbackLike] | None = None,
            control: TrainingControl | None = None) -> "EGUNet":
        """Train on ``cube``. Bundles are built from the cube unless given; see the class doc.

        ``callbacks`` receive training events; with none and ``progress=True`` a console bar is
        shown. ``control`` (optional) lets other code stop the run (``control.request_stop()``).
        A stopped, interrupted or diverged run still yields a model and ``result_``
        (``result_.partial`` is True and ``result_.ds.attrs["stop_reason"]`` says why).
        """
        cube = self._check_cube(cube)
        from ..unmixing import check_n_endmembers

        p = check_n_endmembers(cube, self.n_endmembers)
        hp = self.hyperparameters
        t0 = time.perf_counter()
        old_threads = torch.get_num_threads()
        if hp.get("num_threads"):
            torch.set_num_threads(hp["num_threads"])
        try:
            bset = None if self.variant == "ae" else self._bundles_for(cube, p, bundles)
            # Weights are drawn on the CPU (then moved), so CPU and GPU runs start from the same ones.
            model = build_model(self.variant, cube.n_bands, p, hp, generator=self._generator(1, torch.device("cpu")))
            model.to(self.device)
            valid = cube.valid_mask
            pixels = self._pixels_tensor(cube, valid_only=True)
            weights = dict(bundle_weight=hp["bundle_weight"] if bset is not None else 0.0,
                           reconstruction_weight=hp["reconstruction_weight"], weight_decay=hp["weight_decay"])
            xb = yb = None
            if bset is not None:
                xb = torch.from_numpy(bset.spectra).to(self.device)
                yb = torch.from_numpy(bset.labels).to(self.device)
            noise = self._generator(2)
            if self.variant == "ss":
                vmask = None
                if not valid.all():
                    vmask = torch.from_numpy(valid.astype(np.float32))[None, None].to(self.device)
                steps = hp.get("image_steps") or max(1, int(round(pixels.shape[0] / hp["batch_size"])))
                objective = ImageObjective(model, self._image_tensor(cube), xb, yb, valid=vmask,
                                           steps_per_epoch=steps, **weights)
            else:
                objective = PixelObjective(model, pixels, xb, yb, batch_size=hp["batch_size"], generator=noise, **weights)
            evaluate = self._monitor(model, cube, pixels) if cube.true_abundances is not None else None
            if callbacks is None:
                callbacks = []
                if self.progress:
                    from .progress import ConsoleProgress

                    callbacks = [ConsoleProgress()]
            info = dict(method=self.method, variant=self.variant, preset=self.preset, cube=cube.name,
                        height=cube.height, width=cube.width, n_bands=cube.n_bands, n_endmembers=p,
                        n_pixels=int(pixels.shape[0]), n_bundles=0 if bset is None else bset.n_bundles,
                        steps_per_epoch=objective.steps_per_epoch, device=str(self.device), seed=self.seed,
                        n_parameters=int(sum(q.numel() for q in model.parameters())),
                        bundle_seconds=time.perf_counter() - t0)
            # About 25 RMSE evaluations per run: each is a full-image forward pass (on the paper scene
            # ~0.1 s), so evaluating every epoch would add ~10 % to the training time.
            eval_every = hp.get("eval_every") or max(1, hp["epochs"] // 25)
            outcome = train(model, objective, epochs=hp["epochs"], lr=hp["lr"], lr_decay=hp["lr_decay"],
                            callbacks=callbacks, control=control, evaluate=evaluate, eval_every=eval_every,
                            info=info, generator=noise, rng=np.random.default_rng([self.seed, 3]))
            self.model_, self.bundles_, self.outcome_, self.n_bands_ = model, bset, outcome, cube.n_bands
            self.reference_ = None if bset is None else np.array(bset.reference, dtype=np.float64)
            self._calibrate(cube)
            abundances = self.transform(cube)
            endmembers = self.endmembers_
        finally:
            torch.set_num_threads(old_threads)
        seconds = time.perf_counter() - t0
        self.result_ = UnmixingResult.from_arrays(
            cube, abundances, endmembers, method=self.method, config=self.get_config(), seconds=seconds,
            history=outcome.history, partial=outcome.partial, stop_reason=outcome.stop_reason,
        )
        return self

    def _monitor(self, model: _EGUBase, cube: HyperCube, pixels: torch.Tensor):
        """RMSE against truth during training, read the authors' way (whole-image statistics)."""
        from .. import metrics

        truth = cube.true_abundance_pixels[cube.valid_mask.ravel()]
        chunks = self._chunks(pixels)

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
            return {"rmse": metrics.score(est, truth)["rmse"]}

        return evaluate

    def _calibrate(self, cube: HyperCube) -> None:
        """Fix every batch norm's statistics to the training image's (see networks.calibrate)."""
        model = self.model_
        model.eval()
        pixels = self._pixels_tensor(cube, valid_only=True)
        chunks = self._chunks(pixels)
        calibrate(model.pixel_norms(), model.unmix, chunks)
        if self.variant == "ss":
            # The image stream's one batch is the whole image: one pass records every statistic
            # on its path (the shared third layer's into model.image_bn3, so the pixel statistics
            # above stay), after which eval mode reproduces that batch-statistics pass, in tiles too.
            calibrate(model.image_norms(), model.image_stream, [self._image_tensor(cube)])
        else:
            with torch.no_grad():
                ab = torch.cat([model.unmix(c) for c in chunks])
            calibrate(list(model.decoder.norms), model.decode, self._chunks(ab))

    # ------------------------------------------------------------------ inference
    def _require_fitted(self) -> _EGUBase:
        if self.model_ is None:
            raise InputError("this EGUNet is not fitted yet; call fit(cube) or EGUNet.load(path) first")
        return self.model_

    def transform(self, cube: HyperCube, stream: str = "endmember") -> np.ndarray:
        """Abundances (N, P) float64 for every pixel of ``cube`` (row-major pixel order).

        ``stream="endmember"`` (default, see the class doc) or ``"unmixing"`` (for "ss" the
        convolutional stream with stored statistics, in tiles; for "pw"/"ae" the same as "endmember").
        """
        if stream not in ("endmember", "unmixing"):
            raise InputError(f"stream={stream!r}; choose 'endmember' or 'unmixing'")
        if stream == "unmixing" and self.variant == "ss":
            maps, _ = self._image_stream(self._check_input(cube), reconstruct=False)
            return maps[0].reshape(maps.shape[1], -1).T.double().cpu().numpy()
        maps = self.abundance_maps(cube)  # (endmember, y, x); computed chunk by chunk if lazy
        return maps.values.reshape(maps.shape[0], -1).T.astype(np.float64)

    def pixel_unmixer(self, precision: str = "float32", chunk_size: int | None = None) -> PixelUnmixer:
        """The trained endmember stream as a plain function (..., bands) array → (..., P) float32.

        Batch norms are folded into the linear layers (see :mod:`~egu_widgets.engine.inference`);
        the result equals ``transform`` to float32 rounding. ``precision="bfloat16"`` does the matrix
        products in bfloat16 (7e-4 RMS from float32; for GPUs, no faster on the CPU measured, see
        :mod:`~egu_widgets.engine.inference`). The object pickles, so it can be shipped to dask
        workers.
        """
        model = self._require_fitted()
        return PixelUnmixer.from_encoder(model.encoder, precision=precision,
                                         chunk_size=min(self.hyperparameters["chunk_size"], 65536) if chunk_size is None
                                         else chunk_size)

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
        if self._image_batch_statistics:
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
        """(P, B) float64 endmembers that go with the abundances (see the class doc).

        EGU-Net ("pw", "ss"): the reference endmembers the bundle labels were computed against;
        output p is trained to be the abundance of reference spectrum p, so these are the spectra
        the abundances refer to. "ae": the decoder's spectra (it has no reference).
        """
        self._require_fitted()
        if self.reference_ is not None:
            return np.array(self.reference_, dtype=np.float64)
        return self.decoder_endmembers_

    @property
    def decoder_endmembers_(self) -> np.ndarray:
        """(P, B) float64: the decoder applied to each pure (one-hot) abundance vector.

        For "ss" the decoder is convolutional and is applied to a spatially uniform pure patch
        (its centre pixel is read). Batch norms use the training image's statistics. These spectra
        are the network's own reconstruction of a pure pixel, shaped by the sigmoid output layer;
        on Samson they are 10-15 degrees from the truth for pw (the reference VCA spectra: 2-7; both
        measured with the authors' bundles),
        and for ss they can be far off, which is why they are not what ``endmembers_`` returns.
        """
        model = self._require_fitted()
        model.eval()
        eye = torch.eye(model.n_endmembers, device=next(model.parameters()).device)
        with torch.no_grad():
            return model.decode(eye).double().cpu().numpy()

    @property
    def history_(self) -> dict:
        return {} if self.outcome_ is None else dict(self.outcome_.history)

    def get_config(self) -> dict:
        """Everything needed to rebuild this estimator (JSON-able)."""
        cfg = dict(variant=self.variant, method=self.method, n_endmembers=self.n_endmembers, seed=self.seed,
                   preset=self.preset, hyperparameters=self.hyperparameters, device=str(self.device))
        if self.model_ is not None:
            cfg["n_endmembers"] = self.model_.n_endmembers
            cfg["n_bands"] = self.n_bands_
        if self.bundles_ is not None:
            cfg["bundles"] = self.bundles_.config
        if self.outcome_ is not None:
            cfg["training"] = dict(epochs_done=self.outcome_.epochs_done, steps_done=self.outcome_.steps_done,
                                   partial=self.outcome_.partial, stop_reason=self.outcome_.stop_reason,
                                   seconds=self.outcome_.seconds)
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
        payload = {"format": _CHECKPOINT_FORMAT, "version": _CHECKPOINT_VERSION, "config": config,
                   "state": state, "digest": _digest(state, config)}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Any = "cpu") -> "EGUNet":
        """Rebuild a fitted estimator from :meth:`save`'s file; never executes code from it."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {path!r} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle refusals, truncation, not-a-zip...
            raise CheckpointError(
                f"{path!r} is not a readable EGU-Net checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path!r} is not an EGU-Net checkpoint (format marker missing)")
        if payload.get("version") != _CHECKPOINT_VERSION:
            raise CheckpointError(f"{path!r} has checkpoint version {payload.get('version')!r}; this version reads {_CHECKPOINT_VERSION}")
        state, config = payload.get("state"), payload.get("config")
        if not isinstance(state, dict) or not isinstance(config, str) or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path!r} is damaged: weights or configuration missing")
        if payload.get("digest") != _digest(state, config):
            raise CheckpointError(f"{path!r} was modified or corrupted: its weights do not match their recorded digest")
        try:
            cfg = json.loads(config)
            hp = cfg["hyperparameters"]
            est = cls(cfg["variant"], cfg["n_endmembers"], seed=cfg["seed"], device=device, preset=cfg["preset"],
                      progress=False, **{k: hp[k] for k in HYPERPARAMETERS if k in hp})
            state = dict(state)
            reference = state.pop(_REFERENCE_KEY, None)
            model = build_model(est.variant, int(cfg["n_bands"]), int(cfg["n_endmembers"]), est.hyperparameters)
            image_keys = [k for k in model.state_dict() if k.startswith("image_bn3.")]
            legacy = bool(image_keys) and not any(k in state for k in image_keys)
            if legacy:  # written before the image stream's statistics were stored: placeholders
                state.update({k: v for k, v in model.state_dict().items() if k in image_keys})
            model.load_state_dict(state, strict=True)
            if reference is not None and tuple(reference.shape) != (int(cfg["n_endmembers"]), int(cfg["n_bands"])):
                raise ValueError(f"reference endmembers of shape {tuple(reference.shape)}")
        except (KeyError, TypeError, ValueError, RuntimeError, InputError) as exc:
            raise CheckpointError(f"{path!r} does not describe a model this version can rebuild ({exc})") from exc
        model.to(est.device).eval()
        est.model_, est.n_bands_ = model, int(cfg["n_bands"])
        est._image_batch_statistics = legacy
        est.reference_ = None if reference is None else reference.double().numpy()
        return est

    def __repr__(self) -> str:
        state = "fitted" if self.model_ is not None else "not fitted"
        return f"EGUNet(variant={self.variant!r}, n_endmembers={self.n_endmembers}, preset={self.preset!r}, seed={self.seed}, {state})"


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


def run_egu(cube: HyperCube, *, method: str, n_endmembers: int | None = None, seed: int = 0, epochs: int | None = None,
            device: Any = "cpu", callbacks: Sequence[CallbackLike] | None = None, progress: bool = False,
            **options: Any) -> UnmixingResult:
    """Train EGU-Net (``method`` "egu-pw", "egu-ss") or the ``ae`` ablation on ``cube``; return the result.

    ``options``: ``preset``; hyperparameters (see :class:`EGUNet`); bundle options
    (``bundle_mode`` or ``mode``, ``patch_size``, ``stride``, ``per_patch``, ``dedup``,
    ``n_clusters``, ``project``, ``patch_snr``, ``reference``), or ``bundles=`` as in EGUNet;
    ``control`` (a TrainingControl).
    """
    if method not in METHOD_VARIANTS:
        raise InputError(f"method {method!r} is not an EGU-Net method; choose one of {', '.join(METHOD_VARIANTS)}")
    options = dict(options)
    preset = options.pop("preset", "default")
    control = options.pop("control", None)
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
    est = EGUNet(METHOD_VARIANTS[method], n_endmembers, epochs=epochs, seed=seed, device=device, preset=preset,
                 bundles=bundles, progress=progress, **options)
    est.fit(cube, callbacks=callbacks, control=control)
    return est.result_
