"""Agent through the operator against a kmock API server: waiting for its ModelDeployment, rollout, edits."""

from __future__ import annotations

import json

import pytest

from shipyard_operator.kube import KubeClient, object_path
from tests.integration.kmock_harness import NS, SY, create, events_for, get, set_status, status_of, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

AGENT_SPEC = {
    "model": {"deployment": "assistant-model"},
    "systemPrompt": "Use the calculator.",
    "tools": [{"type": "calculator"}],
}


def phase(client: KubeClient, name: str) -> str | None:
    return status_of(client, "Agent", name).get("phase")


def reason(client: KubeClient, name: str, ctype: str) -> str | None:
    conds = {c["type"]: c for c in status_of(client, "Agent", name).get("conditions") or []}
    return conds.get(ctype, {}).get("reason")


def test_agent_waits_for_its_model_deployment_then_runs_and_rolls_on_a_spec_change(
    operator: KubeClient,
) -> None:
    create(operator, "Agent", "assistant", AGENT_SPEC)
    wait_for("Waiting", lambda: reason(operator, "assistant", "ModelReady") == "ModelDeploymentNotFound")
    assert phase(operator, "assistant") == "Waiting"
    assert get(operator, "apps/v1", "Deployment", "assistant-agent") is None

    # The ModelDeployment appears but is not Ready: still waiting, now for readiness (woken by its event).
    create(operator, "ModelDeployment", "assistant-model", {"model": "s3://bucket/models/chat"})
    wait_for("the model's Deployment", lambda: get(operator, "apps/v1", "Deployment", "assistant-model"))
    wait_for("WaitingForModel", lambda: reason(operator, "assistant", "ModelReady") == "WaitingForModel")
    assert get(operator, "apps/v1", "Deployment", "assistant-agent") is None

    set_status(
        operator,
        "apps/v1",
        "Deployment",
        "assistant-model",
        {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    )
    wait_for(
        "model Ready",
        lambda: status_of(operator, "ModelDeployment", "assistant-model").get("phase") == "Ready",
    )
    deployment = wait_for(
        "the agents Deployment", lambda: get(operator, "apps/v1", "Deployment", "assistant-agent")
    )
    service = wait_for("the agents Service", lambda: get(operator, "v1", "Service", "assistant-agent"))
    config_map = wait_for("the spec ConfigMap", lambda: get(operator, "v1", "ConfigMap", "assistant-agent"))
    for child in (deployment, service, config_map):
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["blockOwnerDeletion"]) == (
            "Agent",
            "assistant",
            "uid-assistant",
            True,
        )
    assert [p["port"] for p in service["spec"]["ports"]] == [50056]
    mounted = json.loads(config_map["data"]["agent.json"])
    assert mounted["spec"]["model"]["url"] == "http://assistant-model.team-a.svc.cluster.local:8000/v1"
    wait_for("Progressing", lambda: phase(operator, "assistant") == "Progressing")

    set_status(
        operator,
        "apps/v1",
        "Deployment",
        "assistant-agent",
        {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    )
    wait_for("Running", lambda: phase(operator, "assistant") == "Running")
    running = status_of(operator, "Agent", "assistant")
    assert running["endpoint"] == "assistant-agent.team-a.svc.cluster.local:50056"
    assert running["observedGeneration"] == 1
    wait_for("an AgentReady Event", lambda: "AgentReady" in events_for(operator, "assistant"))

    # Editing the spec rewrites the mounted spec and rolls the pods (new hash on the template).
    old_hash = deployment["spec"]["template"]["metadata"]["annotations"]["shipyard.dev/spec-hash"]
    operator.request(
        "PATCH",
        object_path(SY, "Agent", NS, "assistant"),
        {"metadata": {"generation": 2}, "spec": {"systemPrompt": "Answer in one sentence."}},
        content_type="application/merge-patch+json",
    )
    rolled = wait_for(
        "a new pod template",
        lambda: (
            (d := get(operator, "apps/v1", "Deployment", "assistant-agent"))
            and d["spec"]["template"]["metadata"]["annotations"]["shipyard.dev/spec-hash"] != old_hash
            and d
        ),
    )
    assert rolled["spec"]["template"]["metadata"]["annotations"]["shipyard.dev/spec-hash"] != old_hash
    mounted_now = get(operator, "v1", "ConfigMap", "assistant-agent")
    assert mounted_now is not None
    assert json.loads(mounted_now["data"]["agent.json"])["spec"]["systemPrompt"] == "Answer in one sentence."
    # (kmock runs no Deployment controller, so the roll itself is not observed here: the plan tests cover
    # that a new template hash is Progressing until the Deployment reports it rolled out.)
    wait_for(
        "generation 2 observed",
        lambda: status_of(operator, "Agent", "assistant").get("observedGeneration") == 2,
    )


def test_deleting_an_agent_leaves_its_children_to_the_garbage_collector(operator: KubeClient) -> None:
    create(operator, "Agent", "short-lived", {"model": {"url": "http://llm.example:8000/v1"}})
    wait_for("the agents Deployment", lambda: get(operator, "apps/v1", "Deployment", "short-lived-agent"))
    status = wait_for(
        "settled",
        lambda: (
            phase(operator, "short-lived") == "Progressing" and status_of(operator, "Agent", "short-lived")
        ),
    )
    assert status["modelEndpoint"] == "http://llm.example:8000/v1"
    assert {c["type"]: c["reason"] for c in status["conditions"]}[
        "SessionsDurable"
    ] == "EphemeralSessionStore"
    owner = wait_for(
        "kopf done with the create",
        lambda: (
            (o := get(operator, SY, "Agent", "short-lived"))
            and "shipyard.dev/last-handled-configuration" in (o["metadata"].get("annotations") or {})
            and o
        ),
    )
    assert not owner["metadata"].get("finalizers")  # nothing blocks the delete: the GC cascades to children
    children = [
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
    ]
    for api_version, kind in children:
        child = get(operator, api_version, kind, "short-lived-agent")
        assert child is not None and child["metadata"]["ownerReferences"][0]["uid"] == "uid-short-lived"
    operator.request("DELETE", object_path(SY, "Agent", NS, "short-lived"))
    for api_version, kind in children:  # what the GC does, following those ownerReferences
        operator.request("DELETE", object_path(api_version, kind, NS, "short-lived-agent"))
    assert get(operator, SY, "Agent", "short-lived") is None
    # The Deployment's deletion event finds no owner: nothing is recreated.
    create(operator, "Agent", "probe", {"model": {"url": "http://llm.example:8000/v1"}})
    wait_for("a later agent still reconciled", lambda: get(operator, "apps/v1", "Deployment", "probe-agent"))
    assert get(operator, "apps/v1", "Deployment", "short-lived-agent") is None
