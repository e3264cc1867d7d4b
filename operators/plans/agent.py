"""Agent -> ConfigMap (the resolved spec), Deployment (the agents service serving it), Service (gRPC).

The model is ``spec.model.url`` as is, or the in-cluster endpoint of the ModelDeployment named by
``spec.model.deployment`` once that deployment is Ready. While it is missing or not Ready nothing is
changed (pods already running keep their endpoint) and the Agent is ``Waiting`` with a reason. The spec
reaches the pods as a mounted ConfigMap whose hash is on the pod template, so a spec change rolls the
pods. Sessions go to the PostgreSQL database of a Secret when the operator is configured with one, else
to SQLite on an emptyDir, which the status says is not durable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.resources.agent import Agent, AgentModel
from shipyard.resources.status import AgentPhase, AgentStatus
from shipyard_operator import contract
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans import placement
from shipyard_operator.plans.base import Owner, Plan, condition, stamp_conditions, transition_events
from shipyard_operator.plans.deployment import endpoint as model_deployment_endpoint
from shipyard_operator.plans.model_source import Unresolved

SERVER_NAME = "shipyard-agents"
SPEC_DIR = "/etc/shipyard/agent"
SPEC_FILE = "agent.json"
SESSIONS_DIR = "/var/lib/shipyard/agents"
_SUFFIX = "-agent"
# Children are "<name>-agent" (a ModelDeployment of the same name owns "<name>"), and must be DNS labels.
MAX_NAME = 63 - len(_SUFFIX)


@dataclass(frozen=True)
class AgentObserved:
    owner: Owner
    deployment: dict[str, Any] | None  # the agents Deployment
    model_deployment: dict[str, Any] | None  # spec.model.deployment's ModelDeployment
    secret_exists: bool  # the storage credentials Secret
    status: dict[str, Any] | None
    now: datetime


@dataclass(frozen=True)
class ModelEndpoint:
    """The OpenAI-compatible base URL the agent calls, and the model name it asks for."""

    url: str
    name: str | None


def child_name(owner: Owner) -> str:
    return owner.name + _SUFFIX


def plan_agent(agent: Agent, observed: AgentObserved, cfg: OperatorConfig) -> Plan:
    """The objects running this Agent and its status (pure)."""
    owner = observed.owner
    base: dict[str, Any] = {"endpoint": grpc_endpoint(owner, cfg)}
    if len(owner.name) > MAX_NAME:
        message = (
            f"metadata.name: an Agent's name may have at most {MAX_NAME} characters "
            f"(its Deployment and Service are named {child_name(owner)!r})"
        )
        conds = [condition("Created", False, "NameTooLong", message)]
        return _finish({"phase": AgentPhase.FAILED.value, "conditions": conds, "message": message}, observed)
    model = resolve_model_endpoint(agent.spec.model, owner.namespace, observed.model_deployment, cfg)
    if isinstance(model, Unresolved):
        conds = [condition("ModelReady", False, model.reason, model.message)]
        phase = AgentPhase.WAITING.value
        return _finish({**base, "phase": phase, "conditions": conds, "message": model.message}, observed)
    conds = [condition("ModelReady", True, "ModelEndpointResolved", model.url)]
    blocker = placement.missing_secret(observed.secret_exists, cfg)
    if blocker is not None:
        conds.append(condition("Created", False, blocker.reason, blocker.message))
        status = {**base, "phase": AgentPhase.FAILED.value, "conditions": conds, "message": blocker.message}
        return _finish(status, observed)
    config_map = config_map_manifest(agent, owner, model)
    digest = spec_hash(config_map)
    children = (config_map, deployment_manifest(owner, cfg, digest), service_manifest(owner, cfg))
    conds.append(condition("Created", True, "AgentObjectsApplied"))
    conds.append(sessions_condition(cfg))
    rollout = rollout_status(observed.deployment, digest)
    status = {**base, **rollout, "modelEndpoint": model.url}
    status["conditions"] = conds + status.pop("conditions")
    if not cfg.agents_database_secret:
        status["message"] = conds[-1]["message"]
    return _finish(status, observed, children)


def _finish(
    status: dict[str, Any], observed: AgentObserved, children: tuple[dict[str, Any], ...] = ()
) -> Plan:
    old = observed.status or {}
    if "modelEndpoint" not in status and old.get("modelEndpoint"):
        status["modelEndpoint"] = old["modelEndpoint"]  # pods already running still call it while waiting
    status = {
        **status,
        "conditions": stamp_conditions(status["conditions"], old.get("conditions"), observed.now),
    }
    if observed.owner.generation is not None:
        status["observedGeneration"] = observed.owner.generation
    status = AgentStatus.model_validate(status).model_dump(mode="json", by_alias=True, exclude_none=True)
    return Plan(children=list(children), status=status, events=transition_events(old, status))


def resolve_model_endpoint(
    model: AgentModel, namespace: str, model_deployment: dict[str, Any] | None, cfg: OperatorConfig
) -> ModelEndpoint | Unresolved:
    """``url`` as is; a ModelDeployment's in-cluster endpoint once it is Ready; else why we wait."""
    if model.url is not None:
        return ModelEndpoint(model.url, model.name)
    name = model.deployment
    assert name is not None  # the spec model guarantees exactly one of url / deployment
    if model_deployment is None:
        return Unresolved(
            "ModelDeploymentNotFound",
            f"spec.model.deployment: ModelDeployment {name!r} does not exist in namespace {namespace!r}",
            True,
        )
    phase = (model_deployment.get("status") or {}).get("phase")
    if phase != "Ready":
        return Unresolved(
            "WaitingForModel",
            f"waiting for ModelDeployment {name!r} to be Ready (now {phase or 'Pending'})",
            True,
        )
    url = model_deployment_endpoint(Owner("ModelDeployment", name, namespace, ""), cfg)
    # The inference server serves the model under its ModelDeployment's name (--served-model-name).
    return ModelEndpoint(url, model.name or name)


