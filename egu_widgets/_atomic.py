"""Atomic file writes: a result or checkpoint is either the old file or the new one, never half.

Writers produce a temporary file in the destination folder (same filesystem, so the final
``os.replace`` is atomic), flush it to disk, then rename it over the target. If the writer fails
or the process dies mid-write, only the temporary file is left (and removed when we can).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from .errors import DataFileError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, when ``path``'s folder is missing or not writable."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataFileError(
            f"output path {str(path)!r} is a folder; give a file name such as {str(path / 'result.nc')!r}"
        )
    if folder.exists() and not folder.is_dir():
        raise DataFileError(
            f"cannot write {str(path)!r}: {str(folder)!r} is a file, not a folder; choose another output path"
        )
    if not folder.exists():
        raise DataFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise DataFileError(
            f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable; choose another output path"
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically."""
    target = check_writable(path)
    # Created like open() creates files (mode 0666, the umask applied by the system), not with
    # mkstemp's private 0600, so the published file has the permissions users expect.
    while True:
        tmp_path = (target.parent or Path(".")) / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # another writer's temporary file: draw another name
            continue
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        if target.exists():  # replacing a file keeps its permissions, as writing into it would
            os.chmod(tmp_path, target.stat().st_mode & 0o7777)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
