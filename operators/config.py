"""The operator's typed configuration: images, storage, node pools and timings, loaded from one YAML file.

The chart renders this file into a ConfigMap from its values (``nodePools``, ``storage``, ``images``); the
operator reads it once at start-up (``--config``). Plans receive it as a plain argument, so they stay pure.
"""

from __future__ import annotations

import pathlib
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shipyard.errors import InvalidArgument, from_pydantic


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)


class Toleration(_Section):
    key: str = Field(description="Taint key to tolerate, e.g. nvidia.com/gpu.")
    operator: str = Field("Exists", description="Exists or Equal.")
    value: str | None = Field(None, description="Taint value (operator Equal).")
    effect: str | None = Field(None, description="NoSchedule, PreferNoSchedule or NoExecute; all if unset.")


class NodePool(_Section):
    """Where a pool's pods land: the labels its nodes carry and the taints they tolerate."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels to select.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints to tolerate.")


class OperatorConfig(_Section):
    image: str = Field("ghcr.io/shipyard/shipyard:0.1.0", description="Image with shipyard and Ray.")
    image_pull_policy: str = Field("IfNotPresent", description="Pull policy of every container.")
    ray_version: str = Field("2.40.0", description="Ray version in the image (KubeRay needs it).")
    storage_root: str = Field("s3://shipyard", description="Root URI of all artifacts.")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint for non-AWS stores.")
    storage_secret: str = Field(
        "shipyard-storage",
        description="Secret in the job's namespace with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (envFrom).",
    )
    node_pools: dict[str, NodePool] = Field(default_factory=dict, description="Pool name -> placement.")
    ray_head_cpus: str = Field("1", description="CPU request of the Ray head pod.")
    ray_head_memory: str = Field("4Gi", description="Memory of the Ray head pod.")
    worker_memory_per_cpu_gi: int = Field(4, ge=1, description="GiB of memory per reserved worker CPU.")
    job_ttl_seconds_after_finished: int = Field(
        3600, ge=0, description="Delete a finished RayJob/Job (and its cluster) after this long."
    )
    evaluation_backoff_limit: int = Field(1, ge=0, description="Pod retries of an evaluation Job.")
    http_port: int = Field(8000, ge=1, le=65535, description="Inference OpenAI-compatible HTTP port.")
    grpc_port: int = Field(50055, ge=1, le=65535, description="Inference gRPC port (health probe).")
    agents_image: str = Field("ghcr.io/shipyard/agents:0.1.0", description="Image of the agents service.")
    agents_grpc_port: int = Field(50056, ge=1, le=65535, description="Agents service gRPC port.")
    agents_database_secret: str | None = Field(
        None,
        description="Secret (in the Agent's namespace) whose key agentsDatabaseSecretKey holds the session "
        "database URL (PostgreSQL); unset: SQLite on an emptyDir, sessions not durable.",
    )
    agents_database_secret_key: str = Field("url", min_length=1, description="Key of that Secret.")
    agents_cpus: float = Field(0.5, gt=0, description="CPUs of an agents pod (requests = limits).")
    agents_memory: str = Field("1Gi", description="Memory of an agents pod (tools run in it).")
    recheck_seconds: float = Field(
        30.0,
        gt=0,
        description="How often an object that waits on something outside its children is rechecked.",
    )
    cluster_domain: str = Field("cluster.local", description="DNS suffix of in-cluster Service names.")


def load_operator_config(path: str | pathlib.Path | None) -> OperatorConfig:
    """Read the YAML config file; ``None`` gives the defaults. Errors name the field."""
    if path is None:
        return OperatorConfig()
    p = pathlib.Path(path)
    if not p.is_file():
        raise InvalidArgument.field("config", f"{p} does not exist or is not a file")
    try:
        data: Any = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return OperatorConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise InvalidArgument.field("config", f"{p} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise from_pydantic(exc, prefix="config") from None