def grpc_endpoint(owner: Owner, cfg: OperatorConfig) -> str:
    return f"{child_name(owner)}.{owner.namespace}.svc.{cfg.cluster_domain}:{cfg.agents_grpc_port}"


def pod_labels(owner: Owner) -> dict[str, str]:
    return {contract.NAME_LABEL: SERVER_NAME, contract.INSTANCE_LABEL: owner.name}


def resolved_manifest(agent: Agent, owner: Owner, model: ModelEndpoint) -> dict[str, Any]:
    """The Agent manifest the service loads: ``spec.model`` replaced by the resolved ``url`` (+ ``name``)."""
    doc = agent.model_dump(mode="json", by_alias=True, exclude_none=True)
    resolved: dict[str, Any] = {"url": model.url}
    if model.name is not None:
        resolved["name"] = model.name
    if agent.spec.model.api_key_env is not None:
        resolved["apiKeyEnv"] = agent.spec.model.api_key_env
    doc["spec"]["model"] = resolved
    doc["metadata"] = {"name": owner.name, "labels": dict(agent.metadata.labels)}
    return doc


def config_map_manifest(agent: Agent, owner: Owner, model: ModelEndpoint) -> dict[str, Any]:
    text = json.dumps(resolved_manifest(agent, owner, model), indent=2, sort_keys=True) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": owner.child_metadata(child_name(owner), labels={contract.NAME_LABEL: SERVER_NAME}),
        "data": {SPEC_FILE: text},
    }


def spec_hash(config_map: dict[str, Any]) -> str:
    return hashlib.sha256(config_map["data"][SPEC_FILE].encode("utf-8")).hexdigest()[:16]


