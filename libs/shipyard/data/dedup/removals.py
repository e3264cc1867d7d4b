"""The decision of a document-level dedup (exact, MinHash): which positions of each shard to drop.

``reduce`` turns a sorted array of global ids (numbered in (shard, position) order) into one
``remove-<shard>.npy`` per shard plus ``decision.json``; ``apply`` streams a shard's documents and
drops those positions. Both steps share this so the layout and its checks live in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from shipyard.data.dedup import artifacts
from shipyard.data.document import Document
from shipyard.data.step import GlobalStep, ShardContext
from shipyard.errors import FailedPrecondition
from shipyard.storage.base import Storage

__all__ = ["RemovalDecision", "apply_removals"]


class RemovalDecision:
    """Reads and writes the per-shard removal lists under a step's global directory."""

    @staticmethod
    def write(
        storage: Storage,
        global_uri: str,
        *,
        num_docs: list[int],
        removed_global: np.ndarray,
        extra: dict[str, Any] | None = None,
    ) -> None:
        offsets = np.concatenate([[0], np.cumsum(num_docs, dtype=np.int64)])
        shard_of = np.searchsorted(offsets, removed_global, side="right") - 1
        for shard in range(len(num_docs)):
            local = removed_global[shard_of == shard] - offsets[shard]
            artifacts.save_array(storage, artifacts.removal_uri(global_uri, shard), local.astype(np.uint32))
        summary = {
            "num_docs": list(num_docs),
            "removed": int(removed_global.size),
            "removed_per_shard": np.bincount(shard_of, minlength=len(num_docs)).tolist(),
            **(extra or {}),
        }
        # decision.json last: apply treats its presence as "reduce finished".
        artifacts.write_json(storage, artifacts.join(global_uri, artifacts.DECISION), summary)

    @staticmethod
    def read(storage: Storage, global_uri: str, shard: int) -> tuple[int, np.ndarray]:
        """``(documents the shard had at collect, sorted positions to drop)``."""
        decision_uri = artifacts.join(global_uri, artifacts.DECISION)
        decision = artifacts.read_json(storage, decision_uri, what="dedup decision")
        counts = decision["num_docs"]
        if shard >= len(counts):
            raise FailedPrecondition(
                f"dedup decision at {decision_uri} covers {len(counts)} shards, not shard {shard}"
            )
        return int(counts[shard]), artifacts.load_array(storage, artifacts.removal_uri(global_uri, shard))


def apply_removals(
    step: GlobalStep, docs: Iterable[Document], ctx: ShardContext, *, reason: str
) -> Iterator[Document]:
    """Yield the shard's documents except the removed positions, counting into ``step.stats``."""
    expected, removed = RemovalDecision.read(ctx.storage, ctx.global_uri, ctx.shard_index)
    drop = set(removed.tolist())
    seen = 0
    for position, doc in enumerate(docs):
        seen = position + 1
        step.stats.docs_in += 1
        if position in drop:
            step.stats.drop(reason)
            continue
        step.stats.docs_out += 1
        yield doc
    if seen != expected:
        # The decision names positions; a different document stream would drop the wrong documents.
        raise FailedPrecondition(
            f"{step.name}: shard {ctx.shard_index} had {expected} documents at collect but {seen} at apply; "
            "apply must see exactly the documents collect saw"
        )
