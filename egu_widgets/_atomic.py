"""Atomic file writes: a result or checkpoint is either the old file or the new one, never half.

Writers produce a temporary file in the destination folder (same filesystem, so the final
``os.replace`` is atomic), flush it to disk, then rename it over the target. If the writer fails
or the process dies mid-write, only the temporary file is left (and removed when we can).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DataFileError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, when ``path``'s folder is missing or not writable."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataFileError(f"output path {str(path)!r} is a folder; give a file name such as {str(path / 'result.nc')!r}")
    if folder.exists() and not folder.is_dir():
        raise DataFileError(f"cannot write {str(path)!r}: {str(folder)!r} is a file, not a folder; choose another output path")
    if not folder.exists():
        raise DataFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise DataFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable; choose another output path")
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically."""
    target = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open() would:
        # the replaced file's, or 0666 minus the umask for a new one.
        os.chmod(tmp_path, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
