"""Reading local dataset copies: folders, ``.tar.*`` and ``.zip`` archives, and strict numeric tables.

A *source* is a read-only view of a dataset copy. Archives are read in place (nothing is
extracted to disk). Every error names the file, written ``archive:member`` inside an archive.
"""

from __future__ import annotations

import abc
import io
import lzma
import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import DataError

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


class Source(abc.ABC):
    """A dataset copy. ``files`` lists every regular file as a POSIX path relative to the copy."""

    display: str
    files: list[str]

    @abc.abstractmethod
    def read(self, rel: str) -> bytes:
        """The bytes of one file of the copy."""

    @abc.abstractmethod
    def where(self, rel: str) -> str:
        """How a file is named in error messages."""

    def exists(self, rel: str) -> bool:
        return rel in self._fileset

    @property
    def _fileset(self) -> set[str]:
        fs = getattr(self, "_fs_cache", None)
        if fs is None:
            fs = set(self.files)
            self._fs_cache = fs
        return fs

    def find_prefix(self, marker: str) -> str:
        """The folder prefix (``""`` or ``"a/b/"``) under which ``marker`` exists.

        Raises :class:`DataError` if the marker is absent or present under several prefixes.
        """
        hits = sorted(f[: -len(marker)] for f in self.files if f == marker or f.endswith("/" + marker))
        if not hits:
            raise DataError(f"not a copy of the expected dataset: no file '{marker}' in it", path=self.display)
        if len(hits) > 1:
            raise DataError(
                f"ambiguous copy: '{marker}' exists under several folders ({', '.join(h or './' for h in hits)});"
                " pass the folder you mean as root", path=self.display)
        return hits[0]


class DirSource(Source):
    def __init__(self, root: Path):
        self.root = Path(root)
        self.display = str(self.root)
        files = []
        for dirpath, _dirs, names in os.walk(self.root):
            for n in names:
                p = Path(dirpath) / n
                if p.is_file():
                    files.append(p.relative_to(self.root).as_posix())
        self.files = sorted(files)

    def read(self, rel: str) -> bytes:
        try:
            return (self.root / rel).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read: {e}", path=self.where(rel)) from e

    def where(self, rel: str) -> str:
        return str(self.root / rel)


class TarSource(Source):
    """A tar archive (optionally xz/gz/bz2). One sequential pass: members that ``want`` accepts are
    kept in memory, the names of all others are listed (so existence checks stay possible)."""

    def __init__(self, path: Path, want: Callable[[str], bool] | None = None):
        self.path = Path(path)
        self.display = str(self.path)
        self._data: dict[str, bytes] = {}
        files = []
        try:
            with tarfile.open(self.path, "r:*") as tf:
                for m in tf:
                    if not m.isfile():
                        continue
                    files.append(m.name)
                    if want is None or want(m.name):
                        f = tf.extractfile(m)
                        self._data[m.name] = f.read() if f is not None else b""
        except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as e:
            raise DataError(f"corrupted or truncated archive ({type(e).__name__}: {e})", path=self.display) from e
        self.files = sorted(files)

    def read(self, rel: str) -> bytes:
        if rel in self._data:
            return self._data[rel]
        if rel in self._fileset:
            raise DataError("member was not loaded from the archive (internal selection error)", path=self.where(rel))
        raise DataError("no such member in the archive", path=self.where(rel))

    def where(self, rel: str) -> str:
        return f"{self.display}:{rel}"


class ZipSource(Source):
    """A zip archive. A zip that wraps a single inner zip (the UCI repository does this for
    UCI-HAR) is opened through to the inner one."""

    def __init__(self, path: Path | None, data: bytes | None = None, display: str | None = None):
        self.display = display or str(path)
        try:
            zf = zipfile.ZipFile(io.BytesIO(data) if data is not None else path)
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
            inner = [n for n in names if n.lower().endswith(".zip") and not n.startswith("__MACOSX/")]
            other = [n for n in names if n not in inner and not n.startswith("__MACOSX/")]
            if len(inner) == 1 and not other:
                inner_bytes = zf.read(inner[0])
                zf = zipfile.ZipFile(io.BytesIO(inner_bytes))
                self.display = f"{self.display}:{inner[0]}"
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(f"corrupted or truncated archive ({type(e).__name__}: {e})", path=self.display) from e
        self._zf = zf
        self.files = sorted(n for n in names if not n.startswith("__MACOSX/"))

    def read(self, rel: str) -> bytes:
        try:
            return self._zf.read(rel)
        except KeyError as e:
            raise DataError("no such member in the archive", path=self.where(rel)) from e
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise DataError(f"corrupted archive member ({e})", path=self.where(rel)) from e

    def where(self, rel: str) -> str:
        return f"{self.display}:{rel}"


