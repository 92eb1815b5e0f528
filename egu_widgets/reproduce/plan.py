"""What a reproduction runs (:class:`Plan`, :func:`plan_for`) and what each run records (:class:`Run`).

The comparison's scenes are the datasets that the cube registry marks as the paper's
(:func:`egu_widgets.cube.datasets.paper_datasets`), and its rows are methods of the method
registry (:mod:`egu_widgets.methods`), which also gives their labels and says which of them train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cube.datasets import dataset_names, paper_datasets
from ..errors import InputError
from ..methods import get_method, method_names
from ..validation import check_int, check_int_sequence

__all__ = [
    "DATASETS",
    "ENGINE_METHODS",
    "METHODS",
    "METHOD_LABELS",
    "Plan",
    "Run",
    "default_epochs",
    "plan_for",
]

#: The paper's scenes, in table order (the dataset registry marks them).
DATASETS = paper_datasets()
#: The comparison's rows, in table order: three classical baselines, the ablation, EGU-Net twice.
METHODS = ("vca-fcls", "nfindr-fcls", "sunsal", "ae", "egu-pw", "egu-ss")
#: How the comparison runs a method when that differs from the registry's general case.
_SETUPS = {"sunsal": "VCA endmembers"}  # the same endmembers as vca-fcls, see run._run_one


def _label(method: str) -> str:
    """The registry's label, its parenthesised detail replaced by the comparison's setup if any."""
    label = get_method(method).label
    return f"{label.split(' (')[0]} ({_SETUPS[method]})" if method in _SETUPS else label


#: Each row's label in the table and the figures (from the method registry).
METHOD_LABELS = {m: _label(m) for m in METHODS}
#: The rows that train a network (they get epochs, torch threads and training curves).
ENGINE_METHODS = tuple(m for m in METHODS if get_method(m).trains)


@dataclass(frozen=True)
class Plan:
    """What a reproduction runs.

    ``crop`` is the side of a square window (None: whole scene), ``epochs`` the training epochs
    of the engine methods (None: the engine's default) and ``ss_epochs``, when given, those of
    ``egu-ss`` instead; ``threads`` the torch threads while training (None: torch's default).
    """

    mode: str
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    crop: int | None = None
    epochs: int | None = None
    device: str = "cpu"
    threads: int | None = None
    ss_epochs: int | None = None

    def epochs_for(self, method: str) -> int | None:
        """The training epochs of ``method`` (None: the engine's default)."""
        return self.ss_epochs if method == "egu-ss" and self.ss_epochs is not None else self.epochs

    def describe(self) -> str:
        """One line for logs and the table header: crops, epochs, seeds, device and threads."""
        crop = "whole scenes" if self.crop is None else f"{self.crop}×{self.crop} crops"
        engine = [m for m in self.methods if m in ENGINE_METHODS]
        groups: dict = {}
        for m in engine:
            groups.setdefault(self.epochs_for(m), []).append(m)
        parts = []
        for n, ms in groups.items():
            count = f"the engine's default epochs ({_default_epochs_words()})" if n is None else f"{n} epochs"
            parts.append(count + ("" if len(groups) == 1 else f" for {', '.join(ms)}"))
        epochs = "; ".join(parts) if parts else "no training"
        threads = "" if self.threads is None else f", {self.threads} torch thread{'s' if self.threads > 1 else ''}"
        return f"{crop}, {epochs}, seeds {', '.join(map(str, self.seeds))}, device {self.device}{threads}"


def _default_epochs_words() -> str:
    """The engine's default epochs in words: "200", or "until converged, at most 200" for "auto"."""
    from ..engine import PRESETS

    bound = default_epochs()
    return f"until converged, at most {bound}" if PRESETS["default"]["epochs"] == "auto" else str(bound)


def default_epochs() -> int:
    """The engine's default number of training epochs (its ``default`` preset; for "auto" its bound)."""
    from ..engine import PRESETS
    from ..engine.estimator import AUTO_EPOCHS

    epochs = PRESETS["default"]["epochs"]
    return AUTO_EPOCHS if epochs == "auto" else int(epochs)


def _check_names(what: str, asked: Sequence[str], allowed: Sequence[str], known: Sequence[str]) -> None:
    """Refuse an empty selection or names outside ``allowed``, telling unknown names from others."""
    if not asked:
        raise InputError(f"no {what}s chosen; choose from {', '.join(allowed)}")
    unknown = [n for n in asked if n not in known]
    outside = [n for n in asked if n in known and n not in allowed]
    parts = ([f"unknown {what}(s) {unknown}"] if unknown else []) + (
        [f"{what}(s) {outside} are not part of the comparison"] if outside else []
    )
    if parts:
        raise InputError(f"{'; '.join(parts)}; choose from {', '.join(allowed)}")


def plan_for(
    fast: bool,
    *,
    datasets: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    crop: int | None | str = "mode",
    epochs: int | None | str = "mode",
    device: str = "cpu",
    threads: int | None | str = "mode",
    ss_epochs: int | None | str = "mode",
) -> Plan:
    """The plan of a fast or full run; keyword arguments override single settings.

    ``"mode"`` keeps the mode's value. Datasets and methods are put in the table's order,
    whatever order they were asked in. Raises :class:`~egu_widgets.errors.InputError` for an
    unknown or empty selection and for settings out of range.
    """
    # Fast mode trains small networks on small crops: one thread is as quick as two there and
    # does not collapse when other processes share the CPU (as in CI).
    # Full mode: the methods' own defaults, so that the table is the accuracy benchmark.
    base = Plan("fast", seeds=(0, 1), crop=32, epochs=20, threads=1) if fast else Plan("full")
    datasets = tuple(datasets) if datasets is not None else base.datasets
    methods = tuple(methods) if methods is not None else base.methods
    _check_names("dataset", datasets, DATASETS, dataset_names())
    _check_names("method", methods, METHODS, method_names())
    seeds = tuple(check_int_sequence("seeds", list(seeds) if seeds is not None else list(base.seeds), minimum=0))
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be distinct whole numbers >= 0; got {seeds}")
    crop = check_int("crop", base.crop if crop == "mode" else crop, 8, allow_none=True, what="a side in pixels")
    epochs = check_int("epochs", base.epochs if epochs == "mode" else epochs, 1, allow_none=True)
    ss_epochs = check_int("ss_epochs", base.ss_epochs if ss_epochs == "mode" else ss_epochs, 1, allow_none=True)
    threads = check_int("threads", base.threads if threads == "mode" else threads, 1, allow_none=True)
    datasets = tuple(d for d in DATASETS if d in datasets)
    methods = tuple(m for m in METHODS if m in methods)
    return Plan(base.mode, datasets, methods, seeds, crop, epochs, str(device), threads, ss_epochs)


@dataclass
class Run:
    """The scores of one run (dataset, method, seed), as tabulated and kept in the manifest.

    ``rmse`` and ``rmse_per_material`` pair estimated and true materials by their spectra;
    ``rmse_abundance_matched`` pairs them by their abundance maps. ``path`` is the saved result,
    relative to the output folder; ``note`` says why a training ended early, if it did.
    """

    dataset: str
    method: str
    seed: int
    rmse: float
    rmse_per_material: list[float]
    sad: float
    seconds: float
    path: str
    note: str = ""
    rmse_abundance_matched: float = float("nan")
