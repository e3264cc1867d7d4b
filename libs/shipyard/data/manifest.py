"""The dataset manifest: the contract between the ingest pipeline and the training service.

An ingest job writes ``<root>/manifest.json`` last (atomically), so a dataset exists exactly when its
manifest does. It names the tokenizer, the packed token shards (``[n_seq, seq_len]`` ``.npy`` files,
see ``shipyard.data.tokenization.pack``), the document shards, the totals, every step's counters and
the pipeline spec (lineage). Shard URIs may be relative to the root, so a dataset can be moved.

Reading: ``read_manifest`` validates the file and reports a malformed one as ``InvalidArgument`` naming
the field; ``open_token_shard`` memory-maps a local shard (reads it whole from S3); ``iter_sequences``
deals the global sequence indices to data-parallel ranks deterministically (rank r of W takes
r, r+W, r+2W, ...), the base of the training service's resumable loader.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, from_pydantic
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = [
    "API_VERSION",
    "MANIFEST_FILE",
    "DatasetManifest",
    "DocumentShard",
    "QuarantineRef",
    "SequenceRef",
    "TokenShard",
    "TokenShardReader",
    "TokenizerRef",
    "iter_sequences",
    "open_token_shard",
    "read_manifest",
    "write_manifest",
]

API_VERSION = "shipyard.dev/v1alpha1"
MANIFEST_FILE = "manifest.json"


class _Model(BaseModel):
    # Unknown keys are errors: a typo in a hand-edited manifest must not silently become a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerRef(_Model):
    """The tokenizer the token shards were made with (an HF tokenizer directory)."""

    uri: str
    vocab_size: int = Field(ge=1)
    type: str = "bpe"
    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None
    unk_id: int | None = None

    @classmethod
    def from_output(cls, uri: str, meta: dict[str, Any]) -> TokenizerRef:
        """From a ``train_tokenizer`` output declaration (``ctx.add_output("tokenizer", uri, meta)``)."""
        return cls(uri=uri, **{k: v for k, v in meta.items() if k in cls.model_fields and k != "uri"})


class TokenShard(_Model):
    """One ``[sequences, seq_len]`` token file; ``uri`` is relative to the dataset root or absolute."""

    uri: str
    sequences: int = Field(ge=0)
    tokens: int = Field(ge=0)
    documents: int = Field(0, ge=0, description="Documents that start inside this shard's sequences.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    index_uri: str | None = Field(None, description="int64 start offset of each document (.idx.npy).")

    @classmethod
    def from_output(cls, uri: str, meta: dict[str, Any]) -> TokenShard:
        """From a ``tokenize`` output declaration (``ctx.add_output("tokens", uri, meta)``)."""
        return cls(uri=uri, **{k: v for k, v in meta.items() if k in cls.model_fields and k != "uri"})


class DocumentShard(_Model):
    """One file of cleaned documents."""

    uri: str
    documents: int = Field(ge=0)
    bytes: int = Field(ge=0)
    format: str = "jsonl"


class QuarantineRef(_Model):
    """Malformed input records set aside by the job (never dropped silently)."""

    count: int = Field(0, ge=0)
    uri: str | None = None


class DatasetManifest(_Model):
    """``manifest.json`` of one dataset. Totals must agree with the shards (checked on load)."""

    api_version: Literal["shipyard.dev/v1alpha1"] = API_VERSION
    kind: Literal["Dataset"] = "Dataset"
    name: str = Field(min_length=1)
    uri: str = Field(min_length=1, description="The dataset root; relative shard URIs hang off it.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tokenizer: TokenizerRef | None = None
    seq_len: int | None = Field(None, ge=1)
    dtype: Literal["uint16", "uint32"] | None = None
    token_shards: list[TokenShard] = Field(default_factory=list)
    document_shards: list[DocumentShard] = Field(default_factory=list)
    num_tokens: int = Field(0, ge=0)
    num_sequences: int = Field(0, ge=0)
    num_documents: int = Field(0, ge=0)
    stats: list[dict[str, Any]] = Field(default_factory=list, description="StepStats.to_dict() per step.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The pipeline spec, for lineage.")
    lineage: dict[str, Any] = Field(
        default_factory=dict, description="Provenance recorded by the executor (spec fingerprint, ...)."
    )
    quarantined: QuarantineRef = Field(default_factory=QuarantineRef)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetManifest:
        # Raised as InvalidArgument directly (pydantic lets non-ValueError exceptions through) so the
        # message names the exact field, e.g. token_shards[3].tokens, instead of the model root.
        if not self.token_shards:
            return self
        for name in ("tokenizer", "seq_len", "dtype"):
            if getattr(self, name) is None:
                raise InvalidArgument.field(name, "required when token_shards is not empty")
        assert self.seq_len is not None
        for i, shard in enumerate(self.token_shards):
            if shard.tokens != shard.sequences * self.seq_len:
                raise InvalidArgument.field(
                    f"token_shards[{i}].tokens",
                    f"{shard.tokens} != sequences {shard.sequences} x seq_len {self.seq_len}",
                )
        for name, total in (
            ("num_sequences", sum(s.sequences for s in self.token_shards)),
            ("num_tokens", sum(s.tokens for s in self.token_shards)),
        ):
            if getattr(self, name) != total:
                raise InvalidArgument.field(name, f"{getattr(self, name)} != {total} (sum over token_shards)")
        return self

    def resolve(self, uri: str) -> str:
        """The absolute URI of a shard URI recorded in this manifest."""
        if "://" in uri or uri.startswith("/"):
            return uris.normalize(uri)
        return uris.join(self.uri, uri)

    def manifest_uri(self) -> str:
        return uris.join(self.uri, MANIFEST_FILE)


def write_manifest(storage: Storage, manifest: DatasetManifest) -> str:
    """Write ``<root>/manifest.json`` atomically; returns its URI."""
    uri = manifest.manifest_uri()
    storage.write_text(uri, manifest.model_dump_json(indent=2) + "\n")
    return uri


def read_manifest(storage: Storage, uri: str) -> DatasetManifest:
    """Read the manifest of the dataset at ``uri`` (its root, or the manifest file itself).

    ``uri`` in the result is where the dataset was found, so a moved dataset still resolves its
    relative shard URIs.
    """
    root = uris.normalize(uri)
    if uris.basename(root) == MANIFEST_FILE:
        root = uris.parent(root)
    path = uris.join(root, MANIFEST_FILE)
    try:
        text = storage.read_text(path)
    except NotFound as exc:
        raise NotFound(f"no dataset at {root}: {path} does not exist") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid dataset manifest {path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"invalid dataset manifest {path}: expected a JSON object")
    data["uri"] = root
    try:
        return DatasetManifest.model_validate(data)
    except ValidationError as exc:
        violations = from_pydantic(exc).violations
        raise InvalidArgument(f"invalid dataset manifest {path}", violations=violations) from exc
    except InvalidArgument as exc:
        raise InvalidArgument(f"invalid dataset manifest {path}", violations=exc.violations) from exc


def open_token_shard(
    storage: Storage, manifest: DatasetManifest, index: int, *, verify: bool = False
) -> np.ndarray:
    """Token shard ``index`` as a read-only ``[sequences, seq_len]`` array (memory-mapped when local).

    ``verify`` checks the file's SHA-256 against the manifest first (reads the whole file).
    """
    if not 0 <= index < len(manifest.token_shards):
        raise InvalidArgument.field("index", f"{index} is not in [0, {len(manifest.token_shards)})")
    shard = manifest.token_shards[index]
    uri = manifest.resolve(shard.uri)
    if verify and shard.sha256 is not None:
        digest = hashlib.sha256()
        with storage.open_read(uri) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != shard.sha256:
            raise FailedPrecondition(f"token shard {uri} is corrupt: sha256 differs from the manifest")
    path = storage.local_path(uri)
    try:
        array = np.load(path, mmap_mode="r") if path else np.load(io.BytesIO(storage.read_bytes(uri)))
    except FileNotFoundError as exc:
        raise NotFound(f"token shard {uri} listed in {manifest.manifest_uri()} does not exist") from exc
    expected = (shard.sequences, manifest.seq_len)
    if array.shape != expected or array.dtype != np.dtype(manifest.dtype):
        raise FailedPrecondition(
            f"token shard {uri} holds {array.dtype}{list(array.shape)}, "
            f"the manifest says {manifest.dtype}{list(expected)}"
        )
    return array


class SequenceRef(NamedTuple):
    """Where global sequence ``index`` lives: row ``row`` of token shard ``shard``."""

    index: int
    shard: int
    row: int


def iter_sequences(
    manifest: DatasetManifest, rank: int, world_size: int, start: int = 0
) -> Iterator[SequenceRef]:
    """The sequences of ``rank``: global indices ``g >= start`` with ``g % world_size == rank``, in order.

    Global indices number the sequences shard by shard. To resume after every rank consumed ``k``
    sequences, pass ``start = k * world_size``.
    """
    violations = []
    if world_size < 1:
        violations.append(FieldViolation("world_size", f"must be >= 1, got {world_size}"))
    elif not 0 <= rank < world_size:
        violations.append(FieldViolation("rank", f"must be in [0, {world_size}), got {rank}"))
    if start < 0:
        violations.append(FieldViolation("start", f"must be >= 0, got {start}"))
    if violations:
        raise InvalidArgument("invalid sequence sharding", violations=violations)
    ends = list(itertools.accumulate(s.sequences for s in manifest.token_shards))
    g = start + (rank - start) % world_size
    shard = bisect.bisect_right(ends, g)
    while shard < len(ends):
        while g < ends[shard]:
            yield SequenceRef(g, shard, g - (ends[shard - 1] if shard else 0))
            g += world_size
        shard = bisect.bisect_right(ends, g, lo=shard)


class TokenShardReader:
    """Random access to a dataset's sequences by global index; keeps the last opened shard."""

    def __init__(self, storage: Storage, manifest: DatasetManifest) -> None:
        self.storage = storage
        self.manifest = manifest
        self._ends = list(itertools.accumulate(s.sequences for s in manifest.token_shards))
        self._open: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def locate(self, index: int) -> SequenceRef:
        if not 0 <= index < len(self):
            raise InvalidArgument.field("index", f"{index} is not in [0, {len(self)})")
        shard = bisect.bisect_right(self._ends, index)
        return SequenceRef(index, shard, index - (self._ends[shard - 1] if shard else 0))

    def __getitem__(self, index: int) -> np.ndarray:
        ref = self.locate(index)
        if self._open is None or self._open[0] != ref.shard:
            self._open = (ref.shard, open_token_shard(self.storage, self.manifest, ref.shard))
        return self._open[1][ref.row]
