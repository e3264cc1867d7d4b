"""``ShipyardConfig``: every setting of the platform, typed, defaulted and documented in one place.

Load it once at an entrypoint with ``load_config()`` and pass it (or the section a component needs)
explicitly; there is no global instance. Sources, lowest to highest precedence:

1. the defaults below;
2. a YAML file (``path`` argument, else ``$SHIPYARD_CONFIG``) shaped like the model;
3. ``SHIPYARD_*`` environment variables (the table in ``shipyard.envs``);
4. explicit ``overrides`` (nested dicts or dotted keys: ``{"grpc.ports.ingest": 0}``).

A bad value raises ``shipyard.errors.InvalidArgument`` whose violations name the field
(``grpc.ports.ingest``) and where the value came from. Models are frozen; derive variants with
``config.model_copy(update=...)``. ``describe()``/``documented_defaults()`` render the field table.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from shipyard import envs
from shipyard.errors import FieldViolation, InvalidArgument, from_pydantic
from shipyard.storage import uri as uris

__all__ = [
    "AgentsConfig",
    "EvaluationConfig",
    "FieldDoc",
    "GrpcConfig",
    "GrpcPorts",
    "InferenceConfig",
    "IngestConfig",
    "ShipyardConfig",
    "StorageConfig",
    "TelemetryConfig",
    "describe",
    "documented_defaults",
    "load_config",
]

MIB = 1024 * 1024


class _Section(BaseModel):
    # validate_default: defaults go through the same validators (e.g. "~" expansion) as given values.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class StorageConfig(_Section):
    """Where artifacts live and how the S3 backend reaches its store."""

    data_dir: pathlib.Path = Field(default=pathlib.Path("~/.shipyard"), description="Local data directory.")
    root: str = Field(
        default="",
        description="Root URI of all artifacts: file://... (embedded) or s3://bucket/prefix (cluster).",
        json_schema_extra={"default_doc": "file://<data_dir>/storage"},
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint URL (MinIO, moto); None = AWS."
    )
    s3_region: str = Field(default="us-east-1", min_length=1, description="S3 region.")
    multipart_chunk_bytes: int = Field(
        default=8 * MIB,
        ge=5 * MIB,
        le=5 * 1024 * MIB,
        description="S3 multipart part size (S3 needs >= 5 MiB).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_root(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("root"):
            data_dir = data.get("data_dir") or "~/.shipyard"
            if isinstance(data_dir, str | os.PathLike):
                local = pathlib.Path(data_dir).expanduser() / "storage"
                return {**data, "root": uris.from_local_path(local)}
        return data

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: pathlib.Path) -> pathlib.Path:
        return value.expanduser().absolute()

    @field_validator("root")
    @classmethod
    def _normalize_root(cls, value: str) -> str:
        try:
            return uris.normalize(value, field="storage.root")
        except InvalidArgument as exc:  # pydantic turns only its own error types into field errors
            raise _invalid(exc.violations[0].description) from exc

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise _invalid(f"{value!r} must be an http:// or https:// URL")
        return value


def _invalid(message: str) -> PydanticCustomError:
    # Unlike ValueError, a custom error keeps the message free of pydantic's "Value error, " prefix.
    return PydanticCustomError("invalid_value", message)


def _port(default: int, service: str) -> Any:
    return Field(default, ge=0, le=65535, description=f"{service} service port (0 = pick a free port).")


class GrpcPorts(_Section):
    """The gRPC port of each service."""

    ingest: int = _port(50051, "Ingest")
    training: int = _port(50052, "Training")
    finetune: int = _port(50053, "Finetune")
    evaluation: int = _port(50054, "Evaluation")
    inference: int = _port(50055, "Inference")
    agents: int = _port(50056, "Agents")


class GrpcConfig(_Section):
    """How services listen and clients connect."""

    host: str = Field(
        default="127.0.0.1", min_length=1, description="Address services bind to and clients dial."
    )
    ports: GrpcPorts = Field(default_factory=GrpcPorts, description="Per-service ports.")
    max_message_bytes: int = Field(
        default=64 * MIB, gt=0, description="Largest gRPC message sent or received."
    )
    auth_token: SecretStr | None = Field(
        default=None, description="Bearer token required on every call; None = off."
    )
    tls_cert_file: pathlib.Path | None = Field(
        default=None, description="PEM certificate chain; None = plaintext."
    )
    tls_key_file: pathlib.Path | None = Field(default=None, description="PEM private key for tls_cert_file.")
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="Time in-flight calls get on shutdown."
    )
    default_deadline_seconds: float = Field(
        default=30.0, gt=0, description="Client deadline when none is given."
    )
    max_workers: int = Field(default=16, ge=1, description="Server thread pool size.")

    @model_validator(mode="after")
    def _tls_pair(self) -> GrpcConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise _invalid("tls_cert_file and tls_key_file must be set together")
        return self


class TelemetryConfig(_Section):
    """Logs and metrics."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Minimum level of emitted log records."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json (one object per line) or text."
    )
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Prometheus /metrics port; 0 = disabled."
    )
    service_name: str = Field(
        default="shipyard", min_length=1, description="Name in logs, traces and metrics."
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case_insensitive(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()


class IngestConfig(_Section):
    """The data-ingest pipeline's execution."""

    executor: Literal["local", "ray"] = Field(
        default="local", description="Runs shards in local processes or on Ray."
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Shards processed in parallel.",
        json_schema_extra={"default_doc": "os.cpu_count()"},
    )
    shard_bytes: int = Field(default=64 * MIB, gt=0, description="Target size of one output shard.")


class TrainingConfig(_Section):
    """Where training jobs run."""

    ray_address: str | None = Field(
        default=None, description="Ray cluster to submit to; None starts a local Ray per job (embedded)."
    )
    max_concurrent_jobs: int = Field(default=1, ge=1, description="Training jobs running at once.")


class EvaluationConfig(_Section):
    """Where benchmark data is read from and how evaluations run."""

    data_root: str | None = Field(
        default=None, description="Benchmark files (gsm8k/, mmlu/, ...); None = <storage.root>/datasets/eval."
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="Runs shards in processes or on Ray."
    )
    workers: int = Field(default=1, ge=1, description="Shards evaluated in parallel (each loads the model).")


class InferenceConfig(_Section):
    """The inference engine and its HTTP/gRPC server (``shipyard serve``, the inference service)."""

    http_port: int = Field(
        default=8000, ge=0, le=65535, description="OpenAI-compatible HTTP port (0 = free)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto = cuda when present.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights/activations dtype; auto = float32 on CPU, bfloat16 on CUDA."
    )
    block_size: int = Field(default=16, ge=1, le=256, description="Tokens per KV-cache block.")
    kv_cache_memory: float = Field(
        default=0.25,
        gt=0,
        description="KV-cache budget: a fraction of device memory (<= 1) or a byte count (> 1).",
    )
    kv_cache_dtype: Literal["auto", "int8"] = Field(
        default="auto", description="int8 stores K/V quantized per token and head (half the memory)."
    )
    quantization: Literal["none", "int8"] = Field(
        default="none", description="Weight-only int8 quantization of linear layers."
    )
    max_num_seqs: int = Field(default=64, ge=1, description="Sequences in the running batch at most.")
    max_num_batched_tokens: int = Field(
        default=512, ge=1, description="Tokens one engine step computes; long prompts are chunked to fit."
    )
    max_model_len: int | None = Field(
        default=None, ge=2, description="Context window; default the model's max_position_embeddings."
    )
    enable_prefix_caching: bool = Field(
        default=True, description="Reuse KV blocks of shared prompt prefixes."
    )
    max_queue_len: int = Field(
        default=256, ge=1, description="Waiting requests admitted at most; beyond it: 429/RESOURCE_EXHAUSTED."
    )
    max_loras: int = Field(default=8, ge=0, description="LoRA adapters loaded at once.")
    max_lora_rank: int = Field(default=64, ge=1, description="Largest adapter rank accepted.")
    seed: int = Field(default=0, ge=0, description="Seed of sampling for requests without their own.")


class AgentsConfig(_Section):
    """The agents service and ``shipyard agent``: where sessions live, how model deployments are reached."""

    database_url: str | None = Field(
        default=None,
        description="Session store (SQLAlchemy URL: sqlite:///path or postgresql+psycopg://...).",
        json_schema_extra={"default_doc": "sqlite:///<data_dir>/agents/sessions.db"},
    )
    deployments: Literal["local", "cluster"] = Field(
        default="local",
        description="How spec.model.deployment resolves: local servers (embedded) or cluster Services.",
    )
    namespace: str = Field(
        default="default", min_length=1, description="Namespace of the ModelDeployments on a cluster."
    )


class ShipyardConfig(_Section):
    """The whole configuration; each component takes the section it needs."""

    storage: StorageConfig = Field(default_factory=StorageConfig, description="Artifact storage.")
    grpc: GrpcConfig = Field(default_factory=GrpcConfig, description="gRPC services.")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig, description="Logs and metrics.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Data ingest.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation.")
    inference: InferenceConfig = Field(default_factory=InferenceConfig, description="Inference serving.")
    agents: AgentsConfig = Field(default_factory=AgentsConfig, description="Agents and their sessions.")


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ShipyardConfig:
    """Build the config from defaults < YAML file < environment < ``overrides`` (see module doc).

    ``environ`` replaces ``os.environ`` (tests, or a service that assembled its own environment).
    """
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def apply(layer: Mapping[str, Any], source: str) -> None:
        _deep_merge(merged, layer)
        sources.update(dict.fromkeys(_leaves(layer), source))

    file_field = "path" if path is not None else "SHIPYARD_CONFIG"
    file_path = os.fspath(path) if path is not None else envs.config_path(environ)
    if file_path:
        apply(_read_yaml(file_path, file_field), f"config file {file_path}")
    for field, (name, value) in envs.by_field(environ).items():
        apply(_expand_dotted({field: value}, "environment"), f"${name}")
    if overrides:
        apply(_expand_dotted(overrides, "overrides"), "overrides")
    try:
        return ShipyardConfig.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise _with_sources(from_pydantic(exc), sources) from None


def _read_yaml(path: str, field: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise InvalidArgument.field(field, f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidArgument.field(field, f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument.field(field, f"{path} must hold a mapping, not {type(data).__name__}")
    return data


def _expand_dotted(values: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``{"a.b": 1, "a": {"c": 2}}`` → ``{"a": {"b": 1, "c": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument.field(field, f"keys must be non-empty strings, got {key!r}")
        nested: Any = _expand_dotted(value, field) if isinstance(value, Mapping) else value
        for part in reversed(key.split(".")[1:]):
            nested = {part: nested}
        _deep_merge(out, {key.split(".")[0]: nested})
    return out


def _deep_merge(base: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value


def _leaves(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out.extend(_leaves(value, path + ".") if isinstance(value, Mapping) and value else [path])
    return out


def _with_sources(error: InvalidArgument, sources: Mapping[str, str]) -> InvalidArgument:
    """Append where each bad value came from, so a user knows whether to fix the file, env or flag."""
    violations = []
    for v in error.violations:
        source = sources.get(v.field)
        text = f"{v.description} (from {source})" if source else v.description
        violations.append(FieldViolation(v.field, text))
    return InvalidArgument("invalid configuration", violations=violations)


@dataclass(frozen=True)
class FieldDoc:
    """One row of the config table: dotted name, type, default, env variable, doc, current value."""

    name: str
    type: str
    default: str
    env: str | None
    doc: str
    value: str | None = None


def describe(config: ShipyardConfig | None = None) -> list[FieldDoc]:
    """Every leaf field of ``ShipyardConfig``; with ``config``, also its current value (secrets masked)."""
    env_of = {var.field: var.name for var in envs.VARIABLES if var.field}
    rows: list[FieldDoc] = []

    def walk(model: type[BaseModel], instance: BaseModel | None, prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            value = getattr(instance, name) if instance is not None else None
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                walk(info.annotation, value, path + ".")
                continue
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            default = str(extra.get("default_doc", info.default))
            shown = None if instance is None else ("" if value is None else str(value))
            rows.append(
                FieldDoc(
                    path,
                    _type_name(info.annotation),
                    default,
                    env_of.get(path),
                    info.description or "",
                    shown,
                )
            )

    walk(ShipyardConfig, config, "")
    return rows


def documented_defaults() -> str:
    """A Markdown table of every field: name, type, default, environment variable and doc."""
    lines = ["| field | type | default | env | description |", "|---|---|---|---|---|"]
    for r in describe():
        cells = (f"`{r.name}`", f"`{r.type}`", f"`{r.default}`", r.env or "", r.doc)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _type_name(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else repr(annotation)
    return re.sub(r"\b(?:[a-z_]\w*\.)+(\w+)", r"\1", text)  # typing.Literal → Literal, pathlib.Path → Path
