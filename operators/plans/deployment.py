"""ModelDeployment -> Deployment (inference servers), Service, HorizontalPodAutoscaler, PodDisruptionBudget.

The model comes from ``model`` or, with ``modelFrom``, from a TrainingJob's ``status.outputModel`` once it
succeeded; an optional ``gate`` deploys only while an EvaluationJob's score passes. While either waits,
nothing is changed: servers already running keep serving the previous model. The model URI is in the pod
template, so a new model rolls the Deployment (maxUnavailable 0: capacity never drops during the roll).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.resources.model_deployment import Gate, ModelDeployment
from shipyard.resources.status import DeploymentPhase, ModelDeploymentStatus
from shipyard_operator import contract
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans import placement
from shipyard_operator.plans.base import Owner, Plan, Ref, condition, stamp_conditions, transition_events
from shipyard_operator.plans.model_source import Unresolved, resolve_model

SERVER_NAME = "shipyard-inference"
_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class DeploymentObserved:
    owner: Owner
    deployment: dict[str, Any] | None
    training_job: dict[str, Any] | None  # spec.modelFrom's TrainingJob
    evaluation_job: dict[str, Any] | None  # spec.gate's EvaluationJob
    secret_exists: bool
    status: dict[str, Any] | None
    now: datetime


def plan_model_deployment(md: ModelDeployment, observed: DeploymentObserved, cfg: OperatorConfig) -> Plan:
    """The serving objects this ModelDeployment needs and its status (pure)."""
    owner = observed.owner
    base = {"selector": selector_string(owner), "endpoint": endpoint(owner, cfg)}
    model = resolve_model(md.spec, observed.training_job)
    if isinstance(model, Unresolved):
        phase = DeploymentPhase.WAITING if model.waiting else DeploymentPhase.FAILED
        conds = [condition("ModelReady", False, model.reason, model.message)]
        return _finish({**base, "phase": phase.value, "conditions": conds}, observed)
    conds = [condition("ModelReady", True, "ModelResolved", model)]
    if md.spec.gate is not None:
        gate = check_gate(md.spec.gate, observed.evaluation_job)
        conds.append(condition("GatePassed", gate.passed, gate.reason, gate.message))
        if not gate.passed:
            return _finish({**base, "phase": gate.phase.value, "conditions": conds}, observed)
    pool = placement.pool_placement(md.spec.resources.node_pool, cfg, field="spec.resources.nodePool")
    blocker = (
        pool if isinstance(pool, placement.Blocker) else placement.missing_secret(observed.secret_exists, cfg)
    )
    if blocker is not None:
        conds.append(condition("Created", False, blocker.reason, blocker.message))
        return _finish(
            {**base, "phase": DeploymentPhase.FAILED.value, "conditions": conds},
            observed,
        )
    assert not isinstance(pool, placement.Blocker)
    children = [
        deployment_manifest(md, owner, cfg, model, pool),
        service_manifest(owner, cfg),
        pdb_manifest(owner),
    ]
    absent = []
    if md.spec.autoscaling is not None:
        children.append(hpa_manifest(md, owner))
    else:
        absent.append(Ref("autoscaling/v2", "HorizontalPodAutoscaler", owner.name))
    conds.append(condition("Created", True, "ServingObjectsApplied"))
    status = {**base, **rollout_status(md, observed.deployment, model), "model": model}
    status["conditions"] = conds + status.pop("conditions")
    return _finish(status, observed, children=tuple(children), absent=tuple(absent))


def _finish(
    status: dict[str, Any],
    observed: DeploymentObserved,
    children: tuple[dict[str, Any], ...] = (),
    absent: tuple[Ref, ...] = (),
) -> Plan:
    old = observed.status or {}
    if "model" not in status and old.get("model"):
        status["model"] = old["model"]  # still serving the previous model while waiting
    status = {
        **status,
        "conditions": stamp_conditions(status["conditions"], old.get("conditions"), observed.now),
    }
    if observed.owner.generation is not None:
        status["observedGeneration"] = observed.owner.generation
    status = ModelDeploymentStatus.model_validate(status).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return Plan(
        children=list(children), absent=list(absent), status=status, events=transition_events(old, status)
    )


@dataclass(frozen=True)
class GateResult:
    passed: bool
    phase: DeploymentPhase
    reason: str
    message: str


def check_gate(gate: Gate, evaluation_job: dict[str, Any] | None) -> GateResult:
    """Whether ``gate.metric`` of the EvaluationJob passes ``gate.operator gate.threshold``."""
    name = gate.evaluation_job
    if evaluation_job is None:
        return GateResult(
            False,
            DeploymentPhase.WAITING,
            "EvaluationJobNotFound",
            f"spec.gate.evaluationJob: EvaluationJob {name!r} does not exist",
        )
    status = evaluation_job.get("status") or {}
    phase = status.get("phase")
    if phase in ("Failed", "Cancelled"):
        return GateResult(
            False, DeploymentPhase.FAILED, "EvaluationJobFailed", f"EvaluationJob {name!r} is {phase}"
        )
    if phase != "Succeeded":
        return GateResult(
            False,
            DeploymentPhase.WAITING,
            "WaitingForEvaluation",
            f"waiting for EvaluationJob {name!r} (now {phase or 'Pending'})",
        )
    score = (status.get("scores") or {}).get(gate.metric)
    if score is None:
        return GateResult(
            False,
            DeploymentPhase.BLOCKED,
            "MetricNotFound",
            f"spec.gate.metric: EvaluationJob {name!r} has no score {gate.metric!r}",
        )
    verdict = f"{gate.metric} = {score:g} {gate.operator} {gate.threshold:g}"
    if not _COMPARE[gate.operator](float(score), gate.threshold):
        return GateResult(False, DeploymentPhase.BLOCKED, "GateNotPassed", f"{verdict} is false")
    return GateResult(True, DeploymentPhase.PROGRESSING, "GatePassed", f"{verdict} holds")


def pod_labels(owner: Owner) -> dict[str, str]:
    return {contract.NAME_LABEL: SERVER_NAME, contract.INSTANCE_LABEL: owner.name}


def selector_string(owner: Owner) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(pod_labels(owner).items()))


def endpoint(owner: Owner, cfg: OperatorConfig) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc.{cfg.cluster_domain}:{cfg.http_port}/v1"


def deployment_manifest(
    md: ModelDeployment, owner: Owner, cfg: OperatorConfig, model: str, pool: dict[str, Any]
) -> dict[str, Any]:
    spec, res = md.spec, md.spec.resources
    args = [
        "--model",
        model,
        "--served-model-name",
        owner.name,
        "--http-port",
        str(cfg.http_port),
        "--grpc-port",
        str(cfg.grpc_port),
        "--max-num-seqs",
        str(spec.serving.max_num_seqs),
        "--kv-cache-memory-fraction",
        str(spec.serving.kv_cache_memory_fraction),
        "--quantization",
        spec.serving.quantization,
    ]
    if spec.serving.max_model_len is not None:
        args += ["--max-model-len", str(spec.serving.max_model_len)]
    for adapter in spec.adapters:
        args += ["--adapter", f"{adapter.name}={adapter.uri}"]
    labels = pod_labels(owner)
    dep_spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            # The model in an annotation too, so `kubectl describe` shows what a pod serves.
            "metadata": {"labels": labels, "annotations": {contract.MODEL_ANNOTATION: model}},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": cfg.image,
                        "imagePullPolicy": cfg.image_pull_policy,
                        "command": list(contract.INFERENCE_COMMAND),
                        "args": args,
                        "ports": [
                            {"name": "http", "containerPort": cfg.http_port, "protocol": "TCP"},
                            {"name": "grpc", "containerPort": cfg.grpc_port, "protocol": "TCP"},
                        ],
                        "resources": placement.resources(res.cpus, res.memory, res.gpus_per_replica),
                        # Loading weights can take minutes: the startup probe holds liveness off until then.
                        "startupProbe": {
                            "grpc": {"port": cfg.grpc_port},
                            "periodSeconds": 10,
                            "failureThreshold": 60,
                        },
                        "readinessProbe": {"grpc": {"port": cfg.grpc_port}, "periodSeconds": 5},
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": "http"},
                            "periodSeconds": 10,
                        },
                        "securityContext": placement.container_security(),
                        **placement.storage_env(cfg),
                    }
                ],
                **pool,
            },
        },
    }
    if spec.autoscaling is None:
        dep_spec["replicas"] = spec.replicas  # with an HPA the field is left to it (not owned here)
    meta = owner.child_metadata(owner.name, labels={contract.NAME_LABEL: SERVER_NAME})
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": dep_spec}


def service_manifest(owner: Owner, cfg: OperatorConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.child_metadata(owner.name, labels={contract.NAME_LABEL: SERVER_NAME}),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_labels(owner),
            "ports": [
                {"name": "http", "port": cfg.http_port, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": cfg.grpc_port, "targetPort": "grpc", "protocol": "TCP"},
            ],
        },
    }


def hpa_manifest(md: ModelDeployment, owner: Owner) -> dict[str, Any]:
    auto = md.spec.autoscaling
    assert auto is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": owner.child_metadata(owner.name, labels={contract.NAME_LABEL: SERVER_NAME}),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.name},
            "minReplicas": max(auto.min_replicas, 1),  # the HPA API needs >= 1; 0 is an external scaler's
            "maxReplicas": auto.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": auto.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def pdb_manifest(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": owner.child_metadata(owner.name, labels={contract.NAME_LABEL: SERVER_NAME}),
        # One server at a time may be evicted: a node drain never takes the whole model offline.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pod_labels(owner)}},
    }


def rollout_status(md: ModelDeployment, deployment: dict[str, Any] | None, model: str) -> dict[str, Any]:
    """Phase, replica counts and the Available condition from the observed Deployment."""
    ds = (deployment or {}).get("status") or {}
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    deployed_model = ((template.get("metadata") or {}).get("annotations") or {}).get(
        contract.MODEL_ANNOTATION
    )
    want = md.spec.autoscaling.min_replicas if md.spec.autoscaling else md.spec.replicas
    replicas, ready, updated = ds.get("replicas", 0), ds.get("readyReplicas", 0), ds.get("updatedReplicas", 0)
    rolled = deployment is not None and deployed_model == model and updated >= replicas and ready >= want
    if rolled:
        phase, cond = DeploymentPhase.READY, condition("Available", True, "ServersReady", f"{ready} ready")
    else:
        phase = DeploymentPhase.PROGRESSING
        cond = condition("Available", False, "RollingOut", f"{ready}/{max(want, replicas)} servers ready")
    return {"phase": phase.value, "replicas": replicas, "readyReplicas": ready, "conditions": [cond]}
