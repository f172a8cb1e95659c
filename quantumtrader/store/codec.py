"""Model/feature state <-> bytes, without pickle.

State is a tree of dicts whose leaves are numpy arrays or JSON values
(numbers, strings, lists of them). Arrays go into an ``.npz`` archive under
their path in the tree; everything else into one JSON entry. Loading uses
``allow_pickle=False``, so a tampered store file can be wrong but cannot run
code.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson

_META = "__meta__"
_SEP = "/"


def _split(tree: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in tree.items():
        if _SEP in key or key == _META:
            raise ValueError(f"state key {key!r} may not contain {_SEP!r} or be {_META!r}")
        path = f"{prefix}{key}"
        if isinstance(value, np.ndarray):
            arrays[path] = value
            meta[key] = {"$array": path}
        elif isinstance(value, dict):
            meta[key] = {"$tree": _split(value, path + _SEP, arrays)}
        elif isinstance(value, np.generic):
            meta[key] = value.item()
        else:
            meta[key] = value
    return meta


def _join(meta: dict[str, Any], archive: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, dict) and "$array" in value:
            out[key] = archive[value["$array"]]
        elif isinstance(value, dict) and "$tree" in value:
            out[key] = _join(value["$tree"], archive)
        else:
            out[key] = value
    return out


def pack_state(tree: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    meta = _split(tree, "", arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_META: np.frombuffer(orjson.dumps(meta), dtype=np.uint8)})
    return buffer.getvalue()


def unpack_state(blob: bytes) -> dict[str, Any]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        meta = orjson.loads(archive[_META].tobytes())
        return _join(meta, {name: archive[name] for name in archive.files if name != _META})
