"""The pure plans: spec + observed -> children, status and events, table-driven (no cluster)."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.training.spec import TrainingJob
from shipyard_operator.apply import contains, status_patch
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans.base import Owner
from shipyard_operator.plans.deployment import DeploymentObserved, plan_model_deployment
from shipyard_operator.plans.evaluation import EvaluationObserved, plan_evaluation_job
from shipyard_operator.plans.training import TrainingObserved, plan_training_job

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CFG = OperatorConfig(
    storage_root="s3://bucket",
    s3_endpoint_url="http://minio:9000",
    node_pools={
        "a100": {
            "nodeSelector": {"pool": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
        }
    },
)


def training(**spec: Any) -> TrainingJob:
    base = {
        "model": "llama-tiny",
        "data": {"dataset": "s3://d"},
        "hyperparameters": {"steps": 10, "globalBatchSize": 8, "microBatchSize": 4},
    }
    labels = spec.pop("labels", {})
    return TrainingJob.model_validate(
        {"metadata": {"name": "tj", "labels": labels}, "spec": {**base, **spec}}
    )


def tj_observed(
    ray: dict[str, Any] | None = None, secret: bool = True, status: dict[str, Any] | None = None
) -> TrainingObserved:
    return TrainingObserved(Owner("TrainingJob", "tj", "ns", "u1"), ray, secret, status, NOW)


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ray_job_carries_every_training_field() -> None:
    job = training(
        resources={"workers": 2, "gpusPerWorker": 4, "cpusPerWorker": 8, "nodePool": "a100"},
        runPolicy={"backoffLimit": 5, "activeDeadlineSeconds": 600, "suspend": True},
        labels={"kueue.x-k8s.io/queue-name": "q", "team": "x"},
    )
    plan = plan_training_job(job, tj_observed(), CFG)
    (ray,) = plan.children
    spec = ray["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["suspend"]) == (5, 600, True)
    assert (
        spec["ttlSecondsAfterFinished"] == CFG.job_ttl_seconds_after_finished
        and spec["submissionMode"] == "K8sJobMode"
    )
    assert (
        ray["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "q"
        and "team" not in ray["metadata"]["labels"]
    )
    assert ray["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "TrainingJob",
            "name": "tj",
            "uid": "u1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    group = spec["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2
    pod = group["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "a100"} and pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"}
    assert {"secretRef": {"name": "shipyard-storage"}} in container["envFrom"]
    assert {"name": "SHIPYARD_S3_ENDPOINT_URL", "value": "http://minio:9000"} in container["env"]
    # The entrypoint carries the whole document: the same training code as embedded mode parses it back.
    document = json.loads(shlex.split(spec["entrypoint"])[-1])
    assert TrainingJob.model_validate(document) == job
    assert plan.status["phase"] == "Suspended" and conds(plan.status)["Suspended"] == ("True", "Suspended")


@pytest.mark.parametrize(
    ("ray_status", "phase", "reason"),
    [
        ({}, "Pending", "RayJobCreated"),
        ({"jobDeploymentStatus": "Initializing"}, "Pending", "Initializing"),
        ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "Running", "RayJobRunning"),
        ({"jobDeploymentStatus": "Retrying", "failed": 1}, "Running", "RayJobRetrying"),
        ({"jobDeploymentStatus": "Suspended"}, "Suspended", "Suspended"),
        ({"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}, "Succeeded", "RayJobSucceeded"),
        ({"jobDeploymentStatus": "Failed", "reason": "DeadlineExceeded"}, "Failed", "DeadlineExceeded"),
        ({"jobDeploymentStatus": "Complete", "jobStatus": "FAILED"}, "Failed", "RayJobFailed"),
        ({"jobStatus": "STOPPED"}, "Cancelled", "RayJobStopped"),
    ],
)
def test_training_status_mirrors_the_ray_job(ray_status: dict[str, Any], phase: str, reason: str) -> None:
    plan = plan_training_job(training(), tj_observed({"metadata": {"name": "tj"}, "status": ray_status}), CFG)
    assert plan.status["phase"] == phase
    holding = [r for s, r in conds(plan.status).values() if s == "True" and r != "RayJobCreated"]
    assert holding == ([] if phase == "Pending" else [reason])


def test_progress_and_outcome_annotations_fill_the_status() -> None:
    annotations = {
        "shipyard.dev/progress": json.dumps(
            {
                "step": 4,
                "tokensSeen": 4096,
                "lastCheckpoint": "s3://c/4",
                "metrics": {"loss": 2.5, "mfu": 0.3, "junk": 1},
            }
        ),
        "shipyard.dev/outcome": json.dumps({"outputModel": "s3://m/tj", "registeredModel": "model:tj@1"}),
    }
    running = plan_training_job(
        training(),
        tj_observed({"metadata": {"annotations": annotations}, "status": {"jobStatus": "RUNNING"}}),
        CFG,
    ).status
    assert (running["step"], running["totalSteps"], running["tokensSeen"]) == (4, 10, 4096)
    assert running["metrics"] == {"loss": 2.5, "mfu": 0.3} and running["lastCheckpoint"] == "s3://c/4"
    done = plan_training_job(
        training(),
        tj_observed({"metadata": {"annotations": annotations}, "status": {"jobStatus": "SUCCEEDED"}}),
        CFG,
    ).status
    assert (done["outputModel"], done["registeredModel"], done["step"]) == ("s3://m/tj", "model:tj@1", 10)
    default = plan_training_job(training(), tj_observed({"status": {"jobStatus": "SUCCEEDED"}}), CFG).status
    assert default["outputModel"] == "s3://bucket/models/tj"


@pytest.mark.parametrize(
    ("pool", "secret", "reason"),
    [("tpu", True, "UnknownNodePool"), (None, False, "MissingSecret")],
)
def test_unsatisfiable_training_specs_become_conditions(pool: str | None, secret: bool, reason: str) -> None:
    job = training(resources={"nodePool": pool} if pool else {})
    plan = plan_training_job(job, tj_observed(secret=secret), CFG)
    assert plan.children == [] and plan.status["phase"] == "Pending"
    assert conds(plan.status)["Created"] == ("False", reason)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]


def test_a_steady_job_replans_to_the_same_status_and_no_events() -> None:
    first = plan_training_job(training(), tj_observed({"status": {"jobStatus": "RUNNING"}}), CFG)
    later = TrainingObserved(
        Owner("TrainingJob", "tj", "ns", "u1"),
        {"status": {"jobStatus": "RUNNING"}},
        True,
        first.status,
        NOW.replace(hour=9),
    )
    again = plan_training_job(training(), later, CFG)
    assert (
        again.status == first.status
        and again.events == []
        and status_patch(first.status, again.status) is None
    )
    assert contains(first.children[0], {**first.children[0], "status": {"x": 1}})


def test_a_finished_job_whose_ray_job_was_cleaned_up_is_not_rerun() -> None:
    done = {"phase": "Succeeded", "conditions": [], "outputModel": "s3://m"}
    plan = plan_training_job(training(), tj_observed(None, status=done), CFG)
    assert plan.children == [] and plan.status == done


def ev_observed(
    job: dict[str, Any] | None = None, tj: dict[str, Any] | None = None, secret: bool = True
) -> EvaluationObserved:
    return EvaluationObserved(Owner("EvaluationJob", "ev", "ns", "u2"), job, tj, secret, None, NOW)


def evaluation(**spec: Any) -> EvaluationJob:
    return EvaluationJob.model_validate(
        {"metadata": {"name": "ev"}, "spec": {"tasks": ["gsm8k", "mmlu"], **spec}}
    )


def test_evaluation_job_runs_the_runner_with_every_field() -> None:
    ev = evaluation(
        model="s3://m",
        limit=10,
        numFewshot=5,
        batchSize=4,
        seed=7,
        outputUri="s3://out",
        ttlSecondsAfterFinished=60,
        resources={"gpus": 1, "cpus": 4, "memory": "16Gi", "nodePool": "a100"},
    )
    (job,) = plan_evaluation_job(ev, ev_observed(), CFG).children
    pod = job["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs == {
        "--model": "s3://m",
        "--tasks": "gsm8k,mmlu",
        "--batch-size": "4",
        "--seed": "7",
        "--output-uri": "s3://out",
        "--k8s-job": "ev",
        "--k8s-namespace": "ns",
        "--limit": "10",
        "--num-fewshot": "5",
    }
    assert job["spec"]["ttlSecondsAfterFinished"] == 60 and pod["nodeSelector"] == {"pool": "a100"}
    assert pod["containers"][0]["resources"]["limits"] == {
        "cpu": "4",
        "memory": "16Gi",
        "nvidia.com/gpu": "1",
    }


@pytest.mark.parametrize(
    ("job_status", "annotations", "phase", "scores"),
    [
        ({}, {}, "Pending", None),
        ({"active": 1}, {}, "Running", None),
        (
            {"conditions": [{"type": "Complete", "status": "True"}]},
            {"shipyard.dev/scores": '{"scores": {"a/acc": 0.5}}'},
            "Succeeded",
            {"a/acc": 0.5},
        ),
        (
            {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
            {},
            "Failed",
            None,
        ),
    ],
)
def test_evaluation_status_mirrors_the_job(
    job_status: dict[str, Any], annotations: dict[str, str], phase: str, scores: Any
) -> None:
    plan = plan_evaluation_job(
        evaluation(model="s3://m"),
        ev_observed({"metadata": {"name": "ev", "annotations": annotations}, "status": job_status}),
        CFG,
    )
    assert plan.status["phase"] == phase and plan.status.get("scores") == scores and plan.children == []


@pytest.mark.parametrize(
    ("tj", "phase", "reason"),
    [
        (None, "Pending", "TrainingJobNotFound"),
        ({"status": {"phase": "Running"}}, "Pending", "WaitingForModel"),
        ({"status": {"phase": "Failed"}}, "Failed", "TrainingJobFailed"),
    ],
)
def test_evaluation_waits_for_its_training_job(tj: Any, phase: str, reason: str) -> None:
    plan = plan_evaluation_job(evaluation(modelFrom={"trainingJob": "tj"}), ev_observed(tj=tj), CFG)
    assert (
        plan.children == []
        and plan.status["phase"] == phase
        and reason in [c["reason"] for c in plan.status["conditions"]]
    )


def deployment(**spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"metadata": {"name": "md"}, "spec": {"model": "s3://m", **spec}})


def md_observed(dep: Any = None, tj: Any = None, ev: Any = None, status: Any = None) -> DeploymentObserved:
    return DeploymentObserved(Owner("ModelDeployment", "md", "ns", "u3", 2), dep, tj, ev, True, status, NOW)


def test_model_deployment_children_carry_every_field() -> None:
    md = deployment(
        replicas=3,
        adapters=[{"name": "sql", "uri": "s3://a"}],
        resources={"gpusPerReplica": 1, "cpus": 4, "memory": "32Gi", "nodePool": "a100"},
        serving={"maxNumSeqs": 16, "kvCacheMemoryFraction": 0.5, "quantization": "int8", "maxModelLen": 4096},
    )
    plan = plan_model_deployment(md, md_observed(), CFG)
    kinds = {c["kind"]: c for c in plan.children}
    assert set(kinds) == {"Deployment", "Service", "PodDisruptionBudget"} and [
        r.kind for r in plan.absent
    ] == ["HorizontalPodAutoscaler"]
    dep = kinds["Deployment"]["spec"]
    assert dep["replicas"] == 3 and dep["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = dep["template"]["spec"]
    args = pod["containers"][0]["args"]
    for flag, value in [
        ("--model", "s3://m"),
        ("--max-num-seqs", "16"),
        ("--kv-cache-memory-fraction", "0.5"),
        ("--quantization", "int8"),
        ("--max-model-len", "4096"),
        ("--adapter", "sql=s3://a"),
    ]:
        assert args[args.index(flag) + 1] == value
    assert pod["containers"][0]["readinessProbe"] == {"grpc": {"port": 50055}, "periodSeconds": 5}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1" and pod["nodeSelector"] == {
        "pool": "a100"
    }
    assert (
        plan.status["selector"] == "app.kubernetes.io/instance=md,app.kubernetes.io/name=shipyard-inference"
    )
    assert (
        plan.status["endpoint"] == "http://md.ns.svc.cluster.local:8000/v1"
        and plan.status["observedGeneration"] == 2
    )


def test_autoscaling_adds_an_hpa_and_leaves_replicas_to_it() -> None:
    plan = plan_model_deployment(
        deployment(autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCpuUtilization": 60}),
        md_observed(),
        CFG,
    )
    kinds = {c["kind"]: c for c in plan.children}
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5) and hpa["metrics"][0]["resource"]["target"][
        "averageUtilization"
    ] == 60
    assert "replicas" not in kinds["Deployment"]["spec"] and plan.absent == []


def test_a_new_model_changes_the_pod_template_so_the_deployment_rolls() -> None:
    a = plan_model_deployment(deployment(model="s3://v1"), md_observed(), CFG).children[0]
    b = plan_model_deployment(deployment(model="s3://v2"), md_observed(), CFG).children[0]
    assert a["spec"]["template"] != b["spec"]["template"] and not contains(b, a)


@pytest.mark.parametrize(
    ("ev", "phase", "reason"),
    [
        (None, "Waiting", "EvaluationJobNotFound"),
        ({"status": {"phase": "Running"}}, "Waiting", "WaitingForEvaluation"),
        ({"status": {"phase": "Failed"}}, "Failed", "EvaluationJobFailed"),
        ({"status": {"phase": "Succeeded", "scores": {}}}, "Blocked", "MetricNotFound"),
        ({"status": {"phase": "Succeeded", "scores": {"acc": 0.4}}}, "Blocked", "GateNotPassed"),
        ({"status": {"phase": "Succeeded", "scores": {"acc": 0.6}}}, "Progressing", "GatePassed"),
    ],
)
def test_the_gate_decides_whether_to_deploy(ev: Any, phase: str, reason: str) -> None:
    md = deployment(gate={"evaluationJob": "ev", "metric": "acc", "threshold": 0.5})
    plan = plan_model_deployment(md, md_observed(ev=ev), CFG)
    assert (
        plan.status["phase"] == phase
        and {c["type"]: c["reason"] for c in plan.status["conditions"]}["GatePassed"] == reason
    )
    assert bool(plan.children) == (reason == "GatePassed")


def test_model_from_waits_then_serves_the_training_output_and_reports_ready() -> None:
    md = deployment(model=None, modelFrom={"trainingJob": "tj"})
    waiting = plan_model_deployment(md, md_observed(tj={"status": {"phase": "Running"}}), CFG)
    assert waiting.status["phase"] == "Waiting" and waiting.children == []
    assert [(e.type, e.reason) for e in waiting.events] == [("Normal", "WaitingForModel")]
    tj = {"status": {"phase": "Succeeded", "outputModel": "s3://out"}}
    rolled = plan_model_deployment(md, md_observed(tj=tj), CFG)
    dep = {**rolled.children[0], "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}}
    ready = plan_model_deployment(md, md_observed(dep=dep, tj=tj), CFG).status
    assert (ready["phase"], ready["model"], ready["readyReplicas"]) == ("Ready", "s3://out", 1)
