"""``exact_dedup``: drops documents whose normalized text already occurred earlier in the dataset.

``collect`` hashes each document's normalized text (lowercased and whitespace-collapsed by default;
punctuation stripping optional) with xxh3-128 (or xxh3-64) and writes one array of hashes per shard.
``reduce`` sorts all hashes together with their global (shard, position) id and marks every
repeat of a hash after its first occurrence, so the survivor is the first in (shard, position) order
whatever the number of workers. ``apply`` drops the repeats with reason ``exact_duplicate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import xxhash
from pydantic import Field

from shipyard.data.dedup import artifacts
from shipyard.data.dedup.artifacts import join
from shipyard.data.dedup.removals import RemovalDecision, apply_removals
from shipyard.data.dedup.text_normalization import normalize_exact
from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, GlobalStep, ShardContext, StepParams

__all__ = ["ExactDedup"]


class ExactDedupParams(StepParams):
    hash_bits: Literal[64, 128] = Field(128, description="xxh3 digest size; 64 halves the memory of reduce.")
    lowercase: bool = Field(True, description="Compare texts case-insensitively.")
    collapse_whitespace: bool = Field(True, description="Treat any run of whitespace as one space.")
    strip_punctuation: bool = Field(False, description="Also ignore punctuation, symbols and digit values.")


class ExactDedup(GlobalStep):
    """Keeps the first occurrence of each normalized text in (shard, position) order."""

    name = "exact_dedup"
    Params = ExactDedupParams
    params: ExactDedupParams

    def _hash(self, text: str) -> bytes:
        p = self.params
        normalized = normalize_exact(
            text,
            lowercase=p.lowercase,
            collapse_whitespace=p.collapse_whitespace,
            strip_punctuation=p.strip_punctuation,
        ).encode("utf-8")
        return xxhash.xxh3_128_digest(normalized) if p.hash_bits == 128 else xxhash.xxh3_64_digest(normalized)

    def collect(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        digests = bytearray()
        count = 0
        for doc in docs:
            digests += self._hash(doc.text)
            count += 1
            yield doc
        words = self.params.hash_bits // 64
        hashes = np.frombuffer(bytes(digests), dtype=">u8").astype(np.uint64).reshape(count, words)
        artifacts.save_array(ctx.storage, join(ctx.scratch_uri, "hashes.npy"), hashes)
        artifacts.write_shard_meta(ctx.storage, ctx.scratch_uri, count, self.params.model_dump())

    def reduce(self, gctx: GlobalContext) -> None:
        storage = gctx.storage
        num_docs: list[int] = []
        parts: list[np.ndarray] = []
        for uri in gctx.shard_scratch_uris:
            params = self.params.model_dump()
            num_docs.append(artifacts.read_shard_meta(storage, uri, params, what="exact-dedup hashes"))
            parts.append(artifacts.load_array(storage, join(uri, "hashes.npy")))
        words = self.params.hash_bits // 64
        hashes = np.concatenate(parts) if parts else np.empty((0, words), np.uint64)
        gids = np.arange(hashes.shape[0], dtype=np.int64)  # concatenation order is (shard, position)
        # lexsort: last key is primary; gid as the final tie-break makes the first occurrence lead.
        order = np.lexsort((gids, *[hashes[:, w] for w in reversed(range(words))]))
        sorted_h = hashes[order]
        repeat = np.zeros(order.size, dtype=bool)
        if order.size > 1:
            repeat[1:] = (sorted_h[1:] == sorted_h[:-1]).all(axis=1)
        removed = np.sort(gids[order][repeat])
        RemovalDecision.write(storage, gctx.global_uri, num_docs=num_docs, removed_global=removed)

    def apply(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        yield from apply_removals(self, docs, ctx, reason="exact_duplicate")
