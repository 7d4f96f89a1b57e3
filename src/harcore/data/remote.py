"""Local cache and verified downloads of the official dataset archives.

``root=None`` in :func:`harcore.data.load` means ``cache_dir() / <name>``; ``cache_dir()`` is
``$HARCORE_DATA`` or ``~/.cache/harcore``. :func:`download` fetches an official archive with
``urllib`` and checks its SHA-256 before keeping it. harcore does **not** know the SHA-256 of any
official archive yet (the project only holds hashes of individual files, from public git
copies), so a download needs a ``sha256=`` that you verified yourself; without one it is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError


@dataclass(frozen=True)
class RemoteArchive:
    url: str
    filename: str
    sha256: str | None  # None: unknown to harcore; downloads then need a caller-supplied hash
    note: str = ""


# The official sources. No SHA-256 is filled in: none of these archives has been obtained and
# hashed by the project, and a hash must not be invented.
SOURCES: dict[str, RemoteArchive] = {
    "uci-har": RemoteArchive(
        "https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip",
        "human+activity+recognition+using+smartphones.zip", None,
        "UCI ML repository id 240; the zip wraps 'UCI HAR Dataset.zip'."),
    "hapt": RemoteArchive(
        "https://archive.ics.uci.edu/static/public/341/smartphone+based+recognition+of+human+activities+and+postural+transitions.zip",
        "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip", None,
        "UCI ML repository id 341 (HAPT v2.1)."),
    "daphnet": RemoteArchive(
        "https://archive.ics.uci.edu/static/public/245/daphnet+freezing+of+gait.zip",
        "daphnet+freezing+of+gait.zip", None, "UCI ML repository id 245."),
    "wisdm": RemoteArchive(
        "https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz",
        "WISDM_ar_latest.tar.gz", None, "Fordham WISDM lab, WISDM_ar_v1.1."),
}


def cache_dir() -> Path:
    """``$HARCORE_DATA`` if set, else ``~/.cache/harcore``."""
    env = os.environ.get("HARCORE_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harcore"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def download(name: str, dest: str | os.PathLike | None = None, *, sha256: str | None = None,
             url: str | None = None, timeout: float = 60.0) -> Path:
    """Download dataset ``name``'s official archive into ``dest`` (default ``cache_dir()/name``)
    and return its path. The file is kept only if its SHA-256 equals ``sha256`` (or the hash
    harcore knows). Without a hash the download is refused with :class:`DataError`.
    An existing file with the right hash is reused."""
    if name not in SOURCES:
        raise DataError(f"no download source for {name!r}; known: {sorted(SOURCES)}")
    src = SOURCES[name]
    expected = (sha256 or src.sha256 or "").lower() or None
    if expected is None:
        raise DataError(
            f"refusing an unverified download of {name!r} from {src.url}: harcore does not know the SHA-256 of the "
            f"official archive. Download it yourself, check it, and pass root=<path>, or call "
            f"harcore.data.download({name!r}, sha256=<the hash you verified>).")
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise DataError(f"sha256 must be 64 hex digits, got {expected!r}")
    dest_dir = Path(dest) if dest is not None else cache_dir() / name
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / src.filename
    if target.exists() and sha256_file(target) == expected:
        return target
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".download-")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url or src.url, timeout=timeout) as resp:
            while True:
                b = resp.read(1 << 20)
                if not b:
                    break
                h.update(b)
                out.write(b)
        got = h.hexdigest()
        if got != expected:
            raise DataError(f"SHA-256 mismatch for {url or src.url}: expected {expected}, got {got}; file discarded")
        shutil.move(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve_root(name: str, root, *, download_missing: bool = False, sha256: str | None = None) -> Path:
    """The local copy to read: ``root`` itself, or ``cache_dir()/name`` when ``root`` is None."""
    if root is not None:
        p = Path(root).expanduser()
        if not p.exists():
            raise DataError("no such file or folder", path=str(p))
        return p
    p = cache_dir() / name
    if p.exists() and any(p.iterdir()):
        return p
    if download_missing:
        return download(name, sha256=sha256)
    raise DataError(
        f"no local copy of {name!r} in the cache folder {p} (set HARCORE_DATA to change it). Pass root=<folder or "
        f"archive>, or load(..., download=True, sha256=<verified hash>) to fetch {SOURCES[name].url if name in SOURCES else 'it'}.")
