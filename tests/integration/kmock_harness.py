"""A kmock Kubernetes API server on loopback and the operator running against it (kopf ``KopfRunner``).

kmock does not create objects on a server-side-apply PATCH nor garbage-collect by ownerReferences; the
operator's apply edge falls back to POST on 404 (documented in ``shipyard_operator.apply``), and deletion
is checked through the ownerReferences the real GC follows. Tests play ``kubectl`` and the controllers the
mock lacks (KubeRay, Job, Deployment) by patching children's status over HTTP. The fixtures (``api``,
``operator``) are registered for every test through ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import kmock
import kopf
import pytest
from kopf.testing import KopfRunner

from shipyard_operator.config import OperatorConfig
from shipyard_operator.handlers import build_registry, configure
from shipyard_operator.kube import KubeClient, load_api_client, object_path
from shipyard_operator.reconcile import Reconciler
from tests.polling import wait_for  # noqa: F401 - harness users import it from here

NS = "team-a"
SY = "shipyard.dev/v1alpha1"
RESOURCES = {
    "shipyard.dev/v1alpha1/trainingjobs": ("TrainingJob", {"status"}),
    "shipyard.dev/v1alpha1/evaluationjobs": ("EvaluationJob", {"status"}),
    "shipyard.dev/v1alpha1/modeldeployments": ("ModelDeployment", {"status", "scale"}),
    "shipyard.dev/v1alpha1/agents": ("Agent", {"status"}),
    "ray.io/v1/rayjobs": ("RayJob", {"status"}),
    "batch/v1/jobs": ("Job", {"status"}),
    "apps/v1/deployments": ("Deployment", {"status"}),
    "v1/services": ("Service", set()),
    "v1/secrets": ("Secret", set()),
    "v1/configmaps": ("ConfigMap", set()),
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