def open_source(root: str | os.PathLike, want: Callable[[str], bool] | None = None) -> Source:
    """Open a folder or an archive. ``want`` limits which tar members are held in memory."""
    p = Path(root).expanduser()
    if p.is_dir():
        return DirSource(p)
    if not p.exists():
        raise DataError("no such file or folder", path=str(p))
    name = p.name.lower()
    if name.endswith(".zip"):
        return ZipSource(p)
    if name.endswith(ARCHIVE_SUFFIXES):
        return TarSource(p, want)
    raise DataError(f"not a folder or a supported archive ({', '.join(ARCHIVE_SUFFIXES)})", path=str(p))


# --------------------------------------------------------------------------------------------
# Strict numeric tables
# --------------------------------------------------------------------------------------------

def _split_lines(text: str) -> tuple[list[str], bool]:
    """Lines of ``text`` without the terminator, and whether the text ended with a newline."""
    ends_nl = text.endswith("\n")
    lines = text.split("\n")
    if ends_nl:
        lines.pop()
    return lines, ends_nl


def _diagnose(text: str, where: str, ncols: int | None, delimiter: str | None, first_line: int,
              allow_nan: bool = False) -> None:
    """Find the first bad line of a table and raise a DataError for it (or return if none found).
    ``allow_nan``: NaN marks a missing value (PAMAP2, Opportunity ...); infinities are still errors."""
    lines, ends_nl = _split_lines(text)
    width = ncols
    for i, line in enumerate(lines):
        lineno = first_line + i
        last = i == len(lines) - 1
        tail = " (the file ends here without a newline: truncated?)" if last and not ends_nl else ""
        stripped = line.strip()
        if not stripped:
            raise DataError("blank line inside the data (a row is missing?)", path=where, line=lineno)
        toks = [t.strip() for t in stripped.split(delimiter)] if delimiter else stripped.split()
        if width is None:
            width = len(toks)
        if len(toks) != width:
            raise DataError(f"expected {width} columns, found {len(toks)}{tail}", path=where, line=lineno)
        for j, t in enumerate(toks):
            try:
                v = float(t)
            except ValueError:
                raise DataError(f"non-numeric value {t!r} in column {j + 1}{tail}", path=where, line=lineno) from None
            if np.isinf(v) or (np.isnan(v) and not allow_nan):
                what = "infinite value" if np.isinf(v) or allow_nan else "non-finite value"
                raise DataError(f"{what} {t!r} {'' if allow_nan else '(NaN or infinity) '}in column {j + 1}",
                                path=where, line=lineno)


