"""The Agent plan: spec + observed -> ConfigMap, Deployment, Service and status (pure, no cluster)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.resources.agent import Agent
from shipyard_operator.apply import contains
from shipyard_operator.config import OperatorConfig
from shipyard_operator.plans.agent import AgentObserved, plan_agent
from shipyard_operator.plans.base import Owner

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CFG = OperatorConfig(storage_root="s3://bucket", agents_image="reg/agents:1.2")
OWNER = Owner("Agent", "helper", "team-a", "uid-helper", generation=3)
READY_MD = {"kind": "ModelDeployment", "status": {"phase": "Ready"}}


def agent(**spec: Any) -> Agent:
    base = {"model": {"deployment": "chat"}, "tools": [{"type": "calculator"}]}
    return Agent.model_validate({"metadata": {"name": "helper"}, "spec": {**base, **spec}})


def observed(
    md: dict[str, Any] | None = READY_MD,
    deployment: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    secret: bool = True,
    owner: Owner = OWNER,
) -> AgentObserved:
    return AgentObserved(owner, deployment, md, secret, status, NOW)


def conds(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def children(plan: Any) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in plan.children}


def test_agent_becomes_a_config_map_a_deployment_and_a_grpc_service() -> None:
    plan = plan_agent(agent(systemPrompt="Be brief."), observed(), CFG)
    objs = children(plan)
    assert sorted(objs) == ["ConfigMap", "Deployment", "Service"]
    for obj in objs.values():
        assert obj["metadata"]["name"] == "helper-agent" and obj["metadata"]["namespace"] == "team-a"
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "Agent",
            "helper",
            "uid-helper",
            True,
        )
    mounted = json.loads(objs["ConfigMap"]["data"]["agent.json"])
    # The service gets a self-contained manifest: the deployment resolved to its in-cluster endpoint.
    assert mounted["spec"]["model"] == {"url": "http://chat.team-a.svc.cluster.local:8000/v1", "name": "chat"}
    assert mounted["spec"]["systemPrompt"] == "Be brief." and mounted["metadata"]["name"] == "helper"
    assert Agent.model_validate(mounted).spec.tools[0].type == "calculator"

    pod = objs["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "reg/agents:1.2"
    assert container["command"] == ["python", "-m", "shipyard_services.agents"]
    assert container["args"] == [
        "--agent",
        "helper",
        "--agent-spec",
        "/etc/shipyard/agent/agent.json",
        "--grpc-port",
        "50056",
    ]
    assert container["readinessProbe"] == {"grpc": {"port": 50056}, "periodSeconds": 5}
    assert {"name": "spec", "configMap": {"name": "helper-agent"}} in pod["spec"]["volumes"]
    assert pod["metadata"]["annotations"]["shipyard.dev/spec-hash"]
    service = objs["Service"]["spec"]
    assert service["ports"] == [{"name": "grpc", "port": 50056, "targetPort": "grpc", "protocol": "TCP"}]
    assert (
        service["selector"]
        == pod["metadata"]["labels"]
        == objs["Deployment"]["spec"]["selector"]["matchLabels"]
    )

    status = plan.status
    assert status["phase"] == "Progressing" and status["observedGeneration"] == 3
    assert status["endpoint"] == "helper-agent.team-a.svc.cluster.local:50056"
    assert status["modelEndpoint"] == "http://chat.team-a.svc.cluster.local:8000/v1"
    assert conds(status)["ModelReady"] == ("True", "ModelEndpointResolved")
    assert conds(status)["Available"] == ("False", "RollingOut")


def test_url_model_is_used_as_is_without_any_model_deployment() -> None:
    spec = agent(model={"url": "https://api.example.com/v1", "name": "gpt", "apiKeyEnv": "OPENAI_KEY"})
    plan = plan_agent(spec, observed(md=None), CFG)
    mounted = json.loads(children(plan)["ConfigMap"]["data"]["agent.json"])
    assert mounted["spec"]["model"] == {
        "url": "https://api.example.com/v1",
        "name": "gpt",
        "apiKeyEnv": "OPENAI_KEY",
    }
    assert plan.status["modelEndpoint"] == "https://api.example.com/v1"


@pytest.mark.parametrize(
    ("md", "reason", "says"),
    [
        (None, "ModelDeploymentNotFound", "spec.model.deployment: ModelDeployment 'chat' does not exist"),
        ({"status": {}}, "WaitingForModel", "now Pending"),
        ({"status": {"phase": "Progressing"}}, "WaitingForModel", "to be Ready (now Progressing)"),
        ({"status": {"phase": "Failed"}}, "WaitingForModel", "now Failed"),
    ],
)
def test_agent_waits_for_its_model_deployment_and_changes_nothing(md: Any, reason: str, says: str) -> None:
    plan = plan_agent(agent(), observed(md=md), CFG)
    assert plan.children == [] and plan.absent == []
    assert plan.status["phase"] == "Waiting"
    assert conds(plan.status)["ModelReady"] == ("False", reason)
    assert says in plan.status["message"]
    (event,) = plan.events
    assert event.reason == reason


def test_waiting_keeps_the_endpoint_running_pods_already_use() -> None:
    before = plan_agent(agent(), observed(), CFG).status
    after = plan_agent(agent(), observed(md={"status": {"phase": "Progressing"}}, status=before), CFG).status
    assert after["modelEndpoint"] == before["modelEndpoint"] and after["phase"] == "Waiting"


def test_a_spec_change_changes_the_pod_template_hash_so_the_pods_roll() -> None:
    first = children(plan_agent(agent(), observed(), CFG))
    again = children(plan_agent(agent(), observed(), CFG))
    changed = children(plan_agent(agent(systemPrompt="Answer in French."), observed(), CFG))

    def digest(objs: dict[str, Any]) -> str:
        return objs["Deployment"]["spec"]["template"]["metadata"]["annotations"]["shipyard.dev/spec-hash"]

    assert digest(first) == digest(again)
    assert digest(first) != digest(changed)
    assert first["ConfigMap"]["data"] != changed["ConfigMap"]["data"]


def test_rolled_out_deployment_makes_the_agent_running_and_a_steady_replan_is_a_no_op() -> None:
    plan = plan_agent(agent(), observed(), CFG)
    deployment = children(plan)["Deployment"]
    live = {**deployment, "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}}
    running = plan_agent(agent(), observed(deployment=live, status=plan.status), CFG)
    assert running.status["phase"] == "Running" and running.status["readyReplicas"] == 1
    assert conds(running.status)["Available"] == ("True", "AgentReady")
    assert [e.reason for e in running.events] == ["AgentReady"]
    steady = plan_agent(agent(), observed(deployment=live, status=running.status), CFG)
    assert steady.status == running.status and steady.events == []
    assert all(contains(c, c) for c in steady.children)
    # An old pod template (previous spec) is not Running yet even with ready pods.
    stale = plan_agent(agent(systemPrompt="new"), observed(deployment=live, status=running.status), CFG)
    assert stale.status["phase"] == "Progressing"


def test_sessions_use_sqlite_on_an_empty_dir_and_say_so_without_a_database_secret() -> None:
    plan = plan_agent(agent(), observed(), CFG)
    pod = children(plan)["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SHIPYARD_AGENTS_DATABASE_URL"]["value"] == "sqlite:////var/lib/shipyard/agents/sessions.db"
    assert {"name": "sessions", "emptyDir": {}} in pod["volumes"]
    assert conds(plan.status)["SessionsDurable"] == ("False", "EphemeralSessionStore")
    assert "lost when the pod restarts" in plan.status["message"]


def test_sessions_use_the_postgresql_url_from_the_configured_secret() -> None:
    cfg = CFG.model_copy(update={"agents_database_secret": "agents-db", "agents_database_secret_key": "dsn"})
    plan = plan_agent(agent(), observed(), cfg)
    pod = children(plan)["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SHIPYARD_AGENTS_DATABASE_URL"] == {
        "name": "SHIPYARD_AGENTS_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "agents-db", "key": "dsn"}},
    }
    assert not any("emptyDir" in v and v["name"] == "sessions" for v in pod["volumes"])
    assert conds(plan.status)["SessionsDurable"] == ("True", "Database")
    assert "message" not in plan.status


def test_missing_storage_secret_and_too_long_name_fail_with_a_reason() -> None:
    plan = plan_agent(agent(), observed(secret=False), CFG)
    assert plan.children == [] and plan.status["phase"] == "Failed"
    assert conds(plan.status)["Created"] == ("False", "MissingSecret")
    long = Owner("Agent", "a" * 60, "team-a", "u")
    plan = plan_agent(agent(), observed(owner=long), CFG)
    assert plan.children == [] and conds(plan.status)["Created"] == ("False", "NameTooLong")
    assert plan.status["message"].startswith("metadata.name: an Agent's name may have at most 57 characters")
