"""The method registry: every unmixing method by name, in one table.

:func:`~egu_widgets.unmixing.unmix`, the command line's ``--method`` choices and help, the
reproduction and the docs all read this table, so a method is added in one place: its module (an
adapter with ``fit(cube)``) and one :class:`MethodSpec` line in :data:`_REGISTRY` below.

A registry adapter is built as ``spec.factory(n_endmembers=..., seed=..., **options)`` (methods that
train also get ``epochs``, ``device``, ``callbacks`` and ``progress``) and fitted with
``fit(cube)``. After the fit it holds either ``result_`` (an :class:`~egu_widgets.results.UnmixingResult`,
as the EGU-Net entries do) or the arrays ``abundances_`` (N, P), ``endmembers_`` (P, B) or None and
``config_`` (a dict), which :func:`fit_result` wraps into a result.

Any other object with ``fit`` and ``transform`` (scikit-learn's NMF, for instance) can stand in for
a name: :func:`fit_estimator` fits it on the valid pixels, as HyperSpy's decomposition does.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .errors import InputError
from .memory import classic_bytes, egu_bytes
from .results import UnmixingResult
from .validation import check_n_endmembers

__all__ = [
    "DEFAULT_METHOD",
    "TRAINING_SETTINGS",
    "MethodSpec",
    "describe_methods",
    "fit_estimator",
    "fit_result",
    "get_method",
    "lazy_factory",
    "method_names",
]

#: The method ``unmix`` and the command line use when none is named.
DEFAULT_METHOD = "egu-pw"
#: Keywords every method that trains receives (and that the others never see).
TRAINING_SETTINGS = ("epochs", "device", "callbacks", "progress")


def lazy_factory(target: str) -> Callable[..., Any]:
    """A factory for ``"package.module:Name"`` that imports the module only when called.

    Keeps ``import egu_widgets.methods`` cheap: no method module (and no torch) is loaded until
    a method is built.
    """
    module, _, attr = target.partition(":")

    def build(**settings: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(**settings)

    build.__qualname__ = build.__name__ = f"lazy_factory({target!r})"
    return build


@dataclass(frozen=True)
class MethodSpec:
    """One registered method.

    Parameters
    ----------
    name : the name users type (``unmix(method=name)``, ``--method name``).
    label : a human-readable name for tables and figure titles.
    trains : whether the method trains a network (it then takes the training settings).
    factory : ``factory(n_endmembers=, seed=, **options)`` returns an unfitted adapter.
    options : the option names the method accepts beyond ``n_endmembers``, ``seed`` and the
        training settings; a tuple, or a function returning one, read when asked (the engine's
        options are read from the engine itself).
    description : one or two sentences for the docs and ``describe_methods``.
    memory : ``memory(cube, n_endmembers, options)`` -> the bytes a run on ``cube`` adds to what is
        resident (:mod:`egu_widgets.memory`); ``unmix`` refuses a run that would not fit. None: no
        estimate, nothing refused.
    """

    name: str
    label: str
    trains: bool
    factory: Callable[..., Any]
    options: Sequence[str] | Callable[[], Sequence[str]] = ()
    description: str = ""
    memory: Callable[[Any, int, dict[str, Any]], int] | None = None

    def estimate_memory(self, cube: Any, n_endmembers: int, options: dict[str, Any] | None = None) -> int | None:
        """Bytes a run on ``cube`` with P = ``n_endmembers`` adds (see ``memory``); None without an estimate."""
        return None if self.memory is None else int(self.memory(cube, n_endmembers, dict(options or {})))

    def accepted_options(self) -> tuple[str, ...]:
        """The option names this method accepts (see ``options``)."""
        names = self.options() if callable(self.options) else self.options
        return tuple(dict.fromkeys(names))

    def check_options(self, options: Sequence[str]) -> None:
        """Refuse, with one message, option names this method does not accept."""
        accepted = self.accepted_options()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = f"; it accepts {', '.join(accepted)}" if accepted else "; it takes none"
            raise InputError(f"method {self.name!r} takes no option(s) {unknown}{takes}")

    def build(self, n_endmembers: int | None = None, seed: int = 0, **options: Any) -> Any:
        """An unfitted adapter with these settings."""
        return self.factory(n_endmembers=n_endmembers, seed=seed, **options)

    def run(self, cube: Any, n_endmembers: int | None = None, seed: int = 0, **options: Any) -> UnmixingResult:
        """Build the adapter, fit it on ``cube`` and return the result."""
        return fit_result(self.build(n_endmembers, seed, **options), cube, method=self.name)


class _EguNetRun:
    """Registry adapter of the EGU-Net methods: validates P, then trains through ``engine.run_egu``.

    ``ensemble=K`` (an option) trains K members and gives their mean and spread
    (:mod:`egu_widgets.engine.ensemble`).
    """

    fits_cubes = True

    def __init__(
        self,
        method: str,
        n_endmembers: int | None = None,
        seed: int = 0,
        epochs: int | None = None,
        device: Any = "cpu",
        callbacks: Sequence | None = None,
        progress: bool = False,
        **options: Any,
    ) -> None:
        self.method = method
        self.n_endmembers = n_endmembers
        self.seed = seed
        self.epochs = epochs
        self.device = device
        self.callbacks = callbacks
        self.progress = progress
        self.options = options

    def fit(self, cube: Any) -> _EguNetRun:
        from .engine import run_egu

        p = check_n_endmembers(
            self.n_endmembers,
            n_bands=cube.n_bands,
            # a lazy cube's valid map is a pass over the file; its fit checks P against its sample
            n_pixels=cube.n_pixels if cube.reflectance.chunks is not None else int(cube.valid_mask.sum()),
            default=cube.n_true_endmembers,
        )
        self.result_ = run_egu(
            cube,
            method=self.method,
            n_endmembers=p,
            seed=self.seed,
            epochs=self.epochs,
            device=self.device,
            callbacks=self.callbacks,
            progress=self.progress,
            **self.options,
        )
        return self


def _engine_options() -> tuple[str, ...]:
    """What ``engine.run_egu`` takes beyond the training settings, read from the engine now."""
    from .engine.bundles import BUNDLE_OPTIONS
    from .engine.estimator import HYPERPARAMETERS

    return ("preset", "control", "bundles", "ensemble", *HYPERPARAMETERS, *BUNDLE_OPTIONS)


def _egu_memory(cube: Any, n_endmembers: int, options: dict[str, Any], *, whole_image: bool = False) -> int:
    """:func:`~egu_widgets.memory.egu_bytes` with the batch sizes and widths this run will use.

    ``whole_image``: the ss stream, whose steps pass every pixel of the image at once.
    """
    from .engine.estimator import _RUN_SETTINGS, PRESETS

    hp = {**_RUN_SETTINGS, **PRESETS.get(options.get("preset") or "default", PRESETS["default"])}
    hp.update({k: v for k, v in options.items() if v is not None})
    widths = sum(hp["encoder_widths"]) + sum(hp["decoder_widths"]) + cube.shape[2]
    streamed = 0
    if getattr(cube.reflectance, "chunks", None) is not None:  # fitted on a sample (engine/lazy_fit.py)
        streamed = _streaming_bytes(cube)
        cube = _SampleShape(min(cube.shape[0] * cube.shape[1], int(hp["sample_pixels"])), cube.shape[2])
    batch = cube.shape[0] * cube.shape[1] if whole_image else hp["batch_size"]
    return streamed + egu_bytes(cube, n_endmembers, batch_size=batch, bundle_batch=hp["bundle_batch"],
                                widths=widths, chunk_size=hp["chunk_size"])  # fmt: skip


#: Float32 copies of one chunk that the chunk-by-chunk unmixing of a lazy cube holds per dask
#: thread (the chunk read, its checked copy, the maps' inputs and outputs): bench_scale's peak RSS
#: of whole-scene unmixing (docs/scale.md).
_CHUNKS_PER_THREAD = 3


class _SampleShape:
    """What :func:`egu_bytes` reads of a cube (shape, valid mask), for a lazy cube's training sample."""

    def __init__(self, n_pixels: int, n_bands: int):
        self.shape = (1, int(n_pixels), int(n_bands))
        self.valid_mask = np.ones((1, int(n_pixels)), dtype=bool)


