"""ModelDeployment through the operator against a kmock API server: waiting for models, gates, rollout."""

from __future__ import annotations

import json

import pytest

from shipyard_operator.kube import KubeClient
from tests.integration.kmock_harness import (
    TRAINING_SPEC,
    create,
    events_for,
    get,
    set_status,
    status_of,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_model_deployment_waits_for_training_then_deploys_if_the_gate_passes(operator: KubeClient) -> None:
    spec = {
        "modelFrom": {"trainingJob": "ft"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
        "adapters": [{"name": "sql", "uri": "s3://bucket/adapters/sql"}],
        "gate": {"evaluationJob": "eval-ft", "metric": "gsm8k/accuracy", "threshold": 0.5},
    }
    create(operator, "ModelDeployment", "chat", spec)
    waiting = wait_for(
        "Waiting",
        lambda: (s := status_of(operator, "ModelDeployment", "chat")).get("phase") == "Waiting" and s,
    )
    assert waiting["conditions"][0]["reason"] == "TrainingJobNotFound"

    create(operator, "TrainingJob", "ft", TRAINING_SPEC)
    wait_for("the RayJob", lambda: get(operator, "ray.io/v1", "RayJob", "ft"))
    wait_for(
        "WaitingForModel",
        lambda: (
            status_of(operator, "ModelDeployment", "chat")["conditions"][0]["reason"] == "WaitingForModel"
        ),
    )
    set_status(
        operator,
        "ray.io/v1",
        "RayJob",
        "ft",
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
        annotations={"shipyard.dev/outcome": json.dumps({"outputModel": "s3://bucket/models/ft-v1"})},
    )
    wait_for("ft Succeeded", lambda: status_of(operator, "TrainingJob", "ft").get("phase") == "Succeeded")
    gate = wait_for(
        "EvaluationJobNotFound",
        lambda: [
            c
            for c in status_of(operator, "ModelDeployment", "chat")["conditions"]
            if c.get("reason") == "EvaluationJobNotFound"
        ],
    )
    assert gate and get(operator, "apps/v1", "Deployment", "chat") is None, status_of(
        operator, "ModelDeployment", "chat"
    )

    create(operator, "EvaluationJob", "eval-ft", {"modelFrom": {"trainingJob": "ft"}, "tasks": ["gsm8k"]})
    job = wait_for("the eval Job", lambda: get(operator, "batch/v1", "Job", "eval-ft"))
    wait_for(
        "WaitingForEvaluation",
        lambda: [
            c
            for c in status_of(operator, "ModelDeployment", "chat")["conditions"]
            if c.get("reason") == "WaitingForEvaluation"
        ],
    )
    assert "s3://bucket/models/ft-v1" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    set_status(
        operator,
        "batch/v1",
        "Job",
        "eval-ft",
        {"conditions": [{"type": "Complete", "status": "True"}]},
        annotations={"shipyard.dev/scores": json.dumps({"scores": {"gsm8k/accuracy": 0.72}})},
    )

    dep = wait_for("the Deployment", lambda: get(operator, "apps/v1", "Deployment", "chat"))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--model") + 1] == "s3://bucket/models/ft-v1"
    assert "sql=s3://bucket/adapters/sql" in container["args"] and "replicas" not in dep["spec"]
    service = wait_for("the Service", lambda: get(operator, "v1", "Service", "chat"))
    assert [p["port"] for p in service["spec"]["ports"]] == [8000, 50055]
    wait_for("the PDB", lambda: get(operator, "policy/v1", "PodDisruptionBudget", "chat"))
    hpa = wait_for("the HPA", lambda: get(operator, "autoscaling/v2", "HorizontalPodAutoscaler", "chat"))
    assert hpa["spec"]["maxReplicas"] == 3

    set_status(
        operator, "apps/v1", "Deployment", "chat", {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}
    )
    ready = wait_for(
        "Ready", lambda: (s := status_of(operator, "ModelDeployment", "chat")).get("phase") == "Ready" and s
    )
    assert ready["endpoint"] == "http://chat.team-a.svc.cluster.local:8000/v1" and ready["readyReplicas"] == 1
    assert ready["model"] == "s3://bucket/models/ft-v1"


def test_model_deployment_gate_that_fails_blocks_the_rollout(operator: KubeClient) -> None:
    create(operator, "EvaluationJob", "eval-low", {"model": "s3://bucket/models/base", "tasks": ["gsm8k"]})
    wait_for("the eval Job", lambda: get(operator, "batch/v1", "Job", "eval-low"))
    set_status(
        operator,
        "batch/v1",
        "Job",
        "eval-low",
        {"conditions": [{"type": "Complete", "status": "True"}]},
        annotations={"shipyard.dev/scores": json.dumps({"scores": {"gsm8k/accuracy": 0.2}})},
    )
    wait_for(
        "eval done", lambda: status_of(operator, "EvaluationJob", "eval-low").get("phase") == "Succeeded"
    )
    create(
        operator,
        "ModelDeployment",
        "gated",
        {
            "model": "s3://bucket/models/base",
            "replicas": 2,
            "gate": {"evaluationJob": "eval-low", "metric": "gsm8k/accuracy", "threshold": 0.5},
        },
    )
    blocked = wait_for(
        "Blocked",
        lambda: (s := status_of(operator, "ModelDeployment", "gated")).get("phase") == "Blocked" and s,
    )
    gate = {c["type"]: c for c in blocked["conditions"]}["GatePassed"]
    assert gate["reason"] == "GateNotPassed" and "0.2 >= 0.5 is false" in gate["message"]
    assert get(operator, "apps/v1", "Deployment", "gated") is None
    wait_for("a GateNotPassed Event", lambda: "GateNotPassed" in events_for(operator, "gated"))
