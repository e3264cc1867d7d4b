"""A searchable document collection: passages, a BM25 index, dense vectors, persisted under storage.

Built from documents (an ingest Dataset's document shards via ``from_manifest``, or uploaded
``Document``s via ``build``): each document is cut into passages of at most ``max_chars`` characters on
paragraph boundaries, ids ``<doc id>#<n>``. Saved as ``<uri>/collection.json`` (metadata),
``passages.jsonl`` and ``dense.npy``. The BM25 index is rebuilt on load (a fraction of a second per 10k
passages, and it keeps the format backend-neutral); the embeddings, which are costly, are stored.
Search results carry document ids and passage text, which the agents cite.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from shipyard.agents.retrieval.bm25 import BM25Index
from shipyard.agents.retrieval.dense import DenseIndex, Encoder
from shipyard.agents.retrieval.hybrid import reciprocal_rank_fusion
from shipyard.data.document import Document
from shipyard.data.manifest import read_manifest
from shipyard.data.steps.writers import read_documents
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = ["Collection", "Mode", "Passage", "SearchHit", "split_passages"]

Mode = Literal["bm25", "dense", "hybrid"]
_FORMAT = 1
_CANDIDATES = 100  # per retriever, before fusion


@dataclass(frozen=True)
class Passage:
    id: str
    doc_id: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One result: the passage to cite (``doc_id``, ``passage_id``), its text and fused score."""

    passage_id: str
    doc_id: str
    text: str
    title: str
    score: float


def split_passages(doc: Document, max_chars: int) -> list[Passage]:
    """Passages of ``doc``: paragraphs packed up to ``max_chars``, longer ones cut on sentence ends."""
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n", doc.text):
        para = para.strip()
        while len(para) > max_chars:
            cut = max(para.rfind(mark, 0, max_chars) for mark in (". ", "。", "! ", "? ", "\n"))
            cut = cut + 1 if cut > max_chars // 2 else max_chars
            pieces.append(para[:cut].strip())
            para = para[cut:].strip()
        if para:
            pieces.append(para)
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + len(piece) + 2 <= max_chars:
            packed[-1] += "\n\n" + piece
        else:
            packed.append(piece)
    title = str(doc.metadata.get("title", ""))
    return [Passage(f"{doc.id}#{i}", doc.id, text, title) for i, text in enumerate(packed)]


class Collection:
    """Passages with their BM25 and (optionally) dense indexes."""

    def __init__(
        self,
        name: str,
        passages: Sequence[Passage],
        *,
        encoder: Encoder | None,
        vectors: np.ndarray | None = None,
    ) -> None:
        self.name = name
        self.passages = list(passages)
        texts = [f"{p.title}\n{p.text}" if p.title else p.text for p in self.passages]
        self.bm25 = BM25Index(texts)
        self.dense: DenseIndex | None = None
        if encoder is not None:
            if vectors is None:
                vectors = encoder.encode(texts)
            self.dense = DenseIndex(encoder, vectors)

    @classmethod
    def build(
        cls, name: str, documents: Iterable[Document], *, encoder: Encoder | None, max_chars: int = 1200
    ) -> Collection:
        if not name:
            raise InvalidArgument.field("collection.name", "must not be empty")
        if max_chars < 100:
            raise InvalidArgument.field("collection.max_chars", f"must be >= 100, got {max_chars}")
        passages = [p for doc in documents for p in split_passages(doc, max_chars)]
        return cls(name, passages, encoder=encoder)

    @classmethod
    def from_manifest(
        cls, storage: Storage, dataset_uri: str, *, encoder: Encoder | None, name: str | None = None
    ) -> Collection:
        """A collection over the document shards of the ingest Dataset at ``dataset_uri``."""
        manifest = read_manifest(storage, dataset_uri)
        if not manifest.document_shards:
            raise FailedPrecondition(f"dataset {manifest.name} at {manifest.uri} has no document shards")
        docs = (
            doc
            for shard in manifest.document_shards
            for doc in read_documents(storage, manifest.resolve(shard.uri))
        )
        return cls.build(name or manifest.name, docs, encoder=encoder)

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[SearchHit]:
        """The ``k`` best passages for ``query`` by ``mode``."""
        if k < 1:
            raise InvalidArgument.field("k", f"must be >= 1, got {k}")
        if mode not in ("bm25", "dense", "hybrid"):
            raise InvalidArgument.field("mode", f"must be bm25, dense or hybrid, got {mode!r}")
        if mode != "bm25" and self.dense is None:
            raise FailedPrecondition(f"collection {self.name} has no dense index; use mode=bm25")
        if mode == "bm25":
            ranked = self.bm25.search(query, k)
        elif mode == "dense":
            assert self.dense is not None
            ranked = self.dense.search(query, k)
        else:
            assert self.dense is not None
            depth = max(k, _CANDIDATES)
            weights = [1.0, self.dense.encoder.coverage(query)]
            rankings = [self.bm25.search(query, depth), self.dense.search(query, depth) if weights[1] else []]
            ranked = reciprocal_rank_fusion(rankings, k, weights=weights)
        return [self._hit(i, score) for i, score in ranked]

    def _hit(self, index: int, score: float) -> SearchHit:
        p = self.passages[index]
        return SearchHit(p.id, p.doc_id, p.text, p.title, score)

    def save(self, storage: Storage, uri: str) -> None:
        """Write the collection under ``uri`` (metadata last, so a half-written one is never loaded)."""
        lines = "".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in self.passages)
        storage.write_text(uris.join(uri, "passages.jsonl"), lines)
        if self.dense is not None:
            buf = io.BytesIO()
            np.save(buf, self.dense.vectors)
            storage.write_bytes(uris.join(uri, "dense.npy"), buf.getvalue())
        meta = {
            "format": _FORMAT,
            "name": self.name,
            "passages": len(self.passages),
            "encoder": self.dense.encoder.name if self.dense else None,
        }
        storage.write_text(uris.join(uri, "collection.json"), json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, storage: Storage, uri: str, *, encoder: Encoder | None) -> Collection:
        try:
            meta = json.loads(storage.read_text(uris.join(uri, "collection.json")))
        except NotFound as exc:
            raise NotFound(f"no collection at {uri}") from exc
        if meta.get("format") != _FORMAT:
            raise FailedPrecondition(
                f"collection at {uri} has format {meta.get('format')}, expected {_FORMAT}"
            )
        text = storage.read_text(uris.join(uri, "passages.jsonl"))
        passages = [Passage(**json.loads(line)) for line in text.splitlines() if line]
        vectors = None
        if meta.get("encoder") and encoder is not None:
            if meta["encoder"] != encoder.name:
                raise FailedPrecondition(
                    f"collection {uri} was embedded with {meta['encoder']}, not {encoder.name}"
                )
            vectors = np.load(io.BytesIO(storage.read_bytes(uris.join(uri, "dense.npy"))))
        elif not meta.get("encoder"):
            encoder = None
        return cls(meta["name"], passages, encoder=encoder, vectors=vectors)
