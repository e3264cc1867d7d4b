"""Lexical retrieval: BM25 over ``bm25s``'s sparse index, with a tokenizer that handles Chinese.

``bm25s``'s own tokenizer splits on word characters, which leaves a run of Chinese characters as one
"word" that never matches a query. ``tokenize`` keeps Latin-script words (lowercased, English stop
words dropped) and turns each CJK run into its characters and character bigrams: bigrams carry most of
the meaning of Chinese words, unigrams keep recall for one-character words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

__all__ = ["BM25Index", "tokenize"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
_STOP = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Words for Latin scripts; characters and bigrams for CJK runs."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        piece = match.group()
        if _IS_CJK.match(piece):
            tokens.extend(piece)
            tokens.extend(piece[i : i + 2] for i in range(len(piece) - 1))
        elif piece not in _STOP:
            tokens.append(piece)
    return tokens


class BM25Index:
    """BM25 (Lucene variant, ``k1=1.5, b=0.75``) over a fixed list of passages."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.size = len(texts)
        self._bm25 = bm25s.BM25()
        # An empty token keeps bm25s happy for passages with no indexable word.
        self._bm25.index([tokenize(t) or [""] for t in texts], show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` ``(passage index, score)``, best first; passages sharing no term are left out."""
        ids = self._bm25.get_tokens_ids(tokenize(query))
        if not ids or self.size == 0:
            return []
        scores = self._bm25.get_scores_from_ids(ids)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
