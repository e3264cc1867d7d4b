"""The Helm chart, linted and rendered by Helm's own engine (``helm-python-sdk``, no helm binary), with
every rendered object validated against the Kubernetes 1.31 schemas (``kubernetes-validate``, strict).

The KubeRay dependency is declared but not vendored (no network here), so the lint that must be clean
runs on a copy with the dependency removed, i.e. as installed with ``kuberay.enabled=false``; the real
chart's lint may report only that missing dependency.
"""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from shipyard_operator.config import load_operator_config
from tests.unit.resources.crd_apiserver import admit

CHART = pathlib.Path(__file__).resolve().parents[3] / "charts" / "shipyard"
K8S_VERSION = "1.31.0"
POD_SECURITY_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The rendered objects and NOTES.txt of an install as release ``shipyard`` in namespace ``ml``."""
    out = chart.render(values=values, name="shipyard", namespace="ml", is_install=True)
    docs = [d for name, text in out.items() if name.endswith(".yaml") for d in yaml.safe_load_all(text) if d]
    notes = next((text for name, text in out.items() if name.endswith("NOTES.txt")), "")
    return docs, notes


@pytest.fixture(scope="module")
def default_objects(chart: helm.Chart) -> list[dict[str, Any]]:
    return render(chart)[0]


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_lint_is_clean_with_kuberay_disabled(tmp_path: pathlib.Path) -> None:
    copy = tmp_path / "shipyard"
    shutil.copytree(CHART, copy)
    meta = yaml.safe_load((copy / "Chart.yaml").read_text())
    meta.pop("dependencies")
    (copy / "Chart.yaml").write_text(yaml.safe_dump(meta))
    report = helm.lint(copy, strict=True, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_of_the_real_chart_finds_only_the_unvendored_kuberay_dependency() -> None:
    report = helm.lint(CHART, kube_version=f"v{K8S_VERSION}")
    problems = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    assert problems == ["chart directory is missing these dependencies: kuberay-operator"]


def test_kuberay_is_an_optional_dependency(chart: helm.Chart) -> None:
    (dep,) = chart.metadata["dependencies"]
    assert dep["name"] == "kuberay-operator" and dep["condition"] == "kuberay.enabled"
    assert chart.values["kuberay"]["enabled"] is False


def test_every_rendered_object_is_valid_kubernetes(default_objects: list[dict[str, Any]]) -> None:
    kinds = set()
    for obj in default_objects:
        kinds.add(obj["kind"])
        if obj["apiVersion"].startswith("kopf.dev/"):
            continue  # validated against its CRD below
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    assert {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
    } <= kinds


def test_peering_object_matches_the_peering_crd(
    chart: helm.Chart, default_objects: list[dict[str, Any]]
) -> None:
    crds = {d["spec"]["names"]["kind"]: d for c in chart.crds for d in yaml.safe_load_all(c["data"]) if d}
    (peering,) = _of(default_objects, "ClusterKopfPeering")
    assert admit(crds["ClusterKopfPeering"], peering)[1] == []
    namespaced, _ = render(chart, {"operator": {"scope": "namespace"}})
    assert _of(namespaced, "KopfPeering") and not _of(namespaced, "ClusterKopfPeering")


def test_chart_ships_the_generated_crds_and_they_are_valid_crds(chart: helm.Chart) -> None:
    docs = [d for c in chart.crds for d in yaml.safe_load_all(c["data"]) if d]
    names = {d["metadata"]["name"] for d in docs}
    assert {
        "trainingjobs.shipyard.dev",
        "evaluationjobs.shipyard.dev",
        "modeldeployments.shipyard.dev",
    } <= names
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]) for o in objects if o["kind"] == "Deployment"]


def test_every_pod_is_pod_security_restricted(default_objects: list[dict[str, Any]]) -> None:
    templates = _pod_templates(default_objects)
    assert len(templates) == 3  # operator, ingest, training
    for name, template in templates:
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert all("hostPath" not in v for v in pod["volumes"]), name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["securityContext"] == POD_SECURITY_CONTAINER, (name, container["name"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: /tmp must be a writable emptyDir"


def test_pods_carry_the_platform_label_the_network_policies_admit(
    default_objects: list[dict[str, Any]],
) -> None:
    for name, template in _pod_templates(default_objects):
        assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "shipyard", name


def _rules(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    (role,) = _of(objects, kind)
    return role["rules"]


def test_rbac_is_least_privilege_without_wildcards(default_objects: list[dict[str, Any]]) -> None:
    rules = _rules(default_objects, "ClusterRole")
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key] and all("*" not in v for v in rule[key]), rule
    granted = {
        (g, r): set(rule["verbs"]) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert set(granted) == {
        ("shipyard.dev", "trainingjobs"),
        ("shipyard.dev", "evaluationjobs"),
        ("shipyard.dev", "modeldeployments"),
        ("shipyard.dev", "agents"),
        ("shipyard.dev", "trainingjobs/status"),
        ("shipyard.dev", "evaluationjobs/status"),
        ("shipyard.dev", "modeldeployments/status"),
        ("shipyard.dev", "agents/status"),
        ("ray.io", "rayjobs"),
        ("batch", "jobs"),
        ("apps", "deployments"),
        ("", "services"),
        ("", "configmaps"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
        ("", "events"),
        ("events.k8s.io", "events"),
        ("kopf.dev", "clusterkopfpeerings"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
    }
    assert granted[("shipyard.dev", "trainingjobs")] == {"get", "list", "watch", "patch", "update"}
    assert "create" not in granted[("shipyard.dev", "trainingjobs")]  # users create them, not the operator
    assert granted[("", "events")] == {"create", "patch"}
    assert granted[("apiextensions.k8s.io", "customresourcedefinitions")] == {"list", "watch"}
    assert ("", "secrets") not in granted and ("", "pods") not in granted
    (binding,) = _of(default_objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shipyard-operator", "namespace": "ml"}]


def test_namespace_scope_uses_a_role_and_secrets_only_by_name(chart: helm.Chart) -> None:
    objects, _ = render(chart, {"operator": {"scope": "namespace", "readableSecrets": ["shipyard-s3"]}})
    assert not _of(objects, "ClusterRole") and not _of(objects, "ClusterRoleBinding")
    rules = _rules(objects, "Role")
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert secrets == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["shipyard-s3"], "verbs": ["get"]}
    ]
    (deploy,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "shipyard-operator"
    ]
    assert "--namespace=ml" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    for obj in objects:
        if not obj["apiVersion"].startswith("kopf.dev/"):
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_only_platform_pods_reach_the_services(default_objects: list[dict[str, Any]]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of(default_objects, "NetworkPolicy")}
    for svc in ("ingest", "training"):
        spec = policies[f"shipyard-{svc}"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc
        assert spec["policyTypes"] == ["Ingress"]
        (ingress,) = spec["ingress"]
        assert ingress["from"] == [
            {
                "namespaceSelector": {},
                "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "shipyard"}},
            }
        ]
    assert policies["shipyard-operator"]["ingress"] == []


def test_a_new_service_is_one_values_entry(chart: helm.Chart) -> None:
    services = [
        *chart.values["services"],
        {
            "name": "evaluation",
            "module": "shipyard_services.evaluation",
            "image": {"repository": "shipyard/evaluation"},
            "port": 50054,
            "nodePool": "gpu",
        },
    ]
    objects, notes = render(chart, {"services": services})
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        assert (kind, "shipyard-evaluation") in names
    (deploy,) = [o for o in _of(objects, "Deployment") if o["metadata"]["name"] == "shipyard-evaluation"]
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "shipyard_services.evaluation"]
    assert container["image"] == "shipyard/evaluation:0.1.0"
    assert {"name": "SHIPYARD_EVALUATION_PORT", "value": "50054"} in container["env"]
    assert container["readinessProbe"]["grpc"]["port"] == 50054
    # placed on the GPU pool: its selector and toleration
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "shipyard-evaluation.ml.svc:50054" in notes
    for obj in objects:
        if not obj["apiVersion"].startswith("kopf.dev/"):
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_storage_credentials_telemetry_and_auth_are_wired_from_values(chart: helm.Chart) -> None:
    values = {
        "imageRegistry": "registry.local/",
        "storage": {
            "root": "s3://models",
            "s3": {"endpoint": "http://minio.storage:9000", "credentialsSecret": "s3"},
        },
        "telemetry": {"otlpEndpoint": "http://otel-collector.observability:4317"},
        "auth": {"tokenSecret": "shipyard-auth"},
    }
    objects, notes = render(chart, values)
    for deploy in _of(objects, "Deployment"):
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        assert container["image"].startswith("registry.local/shipyard/")
        env = {e["name"]: e for e in container["env"]}
        assert env["SHIPYARD_STORAGE_ROOT"]["value"] == "s3://models"
        assert env["SHIPYARD_S3_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "s3",
            "key": "AWS_SECRET_ACCESS_KEY",
        }
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4317"
        assert env["SHIPYARD_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "shipyard-auth",
            "key": "token",
        }
    (config,) = _of(objects, "ConfigMap")
    operator_config = yaml.safe_load(config["data"]["operator.yaml"])
    assert operator_config["nodePools"]["gpu"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert operator_config["image"] == "registry.local/shipyard/shipyard:0.1.0"
    assert (operator_config["storageSecret"], operator_config["s3EndpointUrl"]) == (
        "s3",
        "http://minio.storage:9000",
    )
    assert "shipyard-auth" in notes


def test_notes_tell_the_user_what_to_do_next(chart: helm.Chart) -> None:
    _, notes = render(chart)
    assert "kubectl apply -f examples/chain.yaml" in notes
    assert "kubectl get shipyard" in notes
    assert "KubeRay" in notes and "kubectl create secret generic shipyard-s3" in notes


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"scope": "everywhere"}}, "scope"),
        ({"storage": {"root": "bucket/models"}}, "root"),
        (
            {"services": [{"name": "Ingest_1", "module": "m", "image": {"repository": "r"}, "port": 1}]},
            "name",
        ),
        ({"telemetry": {"metricsPort": 70000}}, "metricsPort"),
        ({"operator": {"replicaz": 2}}, "replicaz"),
    ],
)
def test_values_schema_rejects_bad_values(chart: helm.Chart, values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert complaint in str(err.value)


def test_unknown_node_pool_fails_the_render_with_a_clear_message(chart: helm.Chart) -> None:
    services = [{**chart.values["services"][0], "nodePool": "tpu"}]
    with pytest.raises(helm.HelmError) as err:
        render(chart, {"services": services})
    assert 'nodePool "tpu" is not defined under nodePools (have: cpu, gpu)' in str(err.value)


def test_operator_config_map_is_what_the_operator_loads(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    values = {"operator": {"extraConfig": {"rayHeadMemory": "8Gi", "jobTtlSecondsAfterFinished": 600}}}
    objects, _ = render(chart, values)
    (config_map,) = _of(objects, "ConfigMap")
    path = tmp_path / "operator.yaml"
    path.write_text(config_map["data"]["operator.yaml"])
    config = load_operator_config(path)  # the operator's own loader: extra="forbid", so every key must fit
    assert config.storage_root == "s3://shipyard" and config.storage_secret == "shipyard-s3"
    assert config.node_pools["gpu"].node_selector == {"nvidia.com/gpu.present": "true"}
    assert config.ray_head_memory == "8Gi" and config.job_ttl_seconds_after_finished == 600
    (deploy,) = [o for o in _of(objects, "Deployment") if o["metadata"]["name"] == "shipyard-operator"]
    pod = deploy["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["python", "-m", "shipyard_operator"]
    args = pod["containers"][0]["args"]
    assert args[-2:] == ["--config", "/etc/shipyard/operator.yaml"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in args and "--peering=shipyard" in args
    assert {"name": "config", "configMap": {"name": "shipyard-operator"}} in pod["volumes"]
