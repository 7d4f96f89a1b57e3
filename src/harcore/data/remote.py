"""Local cache and verified downloads of the official dataset archives.

``root=None`` in :func:`harcore.data.load` means ``cache_dir() / <name>``; ``cache_dir()`` is
``$HARCORE_DATA`` or ``~/.cache/harcore``. :func:`download` fetches an official archive with
``urllib`` and checks its SHA-256 before keeping it. harcore does **not** know the SHA-256 of any
official archive, but for UCI-HAR, HAPT, Daphnet and WISDM it knows the git blob SHA-1 of every data file
(``hashes/<name>.sha1``, from public git copies): :func:`verify_copy` checks a copy's files against them, and
:func:`download` without a ``sha256=`` keeps such an archive only if every listed file is in it and matches.
Other archives need a ``sha256=`` that you verified yourself; without one the download is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._io import open_source
from .errors import DataError

HASHES_DIR = Path(__file__).with_name("hashes")


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
    harcore knows), or, with no hash given, if it holds every data file that :func:`known_files` lists,
    each with its known content (:func:`verify_copy`). Otherwise the download is refused with
    :class:`DataError`. An existing file that passes the same check is reused."""
    if name not in SOURCES:
        raise DataError(f"no download source for {name!r}; known: {sorted(SOURCES)}")
    src = SOURCES[name]
    expected = (sha256 or src.sha256 or "").lower() or None
    where = url or src.url
    if expected is not None:
        if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
            raise DataError(f"sha256 must be 64 hex digits, got {expected!r}")

        def check(path: str | os.PathLike) -> None:
            got = sha256_file(path)
            if got != expected:
                raise DataError(f"SHA-256 mismatch for {where}: expected {expected}, got {got}; file discarded")
    elif has_known_files(name):
        def check(path: str | os.PathLike) -> None:
            try:
                verify_copy(name, path)
            except DataError as e:  # named by its URL and member: the temporary file is deleted
                member = e.path.split(":", 1)[1] if e.path and ":" in e.path else None
                raise DataError(f"download discarded: {e.reason}", path=f"{where}:{member}" if member else where) from e
    else:
        raise DataError(
            f"refusing an unverified download of {name!r} from {src.url}: harcore does not know the SHA-256 of the "
            f"official archive. Download it yourself, check it, and pass root=<path>, or call "
            f"harcore.data.download({name!r}, sha256=<the hash you verified>).")
    dest_dir = Path(dest) if dest is not None else cache_dir() / name
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / src.filename
    if target.exists():
        try:
            check(target)
            return target
        except DataError:
            pass  # fetch it again
    # the suffix keeps the archive type visible to open_source (the per-file check reads the archive)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".download-", suffix=src.filename)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(where, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out, 1 << 20)
        except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors; a bad URL a ValueError
            raise DataError(f"download failed: {e}", path=where) from e
        check(tmp)
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


# -------------------------------------------------------------------------------- per-file content check

def git_blob_sha1(data: bytes) -> str:
    """``git hash-object`` of ``data``: SHA-1 of ``b"blob <size>\\0" + data``."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def has_known_files(name: str) -> bool:
    return (HASHES_DIR / f"{name}.sha1").is_file()


def known_files(name: str) -> dict[str, str]:
    """``{path inside the copy: git blob SHA-1}`` of dataset ``name``'s data files (``hashes/<name>.sha1``)."""
    path = HASHES_DIR / f"{name}.sha1"
    if not path.is_file():
        raise DataError(f"harcore knows no per-file hashes of {name!r}; known: "
                        f"{sorted(p.stem for p in HASHES_DIR.glob('*.sha1'))}")
    table: dict[str, str] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("  ", 1)
        if len(parts) != 2 or len(parts[0]) != 40:
            raise DataError(f"expected '<sha1>  <path>', found {line!r}", path=str(path), line=i)
        table[parts[1]] = parts[0]
    return table


def _locate(files: list[str], rel: str) -> str | None:
    """The copy's file for a listed path: the same path under any folder, or without its top folder
    (a root that is the dataset folder itself)."""
    tail = rel.split("/", 1)[1] if "/" in rel else rel
    for want in (rel, tail):
        hits = [f for f in files if f == want or f.endswith("/" + want)]
        if len(hits) > 1:
            raise DataError(f"ambiguous copy: '{want}' exists {len(hits)} times ({', '.join(sorted(hits)[:3])})")
        if hits:
            return hits[0]
    return None


def verify_copy(name: str, root: str | os.PathLike, *, require_all: bool = True,
                table: dict[str, str] | None = None) -> list[str]:
    """Check a local copy (folder or archive) of dataset ``name`` file by file against :func:`known_files`
    (or ``table``) and return the listed paths that were checked.

    A file matches if its git blob SHA-1 equals the listed one, as stored or with CRLF line ends turned
    into LF (git's own normalisation, which a public git copy may have applied). A mismatch, a copy with
    none of the listed files, or with ``require_all`` one listed file missing, raises :class:`DataError`
    naming the file.
    """
    table = known_files(name) if table is None else table
    src = open_source(root)
    checked, missing = [], []
    for rel, sha in table.items():
        f = _locate(src.files, rel)
        if f is None:
            missing.append(rel)
            continue
        data = src.read(f)
        if git_blob_sha1(data) != sha and git_blob_sha1(data.replace(b"\r\n", b"\n")) != sha:
            raise DataError(f"content differs from the known {name} file '{rel}' (git blob {sha}): a corrupted "
                            "or different copy", path=src.where(f))
        checked.append(rel)
    if not checked:
        raise DataError(f"none of the {len(table)} known {name} data files is in this copy, e.g. '{missing[0]}'",
                        path=src.display)
    if require_all and missing:
        raise DataError(f"{len(missing)} of the {len(table)} known {name} data files are missing, e.g. "
                        f"'{missing[0]}'", path=src.display)
    return checked
