"""Retrieval behind the agents' search tool: BM25, dense embeddings, and their fusion over a collection."""

from shipyard.agents.retrieval.bm25 import BM25Index, tokenize
from shipyard.agents.retrieval.collection import Collection, Mode, Passage, SearchHit, split_passages
from shipyard.agents.retrieval.dense import MINILM, DenseIndex, Encoder
from shipyard.agents.retrieval.hybrid import reciprocal_rank_fusion

__all__ = [
    "MINILM",
    "BM25Index",
    "Collection",
    "DenseIndex",
    "Encoder",
    "Mode",
    "Passage",
    "SearchHit",
    "reciprocal_rank_fusion",
    "split_passages",
    "tokenize",
]
