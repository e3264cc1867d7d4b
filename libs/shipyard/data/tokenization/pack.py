"""``tokenize``: encode each shard's documents and pack the token ids into fixed-length sequences.

Documents are encoded in batches with ``Tokenizer.encode_batch`` (parallel in Rust), each wrapped as
``[BOS] ids [EOS]`` as configured, concatenated into one stream and cut into rows of ``seq_len`` tokens.
The shard's rows go to ``<output>/tokens/shard-{i:05d}.npy`` (``[n_seq, seq_len]``, uint16 when the
vocabulary fits, else uint32; ``np.load(mmap_mode="r")`` works on it), and with ``write_index`` the
offset of every document start in the shard's flattened stream to ``shard-{i:05d}.idx.npy`` (int64).

Remainder policy: the tokens after the last full row of a shard are dropped, not padded, and counted in
``stats.extra["tokens_dropped_remainder"]`` (at most ``seq_len - 1`` per shard). Padding would put
tokens in pretraining data that no document contains.

Memory is bounded: at most ``flush_tokens`` pending ids plus one batch of documents; full rows are
spooled to local disk (see ``token_shard_writer``). The document index costs 8 bytes per document.
Documents pass through unchanged; empty ones are not encoded and are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams
from shipyard.data.tokenization.hf_tokenizer import LoadedTokenizer, load_hf_tokenizer
from shipyard.data.tokenization.token_shard_writer import NpyRowSpool, write_npy
from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage import uri as uris

__all__ = ["SequencePacker", "Tokenize", "TokenizeParams", "shard_uri", "token_dtype"]

UINT16_MAX_VOCAB = 65535


class TokenizeParams(StepParams):
    """Parameters of ``tokenize``."""

    seq_len: int = Field(512, ge=2, le=1_048_576, description="Tokens per packed sequence.")
    tokenizer_uri: str | None = Field(
        None, description="HF tokenizer directory; default: the job's train_tokenizer output."
    )
    add_bos: bool = Field(False, description="Put the BOS token before every document.")
    add_eos: bool = Field(True, description="Put the EOS token after every document (the separator).")
    dtype: Literal["auto", "uint16", "uint32"] = Field("auto", description="Token id type on disk.")
    batch_size: int = Field(256, ge=1, le=65536, description="Documents per encode_batch call.")
    write_index: bool = Field(True, description="Also write each document's start offset (.idx.npy).")


def token_dtype(vocab_size: int, requested: str = "auto") -> np.dtype:
    """The on-disk id type: ``uint16`` if every id fits, else ``uint32``; checks an explicit choice."""
    if requested == "auto":
        return np.dtype(np.uint16 if vocab_size <= UINT16_MAX_VOCAB else np.uint32)
    if requested == "uint16" and vocab_size > UINT16_MAX_VOCAB:
        raise InvalidArgument.field("dtype", f"uint16 cannot hold ids of a {vocab_size}-token vocabulary")
    return np.dtype(requested)


def shard_uri(output_uri: str, shard_index: int, suffix: str = ".npy") -> str:
    return uris.join(output_uri, "tokens", f"shard-{shard_index:05d}{suffix}")


class SequencePacker:
    """Cuts a stream of documents' ids into rows of ``seq_len``, handing full rows to ``sink``."""

    def __init__(
        self,
        seq_len: int,
        dtype: np.dtype,
        sink: Callable[[np.ndarray], None],
        *,
        flush_tokens: int = 1 << 20,
    ) -> None:
        self.seq_len = seq_len
        self.dtype = dtype
        self.sink = sink
        self.flush_tokens = max(flush_tokens, seq_len)
        self.emitted = 0  # tokens handed to sink
        self.doc_starts: list[int] = []
        self._pending: list[np.ndarray] = []
        self._pending_len = 0

    def add(self, ids: Sequence[int]) -> None:
        """Append one document's ids (separators included)."""
        self.doc_starts.append(self.emitted + self._pending_len)
        self._pending.append(np.asarray(ids, dtype=self.dtype))
        self._pending_len += len(ids)
        if self._pending_len >= self.flush_tokens:
            self._flush()

    def finish(self) -> int:
        """Emit the last full rows; returns how many trailing tokens were dropped (the remainder)."""
        self._flush()
        dropped = self._pending_len
        self._pending, self._pending_len = [], 0
        return dropped

    def kept_doc_starts(self) -> np.ndarray:
        """Start offsets of documents that begin inside an emitted row."""
        starts = np.asarray(self.doc_starts, dtype=np.int64)
        return starts[starts < self.emitted]

    def _flush(self) -> None:
        if self._pending_len < self.seq_len:
            return
        stream = np.concatenate(self._pending)
        full = len(stream) // self.seq_len * self.seq_len
        self.sink(stream[:full].reshape(-1, self.seq_len))
        self.emitted += full
        rest = stream[full:]
        self._pending, self._pending_len = [rest], len(rest)


