"""The downloader: where dataset files are looked for, and how they are fetched intact.

Files are looked up, in order, in

1. the folder named by the environment variable ``EGU_WIDGETS_DATA``;
2. ``../shared/data`` beside a source checkout of this repository (the development layout);
3. the user cache (``pooch.os_cache("egu_widgets")``, e.g. ``~/.cache/egu_widgets``),

each keeping the layout ``<folder>/<dataset>/<file>``. A file found nowhere is downloaded with
pooch from its public source into ``EGU_WIDGETS_DATA`` when set, else into the user cache, and
checked against the SHA-256 below; a mismatch is an error and the bad download is removed.
Which files make up which named dataset is the business of :mod:`.datasets`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

__all__ = ["ENV_VAR", "FILES", "RemoteFile", "cache_dir", "download_dir", "fetch", "locate", "search_path", "sha256_of"]

ENV_VAR = "EGU_WIDGETS_DATA"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public dataset: where it goes in a data folder, its SHA-256 and its address."""

    relpath: str  # inside the data folder, e.g. "samson/samson_1.mat"
    sha256: str
    url: str


_ZHU = "https://raw.githubusercontent.com/gaetanosettembre/data_unmixing/HEAD/Datasets"
FILES: dict[str, RemoteFile] = {
    f.relpath: f
    for f in (
        RemoteFile(
            "samson/samson_1.mat",
            "1ebacaf7cd32bfc31c0ee3fd56c63a7f29a434893a8b45705fb59cd8a0c8beb6",
            f"{_ZHU}/Samson/Samson.mat",
        ),
        RemoteFile(
            "samson/end3.mat",
            "ce768182ce5292390180f827ff5769112cf3d299f4e64ab43e950a310b7ec9fa",
            f"{_ZHU}/Samson/Samson_GT.mat",
        ),
        RemoteFile(
            "jasper_ridge/jasperRidge2_R198.mat",
            "0e4118a6452f6044978a8ca3762fb0f791115467904936d463c4e111e56e682e",
            f"{_ZHU}/Jasper/jasperRidge2_R198.mat",
        ),
        RemoteFile(
            "jasper_ridge/end4.mat",
            "92f5697b43705802b904fd13ba99b6ce65a3d203682864abc3fbec922beec374",
            f"{_ZHU}/Jasper/Jasper_GT.mat",
        ),
        RemoteFile(
            "usgs/USGS_1995_Library.mat",
            "fe2be84e4da2abf6ab00091b36f30a1a8dd247d18a78146f61235c8b5229da63",
            "https://raw.githubusercontent.com/ricardoborsoi/MUA_SparseUnmixing/HEAD/USGS_1995_Library.mat",
        ),
        RemoteFile(
            "egu_net_synthetic/TeLabel.mat",
            "d9a43b462ace1f35a5fc490a776ba3597b9541bd0afc13588b8654fcff99f386",
            "https://raw.githubusercontent.com/ChristopheKar/IEEE_TNNLS_EGU-Net/refactor/data/tnnls/TeLabel.mat",
        ),
    )
}


def _checkout_data_dir() -> Path | None:
    # egu_widgets/cube/download.py: parents[2] is the checkout, parents[3] the folder beside it.
    candidate = Path(__file__).resolve().parents[3] / "shared" / "data"
    return candidate if candidate.is_dir() else None


def cache_dir() -> Path:
    """The user cache folder of the package (pooch's ``os_cache``)."""
    import pooch

    return Path(pooch.os_cache("egu_widgets"))


def search_path() -> list[Path]:
    """The folders searched for dataset files, in order."""
    folders: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        folders.append(Path(env).expanduser())
    checkout = _checkout_data_dir()
    if checkout is not None:
        folders.append(checkout)
    folders.append(cache_dir())
    return folders


def locate(relpath: str) -> Path | None:
    """Where a dataset file lies locally (the first folder of :func:`search_path` holding it), or None.

    Read-only and quick: no checksum is computed and nothing is downloaded (:func:`fetch` does both).
    """
    for folder in search_path():
        path = folder / relpath
        if path.is_file():
            return path
    return None


def download_dir() -> Path:
    """Where a missing file is downloaded: ``EGU_WIDGETS_DATA`` when set, else the user cache."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else cache_dir()


_verified: dict[Path, bool] = {}


def sha256_of(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(relpath: str, *, download: bool = True) -> Path:
    """Path to a verified local copy of a registered dataset file; downloads it when missing."""
    try:
        remote = FILES[relpath]
    except KeyError:
        raise DatasetError(f"{relpath!r} is not a registered dataset file; known: {sorted(FILES)}") from None
    for folder in search_path():
        path = folder / relpath
        if path.is_file():
            if path not in _verified:
                actual = sha256_of(path)
                if actual != remote.sha256:
                    raise DatasetError(
                        f"{str(path)!r} does not match its published checksum (sha256 {actual[:12]}..., "
                        f"expected {remote.sha256[:12]}...): the file is damaged or a different version; "
                        "delete it and it will be downloaded again"
                    )
                _verified[path] = True
            return path
    if not download:
        raise DatasetError(f"{relpath!r} was not found in {[str(f) for f in search_path()]} and download=False")
    return _download(remote, download_dir())


def _download(remote: RemoteFile, folder: Path) -> Path:
    import pooch

    target = folder / remote.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{remote.sha256}",
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )
    except ValueError as exc:  # pooch's hash mismatch; it has already deleted the bad download
        raise DatasetError(
            f"download of {remote.relpath!r} from {remote.url} failed its checksum ({exc}); the file was not kept. "
            f"Place a good copy at {str(target)!r} or set {ENV_VAR} to a folder that holds it"
        ) from exc
    except Exception as exc:  # network errors of many kinds
        raise DatasetError(
            f"could not download {remote.relpath!r} from {remote.url} ({type(exc).__name__}: {exc}). "
            f"Without network access, place the file at {str(target)!r} or set {ENV_VAR} to a folder that holds it"
        ) from exc
    return Path(path)
