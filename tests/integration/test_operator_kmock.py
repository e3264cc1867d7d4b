"""The running operator (kopf ``KopfRunner``, in-process) against a kmock Kubernetes API server on loopback.

The test plays ``kubectl`` and the controllers the mock lacks (KubeRay, the Job controller, the Deployment
controller) by patching children's status over HTTP, and asserts what a user sees: children with the right
fields, owner status following them, Events. kmock does not create objects on a server-side-apply PATCH nor
garbage-collect by ownerReferences; the operator's apply edge falls back to POST on 404 (documented in
``shipyard_operator.apply``), and deletion is checked through the ownerReferences the real GC follows.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

kopf = pytest.importorskip("kopf")
kmock = pytest.importorskip("kmock")
from kopf.testing import KopfRunner  # noqa: E402

from shipyard_operator.config import OperatorConfig  # noqa: E402
from shipyard_operator.handlers import build_registry, configure  # noqa: E402
from shipyard_operator.kube import KubeClient, load_api_client, object_path  # noqa: E402
from shipyard_operator.reconcile import Reconciler  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NS = "team-a"
SY = "shipyard.dev/v1alpha1"
RESOURCES = {
    "shipyard.dev/v1alpha1/trainingjobs": ("TrainingJob", {"status"}),
    "shipyard.dev/v1alpha1/evaluationjobs": ("EvaluationJob", {"status"}),
    "shipyard.dev/v1alpha1/modeldeployments": ("ModelDeployment", {"status", "scale"}),
    "ray.io/v1/rayjobs": ("RayJob", {"status"}),
    "batch/v1/jobs": ("Job", {"status"}),
    "apps/v1/deployments": ("Deployment", {"status"}),
    "v1/services": ("Service", set()),
    "v1/secrets": ("Secret", set()),
    "v1/events": ("Event", set()),
    "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", set()),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", set()),
    # kopf's own backbone: it watches CRDs (to notice new kinds) and namespaces.
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", set()),
    "v1/namespaces": ("Namespace", set()),
}
CLUSTER_SCOPED = {"apiextensions.k8s.io/v1/customresourcedefinitions", "v1/namespaces"}


class MockApiServer:
    """kmock's KubernetesEmulator served on 127.0.0.1 from its own event loop thread."""

    def __enter__(self) -> MockApiServer:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stack = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> Any:
        handler = kmock.KubernetesEmulator()
        for key, (kind, subresources) in RESOURCES.items():
            verbs = {"list", "watch", "get", "create", "patch", "delete"}
            handler.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=key not in CLUSTER_SCOPED, verbs=verbs, subresources=subresources
            )
        await handler.__aenter__()
        self.server = kmock.Server(handler)
        await self.server.__aenter__()
        self.url = str(self.server.url).rstrip("/")
        return handler

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            await self.server.__aexit__(None, None, None)
            await self._stack.__aexit__(None, None, None)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeClient, str]]:
    with MockApiServer() as server:
        kubeconfig = tmp_path_factory.mktemp("kube") / "config"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "mock",
                    "clusters": [{"name": "mock", "cluster": {"server": server.url}}],
                    "users": [{"name": "mock", "user": {"token": "test"}}],
                    "contexts": [
                        {"name": "mock", "context": {"cluster": "mock", "user": "mock", "namespace": NS}}
                    ],
                }
            )
        )
        yield KubeClient(load_api_client(str(kubeconfig))), str(kubeconfig)


@pytest.fixture(scope="module")
def operator(api: tuple[KubeClient, str]) -> Iterator[KubeClient]:
    """The operator running in-process against the mock; yields the test's own (kubectl-like) client."""
    client, kubeconfig = api
    cfg = OperatorConfig(
        storage_root="s3://bucket",
        node_pools={"a100": {"nodeSelector": {"pool": "a100"}, "tolerations": [{"key": "nvidia.com/gpu"}]}},
        recheck_seconds=0.5,
    )
    reconciler = Reconciler(KubeClient(load_api_client(kubeconfig)), cfg)
    settings = kopf.OperatorSettings()
    configure(settings)
    settings.watching.server_timeout = 10
    mp = pytest.MonkeyPatch()
    mp.setenv("KUBECONFIG", kubeconfig)  # kopf's own login (login_via_client) reads it
    client.request(
        "POST",
        object_path("v1", "Secret", NS),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "shipyard-storage", "namespace": NS},
            "data": {},
        },
    )
    with KopfRunner(
        ["run", "--standalone", "--all-namespaces"],
        registry=build_registry(reconciler),
        settings=settings,
        timeout=30,
    ) as runner:
        yield client
    mp.undo()
    assert runner.exception is None, runner.output


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)  # a poll interval, not a wait for an outcome: the deadline decides
    pytest.fail(f"timed out waiting for {what}; last saw {last!r}")


def create(
    client: KubeClient, kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {
        "apiVersion": SY,
        "kind": kind,
        "spec": spec,
        # The real API server assigns uid and generation; the mock stores what it is given.
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
            "labels": labels or {},
        },
    }
    out = client.request("POST", object_path(SY, kind, NS), body)
    assert out is not None
    return out


def get(client: KubeClient, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
    return client.get(api_version, kind, NS, name)


def status_of(client: KubeClient, kind: str, name: str) -> dict[str, Any]:
    return (get(client, SY, kind, name) or {}).get("status") or {}


def set_status(
    client: KubeClient, api_version: str, kind: str, name: str, status: dict[str, Any], **meta: Any
) -> None:
    body: dict[str, Any] = {"status": status}
    if meta:
        body["metadata"] = meta
    client.request(
        "PATCH", object_path(api_version, kind, NS, name), body, content_type="application/merge-patch+json"
    )


def events_for(client: KubeClient, name: str) -> list[str]:
    items = (client.request("GET", object_path("v1", "Event", NS)) or {}).get("items") or []
    return [e["reason"] for e in items if e["involvedObject"]["name"] == name]


TRAINING_SPEC = {
    "model": "llama-tiny",
    "data": {"dataset": "s3://bucket/datasets/tiny"},
    "hyperparameters": {"steps": 20, "globalBatchSize": 8, "microBatchSize": 4},
    "resources": {"workers": 2, "gpusPerWorker": 1, "cpusPerWorker": 4, "nodePool": "a100"},
    "runPolicy": {"backoffLimit": 2, "activeDeadlineSeconds": 3600},
}


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
        lambda: (o := get(operator, SY, "TrainingJob", "short"))
        and "shipyard.dev/last-handled-configuration" in (o["metadata"].get("annotations") or {})
        and o,
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
