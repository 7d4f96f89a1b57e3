"""Run folders and the one checkpoint format of harcore (the trainer's and the search's).

Bottom layer: imports only :mod:`harcore.errors`, torch, numpy and the standard library.

* :func:`atomic_write_bytes` / :func:`atomic_save`: a temp file in the same folder, ``fsync``, ``os.replace``,
  then an ``fsync`` of the folder, so a file is either the old one or the new one, never half of each, even
  after ``kill -9`` or a power cut.
* :func:`rng_state` / :func:`set_rng_state`: python, numpy, torch (and given generators) as plain values and
  tensors, so a checkpoint loads with ``torch.load(weights_only=True)`` (no code runs on loading).
* the checkpoint format (:func:`save_checkpoint`, :func:`load_checkpoint`, :func:`check_resume`): one dict saved
  with ``torch.save`` whose header is ``format``, ``version``, ``kind`` and ``fingerprint`` (a hash of the
  configuration fields that must match to resume), followed by ``config``, ``meta`` and the payload.
* :class:`RunDir`: a run folder; decides whether a new run, a resume or an overwrite may start there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import tempfile
import time
import zipfile
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harcore.errors import CheckpointError, RunExistsError

__all__ = ["FORMAT", "VERSION", "RunDir", "atomic_save", "atomic_write_bytes", "atomic_write_text", "check_resume",
           "fingerprint", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]

FORMAT = "harcore.checkpoint"
VERSION = 1
#: Formats of harcore before the run store (recognised only to say so).
OLD_FORMATS = ("harcore.nas.search/1", "harcore.train.checkpoint/1")
HEADER = ("format", "version", "kind", "fingerprint", "config", "meta")

# Test hook: seconds to sleep after writing half of a checkpoint's temp file, so that a test can kill the
# process in the middle of a write. Never set outside tests.
_PAUSE_ENV = "HARCORE_TEST_SAVE_PAUSE"


# ---- atomic files ---------------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, pause: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, ``fsync``, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            delay = float(os.environ.get(_PAUSE_ENV, "0") or 0) if pause else 0.0
            if delay > 0:
                half = len(data) // 2
                f.write(data[:half])
                f.flush()
                time.sleep(delay)
                f.write(data[half:])
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def fresh_checkpoints(ckdir: str | os.PathLike, key: Mapping[str, Any]) -> None:
    """Keep the checkpoints in ``ckdir`` only if they were written for ``key`` (a JSON-able dict of the settings
    they depend on): a run resumes its own epochs, never those of other settings. Otherwise the folder is
    emptied, and ``key`` is recorded (``key.json``) for the next look."""
    ckdir = Path(ckdir)
    stamp = ckdir / "key.json"
    try:
        same = json.loads(stamp.read_text(encoding="utf-8")) == json.loads(json.dumps(dict(key)))
    except (OSError, ValueError):
        same = False
    if not same:
        if ckdir.exists():
            shutil.rmtree(ckdir)
        atomic_write_text(stamp, json.dumps(dict(key), indent=2))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` written atomically (see :func:`atomic_write_bytes`)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue(), pause=True)


# ---- RNG state -----------------------------------------------------------------------------------

def rng_state(**generators: torch.Generator) -> dict[str, Any]:
    """The python, numpy and torch RNG states (and those of the named ``generators``) as plain values and
    tensors (numpy's key is kept as a tensor, so the state loads with ``weights_only=True``)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    st: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: Mapping[str, Any], **generators: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured (the named ``generators`` must be the ones it was given)."""
    random.setstate(_as_tuple(st["python"]))
    n = st["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(st["torch"])
    for name, g in generators.items():
        g.set_state(st["generators"][name])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _as_tuple(v: Any) -> Any:
    return tuple(_as_tuple(x) for x in v) if isinstance(v, (list, tuple)) else v


# ---- the checkpoint format -----------------------------------------------------------------------

def _canon(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _canon(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def fingerprint(config: Mapping[str, Any], free: Collection[str] = ()) -> str:
    """SHA-256 (hex, 16 digits) of the canonical JSON of ``config`` without the ``free`` fields: equal
    fingerprints mean a run may resume with this configuration."""
    kept = {k: v for k, v in config.items() if k not in free}
    text = json.dumps(_canon(kept), sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike, kind: str, config: Mapping[str, Any], payload: Mapping[str, Any], *,
                    meta: Mapping[str, Any] | None = None, free: Collection[str] = ()) -> Path:
    """Write one checkpoint atomically: the header (format, version, kind, fingerprint of ``config`` without
    the ``free`` fields), ``config``, ``meta`` (facts about the data the run needs unchanged) and ``payload``'s
    fields (state dicts, tensors, plain values) at the top level."""
    clash = sorted(set(payload) & set(HEADER))
    if clash:
        raise ValueError(f"save_checkpoint: payload fields {clash} are header fields")
    ck = {"format": FORMAT, "version": VERSION, "kind": kind, "fingerprint": fingerprint(config, free),
          "config": _canon(dict(config)), "meta": _canon(dict(meta or {})), **payload}
    return atomic_save(ck, path)


def _old_format(path: Path) -> str | None:
    """The format string of a pre-run-store harcore checkpoint, found without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("data.pkl"):
                    data = z.read(name)
                    return next((f for f in OLD_FORMATS if f.encode() in data), None)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None


def load_checkpoint(path: str | os.PathLike, kind: str | None = None, *,
                    require: Iterable[str] = ()) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: nothing but tensors and
    plain values is unpickled). A missing, empty, truncated, foreign, old or newer-format file, one of another
    ``kind`` or one missing a ``require``-d field is a :class:`~harcore.errors.CheckpointError` that names the
    file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty (0 bytes; a write was cut short?)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — torch raises RuntimeError, UnpicklingError, EOFError, ... here
        old = _old_format(path)
        if old is not None:
            raise CheckpointError(f"{path}: written by an older harcore (checkpoint format {old!r}); this version "
                                  f"reads {FORMAT!r} version {VERSION}: start a new run (another --out, or "
                                  "--overwrite)") from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: damaged or not a harcore checkpoint ({size:,} bytes; torch.load: "
                              f"{type(e).__name__}: {first[:200]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        what = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        if what in OLD_FORMATS:
            raise CheckpointError(f"{path}: written by an older harcore (checkpoint format {what!r}); this version "
                                  f"reads {FORMAT!r} version {VERSION}: start a new run (another --out, or "
                                  "--overwrite)")
        raise CheckpointError(f"{path}: not a harcore checkpoint (format {what!r}, expected {FORMAT!r})")
    v = ck.get("version")
    if not isinstance(v, int) or v > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {v!r} is newer than this harcore reads ({VERSION}); "
                              "upgrade harcore")
    if kind is not None and ck.get("kind") != kind:
        raise CheckpointError(f"{path}: a {ck.get('kind')!r} checkpoint, expected a {kind!r} one")
    missing = [k for k in (*HEADER, *require) if k not in ck]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks field(s) {', '.join(missing)}")
    return ck


def check_resume(ck: Mapping[str, Any], path: str | os.PathLike, config: Mapping[str, Any],
                 meta: Mapping[str, Any] | None = None, free: Collection[str] = ()) -> None:
    """Refuse to resume ``ck`` with another configuration or other data: a
    :class:`~harcore.errors.CheckpointError` naming every differing field (``config.<name>`` and data facts)."""
    diffs = []
    if ck.get("fingerprint") != fingerprint(config, free):
        old = ck.get("config") or {}
        new = _canon(dict(config))
        for k in sorted(set(old) | set(new)):
            if k in free or old.get(k) == new.get(k) and (k in old) == (k in new):
                continue
            if k not in old:  # a field this version added: the run was written by an older harcore
                diffs.append(f"config.{k}: {path} was written by a harcore without this option (now {new[k]!r})")
            elif k not in new:
                diffs.append(f"config.{k}: {path} was written with {old[k]!r}, an option this harcore does not have")
            else:
                diffs.append(f"config.{k}: {path} was written with {old[k]!r}, resuming with {new[k]!r}")
        if not diffs:  # the hash differs but no field does: a checkpoint edited by hand, or a bug
            diffs.append(f"config: fingerprint {ck.get('fingerprint')} differs from {fingerprint(config, free)}")
    for k, v in _canon(dict(meta or {})).items():
        if ck.get("meta", {}).get(k) != v:
            diffs.append(f"{k}: {path} was written with {ck.get('meta', {}).get(k)!r}, resuming with {v!r}")
    if diffs:
        raise CheckpointError("; ".join(diffs) + " (a run resumes only with its own configuration and data: start a "
                              "new run in another folder, or pass --overwrite)")


# ---- run folders ---------------------------------------------------------------------------------

class RunDir:
    """A run folder: the checkpoints, results and reports of one run.

    ``files`` are the names (files or folders, top level) that harcore writes into a run of this kind;
    anything else in the folder is the user's and is never deleted. ``marker`` is the file whose presence means
    the run finished (or was started) and holds its status.
    """

    def __init__(self, path: str | os.PathLike, *, files: Collection[str] = (), marker: str = "job.json"):
        self.path = Path(path).expanduser()
        self.files = frozenset(files) | {marker}
        self.marker = marker

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- what is there
    def entries(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir())

    def own(self, name: str) -> bool:
        # the temp file of an interrupted atomic write of one of ours is ours too
        return name in self.files or (name.endswith(".tmp") and any(name.startswith(f + ".") for f in self.files))

    def foreign(self) -> list[str]:
        """Entries harcore did not write."""
        return [n for n in self.entries() if not self.own(n)]

    def status(self) -> str | None:
        """``None`` (no run here), ``"finished"`` (the marker says every stage ran), ``"incomplete"``."""
        m = self.path / self.marker
        if not m.is_file():
            return "incomplete" if any(self.own(n) for n in self.entries()) else None
        try:
            d = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "incomplete"
        return "finished" if isinstance(d, dict) and d.get("finished") else "incomplete"

    # -- starting a run
    def prepare(self, *, resume: bool = False, overwrite: bool = False, checkpoints: Iterable[str] = ()) -> None:
        """Check that a run may start here and create the folder.

        * new run (neither flag): the folder is missing or empty, else :class:`~harcore.errors.RunExistsError`;
        * ``resume``: at least one of ``checkpoints`` (relative paths) exists, else
          :class:`~harcore.errors.CheckpointError` (nothing to resume); the folder is left as it is;
        * ``overwrite``: harcore's own files of an earlier run are deleted; the user's other files stay.
        A path that is a file, or a folder that cannot be created or written, is a
        :class:`~harcore.errors.CheckpointError`.
        """
        if resume and overwrite:
            raise CheckpointError(f"{self.path}: give either --resume or --overwrite, not both")
        p = self.path
        if p.exists() and not p.is_dir():
            raise CheckpointError(f"run folder {p}: exists and is a file, not a folder (choose another --out)")
        for up in p.parents:  # a file on the way makes mkdir fail with a confusing errno
            if up.exists():
                if not up.is_dir():
                    raise CheckpointError(f"run folder {p}: {up} is a file, not a folder (choose another --out)")
                break
        if resume:
            if not p.is_dir() or not any((p / c).exists() for c in checkpoints):
                have = ", ".join(checkpoints) or "a checkpoint"
                raise CheckpointError(f"nothing to resume in {p}: no {have} there (run without --resume to start "
                                      "a new run)")
            self._check_writable()
            return
        entries = self.entries()
        if entries and not overwrite:
            st = self.status()
            foreign = self.foreign()
            resumable = any((p / c).exists() for c in checkpoints)
            what = ("a finished harcore run" if st == "finished" else
                    "an unfinished harcore run" + (" (--resume continues it)" if resumable else "")
                    if st == "incomplete" and not foreign else
                    f"files harcore did not write ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''})")
            raise RunExistsError(f"run folder {p} is not empty: it holds {what}; choose another --out, or pass "
                                 "--overwrite to replace harcore's files there")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"run folder {p}: cannot be created ({e.strerror or e})") from None
        if overwrite:
            for name in entries:
                if self.own(name):
                    q = p / name
                    try:
                        shutil.rmtree(q) if q.is_dir() and not q.is_symlink() else q.unlink()
                    except OSError as e:
                        raise CheckpointError(f"run folder {p}: cannot remove {q} ({e.strerror or e})") from None
        self._check_writable()

    def _check_writable(self) -> None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".harcore-write-test.", dir=self.path)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise CheckpointError(f"run folder {self.path}: not writable ({e.strerror or e})") from None

    def clean_temp(self) -> list[str]:
        """Delete the temp files left by atomic writes that a kill interrupted; returns their names."""
        gone = []
        for q in list(self.path.rglob("*.tmp")) if self.path.is_dir() else []:
            if q.is_file() and self.own(q.relative_to(self.path).parts[0]):
                q.unlink()
                gone.append(str(q.relative_to(self.path)))
        return gone

    # -- writing
    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.path / name, text)

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, default=str))

    def save_checkpoint(self, name: str, kind: str, config: Mapping[str, Any], payload: Mapping[str, Any], *,
                        meta: Mapping[str, Any] | None = None, free: Collection[str] = ()) -> Path:
        return save_checkpoint(self.path / name, kind, config, payload, meta=meta, free=free)

    def load_checkpoint(self, name: str, kind: str | None = None, *, require: Iterable[str] = ()) -> dict[str, Any]:
        return load_checkpoint(self.path / name, kind, require=require)
