"""Argument checks and the one seed scheme, shared by every layer.

Each check returns the value in its canonical type or raises :class:`~egu_widgets.errors.InputError`
with one message shape: ``"<name> must be <what>; got <value>"``. Keeping them in one place keeps
the wording the same wherever a user meets it (API, CLI, widgets).

Seeds: one user seed feeds every random choice through :class:`numpy.random.SeedSequence`.
Each consumer asks for its own named stream (:data:`SEED_STREAMS`), so adding a consumer never
shifts the numbers another one draws.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import InputError

__all__ = [
    "SEED_STREAMS",
    "check_choice",
    "check_float",
    "check_int",
    "check_int_sequence",
    "check_n_endmembers",
    "check_seed",
    "numpy_rng",
    "seed_int",
    "seed_sequence",
]

#: Named random streams derived from one seed, in a fixed order (never reorder: append only).
SEED_STREAMS = ("bundles", "init", "dropout", "batches", "classic", "members")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(
    name: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
    what: str = "a whole number",
) -> int | None:
    """``value`` as an ``int`` within ``[minimum, maximum]``; floats such as ``3.0`` are refused."""
    if value is None and allow_none:
        return None
    bounds = ""
    if minimum is not None and maximum is not None:
        bounds = f" from {minimum} to {maximum}"
    elif minimum is not None:
        bounds = f" >= {minimum}"
    elif maximum is not None:
        bounds = f" <= {maximum}"
    tail = " (or None)" if allow_none else ""
    if not _is_int(value):
        raise InputError(f"{name} must be {what}{bounds}{tail}; got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(f"{name} must be {what}{bounds}{tail}; got {value!r}")
    return value


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a finite ``float`` within the given bounds (each inclusive unless said)."""
    if value is None and allow_none:
        return None
    parts = []
    if minimum is not None:
        parts.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
    what = "a finite number" + (" " + " and ".join(parts) if parts else "") + (" (or None)" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be {what}; got {value!r}")
    v = float(value)
    ok = np.isfinite(v)
    if ok and minimum is not None:
        ok = v >= minimum if min_inclusive else v > minimum
    if ok and maximum is not None:
        ok = v <= maximum if max_inclusive else v < maximum
    if not ok:
        raise InputError(f"{name} must be {what}; got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; otherwise an error listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_seed(seed: Any) -> int:
    """A seed: a whole number >= 0."""
    return check_int("seed", seed, 0)


def check_n_endmembers(value: Any, *, n_bands: int, n_pixels: int, default: int | None = None) -> int:
    """The number of endmembers P: ``value``, or ``default`` (the truth's count) when ``value`` is None.

    P must be a whole number >= 2, at most the number of bands and at most the number of valid pixels.
    """
    if value is None:
        if default is None:
            raise InputError("the number of endmembers is unknown: pass n_endmembers= (CLI: --endmembers P)")
        value = default
    p = check_int("the number of endmembers", value, 2)
    if p > n_bands:
        raise InputError(f"cannot find {p} endmembers with {n_bands} bands; use at most {n_bands}")
    if p > n_pixels:
        raise InputError(f"cannot find {p} endmembers among {n_pixels} valid pixels")
    return p


def check_int_sequence(name: str, value: Any, length: int | None = None, minimum: int = 1) -> list[int]:
    """A list of whole numbers (each >= ``minimum``), of ``length`` entries when given."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence | np.ndarray)
        or (length is not None and len(value) != length)
    ):
        count = f"{length} " if length is not None else ""
        raise InputError(f"{name} must be {count}whole numbers >= {minimum}; got {value!r}")
    return [check_int(f"{name} entries", v, minimum) for v in value]


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    """The :class:`~numpy.random.SeedSequence` of one named stream (:data:`SEED_STREAMS`) of ``seed``."""
    check_choice("random stream", stream, SEED_STREAMS)
    return np.random.SeedSequence(check_seed(seed)).spawn(len(SEED_STREAMS))[SEED_STREAMS.index(stream)]


def numpy_rng(seed: int, stream: str) -> np.random.Generator:
    """A NumPy generator for one named stream of ``seed``."""
    return np.random.default_rng(seed_sequence(seed, stream))


def seed_int(seed: int, stream: str) -> int:
    """A 63-bit integer for one named stream of ``seed`` (for ``torch.Generator.manual_seed``)."""
    return int(seed_sequence(seed, stream).generate_state(1, np.uint64)[0] >> np.uint64(1))