def _streaming_bytes(cube: Any) -> int:
    """Memory of a lazy cube's chunks in flight while its maps are computed and written."""
    import os

    import dask

    rows, cols, bands = (max(c) for c in cube.reflectance.chunks)
    threads = dask.config.get("num_workers", None) or os.cpu_count() or 1
    return int(_CHUNKS_PER_THREAD * threads * rows * cols * bands * 4)


_CLASSIC = "egu_widgets.classic.adapters"

#: The registry, in the order the command line and the docs list the methods.
_REGISTRY: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "vca-fcls",
            "FCLS (VCA endmembers)",
            False,
            lazy_factory(f"{_CLASSIC}:VcaFcls"),
            (),
            "Endmembers by VCA on the image, abundances by fully constrained least squares.",
            classic_bytes,
        ),
        MethodSpec(
            "fcls",
            "FCLS (given endmembers)",
            False,
            lazy_factory(f"{_CLASSIC}:Fcls"),
            ("endmembers",),
            "FCLS against given endmembers (endmembers=), or the cube's truth endmembers.",
            classic_bytes,
        ),
        MethodSpec(
            "sunsal",
            "SUnSAL (given or VCA endmembers)",
            False,
            lazy_factory(f"{_CLASSIC}:Sunsal"),
            ("endmembers", "lam"),
            "SUnSAL (non-negative, sparsity weight lam) against given, truth or VCA endmembers, then each "
            "pixel's abundances divided by their sum.",
            classic_bytes,
        ),
        MethodSpec(
            "nfindr-fcls",
            "FCLS (N-FINDR endmembers)",
            False,
            lazy_factory("egu_widgets.classic.nfindr_fcls:NFindrFcls"),
            (),
            "Endmembers by N-FINDR (started from VCA's picks), abundances by FCLS.",
            classic_bytes,
        ),
        MethodSpec(
            "egu-pw",
            "EGU-Net-pw",
            True,
            partial(_EguNetRun, "egu-pw"),
            _engine_options,
            "EGU-Net, pixel-wise: an endmember stream trained on spectral bundles guides the unmixing stream.",
            _egu_memory,
        ),
        MethodSpec(
            "egu-ss",
            "EGU-Net-ss",
            True,
            partial(_EguNetRun, "egu-ss"),
            _engine_options,
            "EGU-Net, spatial-spectral: the unmixing stream is convolutional over the whole image.",
            partial(_egu_memory, whole_image=True),
        ),
        MethodSpec(
            "ae",
            "AE ablation (no bundles)",
            True,
            partial(_EguNetRun, "ae"),
            _engine_options,
            "The unmixing autoencoder alone, without the endmember stream (EGU-Net's ablation).",
            _egu_memory,
        ),
    )
}