class Tokenize(PipelineStep):
    """Tokenize and pack one shard; declares output ``tokens`` (sequences, tokens, documents, sha256)."""

    name = "tokenize"
    Params = TokenizeParams
    params: TokenizeParams

    def __init__(self, params: StepParams | None = None) -> None:
        super().__init__(params)
        self._loaded: dict[str, LoadedTokenizer] = {}

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        p = self.params
        tok = self._tokenizer(ctx)
        dtype = token_dtype(tok.vocab_size, p.dtype)
        prefix = self._special_id(tok, "add_bos", p.add_bos, tok.special.bos)
        suffix = self._special_id(tok, "add_eos", p.add_eos, tok.special.eos)
        out_uri = shard_uri(ctx.output_uri, ctx.shard_index)
        with NpyRowSpool(p.seq_len, dtype) as spool:
            packer = SequencePacker(p.seq_len, dtype, spool.append)
            batch: list[Document] = []
            for doc in docs:
                self.stats.docs_in += 1
                batch.append(doc)
                if len(batch) >= p.batch_size:
                    yield from self._pack(batch, tok, packer, prefix, suffix, ctx)
                    batch = []
            yield from self._pack(batch, tok, packer, prefix, suffix, ctx)
            dropped = packer.finish()
            sha256 = spool.commit(ctx.storage, out_uri)
            sequences = spool.rows
        starts = packer.kept_doc_starts()
        meta: dict[str, object] = {
            "shard": ctx.shard_index,
            "sequences": sequences,
            "tokens": sequences * p.seq_len,
            "documents": len(starts),
            "sha256": sha256,
            "seq_len": p.seq_len,
            "dtype": dtype.name,
            "tokenizer_uri": tok.uri,
            # The tokenizer's TokenizerRef fields, for a manifest whose job trained no tokenizer itself.
            **tok.describe(),
            "tokens_dropped_remainder": dropped,
        }
        if p.write_index:
            meta["index_uri"] = shard_uri(ctx.output_uri, ctx.shard_index, ".idx.npy")
            write_npy(ctx.storage, str(meta["index_uri"]), starts)
        self.stats.extra["tokens"] += sequences * p.seq_len
        self.stats.extra["sequences"] += sequences
        self.stats.extra["tokens_dropped_remainder"] += dropped
        ctx.add_output("tokens", out_uri, meta)

    def _pack(
        self,
        batch: list[Document],
        tok: LoadedTokenizer,
        packer: SequencePacker,
        prefix: list[int],
        suffix: list[int],
        ctx: ShardContext,
    ) -> Iterator[Document]:
        ctx.check_cancelled()
        texts = [doc.text for doc in batch if doc.text]
        self.stats.extra["documents_empty"] += len(batch) - len(texts)
        for encoding in tok.tokenizer.encode_batch(texts, add_special_tokens=False):
            packer.add(prefix + encoding.ids + suffix)
        for doc in batch:
            self.stats.docs_out += 1
            yield doc

    def _tokenizer(self, ctx: ShardContext) -> LoadedTokenizer:
        uri = self.params.tokenizer_uri or uris.join(ctx.output_uri, "tokenizer")
        if uri not in self._loaded:
            try:
                self._loaded[uri] = load_hf_tokenizer(ctx.storage, uri, field="tokenizer_uri")
            except NotFound as exc:
                if self.params.tokenizer_uri is not None:
                    raise
                raise NotFound(
                    f"tokenize: no tokenizer at {uri}; put a train_tokenizer step before tokenize "
                    "or set tokenizer_uri"
                ) from exc
        return self._loaded[uri]

    @staticmethod
    def _special_id(tok: LoadedTokenizer, field: str, wanted: bool, token: str | None) -> list[int]:
        if not wanted:
            return []
        token_id = tok.token_id(token)
        if token_id is None:
            raise InvalidArgument.field(field, f"the tokenizer at {tok.uri} defines no such special token")
        return [token_id]
