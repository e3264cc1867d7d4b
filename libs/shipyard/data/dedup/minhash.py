"""``minhash_dedup``: near-duplicate removal with MinHash-LSH (the datatrove/Gopher recipe).

``collect`` computes a ``bands * rows`` MinHash signature per document (``signatures.MinHasher``:
word ``n_grams`` shingles, character n-grams for scripts without spaces) and writes, per shard,
``doc_index.npy`` (positions of documents that have at least one token) and one ``band-<b>.npy`` per
band (a uint64 hash of that band's ``rows`` values) — plus full signatures when ``threshold`` is set.

``reduce`` handles one band at a time, so its memory is a few arrays of one uint64 per document: it
sorts the band hashes of all shards, links documents whose band hash is equal (the candidate pairs),
optionally drops pairs whose estimated Jaccard (share of equal signature values) is below
``threshold``, forms clusters with vectorized union-find and keeps the lowest (shard, position) of
each cluster. ``apply`` drops the others with reason ``near_duplicate``.

Defaults match datatrove's ``MinhashConfig``: 5-grams, 14 bands x 8 rows (112 hashes), seed 1 —
documents with Jaccard similarity 0.8 are caught with probability 1 - (1 - 0.8**8)**14 = 0.92.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from pydantic import Field

from shipyard.data.dedup import artifacts
from shipyard.data.dedup.artifacts import join
from shipyard.data.dedup.clustering import equal_key_edges, non_representatives
from shipyard.data.dedup.removals import RemovalDecision, apply_removals
from shipyard.data.dedup.signatures import MinHasher, band_hashes
from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, GlobalStep, ShardContext, StepParams

__all__ = ["MinHashDedup"]

# Documents hashed together: amortizes numpy call overhead over many short documents.
_BATCH_DOCS = 512
_BATCH_CHARS = 1 << 18


class MinHashDedupParams(StepParams):
    n_grams: int = Field(5, ge=1, le=64, description="Tokens per shingle (characters for CJK/Thai text).")
    bands: int = Field(14, ge=1, le=256, description="LSH bands; a band collision makes a candidate pair.")
    rows: int = Field(8, ge=1, le=64, description="MinHash values per band.")
    seed: int = Field(1, ge=0, description="Seed of the hash functions; must be equal across shards.")
    threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="If set, keep only candidate pairs whose estimated Jaccard is at least this.",
    )


class MinHashDedup(GlobalStep):
    """Removes near-duplicate documents, keeping the first of each cluster in (shard, position) order."""

    name = "minhash_dedup"
    Params = MinHashDedupParams
    params: MinHashDedupParams

    def __init__(self, params: MinHashDedupParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        self._hasher = MinHasher(n_grams=p.n_grams, num_perm=p.bands * p.rows, seed=p.seed)

    def _signature_params(self) -> dict[str, object]:
        p = self.params
        return {"n_grams": p.n_grams, "bands": p.bands, "rows": p.rows, "seed": p.seed}

    def collect(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        p = self.params
        doc_index: list[np.ndarray] = []
        bands: list[np.ndarray] = []
        sigs: list[np.ndarray] = []
        batch: list[str] = []
        chars = 0
        seen = 0

        def flush() -> None:
            nonlocal chars
            ids, sig = self._hasher.signatures(batch)
            doc_index.append((ids + (seen - len(batch))).astype(np.uint32))
            bands.append(band_hashes(sig, bands=p.bands, rows=p.rows))
            if p.threshold is not None:
                sigs.append(sig)
            batch.clear()
            chars = 0

        for doc in docs:
            batch.append(doc.text)
            chars += len(doc.text)
            seen += 1
            yield doc
            if len(batch) >= _BATCH_DOCS or chars >= _BATCH_CHARS:
                ctx.check_cancelled()
                flush()
        if batch:
            flush()
        storage, scratch = ctx.storage, ctx.scratch_uri
        all_bands = np.concatenate(bands) if bands else np.empty((0, p.bands), np.uint64)
        artifacts.save_array(
            storage, join(scratch, "doc_index.npy"), np.concatenate(doc_index) if doc_index else np.empty(0)
        )
        for b in range(p.bands):
            artifacts.save_array(storage, join(scratch, f"band-{b:03d}.npy"), all_bands[:, b])
        if p.threshold is not None:
            width = p.bands * p.rows
            full = np.concatenate(sigs) if sigs else np.empty((0, width), np.uint32)
            artifacts.save_array(storage, join(scratch, "signatures.npy"), full)
        # meta.json last: its presence says the shard's artifacts are complete.
        artifacts.write_shard_meta(storage, scratch, seen, self._signature_params())

    def reduce(self, gctx: GlobalContext) -> None:
        p = self.params
        storage = gctx.storage
        num_docs = []
        for uri in gctx.shard_scratch_uris:
            num_docs.append(
                artifacts.read_shard_meta(storage, uri, self._signature_params(), what="minhash signatures")
            )
        offsets = np.concatenate([[0], np.cumsum(num_docs, dtype=np.int64)])
        # Global ids in (shard, position) order; one int64 per document is all that stays resident.
        gids = np.concatenate(
            [
                artifacts.load_array(storage, join(uri, "doc_index.npy")).astype(np.int64) + offsets[s]
                for s, uri in enumerate(gctx.shard_scratch_uris)
            ]
            or [np.empty(0, np.int64)]
        )
        edges_u: list[np.ndarray] = []
        edges_v: list[np.ndarray] = []
        for b in range(p.bands):
            gctx.check_cancelled()
            keys = np.concatenate(
                [
                    artifacts.load_array(storage, join(uri, f"band-{b:03d}.npy"))
                    for uri in gctx.shard_scratch_uris
                ]
                or [np.empty(0, np.uint64)]
            )
            u, v = equal_key_edges(keys, gids)
            edges_u.append(u)
            edges_v.append(v)
        u = np.concatenate(edges_u) if edges_u else np.empty(0, np.int64)
        v = np.concatenate(edges_v) if edges_v else np.empty(0, np.int64)
        if u.size:
            pairs = np.unique(np.stack([u, v], axis=1), axis=0)
            u, v = pairs[:, 0], pairs[:, 1]
        candidates = int(u.size)
        if p.threshold is not None and u.size:
            keep = self._estimated_jaccard(gctx, gids, offsets, u, v) >= p.threshold
            u, v = u[keep], v[keep]
        removed = non_representatives(u, v)
        RemovalDecision.write(
            storage,
            gctx.global_uri,
            num_docs=num_docs,
            removed_global=removed,
            extra={"candidate_pairs": candidates, "verified_pairs": int(u.size)},
        )

    def _estimated_jaccard(
        self, gctx: GlobalContext, gids: np.ndarray, offsets: np.ndarray, u: np.ndarray, v: np.ndarray
    ) -> np.ndarray:
        """Share of equal MinHash values of each candidate pair, reading only the rows needed."""
        rows_needed = np.unique(np.concatenate([u, v]))
        width = self.params.bands * self.params.rows
        table = np.empty((rows_needed.size, width), dtype=np.uint32)
        shard_of = np.searchsorted(offsets, rows_needed, side="right") - 1
        row_in_file = np.searchsorted(gids, rows_needed)  # gids are sorted and follow file order
        for s, uri in enumerate(gctx.shard_scratch_uris):
            mine = shard_of == s
            if not mine.any():
                continue
            sig = artifacts.load_array(gctx.storage, join(uri, "signatures.npy"), mmap=True)
            first_row = np.searchsorted(gids, offsets[s])
            table[mine] = sig[row_in_file[mine] - first_row]
        a = table[np.searchsorted(rows_needed, u)]
        b = table[np.searchsorted(rows_needed, v)]
        return (a == b).mean(axis=1)

    def apply(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        yield from apply_removals(self, docs, ctx, reason="near_duplicate")
