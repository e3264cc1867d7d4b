"""TrainingJob and EvaluationJob through the operator against a kmock API server: children, status, Events."""

from __future__ import annotations

import json

import pytest

from shipyard_operator.kube import KubeClient, object_path
from tests.integration.kmock_harness import (
    NS,
    SY,
    TRAINING_SPEC,
    create,
    events_for,
    get,
    set_status,
    status_of,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_training_job_runs_as_a_ray_job_and_its_status_follows(operator: KubeClient) -> None:
    create(
        operator, "TrainingJob", "pretrain", TRAINING_SPEC, labels={"kueue.x-k8s.io/queue-name": "gpu-queue"}
    )
    ray = wait_for("the RayJob", lambda: get(operator, "ray.io/v1", "RayJob", "pretrain"))
    spec = ray["spec"]
    assert spec["submissionMode"] == "K8sJobMode" and spec["backoffLimit"] == 2 and spec["suspend"] is False
    assert spec["activeDeadlineSeconds"] == 3600 and spec["shutdownAfterJobFinishes"] is True
    assert ray["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert ray["metadata"]["ownerReferences"][0]["uid"] == "uid-pretrain"
    workers = spec["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] == 2
    pod = workers["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "a100"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["entrypoint"].startswith("python -m shipyard.training.entrypoint")
    wait_for(
        "Pending status", lambda: status_of(operator, "TrainingJob", "pretrain").get("phase") == "Pending"
    )

    progress = {"step": 7, "totalSteps": 20, "tokensSeen": 7168, "metrics": {"loss": 3.25}}
    set_status(
        operator,
        "ray.io/v1",
        "RayJob",
        "pretrain",
        {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
        annotations={"shipyard.dev/progress": json.dumps(progress)},
    )
    running = wait_for(
        "Running",
        lambda: (s := status_of(operator, "TrainingJob", "pretrain")).get("phase") == "Running" and s,
    )
    assert running["step"] == 7 and running["metrics"]["loss"] == 3.25 and running["rayJobName"] == "pretrain"

    set_status(
        operator,
        "ray.io/v1",
        "RayJob",
        "pretrain",
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
    )
    done = wait_for(
        "Succeeded",
        lambda: (s := status_of(operator, "TrainingJob", "pretrain")).get("phase") == "Succeeded" and s,
    )
    assert done["outputModel"] == "s3://bucket/models/pretrain"
    assert {c["type"]: c["status"] for c in done["conditions"]}["Succeeded"] == "True"
    wait_for("a RayJobSucceeded Event", lambda: "RayJobSucceeded" in events_for(operator, "pretrain"))


def test_training_job_failure_and_unknown_pool_are_conditions_not_crashes(operator: KubeClient) -> None:
    create(
        operator,
        "TrainingJob",
        "nopool",
        {
            **TRAINING_SPEC,
            "resources": {"workers": 1, "nodePool": "tpu"},
            "hyperparameters": {"steps": 5, "globalBatchSize": 8, "microBatchSize": 8},
        },
    )
    blocked = wait_for(
        "UnknownNodePool", lambda: (s := status_of(operator, "TrainingJob", "nopool")).get("conditions") and s
    )
    assert blocked["conditions"][0]["reason"] == "UnknownNodePool" and "tpu" in blocked["message"]
    assert get(operator, "ray.io/v1", "RayJob", "nopool") is None

    create(operator, "TrainingJob", "doomed", TRAINING_SPEC)
    wait_for("the RayJob", lambda: get(operator, "ray.io/v1", "RayJob", "doomed"))
    set_status(
        operator,
        "ray.io/v1",
        "RayJob",
        "doomed",
        {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "DeadlineExceeded"},
    )
    failed = wait_for(
        "Failed", lambda: (s := status_of(operator, "TrainingJob", "doomed")).get("phase") == "Failed" and s
    )
    assert {c["type"]: c["reason"] for c in failed["conditions"]}["Failed"] == "DeadlineExceeded"


def test_deleting_a_training_job_leaves_children_to_the_garbage_collector(operator: KubeClient) -> None:
    create(operator, "TrainingJob", "short", TRAINING_SPEC)
    ray = wait_for("the RayJob", lambda: get(operator, "ray.io/v1", "RayJob", "short"))
    wait_for("settled", lambda: status_of(operator, "TrainingJob", "short").get("phase") == "Pending")
    ref = ray["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "TrainingJob",
        "short",
        True,
        True,
    )
    # kopf records the handled spec last; once it is there no create handler is left to run again.
    owner = wait_for(
        "kopf done with the create",
        lambda: (
            (o := get(operator, SY, "TrainingJob", "short"))
            and "shipyard.dev/last-handled-configuration" in (o["metadata"].get("annotations") or {})
            and o
        ),
    )
    assert not owner["metadata"].get("finalizers")  # nothing blocks the delete: the GC cascades to the RayJob
    operator.request("DELETE", object_path(SY, "TrainingJob", NS, "short"))
    operator.request("DELETE", object_path("ray.io/v1", "RayJob", NS, "short"))  # what the GC does
    assert get(operator, SY, "TrainingJob", "short") is None
    # The child's deletion event finds no owner: nothing is recreated.
    create(operator, "TrainingJob", "probe", TRAINING_SPEC)
    wait_for("a later job still reconciled", lambda: get(operator, "ray.io/v1", "RayJob", "probe"))
    assert get(operator, "ray.io/v1", "RayJob", "short") is None


def test_evaluation_job_runs_a_job_and_reports_scores(operator: KubeClient) -> None:
    create(
        operator,
        "EvaluationJob",
        "eval-a",
        {"model": "s3://bucket/models/base", "tasks": ["gsm8k", "mmlu"], "limit": 50},
    )
    job = wait_for("the Job", lambda: get(operator, "batch/v1", "Job", "eval-a"))
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert (
        args[args.index("--model") + 1] == "s3://bucket/models/base"
        and args[args.index("--tasks") + 1] == "gsm8k,mmlu"
    )
    scores = {"scores": {"gsm8k/accuracy": 0.61}, "reportUri": "s3://bucket/evaluations/eval-a/report.json"}
    set_status(
        operator,
        "batch/v1",
        "Job",
        "eval-a",
        {"conditions": [{"type": "Complete", "status": "True"}]},
        annotations={"shipyard.dev/scores": json.dumps(scores)},
    )
    done = wait_for(
        "Succeeded",
        lambda: (s := status_of(operator, "EvaluationJob", "eval-a")).get("phase") == "Succeeded" and s,
    )
    assert done["scores"] == {"gsm8k/accuracy": 0.61} and done["reportUri"].endswith("report.json")
