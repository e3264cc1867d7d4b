"""The generated CRDs: structural schemas, and what kubectl shows (columns, names, subresources)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shipyard.lifecycle import JobState
from shipyard.resources import status
from shipyard.resources.crd import KINDS, crd, kopf_peering_crds
from tests.unit.resources.crd_apiserver import openapi_schema, schema_errors, structural_violations

ALL_KINDS = sorted(KINDS)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_schema_is_structural(kind: str) -> None:
    assert structural_violations(openapi_schema(crd(kind))) == []


def test_structural_checker_catches_what_the_api_server_rejects() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/x"},
            "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": "object", "additionalProperties": False, "properties": {}},
            "d": {"type": "integer", "default": "seven"},
        },
    }
    found = "\n".join(structural_violations(bad))
    for expected in (
        "a: $ref",
        "b: type is required",
        "b: anyOf",
        "c: additionalProperties: false",
        "d: default",
    ):
        assert expected in found


def test_no_ref_or_union_anywhere_in_generated_crds() -> None:
    text = json.dumps([crd(k) for k in ALL_KINDS])
    for keyword in ('"$ref"', '"anyOf"', '"allOf"', '"oneOf"', '"title"', '"const"'):
        assert keyword not in text


@pytest.mark.parametrize(
    ("kind", "short"), [("TrainingJob", "tj"), ("EvaluationJob", "ej"), ("ModelDeployment", "md")]
)
def test_names_short_names_and_category(kind: str, short: str) -> None:
    doc = crd(kind)
    names = doc["spec"]["names"]
    assert doc["metadata"]["name"] == f"{names['plural']}.shipyard.dev"
    assert names["kind"] == kind and names["shortNames"] == [short]
    assert names["categories"] == ["shipyard"]  # `kubectl get shipyard` lists all three kinds
    assert doc["spec"]["scope"] == "Namespaced"
    version = doc["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"]["status"] == {}


def test_model_deployment_scales_through_the_scale_subresource() -> None:
    scale = crd("ModelDeployment")["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "scale" not in crd("TrainingJob")["spec"]["versions"][0]["subresources"]


def _resolve(schema: dict, json_path: str) -> dict:
    node = schema
    for part in json_path.strip(".").split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_printer_columns_point_at_real_fields_of_the_right_type(kind: str) -> None:
    version = crd(kind)["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns][0] == "Phase" and columns[-1]["name"] == "Age"
    for col in columns:
        if col["jsonPath"].startswith(".metadata."):
            continue
        node = _resolve(schema, col["jsonPath"])
        expected = {"string": {"string", "object"}, "integer": {"integer"}, "number": {"number"}}[col["type"]]
        assert node["type"] in expected, col


def test_training_columns_show_progress_loss_and_model() -> None:
    names = [c["name"] for c in crd("TrainingJob")["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert {"Phase", "Step", "Total", "Loss", "Model", "Age"} <= set(names)


def test_spec_schema_carries_descriptions_defaults_enums_ranges_and_patterns() -> None:
    spec = openapi_schema(crd("TrainingJob"))["properties"]["spec"]
    hp = spec["properties"]["hyperparameters"]["properties"]
    assert spec["required"] == ["model", "data", "hyperparameters"]
    assert hp["globalBatchSize"]["default"] == 32 and hp["globalBatchSize"]["minimum"] == 1
    assert hp["precision"]["enum"] == ["fp32", "bf16", "fp16"]
    assert hp["learningRate"] == {
        "description": "Peak learning rate.",
        "type": "number",
        "default": 0.0003,
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1.0,
    }
    assert hp["gradClip"]["nullable"] is True and hp["gradClip"]["default"] == 1.0
    assert spec["properties"]["type"]["enum"] == ["pretrain", "finetune"]
    # Sections with defaults are defaulted as a whole, so their fields' defaults apply when omitted.
    assert spec["properties"]["resources"]["default"] == {}
    assert spec["properties"]["modelOverrides"]["x-kubernetes-preserve-unknown-fields"] is True
    memory = openapi_schema(crd("ModelDeployment"))["properties"]["spec"]["properties"]["resources"]
    assert memory["properties"]["memory"]["pattern"].startswith("^[0-9]+")


def test_preserve_unknown_fields_only_on_free_form_maps() -> None:
    def walk(node: dict, path: str) -> list[str]:
        found = [path] if node.get("x-kubernetes-preserve-unknown-fields") else []
        for name, sub in node.get("properties", {}).items():
            found += walk(sub, f"{path}.{name}")
        return found

    assert [p for k in ALL_KINDS for p in walk(openapi_schema(crd(k)), k)] == [
        "TrainingJob.spec.modelOverrides"
    ]


def test_conditions_are_a_list_map_keyed_by_type() -> None:
    conditions = openapi_schema(crd("EvaluationJob"))["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    scores = openapi_schema(crd("EvaluationJob"))["properties"]["status"]["properties"]["scores"]
    assert scores["additionalProperties"] == {"type": "number"}


def test_status_model_dumps_camel_case_for_the_status_patch() -> None:
    st = status.TrainingJobStatus(
        phase=status.JobPhase.RUNNING,
        step=40,
        total_steps=120,
        metrics=status.TrainingMetrics(loss=2.5, tokens_per_second=1000.0),
        ray_job_name="llama-tiny-pretrain",
    )
    body = st.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert body == {
        "phase": "Running",
        "conditions": [],
        "step": 40,
        "totalSteps": 120,
        "metrics": {"loss": 2.5, "tokensPerSecond": 1000.0},
        "rayJobName": "llama-tiny-pretrain",
    }
    md = status.ModelDeploymentStatus.model_validate(
        {"readyReplicas": 2, "selector": "app=x", "phase": "Ready"}
    )
    assert md.ready_replicas == 2 and md.phase is status.DeploymentPhase.READY


def test_kopf_peering_crds_for_leader_election() -> None:
    docs = kopf_peering_crds()
    assert [d["metadata"]["name"] for d in docs] == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]
    for doc in docs:
        assert structural_violations(openapi_schema(doc)) == []


def test_status_the_operator_writes_is_accepted_by_the_status_schema() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    condition = status.Condition(
        type="Succeeded", status="True", reason="Succeeded", last_transition_time=when
    )
    bodies = {
        "TrainingJob": status.TrainingJobStatus(
            phase=status.JobPhase.SUCCEEDED,
            conditions=[condition],
            step=120,
            total_steps=120,
            tokens_seen=245760,
            last_checkpoint="s3://b/checkpoints/t/step-120",
            metrics=status.TrainingMetrics(loss=3.1, learning_rate=2e-4, tokens_per_second=5e3, mfu=0.01),
            output_model="s3://b/models/t",
            registered_model="model:t@1",
            restarts=0,
            message="done",
            ray_job_name="t",
        ),
        "EvaluationJob": status.EvaluationJobStatus(
            phase=status.JobPhase.from_state(JobState.CANCELLING),
            scores={"hellaswag/acc_norm": 0.27},
            report_uri="s3://b/evaluations/e/report.json",
        ),
        "ModelDeployment": status.ModelDeploymentStatus(
            phase=status.DeploymentPhase.READY,
            conditions=[condition],
            replicas=2,
            ready_replicas=2,
            endpoint="http://md.ns.svc:8000/v1",
            model="s3://b/models/t",
            selector="app.kubernetes.io/instance=md",
            observed_generation=3,
        ),
    }
    for kind, body in bodies.items():
        schema = openapi_schema(crd(kind))["properties"]["status"]
        assert schema_errors(schema, body.model_dump(mode="json", by_alias=True, exclude_none=True)) == []
    bad = {"phase": "Done", "conditions": [{"status": "True"}]}
    errors = schema_errors(openapi_schema(crd("TrainingJob"))["properties"]["status"], bad)
    assert [path for path, _ in errors] == ["conditions.0", "phase"]