def method_names() -> tuple[str, ...]:
    """The registered method names, in the registry's order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered as ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}") from None


def describe_methods(*, options: bool = True) -> list[dict[str, Any]]:
    """One row per method (name, label, trains, options, description), for docs and help pages.

    ``options=False`` leaves the option names out (listing the EGU-Net ones imports the engine).
    """
    rows = []
    for spec in _REGISTRY.values():
        row: dict[str, Any] = {"name": spec.name, "label": spec.label, "trains": spec.trains}
        if options:
            row["options"] = spec.accepted_options()
        row["description"] = spec.description
        rows.append(row)
    return rows


def fit_result(model: Any, cube: Any, *, method: str) -> UnmixingResult:
    """Fit a registry adapter on ``cube`` and return its result (``result_``, or its wrapped arrays)."""
    start = time.perf_counter()
    model.fit(cube)
    seconds = time.perf_counter() - start
    result = getattr(model, "result_", None)
    if result is not None:
        return result
    return UnmixingResult.from_arrays(
        cube, model.abundances_, model.endmembers_, method=method, config=model.config_, seconds=seconds
    )


def _has_fit_transform(obj: Any) -> bool:
    return callable(getattr(obj, "fit", None)) and callable(getattr(obj, "transform", None))


def fit_estimator(estimator: Any, cube: Any, n_endmembers: int | None = None) -> UnmixingResult:
    """Unmix ``cube`` with any object that has ``fit`` and ``transform``.

    A registry adapter (``fits_cubes = True``) is fitted on the cube itself. Anything else is
    fitted on the valid pixels as an (N, B) matrix, scikit-learn style: ``fit(X)``, then
    ``transform(X)`` gives the abundances (N, P); the endmembers are its ``endmembers_`` or
    ``components_`` (P, B) when it has them. ``n_endmembers``, when given, must equal P.
    """
    kind = type(estimator).__name__
    if isinstance(estimator, type):
        raise InputError(f"method= got the class {estimator.__name__}; pass an instance, e.g. {estimator.__name__}()")
    if not _has_fit_transform(estimator):
        raise InputError(
            f"method must be a method name ({', '.join(_REGISTRY)}) or an object with fit() and transform(); got {kind}"
        )
    if getattr(estimator, "fits_cubes", False) is True:
        result = fit_result(estimator, cube, method=getattr(estimator, "name", "") or kind)
        if n_endmembers is not None and result.n_endmembers != n_endmembers:
            raise InputError(f"{kind} found {result.n_endmembers} endmembers but {n_endmembers} were asked for")
        return result
    valid = cube.valid_mask.ravel()
    x = cube.pixels[valid]
    start = time.perf_counter()
    estimator.fit(x)
    ab = np.asarray(estimator.transform(x), dtype=np.float64)
    seconds = time.perf_counter() - start
    if ab.ndim != 2 or ab.shape[0] != x.shape[0]:
        raise InputError(
            f"{kind}.transform gave shape {ab.shape}; expected ({x.shape[0]}, P) abundances, one row per valid pixel"
        )
    p = ab.shape[1]
    if n_endmembers is not None and p != n_endmembers:
        raise InputError(f"{kind} gave {p} abundances per pixel but {n_endmembers} endmembers were asked for")
    abundances = np.full((valid.size, p), np.nan)
    abundances[valid] = ab
    endmembers = None
    for attr in ("endmembers_", "components_"):
        value = getattr(estimator, attr, None)
        if value is not None:
            endmembers = np.asarray(value, dtype=np.float64)
            if endmembers.shape != (p, cube.n_bands):
                raise InputError(f"{kind}.{attr} has shape {endmembers.shape}; expected ({p}, {cube.n_bands})")
            break
    config: dict[str, Any] = {
        "n_endmembers": p,
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
    }
    if callable(getattr(estimator, "get_params", None)):
        config["params"] = estimator.get_params(deep=False)
    return UnmixingResult.from_arrays(cube, abundances, endmembers, method=kind, config=config, seconds=seconds)
