"""Assemble a finished run's ``DatasetManifest`` from what its tasks declared they wrote."""

from __future__ import annotations

from typing import Any

from shipyard.data.manifest import DatasetManifest, DocumentShard, QuarantineRef, TokenizerRef, TokenShard
from shipyard.data.spec import IngestJob
from shipyard.data.step import StepStats


def build_manifest(
    *,
    job: IngestJob,
    output_uri: str,
    spec_fingerprint: str,
    outputs: list[tuple[str, str, dict[str, Any]]],
    stats: list[StepStats],
    documents: int,
    documents_read: int = 0,
    quarantined: int,
    quarantine_uri: str,
) -> DatasetManifest:
    """Outputs are ``(kind, uri, meta)`` as passed to ``ctx.add_output``; shards are listed in URI order
    so the manifest is identical however many workers produced it."""
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for kind, uri, meta in outputs:
        by_kind.setdefault(kind, []).append((uri, meta))
    token_shards = [TokenShard.from_output(u, m) for u, m in sorted(by_kind.get("tokens", []))]
    doc_shards = [
        DocumentShard(
            uri=u, documents=m.get("documents", 0), bytes=m.get("bytes", 0), format=job.spec.output.format
        )
        for u, m in sorted(by_kind.get("documents", []))
    ]
    tokenizers = by_kind.get("tokenizer", [])
    tokenizer = TokenizerRef.from_output(*tokenizers[-1]) if tokenizers else None
    tokenize = next((s for s in job.spec.steps if s.type == "tokenize"), None)
    seq_len = None
    dtype = None
    if token_shards and tokenize is not None:
        metas = [m for _, m in by_kind["tokens"]]
        seq_len = metas[0].get("seq_len") or tokenize.params.get("seq_len") or tokenize.params.get("seqLen")
        dtype = metas[0].get("dtype")
        if tokenizer is None and metas[0].get("tokenizer_uri"):
            tokenizer = TokenizerRef.from_output(metas[0]["tokenizer_uri"], metas[0])
    return DatasetManifest(
        name=job.metadata.name,
        uri=output_uri,
        tokenizer=tokenizer,
        seq_len=seq_len,
        dtype=dtype,
        token_shards=token_shards,
        document_shards=doc_shards,
        num_tokens=sum(s.tokens for s in token_shards),
        num_sequences=sum(s.sequences for s in token_shards),
        num_documents=documents,
        stats=[s.to_dict() for s in stats],
        spec=job.spec.model_dump(mode="json"),
        quarantined=QuarantineRef(count=quarantined, uri=quarantine_uri or None),
        lineage={
            "specFingerprint": spec_fingerprint,
            "documentsRead": documents_read,
            "job": job.metadata.name,
        },
    )
