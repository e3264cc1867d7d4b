"""TrainingJob -> a KubeRay ``ray.io/v1`` RayJob, and the TrainingJob status mirrored from that RayJob.

The RayJob runs ``contract.TRAINING_ENTRYPOINT`` with the whole TrainingJob document, i.e. exactly the
training code of embedded mode, on a Ray cluster KubeRay creates for it: one head pod (no training work)
and ``resources.workers`` worker pods sized from the spec and placed on ``resources.nodePool``.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.resources.status import JobPhase, TrainingJobStatus
from shipyard.training.spec import TrainingJob
from shipyard_operator import contract
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans import placement
from shipyard_operator.plans.base import (
    Owner,
    Plan,
    blocked_conditions,
    drop_none,
    job_conditions,
    stamp_conditions,
    transition_events,
)

RAY_API_VERSION = "ray.io/v1"


@dataclass(frozen=True)
class TrainingObserved:
    """What the cluster holds for one TrainingJob."""

    owner: Owner
    ray_job: dict[str, Any] | None
    secret_exists: bool
    status: dict[str, Any] | None
    now: datetime


def plan_training_job(job: TrainingJob, observed: TrainingObserved, cfg: OperatorConfig) -> Plan:
    """The RayJob this TrainingJob needs and the status it should show (pure)."""
    owner = observed.owner
    old = observed.status or {}
    if observed.ray_job is None and old.get("phase") in _FINISHED:
        # The RayJob was cleaned up after it finished (ttlSecondsAfterFinished): never run it again.
        return Plan(status=dict(old))
    if observed.ray_job is None:
        pool = placement.pool_placement(job.spec.resources.node_pool, cfg, field="spec.resources.nodePool")
        blocker = (
            pool
            if isinstance(pool, placement.Blocker)
            else placement.missing_secret(observed.secret_exists, cfg)
        )
        if blocker is not None:
            status = {
                "phase": JobPhase.PENDING.value,
                "conditions": blocked_conditions(blocker.reason, blocker.message),
                "message": blocker.message,
            }
            return _finish(status, observed)
    ray_job = ray_job_manifest(job, owner, cfg)
    status = training_status(job, observed.ray_job, ray_job["metadata"]["name"], cfg)
    return _finish(status, observed, children=(ray_job,))


def _finish(
    status: dict[str, Any], observed: TrainingObserved, children: tuple[dict[str, Any], ...] = ()
) -> Plan:
    status = dict(status)
    status["conditions"] = stamp_conditions(
        status["conditions"], (observed.status or {}).get("conditions"), observed.now
    )
    # Validate against the status model: the CRD schema is generated from it, so this is what the API
    # server would accept.
    status = TrainingJobStatus.model_validate(status).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return Plan(children=list(children), status=status, events=transition_events(observed.status, status))


def ray_job_manifest(job: TrainingJob, owner: Owner, cfg: OperatorConfig) -> dict[str, Any]:
    spec, policy = job.spec, job.spec.run_policy
    labels = {}
    if contract.KUEUE_QUEUE_LABEL in job.metadata.labels:
        labels[contract.KUEUE_QUEUE_LABEL] = job.metadata.labels[contract.KUEUE_QUEUE_LABEL]
    document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    res = spec.resources
    pool = placement.pool_placement(res.node_pool, cfg, field="spec.resources.nodePool")
    pool = {} if isinstance(pool, placement.Blocker) else pool
    worker_memory = f"{math.ceil(res.cpus_per_worker * cfg.worker_memory_per_cpu_gi)}Gi"
    body = {
        "apiVersion": RAY_API_VERSION,
        "kind": "RayJob",
        "metadata": owner.child_metadata(owner.name, labels=labels),
        "spec": {
            "entrypoint": f"{contract.TRAINING_ENTRYPOINT} {shlex.quote(json.dumps(document, sort_keys=True))}",  # noqa: E501
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": cfg.job_ttl_seconds_after_finished,
            "activeDeadlineSeconds": policy.active_deadline_seconds,
            "backoffLimit": policy.backoff_limit,
            "suspend": policy.suspend,
            "rayClusterSpec": {
                "rayVersion": cfg.ray_version,
                "headGroupSpec": {
                    # The head only coordinates: no CPUs advertised, so no training worker lands on it.
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {
                        "spec": {
                            "containers": [
                                _container(
                                    "ray-head",
                                    cfg,
                                    placement.resources(float(cfg.ray_head_cpus), cfg.ray_head_memory, 0),
                                )
                            ]
                        }
                    },
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "workers",
                        "replicas": res.workers,
                        "minReplicas": res.workers,
                        "maxReplicas": res.workers,
                        "rayStartParams": {},
                        "template": {
                            "spec": {
                                "containers": [
                                    _container(
                                        "ray-worker",
                                        cfg,
                                        placement.resources(
                                            res.cpus_per_worker, worker_memory, res.gpus_per_worker
                                        ),
                                    )
                                ],
                                **pool,
                            }
                        },
                    }
                ],
            },
        },
    }
    return drop_none(body)


def _container(name: str, cfg: OperatorConfig, resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "resources": resources,
        "securityContext": placement.container_security(),
        **placement.storage_env(cfg),
    }


# KubeRay's jobStatus / jobDeploymentStatus -> (phase, reason). Checked in this order.
_TERMINAL_JOB_STATUS = {
    "SUCCEEDED": (JobPhase.SUCCEEDED, "RayJobSucceeded"),
    "FAILED": (JobPhase.FAILED, "RayJobFailed"),
    "STOPPED": (JobPhase.CANCELLED, "RayJobStopped"),
}
_DEPLOYMENT_STATUS = {
    "Complete": (JobPhase.SUCCEEDED, "RayJobSucceeded"),
    "Failed": (JobPhase.FAILED, "RayJobFailed"),
    "Suspended": (JobPhase.SUSPENDED, "Suspended"),
    "Suspending": (JobPhase.SUSPENDED, "Suspending"),
    "Running": (JobPhase.RUNNING, "RayJobRunning"),
    "Retrying": (JobPhase.RUNNING, "RayJobRetrying"),
}


def training_status(
    job: TrainingJob, ray_job: dict[str, Any] | None, ray_job_name: str, cfg: OperatorConfig
) -> dict[str, Any]:
    """The TrainingJob status (without timestamps) that mirrors ``ray_job``'s state and progress."""
    rs = (ray_job or {}).get("status") or {}
    dep, js = rs.get("jobDeploymentStatus"), rs.get("jobStatus")
    if ray_job is None:
        phase, reason = (
            (JobPhase.SUSPENDED, "Suspended")
            if job.spec.run_policy.suspend
            else (JobPhase.PENDING, "RayJobCreated")
        )
    elif dep == "Failed" or js in _TERMINAL_JOB_STATUS:
        phase, reason = _TERMINAL_JOB_STATUS.get(
            js or "", _DEPLOYMENT_STATUS.get(dep or "", (JobPhase.FAILED, ""))
        )
        if phase is JobPhase.FAILED and rs.get("reason"):
            reason = str(rs["reason"])  # KubeRay's own reason: DeadlineExceeded, AppFailed, ...
    elif dep in _DEPLOYMENT_STATUS:
        phase, reason = _DEPLOYMENT_STATUS[dep]
    elif js == "RUNNING":
        phase, reason = JobPhase.RUNNING, "RayJobRunning"
    else:  # New / Initializing / Waiting, or no status yet: the Ray cluster is coming up
        phase, reason = JobPhase.PENDING, "Initializing" if dep else "RayJobCreated"
    message = str(rs.get("message") or _MESSAGES[phase].format(name=ray_job_name))
    annotations = ((ray_job or {}).get("metadata") or {}).get("annotations") or {}
    progress = _json_annotation(annotations, contract.PROGRESS_ANNOTATION)
    outcome = _json_annotation(annotations, contract.OUTCOME_ANNOTATION)
    status: dict[str, Any] = {
        "phase": phase.value,
        "conditions": job_conditions(phase.value, reason, message, created_reason="RayJobCreated"),
        "message": message,
        "rayJobName": ray_job_name,
        "totalSteps": job.spec.hyperparameters.steps or progress.get("totalSteps"),
        "restarts": rs.get("failed") if ray_job is not None else None,
    }
    for key in ("step", "tokensSeen", "lastCheckpoint"):
        if progress.get(key) is not None:
            status[key] = progress[key]
    metrics = {k: v for k, v in (progress.get("metrics") or {}).items() if k in _METRIC_KEYS}
    if metrics:
        status["metrics"] = metrics
    if phase is JobPhase.SUCCEEDED:
        status["outputModel"] = (
            outcome.get("outputModel")
            or job.spec.output.uri
            or (f"{cfg.storage_root.rstrip('/')}/models/{job.metadata.name}")
        )
        if outcome.get("registeredModel"):
            status["registeredModel"] = outcome["registeredModel"]
        if status.get("totalSteps") is not None:
            status["step"] = status["totalSteps"]
    return {k: v for k, v in status.items() if v is not None}


_FINISHED = frozenset({JobPhase.SUCCEEDED.value, JobPhase.FAILED.value, JobPhase.CANCELLED.value})
_METRIC_KEYS = frozenset({"loss", "learningRate", "tokensPerSecond", "mfu", "evalLoss"})
_MESSAGES = {
    JobPhase.PENDING: "RayJob {name} is starting its Ray cluster",
    JobPhase.SUSPENDED: "suspended (runPolicy.suspend or the queue holds it)",
    JobPhase.RUNNING: "training on RayJob {name}",
    JobPhase.SUCCEEDED: "training finished",
    JobPhase.FAILED: "RayJob {name} failed",
    JobPhase.CANCELLED: "RayJob {name} was stopped",
}


def _json_annotation(annotations: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON object annotation; a malformed one is ignored (it only adds detail)."""
    try:
        value = json.loads(annotations.get(key) or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
