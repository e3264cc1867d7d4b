"""The model registry: names and versions → model URIs, with the lineage of each version.

It is metadata next to the artifacts, not a server: one JSON file per version at
``<root>/registry/models/<name>/<version>.json``, on whatever ``Storage`` holds the models (``file://``
or ``s3://``). Versions count up from 1 per name and are never rewritten; concurrent registrations
of one name each get their own version because every file is created with a create-if-absent write
(``Storage.write_bytes_if_absent``) and a writer that loses the race re-lists and takes the next.

So a user can say "finetune the model that job X produced" by name: ``resolve("model:x")`` is the
latest version's URI, ``resolve("model:x@3")`` a pinned one, and a URI passes through unchanged.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, from_pydantic
from shipyard.models.refs import MODEL_REF_PREFIX, ModelRef, is_uri, parse_model_ref, validate_model_name
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = ["Lineage", "ModelKind", "ModelRecord", "ModelRegistry"]

ModelKind = Literal["model", "adapter"]

# Losing the create race this many times in a row means something is wrong (e.g. a stuck writer loop).
_MAX_REGISTER_ATTEMPTS = 50


class _Record(BaseModel):
    # Unknown keys are errors: a hand-edited record with a typo must not load as defaults.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lineage(_Record):
    """Where a model came from: enough to say which data, job and settings produced it."""

    dataset_uri: str | None = Field(default=None, description="The training dataset (its root).")
    job_name: str | None = Field(default=None, description="The TrainingJob/FinetuneJob that produced it.")
    spec: dict[str, Any] = Field(default_factory=dict, description="The job spec as submitted.")
    metrics: dict[str, int | float] = Field(default_factory=dict, description="Final metrics (loss, ...).")
    parent_model: str | None = Field(default=None, description="The model it started from (ref or URI).")


class ModelRecord(_Record):
    """One registered version of a model."""

    name: str
    version: int = Field(ge=1)
    uri: str = Field(description="The model directory (HF format: config.json, weights, tokenizer).")
    kind: ModelKind = "model"
    base_model: str | None = Field(default=None, description="What an adapter applies to.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    lineage: Lineage = Field(default_factory=lambda: Lineage())
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The pinned reference of this version, ``model:NAME@VERSION``."""
        return str(ModelRef(self.name, self.version))


class ModelRegistry:
    """Registered models under ``<root_uri>/registry/models`` on ``storage``."""

    def __init__(self, storage: Storage, root_uri: str) -> None:
        self.storage = storage
        self.root_uri = uris.normalize(root_uri, field="root_uri")
        self.models_uri = uris.join(self.root_uri, "registry", "models")

    def register(
        self,
        name: str,
        uri: str,
        *,
        kind: ModelKind = "model",
        lineage: Lineage | dict[str, Any] | None = None,
        base_model: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelRecord:
        """Record ``uri`` as the next version of ``name`` and return the record.

        ``base_model`` (required for adapters) may be a registry reference or a URI; a reference is
        pinned to the version it names now, so the lineage keeps meaning the same model later.
        """
        validate_model_name(name, field="name")
        uri = uris.normalize(uri, field="uri")
        if kind == "adapter" and base_model is None:
            raise InvalidArgument.field("base_model", "an adapter needs the model it applies to")
        pinned_base = self._pin(base_model, field="base_model") if base_model is not None else None
        try:
            lineage = lineage if isinstance(lineage, Lineage) else Lineage.model_validate(lineage or {})
        except ValidationError as exc:
            raise from_pydantic(exc, prefix="lineage") from None
        try:
            fields = {"name": name, "uri": uri, "kind": kind, "base_model": pinned_base, "tags": tags or {}}
            draft = ModelRecord.model_validate({**fields, "version": 1, "lineage": lineage})
        except ValidationError as exc:
            raise from_pydantic(exc) from None
        for _ in range(_MAX_REGISTER_ATTEMPTS):
            record = draft.model_copy(update={"version": max(self._versions(name), default=0) + 1})
            data = (record.model_dump_json(indent=2) + "\n").encode()
            if self.storage.write_bytes_if_absent(self._record_uri(name, record.version), data):
                return record
        raise Unavailable(f"could not register model {name!r}: too many concurrent registrations, retry")

    def get(self, name: str, version: int | None = None) -> ModelRecord:
        """Version ``version`` of ``name``, or its latest when ``version`` is None."""
        validate_model_name(name, field="name")
        versions = self._versions(name)
        if not versions:
            raise NotFound(f"no model named {name!r} is registered")
        if version is None:
            version = max(versions)
        elif version not in versions:
            raise NotFound(
                f"model {name!r} has no version {version} (versions: {', '.join(map(str, sorted(versions)))})"
            )
        return self._read(self._record_uri(name, version))

    def resolve(self, ref: str, *, field: str = "ref") -> str:
        """The URI ``ref`` stands for: ``model:NAME[@VERSION]``, a registered ``NAME``, or any URI.

        A URI (``file://``, ``s3://``, an absolute path) is returned normalized without checking
        that it exists; a name or reference that is not registered is ``NotFound``.
        """
        if _is_plain_uri(ref):
            return uris.normalize(ref, field=field)
        return self.resolve_record(ref, field=field).uri

    def resolve_record(self, ref: str, *, field: str = "ref") -> ModelRecord:
        """The record ``ref`` (``model:NAME[@VERSION]`` or a bare name) points to."""
        parsed = parse_model_ref(ref, field=field)
        try:
            return self.get(parsed.name, parsed.version)
        except NotFound as exc:
            raise NotFound(f"{field}: model {ref!r} not found: {exc.message}") from exc

    def list(self, name: str | None = None) -> builtins.list[ModelRecord]:
        """Every registered version (of ``name`` only, when given), sorted by name then version."""
        if name is not None:
            validate_model_name(name, field="name")
            return [self._read(self._record_uri(name, v)) for v in sorted(self._versions(name))]
        found = [(key, o.uri) for o in self.storage.list(self.models_uri) if (key := self._parse(o.uri))]
        return [self._read(uri) for _, uri in sorted(found)]

    def _pin(self, ref: str, *, field: str) -> str:
        if _is_plain_uri(ref):
            return uris.normalize(ref, field=field)
        return self.resolve_record(ref, field=field).ref

    def _versions(self, name: str) -> set[int]:
        prefix = uris.join(self.models_uri, name)
        return {nv[1] for o in self.storage.list(prefix) if (nv := self._parse(o.uri)) and nv[0] == name}

    def _parse(self, uri: str) -> tuple[str, int] | None:
        """``(name, version)`` of a record URI; None for anything else found under the prefix."""
        name, version_file = uris.basename(uris.parent(uri)), uris.basename(uri)
        stem, dot, ext = version_file.partition(".")
        if uris.parent(uris.parent(uri)) != self.models_uri or ext != "json" or not dot:
            return None
        if not stem.isascii() or not stem.isdigit() or stem.startswith("0"):
            return None
        return name, int(stem)

    def _record_uri(self, name: str, version: int) -> str:
        return uris.join(self.models_uri, name, f"{version}.json")

    def _read(self, uri: str) -> ModelRecord:
        text = self.storage.read_text(uri)
        try:
            return ModelRecord.model_validate(json.loads(text))
        except ValueError as exc:  # bad JSON, or a pydantic ValidationError (a ValueError)
            # A corrupt record is the registry's problem, not the caller's input: say which file.
            raise FailedPrecondition(f"model record {uri} is corrupt: {exc}") from exc


def _is_plain_uri(ref: str) -> bool:
    return isinstance(ref, str) and not ref.startswith(MODEL_REF_PREFIX) and is_uri(ref)
