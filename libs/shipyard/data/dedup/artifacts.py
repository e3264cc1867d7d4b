"""The on-storage layout shared by the dedup steps: numpy arrays and small JSON files through ``Storage``.

Per shard, ``collect`` writes arrays plus ``meta.json`` (documents seen, the parameters that shaped the
arrays) under the shard's scratch directory. ``reduce`` writes, under the step's global directory, one
``remove-<shard>.npy`` per shard (sorted positions of documents or spans to drop) and ``decision.json``
(documents per shard, totals). Arrays go through ``np.save``/``np.load`` on file objects, so S3 works
exactly like a local directory; a local backend is memory-mapped instead of read into memory.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from shipyard.errors import FailedPrecondition, NotFound
from shipyard.storage.base import Storage

__all__ = [
    "DECISION",
    "META",
    "join",
    "load_array",
    "read_json",
    "removal_uri",
    "save_array",
    "read_shard_meta",
    "write_json",
    "write_shard_meta",
]

META = "meta.json"
DECISION = "decision.json"


def join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def removal_uri(global_uri: str, shard: int) -> str:
    return join(global_uri, f"remove-{shard:05d}.npy")


def save_array(storage: Storage, uri: str, array: np.ndarray) -> None:
    with storage.open_write(uri) as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def load_array(storage: Storage, uri: str, *, mmap: bool = False) -> np.ndarray:
    """Load an array written by ``save_array``; ``mmap`` maps it when the backend has a local path."""
    path = storage.local_path(uri)
    if path is not None:
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError as exc:
            raise NotFound(f"no dedup artifact at {uri}") from exc
    with storage.open_read(uri) as f:
        return np.load(io.BytesIO(f.read()), allow_pickle=False)


def write_json(storage: Storage, uri: str, value: dict[str, Any]) -> None:
    storage.write_text(uri, json.dumps(value, sort_keys=True, indent=1))


def read_json(storage: Storage, uri: str, *, what: str) -> dict[str, Any]:
    """Read a JSON artifact; a missing one means a phase was skipped, which is a precondition error."""
    try:
        value: dict[str, Any] = json.loads(storage.read_text(uri))
    except NotFound as exc:
        raise FailedPrecondition(f"{what} missing at {uri}: run the earlier dedup phase first") from exc
    return value


def check_meta(meta: dict[str, Any], expected: dict[str, Any], *, uri: str) -> None:
    """Refuse to reduce artifacts collected with other parameters (they would not be comparable)."""
    if meta.get("params") != expected:
        raise FailedPrecondition(
            f"artifacts at {uri} were collected with params {meta.get('params')}, "
            f"but this step has {expected}; rerun collect"
        )


def write_shard_meta(storage: Storage, scratch_uri: str, num_docs: int, params: dict[str, Any]) -> None:
    """Record, next to a shard's arrays, how many documents ``collect`` saw and with which parameters."""
    write_json(storage, join(scratch_uri, META), {"num_docs": num_docs, "params": params})


def read_shard_meta(storage: Storage, scratch_uri: str, params: dict[str, Any], *, what: str) -> int:
    """The document count a shard's ``collect`` recorded, after checking it used ``params``."""
    meta = read_json(storage, join(scratch_uri, META), what=what)
    check_meta(meta, params, uri=scratch_uri)
    return int(meta["num_docs"])
