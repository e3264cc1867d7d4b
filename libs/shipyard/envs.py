"""Every ``SHIPYARD_*`` environment variable, in one table; the only module that reads the environment.

Each variable either points at the YAML config file (``SHIPYARD_CONFIG``) or overrides one field of
``shipyard.config.ShipyardConfig`` (``field``); its default is then that field's default, so the two
can never disagree. ``shipyard.config.load_config`` applies these values above the YAML file and below
explicit overrides. AWS credentials are not here: boto3 reads the standard ``AWS_*`` variables itself.

Values are returned as strings and validated by the config model, so a bad value is reported against
its config field (``grpc.ports.ingest``) and the variable it came from. An empty value counts as unset,
which lets a Kubernetes manifest blank a variable without deleting it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["VARIABLES", "EnvVar", "by_field", "config_path", "read"]


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, value type, the config field it sets, and what it does."""

    name: str
    type: str
    doc: str
    field: str | None = None  # dotted ShipyardConfig path; None for variables that are not config fields
    default: str | None = None  # only for variables without a field (a field's default lives in config)


VARIABLES: tuple[EnvVar, ...] = (
    EnvVar("SHIPYARD_CONFIG", "path", "YAML config file loaded below environment and overrides.", None, None),
    EnvVar("SHIPYARD_DATA_DIR", "path", "Local data directory (embedded mode).", "storage.data_dir"),
    EnvVar(
        "SHIPYARD_STORAGE_ROOT", "uri", "Root URI of all artifacts (file://... or s3://...).", "storage.root"
    ),
    EnvVar(
        "SHIPYARD_S3_ENDPOINT_URL",
        "url",
        "S3 endpoint (MinIO, moto); unset = AWS.",
        "storage.s3_endpoint_url",
    ),
    EnvVar("SHIPYARD_S3_REGION", "str", "S3 region.", "storage.s3_region"),
    EnvVar("SHIPYARD_LOG_LEVEL", "str", "Log level (DEBUG, INFO, WARNING, ERROR).", "telemetry.log_level"),
    EnvVar("SHIPYARD_LOG_FORMAT", "str", "Log format: json or text.", "telemetry.log_format"),
    EnvVar(
        "SHIPYARD_SERVICE_NAME", "str", "Service name in logs, traces and metrics.", "telemetry.service_name"
    ),
    EnvVar("SHIPYARD_METRICS_PORT", "int", "Prometheus metrics port; 0 disables.", "telemetry.metrics_port"),
    EnvVar("SHIPYARD_AUTH_TOKEN", "secret", "Bearer token required by gRPC services.", "grpc.auth_token"),
    EnvVar("SHIPYARD_TLS_CERT", "path", "PEM certificate chain for gRPC TLS.", "grpc.tls_cert_file"),
    EnvVar("SHIPYARD_TLS_KEY", "path", "PEM private key for gRPC TLS.", "grpc.tls_key_file"),
    EnvVar("SHIPYARD_GRPC_HOST", "str", "Address gRPC services bind to / clients dial.", "grpc.host"),
    EnvVar("SHIPYARD_INGEST_PORT", "int", "Ingest service gRPC port.", "grpc.ports.ingest"),
    EnvVar("SHIPYARD_TRAINING_PORT", "int", "Training service gRPC port.", "grpc.ports.training"),
    EnvVar("SHIPYARD_FINETUNE_PORT", "int", "Finetune service gRPC port.", "grpc.ports.finetune"),
    EnvVar("SHIPYARD_EVALUATION_PORT", "int", "Evaluation service gRPC port.", "grpc.ports.evaluation"),
    EnvVar("SHIPYARD_INFERENCE_PORT", "int", "Inference service gRPC port.", "grpc.ports.inference"),
    EnvVar("SHIPYARD_AGENTS_PORT", "int", "Agents service gRPC port.", "grpc.ports.agents"),
    EnvVar(
        "SHIPYARD_AGENTS_DATABASE_URL",
        "url",
        "Agents' session store (sqlite:///... or postgresql+psycopg://...).",
        "agents.database_url",
    ),
    EnvVar(
        "SHIPYARD_AGENTS_DEPLOYMENTS",
        "str",
        "How agents reach ModelDeployments: local or cluster.",
        "agents.deployments",
    ),
    EnvVar(
        "SHIPYARD_AGENTS_NAMESPACE", "str", "Namespace of ModelDeployments agents use.", "agents.namespace"
    ),
    EnvVar(
        "SHIPYARD_EVAL_DATA_ROOT", "uri", "Benchmark data root (gsm8k/, mmlu/, ...).", "evaluation.data_root"
    ),
    EnvVar("SHIPYARD_INGEST_WORKERS", "int", "Parallel ingest workers.", "ingest.workers"),
    EnvVar("SHIPYARD_EXECUTOR", "str", "Ingest executor: local or ray.", "ingest.executor"),
    EnvVar(
        "SHIPYARD_RAY_ADDRESS", "str", "Ray cluster for training; unset = local Ray.", "training.ray_address"
    ),
)

_BY_NAME = {var.name: var for var in VARIABLES}


def read(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``SHIPYARD_*`` variables of the table that are set to a non-empty value."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in _BY_NAME if env.get(name)}


def config_path(environ: Mapping[str, str] | None = None) -> str | None:
    """``SHIPYARD_CONFIG``: the YAML config file to load, if set."""
    return read(environ).get("SHIPYARD_CONFIG")


def by_field(environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Set variables keyed by the config field they override: ``{"grpc.host": ("SHIPYARD_GRPC_HOST", v)}``."""
    return {
        _BY_NAME[name].field: (name, value)  # type: ignore[misc]
        for name, value in read(environ).items()
        if _BY_NAME[name].field is not None
    }
