"""EvaluationJob -> a ``batch/v1`` Job running the evaluation runner; status with the scores it reports.

Scores come back through the Job: the runner sets ``contract.SCORES_ANNOTATION`` on its own Job before it
exits (see ``shipyard_operator.contract``). The model comes from ``model`` or waits for ``modelFrom``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.status import EvaluationJobStatus, JobPhase
from shipyard_operator import contract
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans import placement
from shipyard_operator.plans.base import (
    Owner,
    Plan,
    blocked_conditions,
    condition,
    job_conditions,
    stamp_conditions,
    transition_events,
)
from shipyard_operator.plans.model_source import Unresolved, resolve_model


@dataclass(frozen=True)
class EvaluationObserved:
    owner: Owner
    job: dict[str, Any] | None  # the batch/v1 Job
    training_job: dict[str, Any] | None  # spec.modelFrom's TrainingJob, when set
    secret_exists: bool
    status: dict[str, Any] | None
    now: datetime


def plan_evaluation_job(ev: EvaluationJob, observed: EvaluationObserved, cfg: OperatorConfig) -> Plan:
    """The Job this EvaluationJob needs and its status (pure)."""
    if observed.job is None and (observed.status or {}).get("phase") in ("Succeeded", "Failed", "Cancelled"):
        return Plan(status=dict(observed.status or {}))  # the Job was cleaned up after it finished (TTL)
    if observed.job is not None:
        # A Job's pod template is immutable once created: from then on the plan only mirrors it.
        return _finish(job_status(observed.job), observed)
    model = resolve_model(ev.spec, observed.training_job)
    if isinstance(model, Unresolved):
        if model.waiting:
            return _finish(_blocked(model.reason, model.message), observed)
        conditions = blocked_conditions(model.reason, model.message)
        conditions[3] = condition("Failed", True, model.reason, model.message)
        return _finish(
            {"phase": JobPhase.FAILED.value, "conditions": conditions, "message": model.message}, observed
        )
    pool = placement.pool_placement(ev.spec.resources.node_pool, cfg, field="spec.resources.nodePool")
    blocker = (
        pool if isinstance(pool, placement.Blocker) else placement.missing_secret(observed.secret_exists, cfg)
    )
    if blocker is not None:
        return _finish(_blocked(blocker.reason, blocker.message), observed)
    return _finish(job_status(None), observed, children=(job_manifest(ev, observed, cfg, model),))


def _blocked(reason: str, message: str) -> dict[str, Any]:
    return {
        "phase": JobPhase.PENDING.value,
        "conditions": blocked_conditions(reason, message),
        "message": message,
    }


def _finish(
    status: dict[str, Any], observed: EvaluationObserved, children: tuple[dict[str, Any], ...] = ()
) -> Plan:
    status = {
        **status,
        "conditions": stamp_conditions(
            status["conditions"], (observed.status or {}).get("conditions"), observed.now
        ),
    }
    status = EvaluationJobStatus.model_validate(status).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    if not status.get("scores"):
        status.pop("scores", None)  # an empty map says nothing; keep the status minimal
    return Plan(children=list(children), status=status, events=transition_events(observed.status, status))


def job_manifest(
    ev: EvaluationJob, observed: EvaluationObserved, cfg: OperatorConfig, model: str
) -> dict[str, Any]:
    owner, spec = observed.owner, ev.spec
    pool = placement.pool_placement(spec.resources.node_pool, cfg, field="spec.resources.nodePool")
    pool = {} if isinstance(pool, placement.Blocker) else pool
    output = spec.output_uri or f"{cfg.storage_root.rstrip('/')}/evaluations/{owner.name}"
    args = [
        "--model",
        model,
        "--tasks",
        ",".join(spec.tasks),
        "--batch-size",
        str(spec.batch_size),
        "--seed",
        str(spec.seed),
        "--output-uri",
        output,
        "--k8s-job",
        owner.name,
        "--k8s-namespace",
        owner.namespace,
    ]
    if spec.limit is not None:
        args += ["--limit", str(spec.limit)]
    if spec.num_fewshot is not None:
        args += ["--num-fewshot", str(spec.num_fewshot)]
    if spec.model_name is not None:
        args += ["--model-name", spec.model_name]
    meta = owner.child_metadata(owner.name)
    meta["annotations"] = {contract.MODEL_ANNOTATION: model}
    ttl = spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": cfg.evaluation_backoff_limit,
            "ttlSecondsAfterFinished": cfg.job_ttl_seconds_after_finished if ttl is None else ttl,
            "template": {
                "metadata": {"labels": dict(meta["labels"])},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "evaluator",
                            "image": cfg.image,
                            "imagePullPolicy": cfg.image_pull_policy,
                            "command": list(contract.EVALUATION_COMMAND),
                            "args": args,
                            "resources": placement.resources(
                                spec.resources.cpus, spec.resources.memory, spec.resources.gpus
                            ),
                            "securityContext": placement.container_security(),
                            **placement.storage_env(cfg),
                        }
                    ],
                    **pool,
                },
            },
        },
    }


def job_status(job: dict[str, Any] | None) -> dict[str, Any]:
    """The EvaluationJob status (without timestamps) mirroring a batch/v1 Job."""
    js = (job or {}).get("status") or {}
    conds = {c.get("type"): c for c in js.get("conditions") or [] if c.get("status") == "True"}
    name = ((job or {}).get("metadata") or {}).get("name", "")
    status: dict[str, Any] = {}
    if "Complete" in conds:
        phase, reason, message = JobPhase.SUCCEEDED, "JobSucceeded", "evaluation finished"
        reported = _scores(job or {})
        if reported.get("scores"):
            status["scores"] = reported["scores"]
        else:
            message = f"evaluation finished but Job {name} reported no scores"
        if reported.get("reportUri"):
            status["reportUri"] = reported["reportUri"]
    elif "Failed" in conds:
        failed = conds["Failed"]
        phase, reason = JobPhase.FAILED, str(failed.get("reason") or "JobFailed")
        message = str(failed.get("message") or f"Job {name} failed")
    elif js.get("active"):
        phase, reason, message = JobPhase.RUNNING, "JobRunning", f"evaluating on Job {name}"
    else:
        phase, reason, message = JobPhase.PENDING, "JobCreated", f"Job {name} is starting"
    status.update(
        phase=phase.value,
        conditions=job_conditions(phase.value, reason, message, created_reason="JobCreated"),
        message=message,
    )
    return status


def _scores(job: dict[str, Any]) -> dict[str, Any]:
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(contract.SCORES_ANNOTATION)
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    scores = value.get("scores")
    good = (
        {str(k): float(v) for k, v in (scores or {}).items() if isinstance(v, int | float)}
        if isinstance(scores, dict)
        else {}
    )
    return {"scores": good, "reportUri": value.get("reportUri")}
