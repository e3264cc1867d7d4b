"""The chart's part for Agents: the CRD, the operator's RBAC, the agents image, port and session database."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from shipyard_operator.config import load_operator_config
from tests.unit.charts.test_chart import CHART, K8S_VERSION, render


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def _operator_config(objects: list[dict[str, Any]], tmp_path: pathlib.Path) -> Any:
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    path = tmp_path / "operator.yaml"
    path.write_text(config_map["data"]["operator.yaml"])
    return load_operator_config(path)  # extra="forbid": every rendered key must be an OperatorConfig field


def test_chart_ships_the_agent_crd_with_printer_columns(chart: helm.Chart) -> None:
    docs = [d for c in chart.crds for d in yaml.safe_load_all(c["data"]) if d]
    (crd,) = [d for d in docs if d["metadata"]["name"] == "agents.shipyard.dev"]
    kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
    version = crd["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Deployment",
        "Model",
        "Ready",
        "Endpoint",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["ag"] and "shipyard" in crd["spec"]["names"]["categories"]


def test_operator_may_reconcile_agents_and_their_spec_config_maps(chart: helm.Chart) -> None:
    objects, _ = render(chart)
    (role,) = [o for o in objects if o["kind"] == "ClusterRole"]
    granted = {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert granted[("shipyard.dev", "agents")] == {"get", "list", "watch", "patch", "update"}
    assert granted[("shipyard.dev", "agents/status")] == {"get", "patch", "update"}
    # The spec ConfigMap is read back and applied, never listed or watched.
    assert granted[("", "configmaps")] == {"get", "create", "patch", "delete"}


def test_agents_image_port_and_sqlite_default_reach_the_operator(
    chart: helm.Chart, tmp_path: pathlib.Path
) -> None:
    objects, _ = render(chart, {"imageRegistry": "registry.local/"})
    cfg = _operator_config(objects, tmp_path)
    assert cfg.agents_image == "registry.local/shipyard/agents:0.1.0"
    assert cfg.agents_grpc_port == 50056
    assert cfg.agents_database_secret is None  # SQLite on an emptyDir: the Agent's status says so


def test_agents_database_secret_reaches_the_operator(chart: helm.Chart, tmp_path: pathlib.Path) -> None:
    values = {"agents": {"database": {"existingSecret": "agents-postgres", "key": "dsn"}, "port": 50070}}
    objects, _ = render(chart, values)
    cfg = _operator_config(objects, tmp_path)
    assert (cfg.agents_database_secret, cfg.agents_database_secret_key) == ("agents-postgres", "dsn")
    assert cfg.agents_grpc_port == 50070


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"agents": {"port": 0}}, "port"),
        ({"agents": {"database": {"existingSecret": "s", "secretKey": "url"}}}, "secretKey"),
        ({"agents": {"database": {"key": ""}}}, "key"),
    ],
)
def test_values_schema_rejects_bad_agents_values(
    chart: helm.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm.HelmError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert complaint in str(err.value)
