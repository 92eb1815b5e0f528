"""What a run needs and what the machine has: refuse, before it starts, a run that cannot fit.

A run that outgrows the machine's memory is not slow, it is killed by the kernel's out-of-memory
killer without a word, after minutes of work. :func:`check_fits` compares a method's estimate
(:func:`classic_bytes`, :func:`egu_bytes`; the registry keeps one per method) with
:func:`available_bytes` and refuses with one line that says what the run needs and how to run it
lazily instead.

The estimates are what a run adds to what is resident when it starts (the interpreter and an
in-memory cube), with constants measured by ``benchmarks/bench_memory.py`` (figures and command in
docs/memory.md). They err on the high side: refusing a run that would just have fitted costs a
``chunks=`` argument; accepting one that does not fit costs the session.

Set the environment variable ``EGU_WIDGETS_MEMORY_CHECK=0`` to skip the check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = [
    "CHECK_ENV",
    "LAZY_HINT",
    "ONE_PASS_PIXELS",
    "STATISTICS_BLOCK",
    "available_bytes",
    "check_fits",
    "classic_bytes",
    "cube_bytes",
    "egu_bytes",
    "format_bytes",
    "release_freed_memory",
]

#: The environment variable that turns the check off ("0", "false", "no" or "off").
CHECK_ENV = "EGU_WIDGETS_MEMORY_CHECK"
#: The lazy path the refusal points to.
LAZY_HINT = (
    "open the cube lazily (open_cube(path, chunks={'y': 256})), fit on a part of it and map the whole "
    "with model.abundance_maps(lazy_cube)"
)

#: Pixels up to which an EGU-Net fit computes whole-image batch statistics (the RMSE monitor,
#: the calibration of the batch norms) in one pass, as the authors do; larger images go through
#: those passes in blocks of :data:`STATISTICS_BLOCK` pixels, with the statistics accumulated in
#: float64, so that their activations never hold more than one block.
ONE_PASS_PIXELS = 65536
#: Pixels per block of those passes on larger images.
STATISTICS_BLOCK = 16384

# Measured constants (see docs/memory.md for the benchmark behind them).
#: Classical methods: float64 numbers kept per pixel and endmember (abundances, b = M y, the
#: active-set iterate, start point and VCA/N-FINDR coordinates), and per pixel alone.
_CLASSIC_PER_PIXEL_ENDMEMBER = 6
_CLASSIC_PER_PIXEL = 8
#: Classical methods: the blocks read at a time (float64 copies and their products).
_CLASSIC_FIXED = 256 * 2**20
#: EGU-Net: float32 (N, B) arrays' worth that a fit holds beyond the parts below (the pixels
#: are the cube's own array; what grows with the image is the allocator's retained blocks, the
#: reference extraction's blocks and the (N, P) abundances): fitted to bench_memory's peaks
#: from 500² to 1 500² pixels with the other terms, 10 to 25 % high.
_EGU_CUBE_COPIES = 0.25
#: EGU-Net: float32 numbers kept per sample and unit of width in a training step (forward
#: activations and their gradients, batch-norm and dropout buffers, and the allocator's
#: fragmentation across steps, which bench_memory sees vary from run to run).
_EGU_PER_ACTIVATION = 3.0
#: EGU-Net: the torch runtime, one step's allocator slack and the fixed-size blocks.
_EGU_FIXED = 320 * 2**20
#: EGU-Net: bytes per value of the bundle spectra kept through training (float32; their float64
#: candidates exist only before training, when nothing else is large).
_EGU_PER_BUNDLE_VALUE = 4


def cube_bytes(cube: Any) -> int:
    """Size of the cube's reflectance as float32 (rows x cols x bands x 4 bytes)."""
    h, w, b = cube.shape
    return int(h) * int(w) * int(b) * 4


def _is_lazy(cube: Any) -> bool:
    reflectance = getattr(cube, "reflectance", None)
    return getattr(reflectance, "chunks", None) is not None


def _n_valid(cube: Any) -> int:
    return int(cube.valid_mask.sum())


def classic_bytes(cube: Any, n_endmembers: int, options: Mapping[str, Any] | None = None) -> int:
    """Memory a classical method (VCA, N-FINDR, FCLS, SUnSAL) adds to a run on ``cube``.

    The pixels are read in fixed-size blocks, so the image itself is not copied; what grows with
    it is a handful of (N, P) float64 arrays. A lazy cube is read into memory whole first, and a
    cube with masked pixels is copied once, valid pixels only.
    """
    n = int(cube.shape[0]) * int(cube.shape[1])
    p = max(int(n_endmembers), 1)
    total = n * (_CLASSIC_PER_PIXEL_ENDMEMBER * p + _CLASSIC_PER_PIXEL) * 8 + _CLASSIC_FIXED
    if _is_lazy(cube):
        total += cube_bytes(cube)
    if _n_valid(cube) < n:
        total += _n_valid(cube) * int(cube.shape[2]) * 4
    return int(total)


