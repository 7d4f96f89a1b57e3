"""The built-in default dataset: a compact subset of real HAPT-derived UCI-9 windows, shipped in the
package (``harcore/data/_default/``; provenance and licence in ``_default/NOTICE.md``; rebuilt by
``tools/build_default_dataset.py``).

File format (``hapt_uci9_subset.bin.xz``, xz-compressed): an 8-byte little-endian header length,
a UTF-8 JSON header (metadata, and for each array its dtype, shape and byte offset), then the raw
array bytes. The signal is stored as int16 first differences along time of fixed-step integers
(acceleration in steps of 2^-11 g, angular velocity 2^-11 rad/s; total_acc is stored as its
gravity part, total - body); loading reverses this exactly, so the only loss is the rounding to
the step (at most half a step: 0.00024 g, 0.00024 rad/s, a fraction of the phone's own resolution
of 1/720 g and 0.0012 rad/s).
"""

from __future__ import annotations

import json
import lzma
import struct
from importlib import resources

import numpy as np

from ..dataset import WindowSet
from ..errors import DataError

FILENAME = "hapt_uci9_subset.bin.xz"


def pack(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """Serialize arrays + JSON metadata deterministically (the inverse of :func:`unpack`)."""
    header = {"meta": meta, "arrays": {}}
    blobs, offset = [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.kind not in "iuf":
            raise ValueError(f"array {name} must be numeric")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header["arrays"][name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
        blobs.append(a.tobytes())
        offset += len(blobs[-1])
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    raw = struct.pack("<Q", len(h)) + h + b"".join(blobs)
    return lzma.compress(raw, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def unpack(data: bytes, where: str) -> tuple[dict[str, np.ndarray], dict]:
    try:
        raw = lzma.decompress(data)
        (hlen,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + hlen].decode("utf-8"))
        body = raw[8 + hlen:]
        arrays = {}
        for name, spec in header["arrays"].items():
            dt = np.dtype(spec["dtype"])
            n = int(np.prod(spec["shape"])) * dt.itemsize
            chunk = body[spec["offset"]:spec["offset"] + n]
            if len(chunk) != n:
                raise ValueError(f"array {name} is truncated")
            arrays[name] = np.frombuffer(chunk, dtype=dt).reshape(spec["shape"])
    except (lzma.LZMAError, struct.error, ValueError, KeyError, UnicodeDecodeError) as e:
        raise DataError(f"corrupted default-dataset file ({e})", path=where) from e
    return arrays, header["meta"]


def decode_signal(arrays: dict[str, np.ndarray], meta: dict) -> np.ndarray:
    """Rebuild float32 ``(N, 9, T)`` windows in UCI channel order from the stored differences."""
    q = np.cumsum(arrays["dq"].astype(np.int32), axis=2)  # (N, 9, T): body_acc, body_gyro, gravity
    x = np.empty(q.shape, np.float64)
    x[:, 0:3] = q[:, 0:3] * meta["acc_step"]
    x[:, 3:6] = q[:, 3:6] * meta["gyro_step"]
    x[:, 6:9] = (q[:, 0:3] + q[:, 6:9]) * meta["acc_step"]  # total = body + gravity
    return x.astype(np.float32)


def load_windows() -> WindowSet:
    ref = resources.files("harcore.data").joinpath("_default", FILENAME)
    where = str(ref)
    try:
        data = ref.read_bytes()
    except OSError as e:
        raise DataError(f"the default dataset is missing from the installed package ({e})", path=where) from e
    arrays, meta = unpack(data, where)
    x = decode_signal(arrays, meta)
    info = {"source": where, "variant": "uci9 subset", "window": meta["window"], "step": meta["step"],
            "experiment": arrays["experiment"].astype(np.int64), "start": arrays["start"].astype(np.int64),
            "build": meta["build"], "label_rule": meta["label_rule"], "licence": meta["licence"]}
    return WindowSet(x, arrays["y"].astype(np.int64), arrays["subjects"].astype(np.int64), list(meta["classes"]),
                     list(meta["channels"]), float(meta["sample_rate"]), "default", tuple(meta["test_subjects"]), info)
