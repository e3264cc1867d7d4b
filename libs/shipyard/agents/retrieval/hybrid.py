"""Hybrid ranking: reciprocal rank fusion (Cormack et al., 2009) of several ranked lists.

RRF scores a passage ``sum(1 / (k + rank))`` over the lists it appears in. It needs no score
calibration between BM25 (unbounded) and cosine similarity (in [-1, 1]), which is why it is the usual
default for lexical + dense fusion; ``k = 60`` is the value from the paper. Optional per-list
``weights`` scale each list's contribution (weighted RRF), e.g. to trust a retriever less on inputs it
was not trained for.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[int, float]]],
    k: int,
    *,
    rrf_k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[int, float]]:
    """Fuse ``(item, score)`` lists (each best first) into the top ``k`` ``(item, fused score)``."""
    weights = weights if weights is not None else [1.0] * len(rankings)
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (item, _) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (rrf_k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
