"""The operator against a real cluster: runs only when SHIPYARD_E2E_KUBECONFIG names a kubeconfig.

Installs the Shipyard CRDs (and a minimal ``ray.io/v1`` RayJob CRD when KubeRay is absent), runs the
operator in-process, creates a TrainingJob and checks the RayJob it gets, and checks that the API server
rejects the invalid example manifests the unit tests reject. Skipped (not passed) otherwise.
"""

from __future__ import annotations

import os
import pathlib
import time
import uuid

import pytest
import yaml

kopf = pytest.importorskip("kopf")
from kopf.testing import KopfRunner  # noqa: E402

from shipyard_operator.config import OperatorConfig  # noqa: E402
from shipyard_operator.handlers import build_registry, configure  # noqa: E402
from shipyard_operator.kube import ApiError, KubeClient, load_api_client, object_path  # noqa: E402
from shipyard_operator.reconcile import Reconciler  # noqa: E402
from tests.unit.resources.test_crd_examples import INVALID, _broken  # noqa: E402

KUBECONFIG = os.environ.get("SHIPYARD_E2E_KUBECONFIG")  # test harness input, not library configuration
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="set SHIPYARD_E2E_KUBECONFIG to run against a real cluster"),
]
CRDS = pathlib.Path(__file__).resolve().parents[2] / "charts" / "shipyard" / "crds"
RAYJOB_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rayjobs.ray.io"},
    "spec": {
        "group": "ray.io",
        "scope": "Namespaced",
        "names": {"kind": "RayJob", "plural": "rayjobs", "singular": "rayjob"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def _ensure(client: KubeClient, body: dict) -> None:
    path = object_path("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
    if client.request("GET", f"{path}/{body['metadata']['name']}") is None:
        client.request("POST", path, body)


def test_training_job_becomes_a_ray_job_on_a_real_cluster() -> None:
    from shipyard_operator import kube

    kube.PLURALS.setdefault("CustomResourceDefinition", "customresourcedefinitions")
    client = KubeClient(load_api_client(KUBECONFIG))
    for file in sorted(CRDS.glob("*.yaml")):
        _ensure(client, yaml.safe_load(file.read_text()))
    _ensure(client, RAYJOB_CRD)
    ns = f"shipyard-e2e-{uuid.uuid4().hex[:6]}"
    client.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    client.request(
        "POST", object_path("v1", "Secret", ns), {"metadata": {"name": "shipyard-storage"}, "stringData": {}}
    )
    settings = kopf.OperatorSettings()
    configure(settings)
    reconciler = Reconciler(KubeClient(load_api_client(KUBECONFIG)), OperatorConfig())
    try:
        with KopfRunner(
            ["run", "--standalone", "--namespace", ns],
            registry=build_registry(reconciler),
            settings=settings,
            timeout=60,
        ):
            spec = {
                "model": "llama-tiny",
                "data": {"dataset": "s3://d"},
                "hyperparameters": {"steps": 1, "globalBatchSize": 8, "microBatchSize": 8},
            }
            client.request(
                "POST",
                object_path("shipyard.dev/v1alpha1", "TrainingJob", ns),
                {
                    "apiVersion": "shipyard.dev/v1alpha1",
                    "kind": "TrainingJob",
                    "metadata": {"name": "e2e"},
                    "spec": spec,
                },
            )
            deadline, ray = time.monotonic() + 60, None
            while ray is None and time.monotonic() < deadline:
                ray = client.get("ray.io/v1", "RayJob", ns, "e2e")
                time.sleep(0.5)  # poll interval against a real API server; the deadline decides
            assert ray is not None and ray["spec"]["submissionMode"] == "K8sJobMode"
            assert ray["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
    finally:
        client.request("DELETE", f"/api/v1/namespaces/{ns}")


@pytest.mark.parametrize(("kind", "path", "value", "k8s_path", "pydantic_path"), INVALID)
def test_api_server_rejects_invalid_manifests_naming_the_field(
    kind: str, path: str, value: object, k8s_path: str, pydantic_path: str | None
) -> None:
    """The generated schema + CEL rules, enforced by a real API server, reject what pydantic rejects."""
    client = KubeClient(load_api_client(KUBECONFIG))
    for file in sorted(CRDS.glob("*.yaml")):
        _ensure(client, yaml.safe_load(file.read_text()))
    doc = _broken(kind, path, value)
    doc["metadata"].setdefault("namespace", "default")
    with pytest.raises(ApiError) as exc:
        client.request("POST", object_path("shipyard.dev/v1alpha1", kind, "default"), doc)
    assert exc.value.status == 422
    assert k8s_path.split(".")[-1] in str(exc.value)
