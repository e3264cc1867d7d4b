"""Pure planning of an ingest run: which steps run in which stage, and where every file goes.

A pipeline is cut into *stages* at each global step (dedup, tokenizer training). Stage ``k`` runs, per
shard: the ``apply`` phase of the global step that ended stage ``k-1`` (if any), the per-document
steps, then the ``collect`` phase of the next global step (if any). Between stages the global step's
``reduce`` runs once. Only the last stage writes final documents; earlier stages write intermediate
shards under the work directory. Shard ``i`` stays shard ``i`` through every stage.

All state lives under ``<output>/.shipyard/work/<fingerprint>/``: a rerun of the same spec finds the
done-markers of finished tasks and skips them, so a crash loses nothing and redoes nothing. A changed
spec gets a fresh fingerprint and therefore fresh work.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shipyard.storage.uri import join


@dataclass(frozen=True)
class Stage:
    """One stage: step indices into the job's step list (writer excluded)."""

    index: int
    apply_global: int | None
    map_steps: tuple[int, ...]
    collect_global: int | None

    @property
    def is_last(self) -> bool:
        return self.collect_global is None


def plan_stages(is_global: list[bool]) -> list[Stage]:
    """Cut steps into stages at global steps. ``is_global[i]`` says whether step ``i`` is global."""
    stages: list[Stage] = []
    pending_apply: int | None = None
    current: list[int] = []
    for i, glob in enumerate(is_global):
        if glob:
            stages.append(Stage(len(stages), pending_apply, tuple(current), i))
            pending_apply, current = i, []
        else:
            current.append(i)
    stages.append(Stage(len(stages), pending_apply, tuple(current), None))
    return stages


def fingerprint(spec: dict[str, Any]) -> str:
    """Identity of the work a spec describes. Execution settings (workers, executor) do not change
    results, so they are excluded: resuming with more workers reuses finished shards."""
    relevant = {k: v for k, v in spec.items() if k != "execution"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WorkLayout:
    """Where one run keeps its state; every path derives from the output URI and the fingerprint."""

    output_uri: str
    fingerprint: str

    @property
    def root(self) -> str:
        return join(self.output_uri, ".shipyard", "work", self.fingerprint)

    @property
    def shards_uri(self) -> str:
        return join(self.root, "shards.json")

    @property
    def cancel_marker(self) -> str:
        return join(self.root, "CANCELLED")

    def intermediate(self, stage: int, shard: int) -> str:
        return join(self.root, f"stage-{stage}", f"shard-{shard:05d}.jsonl")

    def done_marker(self, stage: int, shard: int) -> str:
        return join(self.root, f"stage-{stage}", f"shard-{shard:05d}.done.json")

    def reduce_marker(self, step: int) -> str:
        return join(self.root, f"step-{step}", "reduce.done.json")

    def scratch(self, step: int, shard: int) -> str:
        return join(self.root, f"step-{step}", f"shard-{shard:05d}")

    def global_dir(self, step: int) -> str:
        return join(self.root, f"step-{step}", "global")

    def quarantine(self, stage: int, shard: int) -> str:
        return join(self.output_uri, "quarantine", f"stage-{stage}-shard-{shard:05d}.jsonl")

    @property
    def manifest_uri(self) -> str:
        return join(self.output_uri, "manifest.json")

    def published_prefixes(self) -> list[str]:
        """What a cancelled run removes: every output it may have written, and its work state."""
        return [join(self.output_uri, d) for d in ("data", "tokens", "tokenizer", "quarantine")] + [self.root]
