"""Checkpoints in Shipyard storage (local or S3): layout, atomic completion, discovery and retention.

Layout under the job's checkpoint URI::

    <uri>/step-000200/model/...        HF safetensors directory (``save_pretrained``)
    <uri>/step-000200/trainer/...      optimizer + scheduler (or DeepSpeed's own checkpoint files)
    <uri>/step-000200/rng/rank-00000.pt  torch/numpy/python RNG states, one file per rank
    <uri>/step-000200/state.json       step, tokens seen, data position, metrics
    <uri>/step-000200/COMPLETE         written last: the checkpoint exists exactly when this does
    <uri>/metrics.jsonl                the step metrics so far

Every file is written atomically by the storage layer, and ``COMPLETE`` is written after all ranks
uploaded their files, so a crash mid-checkpoint leaves an incomplete directory that readers ignore and
the next ``prune`` deletes. Retention keeps the newest ``keep`` complete checkpoints; pruning deletes a
checkpoint's ``COMPLETE`` first, so a crash mid-prune can never leave a half-deleted "complete" one.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = ["COMPLETE", "CheckpointStore", "download_dir", "upload_dir"]

COMPLETE = "COMPLETE"
STATE = "state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def upload_dir(storage: Storage, local_dir: pathlib.Path, uri: str) -> list[str]:
    """Copy every file under ``local_dir`` to ``uri`` (same relative paths); returns the URIs written."""
    written = []
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        target = uris.join(uri, path.relative_to(local_dir).as_posix())
        with path.open("rb") as src, storage.open_write(target) as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)
        written.append(target)
    return written


def download_dir(storage: Storage, uri: str, local_dir: pathlib.Path) -> int:
    """Copy every object under ``uri`` into ``local_dir``; returns how many files were copied."""
    prefix = uris.normalize(uri).rstrip("/") + "/"
    objects = storage.list(uri)
    for obj in objects:
        target = local_dir / obj.uri[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.open_read(obj.uri) as src, target.open("wb") as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)
    return len(objects)


class CheckpointStore:
    """The checkpoints of one job under ``uri``; ``keep`` is how many complete ones survive ``prune``."""

    def __init__(self, storage: Storage, uri: str, *, keep: int) -> None:
        self.storage = storage
        self.uri = uris.normalize(uri, field="spec.checkpoint.uri")
        self.keep = keep

    def step_uri(self, step: int) -> str:
        return uris.join(self.uri, f"step-{step:06d}")

    def _steps(self) -> tuple[set[int], set[int]]:
        """(all step dirs seen, those with a COMPLETE marker)."""
        seen: set[int] = set()
        complete: set[int] = set()
        prefix = self.uri.rstrip("/") + "/"
        for obj in self.storage.list(self.uri):
            parts = obj.uri[len(prefix) :].split("/")
            match = _STEP_DIR.match(parts[0]) if len(parts) > 1 else None
            if match is None:
                continue
            step = int(match.group(1))
            seen.add(step)
            if parts[1:] == [COMPLETE]:
                complete.add(step)
        return seen, complete

    def complete_steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        return sorted(self._steps()[1])

    def latest(self) -> int | None:
        """The newest complete checkpoint's step, or None when there is none."""
        steps = self.complete_steps()
        return steps[-1] if steps else None

    def begin(self, step: int) -> None:
        """Clear leftovers of an earlier, incomplete attempt at ``step`` before writing it again."""
        self.storage.delete(uris.join(self.step_uri(step), COMPLETE))
        self.storage.delete_prefix(self.step_uri(step))

    def upload(self, step: int, local_dir: pathlib.Path, subdir: str) -> list[str]:
        return upload_dir(self.storage, local_dir, uris.join(self.step_uri(step), subdir))

    def download(self, step: int, subdir: str, local_dir: pathlib.Path) -> int:
        return download_dir(self.storage, uris.join(self.step_uri(step), subdir), local_dir)

    def commit(self, step: int, state: dict[str, Any]) -> str:
        """Write ``state.json`` then ``COMPLETE``: from now on the checkpoint exists. Returns its URI."""
        base = self.step_uri(step)
        text = json.dumps(state, indent=2, sort_keys=True) + "\n"
        self.storage.write_text(uris.join(base, STATE), text)
        self.storage.write_text(uris.join(base, COMPLETE), text)
        return base

    def read_state(self, step: int) -> dict[str, Any]:
        return json.loads(self.storage.read_text(uris.join(self.step_uri(step), STATE)))

    def prune(self) -> list[int]:
        """Delete all but the newest ``keep`` complete checkpoints, and every incomplete one.

        Call it only right after ``commit`` from the single writer: an incomplete directory is then
        a leftover of a crashed attempt, never one being written. Returns the steps deleted.
        """
        seen, complete = self._steps()
        survivors = set(sorted(complete)[-self.keep :])
        doomed = sorted(seen - survivors)
        for step in doomed:
            self.storage.delete(uris.join(self.step_uri(step), COMPLETE))
            self.storage.delete_prefix(self.step_uri(step))
        return doomed