def egu_bytes(
    cube: Any,
    n_endmembers: int,
    *,
    batch_size: int,
    bundle_batch: int,
    widths: int,
    chunk_size: int = 262144,
    n_bundles: int | None = None,
    patch_size: int = 5,
    stride: int | None = None,
) -> int:
    """Memory an EGU-Net fit adds to a run on ``cube``.

    Parameters
    ----------
    cube : the cube to fit (its shape and valid mask are read).
    n_endmembers : P.
    batch_size, bundle_batch : pixels and bundles that go through one training step.
    widths : the sum of the layer widths one sample passes through in both streams (encoder,
        decoder, P and the bands).
    chunk_size : the most pixels of one pass without gradients (the whole-image statistics are
        computed in one pass up to :data:`ONE_PASS_PIXELS`, else in blocks of
        :data:`STATISTICS_BLOCK`).
    n_bundles : the bundles extracted; None counts P per patch of the ``patch_size`` tiling at
        ``stride`` (None: non-overlapping patches, the default modes').
    patch_size, stride : the bundle tiling, when ``n_bundles`` is None.

    Returns
    -------
    int
        Bytes: the bundles while labelled, the activations of one training step and of one
        statistics pass, a fraction of the cube for what grows with it, and the torch runtime;
        plus the valid pixels' copy when some are masked and the cube when it is lazy.
    """
    h, w, b = (int(n) for n in cube.shape)
    n_valid = _n_valid(cube)
    p = int(n_endmembers)
    if n_bundles is None:
        size = max(int(patch_size), 1)
        step_px = size if stride is None else max(int(stride), 1)
        n_patches = max((h - size) // step_px + 1, 0) * max((w - size) // step_px + 1, 0)
        n_bundles = n_patches * min(p, size * size)
    bundles = int(n_bundles)
    width = int(widths) + p
    step = (min(int(batch_size), n_valid) + min(int(bundle_batch), bundles)) * width
    one_pass = n_valid <= min(int(chunk_size), ONE_PASS_PIXELS)
    statistics = (n_valid if one_pass else min(int(chunk_size), STATISTICS_BLOCK, n_valid)) * width
    total = (
        _EGU_CUBE_COPIES * n_valid * b * 4
        + (_EGU_PER_ACTIVATION * step + statistics) * 4
        + bundles * b * _EGU_PER_BUNDLE_VALUE
        + _EGU_FIXED
    )
    if n_valid < h * w:  # the training pixels: a copy of the valid ones
        total += n_valid * b * 4
    if _is_lazy(cube):
        total += cube_bytes(cube)
    return int(total)


def release_freed_memory() -> bool:
    """Hand memory that was freed but kept by the C allocator back to the system (glibc only).

    glibc keeps freed blocks of its heap for reuse; after a phase that made many mid-sized
    allocations (the bundle search, the training steps) that memory stays resident and adds to
    the next phase's peak. ``malloc_trim(0)`` returns it (dask's workers do the same). Returns
    whether it ran; a no-op off glibc.
    """
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
        except OSError:
            libc = None
        _LIBC = libc if libc is not None and hasattr(libc, "malloc_trim") else False
    if _LIBC is False:
        return False
    _LIBC.malloc_trim(0)
    return True


_LIBC: Any = None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2: no limit) -> None


def _meminfo_available(path: Path) -> int | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) * 1024 if len(fields) > 1 and fields[1].isdigit() else None
    return None


def available_bytes(meminfo: str | Path = "/proc/meminfo", cgroup: str | Path = "/sys/fs/cgroup") -> int | None:
    """Memory a new run can use now: the smaller of the kernel's MemAvailable and the cgroup's room.

    The cgroup's room is its limit less its usage (v2: ``memory.max`` and ``memory.current``; v1:
    ``memory/memory.limit_in_bytes`` and ``memory/memory.usage_in_bytes``), since a container's
    limit, not the host's free memory, is what the out-of-memory killer enforces. None when
    neither can be read (not Linux): then nothing is refused.
    """
    root = Path(cgroup)
    candidates = [_meminfo_available(Path(meminfo))]
    for limit_name, usage_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(root / limit_name)
        # cgroup v1 writes "no limit" as a huge number (a page-rounded 2**63 - 1).
        if limit is not None and limit < 2**60:
            usage = _read_int(root / usage_name) or 0
            candidates.append(max(limit - usage, 0))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    """``n`` bytes as a short figure in binary units (e.g. '1.9 GiB')."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _check_enabled() -> bool:
    return os.environ.get(CHECK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def check_fits(needed: int, what: str, *, available: int | None = None) -> None:
    """Refuse, with one line, a run that needs more than the memory available.

    Parameters
    ----------
    needed : the run's estimate in bytes.
    what : the run, as the message names it (e.g. ``"egu-pw on this 1500x1500x224 cube"``).
    available : bytes available; None reads :func:`available_bytes` (unknown: nothing refused).

    Raises
    ------
    InputError
        When ``needed`` exceeds ``available`` (and the check is not turned off by
        ``EGU_WIDGETS_MEMORY_CHECK=0``).
    """
    if not _check_enabled():
        return
    if available is None:
        available = available_bytes()
    if available is None or needed <= available:
        return
    raise InputError(
        f"{what} needs about {format_bytes(needed)} of memory but {format_bytes(available)} is available; "
        f"{LAZY_HINT} (or set {CHECK_ENV}=0 to run anyway)"
    )