def sessions_condition(cfg: OperatorConfig) -> dict[str, Any]:
    if cfg.agents_database_secret:
        return condition(
            "SessionsDurable",
            True,
            "Database",
            f"sessions in the database of Secret {cfg.agents_database_secret!r}",
        )
    return condition(
        "SessionsDurable",
        False,
        "EphemeralSessionStore",
        "sessions are kept in SQLite on an emptyDir and are lost when the pod restarts "
        "(set the chart's agents.database.existingSecret to keep them in PostgreSQL)",
    )


def _session_store(cfg: OperatorConfig) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The database env var, and the volumes + mounts it needs (none for PostgreSQL)."""
    name = contract.AGENTS_DATABASE_ENV
    if cfg.agents_database_secret:
        ref = {"name": cfg.agents_database_secret, "key": cfg.agents_database_secret_key}
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}, [], []
    env = {"name": name, "value": f"sqlite:///{SESSIONS_DIR}/sessions.db"}
    return env, [{"name": "sessions", "emptyDir": {}}], [{"name": "sessions", "mountPath": SESSIONS_DIR}]


def deployment_manifest(owner: Owner, cfg: OperatorConfig, digest: str) -> dict[str, Any]:
    port, labels, name = cfg.agents_grpc_port, pod_labels(owner), child_name(owner)
    db_env, volumes, mounts = _session_store(cfg)
    storage = placement.storage_env(cfg)
    container = {
        "name": "agents",
        "image": cfg.agents_image,
        "imagePullPolicy": cfg.image_pull_policy,
        "command": list(contract.AGENTS_COMMAND),
        "args": ["--agent", owner.name, "--agent-spec", f"{SPEC_DIR}/{SPEC_FILE}", "--grpc-port", str(port)],
        "ports": [{"name": "grpc", "containerPort": port, "protocol": "TCP"}],
        "resources": placement.resources(cfg.agents_cpus, cfg.agents_memory, 0),
        "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 5},
        "livenessProbe": {"grpc": {"port": port}, "periodSeconds": 10, "failureThreshold": 6},
        "securityContext": placement.container_security(),
        "env": [*storage["env"], db_env],
        "envFrom": storage["envFrom"],
        "volumeMounts": [
            {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # the Python tool's sandbox works in a temp dir
            *mounts,
        ],
    }
    volumes = [
        {"name": "spec", "configMap": {"name": name}},
        {"name": "tmp", "emptyDir": {}},
        *volumes,
    ]
    spec = {
        # One replica: a SQLite session store is per pod; with PostgreSQL the HPA-free default still holds.
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": labels, "annotations": {contract.SPEC_HASH_ANNOTATION: digest}},
            "spec": {"containers": [container], "volumes": volumes},
        },
    }
    meta = owner.child_metadata(name, labels={contract.NAME_LABEL: SERVER_NAME})
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec}


def service_manifest(owner: Owner, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.child_metadata(child_name(owner), labels={contract.NAME_LABEL: SERVER_NAME}),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_labels(owner),
            "ports": [
                {"name": "grpc", "port": cfg.agents_grpc_port, "targetPort": "grpc", "protocol": "TCP"}
            ],
        },
    }


def rollout_status(deployment: dict[str, Any] | None, digest: str) -> dict[str, Any]:
    """Phase, replica counts and the Available condition from the observed agents Deployment."""
    ds = (deployment or {}).get("status") or {}
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    deployed = ((template.get("metadata") or {}).get("annotations") or {}).get(contract.SPEC_HASH_ANNOTATION)
    replicas, ready, updated = ds.get("replicas", 0), ds.get("readyReplicas", 0), ds.get("updatedReplicas", 0)
    if deployment is not None and deployed == digest and ready >= 1 and updated >= replicas:
        phase, cond = AgentPhase.RUNNING, condition("Available", True, "AgentReady", f"{ready} ready")
    else:
        phase = AgentPhase.PROGRESSING
        cond = condition("Available", False, "RollingOut", f"{ready}/{max(replicas, 1)} agent pods ready")
    return {"phase": phase.value, "replicas": replicas, "readyReplicas": ready, "conditions": [cond]}
