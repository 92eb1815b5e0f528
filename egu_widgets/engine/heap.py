"""Keep freed memory inside the process while training (Linux with glibc's malloc).

A training step on the paper's scene allocates and frees tensors of several megabytes dozens of
times. glibc serves such blocks with fresh ``mmap`` pages or trims its heap as soon as they are
freed, so the next step faults the same memory back in: about 3 700 page faults per step, every
page zero-filled by the kernel (``benchmarks/bench_training.py``, row "heap returned to the
system", shows what that costs). While :func:`retained_heap` is active, glibc keeps freed blocks
up to ``limit`` bytes for reuse instead; the numbers computed do not change.

On leaving, the thresholds are set to the values glibc's own adaptive policy settles at for
large blocks (blocks up to 32 MiB from the heap, trim when 64 MiB are free at its top), and
``malloc_trim`` hands the free memory back to the system. Elsewhere (macOS, Windows, musl) this is
a no-op. Set ``EGU_WIDGETS_RETAIN_HEAP=0`` in the environment to switch it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from typing import Iterator

__all__ = ["retained_heap", "heap_retention_available"]

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's adaptive limits on 64-bit systems: the largest mmap threshold it moves to by itself,
# and twice that for trimming.
_SETTLED_MMAP = 32 * 1024 * 1024
_SETTLED_TRIM = 2 * _SETTLED_MMAP

_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None = None
_looked_up = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None)
                # Only glibc has these three; musl has none of them.
                libc.gnu_get_libc_version, libc.mallopt, libc.malloc_trim  # noqa: B018
                libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                libc.malloc_trim.argtypes = (ctypes.c_size_t,)
                _libc = libc
            except (OSError, AttributeError):
                _libc = None
    return _libc


def heap_retention_available() -> bool:
    """True where :func:`retained_heap` has an effect (glibc, and not switched off)."""
    return os.environ.get("EGU_WIDGETS_RETAIN_HEAP", "1") != "0" and _glibc() is not None


@contextlib.contextmanager
def retained_heap(limit: int = 1 << 30) -> Iterator[bool]:
    """Within the block, freed blocks of up to ``limit`` bytes stay in the process for reuse.

    Yields whether retention is in effect. Nested and concurrent uses are counted: the settings
    are restored when the last one leaves.
    """
    global _depth
    if not heap_retention_available():
        yield False
        return
    libc = _glibc()
    limit = int(min(max(limit, _SETTLED_TRIM), 2**31 - 1))
    with _lock:
        if _depth == 0:
            # Older glibc refuses mmap thresholds above 32 MiB; then blocks larger than that
            # are still mapped and unmapped, the rest is kept.
            if not libc.mallopt(_M_MMAP_THRESHOLD, limit):
                libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP)
            libc.mallopt(_M_TRIM_THRESHOLD, limit)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM)
                libc.malloc_trim(0)
