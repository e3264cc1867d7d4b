"""``sentence_dedup``: removes spans of sentences (or paragraphs) already seen in an earlier document.

Like datatrove's sentence dedup and CCNet's paragraph dedup. A document is split into units —
sentences (after ``. ! ? …`` followed by space, after ``。！？``, and at line breaks) or paragraphs
(lines: web-extracted text puts one paragraph per line, as CCNet assumes). Every window of ``n``
consecutive units whose normalized text has at least ``min_span_words`` words is hashed (xxh3-64 of
``text_normalization.simplify``). ``reduce`` sorts all (hash, document) pairs and marks each window
whose hash first occurred in an *earlier* document in (shard, position) order. ``apply`` cuts the
units those windows cover out of the text (keeping the original text around them) and drops a
document left with fewer than ``min_doc_words`` words (reason ``sentence_duplicates``). Counts of
removed spans, units and characters go to ``stats.extra``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import xxhash
from pydantic import Field

from shipyard.data.dedup import artifacts
from shipyard.data.dedup.artifacts import join
from shipyard.data.dedup.clustering import duplicates_of_sorted_keys
from shipyard.data.dedup.text_normalization import simplify, word_count
from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, GlobalStep, ShardContext, StepParams
from shipyard.errors import FailedPrecondition

__all__ = ["SentenceDedup", "split_units"]

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|[。！？]+[」』”’)]*\s*|\n\s*")
_LINE_END = re.compile(r"\n\s*")


class SentenceDedupParams(StepParams):
    unit: Literal["sentence", "paragraph"] = Field("sentence", description="What a span is made of.")
    n: int = Field(3, ge=1, le=64, description="Consecutive units per hashed span.")
    min_span_words: int = Field(10, ge=0, description="Shorter spans are not deduplicated (too generic).")
    min_doc_words: int = Field(50, ge=0, description="Drop an edited document left with fewer words.")


def split_units(text: str, unit: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the units; they tile the text (each unit keeps its trailing space)."""
    pattern = _SENTENCE_END if unit == "sentence" else _LINE_END
    spans: list[tuple[int, int]] = []
    start = 0
    for m in pattern.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


class SentenceDedup(GlobalStep):
    """Cuts repeated multi-sentence spans; the first document (in (shard, position) order) keeps them."""

    name = "sentence_dedup"
    Params = SentenceDedupParams
    params: SentenceDedupParams

    def _window_hashes(self, text: str) -> list[tuple[int, int]]:
        """``(window start unit, hash)`` of every window long enough to be deduplicated."""
        p = self.params
        units = split_units(text, p.unit)
        normalized = [simplify(text[s:e]).split() for s, e in units]
        out = []
        for i in range(len(units) - p.n + 1):
            words = [w for unit in normalized[i : i + p.n] for w in unit]
            if len(words) >= max(p.min_span_words, 1):
                out.append((i, xxhash.xxh3_64_intdigest(" ".join(words).encode("utf-8"))))
        return out

    def collect(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        hashes: list[int] = []
        positions: list[int] = []
        starts: list[int] = []
        count = 0
        for position, doc in enumerate(docs):
            for start, h in self._window_hashes(doc.text):
                hashes.append(h)
                positions.append(position)
                starts.append(start)
            count = position + 1
            yield doc
        table = np.stack(
            [
                np.array(hashes, dtype=np.uint64),
                np.array(positions, dtype=np.uint64),
                np.array(starts, dtype=np.uint64),
            ],
            axis=1,
        )
        artifacts.save_array(ctx.storage, join(ctx.scratch_uri, "windows.npy"), table)
        artifacts.write_shard_meta(ctx.storage, ctx.scratch_uri, count, self.params.model_dump())

    def reduce(self, gctx: GlobalContext) -> None:
        storage = gctx.storage
        num_docs: list[int] = []
        tables: list[np.ndarray] = []
        for uri in gctx.shard_scratch_uris:
            params = self.params.model_dump()
            num_docs.append(artifacts.read_shard_meta(storage, uri, params, what="sentence hashes"))
            tables.append(artifacts.load_array(storage, join(uri, "windows.npy")))
        offsets = np.concatenate([[0], np.cumsum(num_docs, dtype=np.int64)]).astype(np.uint64)
        shard_ids = np.concatenate([np.full(len(t), s, dtype=np.int64) for s, t in enumerate(tables)] or [[]])
        table = np.concatenate(tables) if tables else np.empty((0, 3), np.uint64)
        owner = table[:, 1] + offsets[shard_ids.astype(np.int64)] if table.size else np.empty(0, np.uint64)
        order = np.lexsort((table[:, 2], owner, table[:, 0]))
        dup = np.zeros(order.size, dtype=bool)
        dup[order] = duplicates_of_sorted_keys(table[order, 0], owner[order])
        for s in range(len(num_docs)):
            mine = dup & (shard_ids == s)
            pairs = table[mine][:, 1:3].astype(np.uint32)
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if pairs.size else pairs.reshape(0, 2)
            artifacts.save_array(storage, artifacts.removal_uri(gctx.global_uri, s), pairs)
        artifacts.write_json(
            storage,
            join(gctx.global_uri, artifacts.DECISION),
            {"num_docs": num_docs, "duplicate_spans": int(dup.sum())},
        )

    def apply(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        p = self.params
        decision = artifacts.read_json(
            ctx.storage, join(ctx.global_uri, artifacts.DECISION), what="sentence-dedup decision"
        )
        pairs = artifacts.load_array(ctx.storage, artifacts.removal_uri(ctx.global_uri, ctx.shard_index))
        windows: dict[int, list[int]] = {}
        for position, start in pairs.tolist():
            windows.setdefault(position, []).append(start)
        seen = 0
        for position, doc in enumerate(docs):
            seen = position + 1
            self.stats.docs_in += 1
            starts = windows.get(position)
            if starts is None:
                self.stats.docs_out += 1
                yield doc
                continue
            units = split_units(doc.text, p.unit)
            cut = np.zeros(len(units), dtype=bool)
            for start in starts:
                cut[start : start + p.n] = True
            text = "".join(doc.text[s:e] for (s, e), c in zip(units, cut, strict=True) if not c).strip()
            self.stats.extra["removed_spans"] += len(starts)
            self.stats.extra["removed_units"] += int(cut.sum())
            self.stats.extra["removed_chars"] += len(doc.text) - len(text)
            if word_count(text) < p.min_doc_words:
                self.stats.drop("sentence_duplicates")
                continue
            self.stats.docs_out += 1
            yield Document(id=doc.id, text=text, metadata=doc.metadata)
        if seen != decision["num_docs"][ctx.shard_index]:
            raise FailedPrecondition(
                f"{self.name}: shard {ctx.shard_index} had {decision['num_docs'][ctx.shard_index]} documents "
                f"at collect but {seen} at apply; apply must see exactly the documents collect saw"
            )