def parse_table(data: bytes, where: str, *, ncols: int | None = None, delimiter: str | None = None,
                require_final_newline: bool = False, skip_header: bool = False,
                allow_nan: bool = False) -> np.ndarray:
    """Parse a whitespace- (or ``delimiter``-) separated numeric table strictly.

    Returns float64 ``(rows, cols)``. Raises :class:`DataError` naming ``where`` and the 1-based
    line for: an empty file, blank lines, a wrong column count, non-numeric or non-finite values
    (``nan``, ``inf``), and (with ``require_final_newline``) a last line without its newline,
    which is how a file cut short mid-line shows. ``allow_nan``: ``NaN`` (any case) marks a missing
    value and is kept (infinities are still errors).
    """
    text = data.decode("latin-1").replace("\r\n", "\n")
    first_line = 1
    if skip_header:
        nl = text.find("\n")
        text = "" if nl < 0 else text[nl + 1:]
        first_line = 2
    lines, ends_nl = _split_lines(text)
    if not lines or not text.strip():
        # checked before numpy, which would only warn "input contained no data" and return an empty table
        raise DataError("no data rows after the header line" if skip_header else "empty file (no data rows)",
                        path=where)
    try:
        arr = np.loadtxt(io.StringIO(text), delimiter=delimiter, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as e:
        _diagnose(text, where, ncols, delimiter, first_line, allow_nan)
        raise DataError(f"unparseable table ({e})", path=where) from e
    if arr.shape[0] != len(lines) or (ncols is not None and arr.shape[1] != ncols):
        _diagnose(text, where, ncols, delimiter, first_line, allow_nan)
        raise DataError(f"table has shape {arr.shape}, expected {len(lines)} rows x {ncols} columns", path=where)
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        what = "infinite value" if allow_nan else "non-finite value (NaN or infinity)"
        raise DataError(f"{what} in column {c + 1}", path=where, line=first_line + int(r))
    if require_final_newline and not ends_nl:
        raise DataError("the file does not end with a newline: truncated copy?", path=where,
                        line=first_line + len(lines) - 1)
    return arr


def parse_int_column(data: bytes, where: str, *, require_final_newline: bool = False) -> np.ndarray:
    """A one-column table of integers (labels, subject ids) as int64."""
    arr = parse_table(data, where, ncols=1, require_final_newline=require_final_newline)[:, 0]
    bad = np.nonzero(arr != np.round(arr))[0]
    if bad.size:
        raise DataError(f"expected an integer, found {arr[bad[0]]!r}", path=where, line=int(bad[0]) + 1)
    return arr.astype(np.int64)


def parse_id_names(data: bytes, where: str) -> dict[int, str]:
    """``<int id> <name>`` per line (activity_labels.txt, features.txt)."""
    out: dict[int, str] = {}
    lines, _ = _split_lines(data.decode("latin-1").replace("\r\n", "\n"))
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            raise DataError("blank line", path=where, line=i)
        parts = s.split(None, 1)
        if len(parts) != 2:
            raise DataError(f"expected '<id> <name>', found {s!r}", path=where, line=i)
        try:
            k = int(parts[0])
        except ValueError:
            raise DataError(f"non-integer id {parts[0]!r}", path=where, line=i) from None
        if k in out:
            raise DataError(f"duplicate id {k}", path=where, line=i)
        out[k] = parts[1].strip()
    if not out:
        raise DataError("empty file", path=where)
    return out


def first_match(files: Iterable[str], predicate: Callable[[str], bool]) -> str | None:
    for f in files:
        if predicate(f):
            return f
    return None


def open_with_marker(root: str | os.PathLike, marker: str,
                     want: Callable[[str], bool] | None = None) -> tuple[Source, str]:
    """Open ``root`` and find the folder prefix that holds ``marker``. A folder that does not hold
    the marker but holds archives (e.g. the cache folder after a download) is searched through its
    top-level archives."""
    src = open_source(root, want)
    try:
        return src, src.find_prefix(marker)
    except DataError as first:
        if isinstance(src, DirSource):
            archives = sorted(p for p in src.root.iterdir() if is_archive(p))
            errors = []
            for a in archives:
                try:
                    return open_with_marker(a, marker, want)
                except DataError as e:
                    errors.append(str(e))
            if errors:
                raise DataError(f"no '{marker}' in the folder or its archives: " + "; ".join(errors),
                                path=src.display) from first
        raise


def open_matching(root: str | os.PathLike, matches: Callable[[str], bool],
                  want: Callable[[str], bool] | None = None) -> Source:
    """Open ``root``; if it is a folder without any file that ``matches`` but with archives at its
    top level (e.g. the cache folder after a download), open the first archive that has one."""
    src = open_source(root, want)
    if any(matches(f) for f in src.files) or not isinstance(src, DirSource):
        return src
    for a in sorted(p for p in src.root.iterdir() if is_archive(p)):
        inner = open_source(a, want)
        if any(matches(f) for f in inner.files):
            return inner
    return src
