"""MinHash signatures of a batch of documents, computed with numpy — no Python loop per shingle or hash.

For a batch, the simplified texts (``text_normalization.simplify_bytes``) are joined into one byte
array. Whitespace runs are collapsed to one space, tokens are the non-space runs, and a shingle is ``n``
consecutive tokens of one document (a document with fewer than ``n`` tokens is one shingle). Each
shingle's bytes are hashed with a polynomial hash mod 2**64 read off a prefix sum — every shingle hash
of the batch in a handful of vectorized operations — then mixed with the splitmix64 finalizer.

The ``bands * rows`` "permutations" are multiply-shift hashes ``(a * x + b) >> 32`` of the shingle's
32-bit hash (Dietzfelbinger: 2-universal, no modulo, which is the slow part of the classic
``(a * x + b) % p``). The minimum over a document's shingles is one ``np.minimum.reduceat`` on a
(shingles x permutations) matrix, computed in row blocks to bound memory for long documents.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shipyard.data.dedup.text_normalization import simplify_bytes

__all__ = ["MinHasher", "band_hashes", "mix64"]

_P = np.uint64(0x100000001B3)  # odd multiplier of the polynomial byte hash
_P_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_WHITESPACE = np.array([9, 10, 11, 12, 13, 32], dtype=np.uint8)
# Rows of the (shingles x permutations) matrix computed at once: 4096 x 112 x 8 B = 3.6 MiB.
_BLOCK_ROWS = 4096


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (uint64 in, uint64 out): spreads every input bit over the whole word."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Powers:
    """Cached ``P**i`` and ``P**-i`` mod 2**64, grown on demand (a batch needs as many as it has bytes)."""

    def __init__(self) -> None:
        self.pos = np.ones(1, dtype=np.uint64)
        self.neg = np.ones(1, dtype=np.uint64)

    def ensure(self, n: int) -> None:
        if n <= len(self.pos):
            return
        size = max(n, 2 * len(self.pos))
        # cumprod wraps mod 2**64 for uint64, which is exactly the arithmetic wanted.
        self.pos = np.cumprod(np.concatenate([[np.uint64(1)], np.full(size - 1, _P)]), dtype=np.uint64)
        self.neg = np.cumprod(np.concatenate([[np.uint64(1)], np.full(size - 1, _P_INV)]), dtype=np.uint64)


class MinHasher:
    """Computes ``num_perm`` 32-bit MinHash values per document for word ``n``-gram shingles."""

    def __init__(self, *, n_grams: int, num_perm: int, seed: int) -> None:
        self.n_grams = n_grams
        self.num_perm = num_perm
        rng = np.random.default_rng(seed)
        # a odd, b arbitrary: multiply-shift needs an odd multiplier to be universal.
        self.a = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
        self._powers = _Powers()
        self._buf = np.empty((_BLOCK_ROWS, num_perm), dtype=np.uint64)

    def shingle_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Hashes of every shingle of the batch and, per shingle, the index of its document."""
        parts = [simplify_bytes(t) for t in texts]
        raw = np.frombuffer(b" ".join(parts), dtype=np.uint8)
        doc_start = np.zeros(len(parts), dtype=np.int64)
        if len(parts) > 1:
            doc_start[1:] = np.cumsum(np.fromiter((len(p) + 1 for p in parts[:-1]), dtype=np.int64))
        # Collapse whitespace runs to one space so "a  b" and "a\nb" shingle identically.
        ws = np.isin(raw, _WHITESPACE)
        keep = ~ws
        keep[1:] |= ws[1:] & ~ws[:-1]
        keep[0] |= ws[0]
        data = np.where(ws, np.uint8(32), raw)[keep]
        is_space = ws[keep]
        position = np.flatnonzero(keep)  # byte offsets in ``raw`` of the kept bytes, for doc lookup
        if data.size == 0:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        edges = np.diff(np.concatenate([[True], is_space, [True]]).astype(np.int8))
        tok_start = np.flatnonzero(edges == -1)
        tok_end = np.flatnonzero(edges == 1)  # exclusive
        if tok_start.size == 0:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        tok_doc = np.searchsorted(doc_start, position[tok_start], side="right") - 1
        # Shingle i spans tokens i .. min(i + n - 1, last token of its document); keep the full ones,
        # plus the single whole-document shingle of a document shorter than n tokens.
        first_tok = np.searchsorted(tok_doc, np.arange(len(parts)), side="left")
        last_tok = np.searchsorted(tok_doc, np.arange(len(parts)), side="right") - 1
        idx = np.arange(tok_start.size)
        end_tok = np.minimum(idx + self.n_grams - 1, last_tok[tok_doc])
        full = idx + self.n_grams - 1 <= last_tok[tok_doc]
        short_doc = (last_tok - first_tok + 1) < self.n_grams
        valid = full | (short_doc[tok_doc] & (idx == first_tok[tok_doc]))
        s = tok_start[valid]
        e = tok_end[end_tok[valid]]
        # Polynomial hash of data[s:e] = (C[e] - C[s]) * P**(e-1), with C the prefix sum of b_j * P**-j.
        self._powers.ensure(data.size + 1)
        weighted = data.astype(np.uint64) * self._powers.neg[: data.size]
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(weighted, dtype=np.uint64)])
        h = (prefix[e] - prefix[s]) * self._powers.pos[e - 1] + (e - s).astype(np.uint64)
        return mix64(h), tok_doc[valid]

    def signatures(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(doc_ids, sigs)``: the batch positions that have at least one token, and their
        ``(len(doc_ids), num_perm)`` uint32 MinHash signatures."""
        hashes, doc_of = self.shingle_hashes(texts)
        doc_ids = np.unique(doc_of)
        sigs = np.full((doc_ids.size, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint64)
        if hashes.size == 0:
            return doc_ids, sigs.astype(np.uint32)
        row_of = np.searchsorted(doc_ids, doc_of)  # dense row per shingle, non-decreasing
        x = hashes >> np.uint64(32)
        for lo in range(0, hashes.size, _BLOCK_ROWS):
            hi = min(lo + _BLOCK_ROWS, hashes.size)
            block = self._buf[: hi - lo]
            np.multiply(x[lo:hi, None], self.a, out=block)
            np.add(block, self.b, out=block)
            np.right_shift(block, np.uint64(32), out=block)
            rows = row_of[lo:hi]
            seg = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
            mins = np.minimum.reduceat(block, seg, axis=0)
            np.minimum.at(sigs, rows[seg], mins)
        return doc_ids, sigs.astype(np.uint32)


def band_hashes(sigs: np.ndarray, *, bands: int, rows: int) -> np.ndarray:
    """``(docs, bands)`` uint64: one hash per band of ``rows`` consecutive signature values."""
    grouped = sigs[:, : bands * rows].reshape(sigs.shape[0], bands, rows).astype(np.uint64)
    h = np.zeros((sigs.shape[0], bands), dtype=np.uint64)
    for r in range(rows):
        h = mix64(h * np.uint64(0x9E3779B97F4A7C15) + grouped[:, :, r])
    return h
