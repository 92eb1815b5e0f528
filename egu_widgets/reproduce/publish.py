"""Publishing a reproduction: the output folder's checks, the atomic swap, and reading it back.

A run is written into a hidden staging folder beside ``out_dir`` and renamed to ``out_dir`` only
when complete, so an interrupted run leaves an earlier reproduction as it was. ``manifest.json``
marks a folder as a reproduction, which is what allows a later run to replace it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataFileError
from ..results import UnmixingResult
from .plan import Plan, Run

__all__ = ["KIND", "MARKER", "ReproduceReport", "check_target", "publish"]

#: The file that marks a folder as a finished reproduction, and the kind it records.
MARKER = "manifest.json"
KIND = "egu_widgets.reproduce"


@dataclass
class ReproduceReport:
    """A finished reproduction: its folder, plan, runs, table and files (as :func:`reproduce` returns it).

    :meth:`open` reads one back from its folder; :meth:`result` opens one of its saved results.
    """

    out_dir: Path
    plan: Plan
    runs: list[Run]
    table_markdown: str
    seconds: float
    files: list[str]

    @property
    def table_path(self) -> Path:
        """The Markdown table."""
        return self.out_dir / "table.md"

    @property
    def csv_path(self) -> Path:
        """The long-format CSV table."""
        return self.out_dir / "table.csv"

    @property
    def figures(self) -> list[Path]:
        """Every PNG figure written."""
        return [self.out_dir / f for f in self.files if f.endswith(".png")]

    def result(self, dataset: str, method: str, seed: int) -> UnmixingResult:
        """One of the saved results (``results/<dataset>/<method>-seed<seed>.nc``)."""
        return UnmixingResult.open(self.out_dir / "results" / dataset / f"{method}-seed{seed}.nc")

    @classmethod
    def open(cls, out_dir: str | os.PathLike) -> ReproduceReport:
        """Read a finished reproduction back from its folder (without rerunning anything)."""
        out_dir = Path(out_dir).expanduser().absolute()
        marker = out_dir / MARKER
        try:
            manifest = json.loads(marker.read_text())
            table = (out_dir / "table.md").read_text()
        except (OSError, ValueError) as exc:
            raise DataFileError(
                f"{str(out_dir)!r} holds no finished reproduction ({exc}); run reproduce() first"
            ) from exc
        if manifest.get("kind") != KIND:
            raise DataFileError(f"{str(out_dir)!r} holds no finished reproduction (its manifest is not one)")
        plan = manifest["plan"]
        plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan.items()})
        runs = [Run(**r) for r in manifest["runs"]]
        return cls(out_dir, plan, runs, table, float(manifest["info"]["total_seconds"]), list(manifest["files"]))

    def __repr__(self) -> str:
        return f"<ReproduceReport {self.plan.mode}: {len(self.runs)} runs in {self.seconds:.0f} s -> {self.out_dir}>"


def check_target(out_dir: Path) -> None:
    """Refuse an output folder that cannot be written or holds files other than a reproduction."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(f"{str(out_dir)!r} is a file; give a folder for the reproduction")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        marker = out_dir / MARKER
        ok = False
        if marker.is_file():
            with contextlib.suppress(OSError, ValueError):
                ok = json.loads(marker.read_text()).get("kind") == KIND
        if not ok:
            raise DataFileError(
                f"{str(out_dir)!r} exists and holds files that are not an earlier reproduction; "
                "choose a new or empty folder (an earlier reproduction there would be replaced)"
            )
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFileError(
            f"cannot create the folder {str(parent)!r} for {str(out_dir)!r} ({exc.strerror or exc})"
        ) from exc
    if not os.access(parent, os.W_OK):
        raise DataFileError(f"cannot write {str(out_dir)!r}: folder {str(parent)!r} is not writable")


def publish(staging: Path, out_dir: Path) -> None:
    """Swap the finished staging folder in for ``out_dir`` (renames within one folder)."""
    # Temporary folders and files are created private (0700/0600); give the published ones the
    # permissions ordinary new files get under the user's umask.
    umask = os.umask(0)
    os.umask(umask)
    for folder, _dirs, names in os.walk(staging):
        os.chmod(folder, 0o777 & ~umask)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o666 & ~umask)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.rename(out_dir, old)
    try:
        os.rename(staging, out_dir)
    except BaseException:
        if old is not None:
            os.rename(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
