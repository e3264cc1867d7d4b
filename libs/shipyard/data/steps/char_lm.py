"""A small character n-gram language model (hashed counts in numpy) used to score text quality.

Interpolated absolute discounting (the core of Kneser-Ney without the continuation counts for lower
orders): ``p_k(c | h) = (max(n(h c) - d, 0) + d * T(h) * p_{k-1}(c | h')) / n(h)``, where ``T(h)`` is
the number of distinct characters seen after ``h``; an unseen context backs off entirely. The base is
add-one smoothed unigrams. n-grams are hashed into ``2**buckets_log2`` slots per order, so memory is
fixed whatever the corpus (collisions only make the model slightly more forgiving).

Everything is vectorized: a document's log-probabilities are computed for all positions at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["CharNgramModel"]

_P = np.uint64(0x100000001B3)  # FNV prime: spreads code points over the 64-bit hash
_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier for bucket selection
_BOS = np.uint64(0x110000)  # outside Unicode: marks "before the text"


def _codes(text: str, pad: int) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return np.concatenate([np.full(pad, _BOS, dtype=np.uint64), codes])


class CharNgramModel:
    """Hashed character n-gram model; ``train`` once, then ``log_probs`` / ``perplexity`` per text."""

    def __init__(self, order: int = 4, buckets_log2: int = 20, discount: float = 0.75) -> None:
        self.order = order
        self.bits = buckets_log2
        self.discount = discount
        size = 1 << buckets_log2
        # Index k holds order k+2 (context length k+1); unigrams are kept separately.
        self.ngram = [np.zeros(size, np.int32) for _ in range(order - 1)]
        self.context = [np.zeros(size, np.int32) for _ in range(order - 1)]
        self.types = [np.zeros(size, np.int32) for _ in range(order - 1)]
        self.unigram = np.zeros(size, np.int32)
        self.total = 0
        self.vocab = 1

    def _bucket(self, h: np.ndarray, salt: int) -> np.ndarray:
        mixed = (h + np.uint64(salt)) * _MIX
        return (mixed >> np.uint64(64 - self.bits)).astype(np.intp)

    def _hashes(self, text: str) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """(char codes, [(context hash, n-gram hash) for context lengths 1..order-1]) per position."""
        pad = self.order - 1
        x = _codes(text, pad)
        chars = x[pad:]
        n = len(chars)
        out = []
        ctx = np.zeros(n, dtype=np.uint64)
        power = np.uint64(1)
        with np.errstate(over="ignore"):
            for m in range(1, self.order):
                power = power * _P
                ctx = ctx + x[pad - m : pad - m + n] * power
                out.append((ctx.copy(), ctx * _P + chars + np.uint64(m)))
        return chars, out

    def train(self, texts: Iterable[str], *, chunk_chars: int = 1 << 20) -> CharNgramModel:
        """Count n-grams of ``texts``; they are joined into ~1M-character chunks (blank-line separated)
        because per-call array work dominates on short texts."""
        seen: set[int] = set()
        for text in _chunks(texts, chunk_chars):
            chars, levels = self._hashes(text)
            self.unigram += np.bincount(self._bucket(chars, 0), minlength=len(self.unigram)).astype(np.int32)
            self.total += len(chars)
            seen.update(np.unique(chars).tolist())
            for m, (ctx, gram) in enumerate(levels):
                cb = self._bucket(ctx, 1000 + m)
                gb = self._bucket(gram, 2000 + m)
                size = len(self.ngram[m])
                self.ngram[m] += np.bincount(gb, minlength=size).astype(np.int32)
                self.context[m] += np.bincount(cb, minlength=size).astype(np.int32)
                # A continuation type is new if its n-gram bucket was empty before this text.
                _, first = np.unique(gb, return_index=True)
                new = self.ngram[m][gb[first]] == np.bincount(gb, minlength=size)[gb[first]]
                self.types[m] += np.bincount(cb[first[new]], minlength=size).astype(np.int32)
        self.vocab = len(seen) + 1
        return self

    def log_probs(self, text: str) -> np.ndarray:
        """Natural-log probability of every character of ``text`` given the characters before it."""
        if not text:
            return np.zeros(0)
        chars, levels = self._hashes(text)
        p = (self.unigram[self._bucket(chars, 0)] + 1.0) / (self.total + self.vocab)
        d = self.discount
        for m, (ctx, gram) in enumerate(levels):
            cb = self._bucket(ctx, 1000 + m)
            gb = self._bucket(gram, 2000 + m)
            n_ctx = self.context[m][cb].astype(np.float64)
            n_gram = self.ngram[m][gb].astype(np.float64)
            t = self.types[m][cb].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                interpolated = (np.maximum(n_gram - d, 0.0) + d * t * p) / n_ctx
            p = np.where(n_ctx > 0, interpolated, p)
        return np.log(np.clip(p, 1e-12, 1.0))

    def perplexity(self, text: str) -> float:
        lp = self.log_probs(text)
        return float(np.exp(-lp.mean())) if len(lp) else float("inf")


def _chunks(texts: Iterable[str], size: int) -> Iterable[str]:
    buf: list[str] = []
    n = 0
    for text in texts:
        if not text:
            continue
        buf.append(text)
        n += len(text)
        if n >= size:
            yield "\n\n".join(buf)
            buf, n = [], 0
    if buf:
        yield "\n\n".join(buf)
