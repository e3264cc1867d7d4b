"""The examples/ manifests are admitted by the CRDs; broken ones are rejected naming the field.

Every manifest goes through both validators a user meets: the API server's (schema + CEL, reproduced in
``crd_apiserver``) and pydantic's (``shipyard apply`` in embedded mode). They must agree.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from shipyard.errors import InvalidArgument, from_pydantic
from shipyard.resources.agent import Agent
from shipyard.resources.crd import KINDS, crd
from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.training.spec import parse_training_job
from tests.unit.resources.crd_apiserver import admit

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"


def pydantic_errors(manifest: dict[str, Any]) -> list[str]:
    """Field paths pydantic rejects ``manifest`` with (empty when valid)."""
    try:
        if manifest["kind"] == "TrainingJob":
            parse_training_job(manifest)
        else:
            kinds = {"EvaluationJob": EvaluationJob, "ModelDeployment": ModelDeployment, "Agent": Agent}
            model = kinds[manifest["kind"]]
            try:
                model.model_validate(manifest)
            except ValidationError as exc:
                raise from_pydantic(exc) from None
    except InvalidArgument as exc:
        return [v.field for v in exc.violations]
    return []


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc and doc.get("kind") in KINDS:
                docs.append((f"{path.name}[{i}]", doc))
    return docs


DOCS = _documents()


def test_examples_cover_every_kind_and_the_chain() -> None:
    names = {name.split("[")[0] for name, _ in DOCS}
    assert {"pretrain-tiny.yaml", "evaluate.yaml", "deploy.yaml", "chain.yaml"} <= names
    chain = [doc["kind"] for name, doc in DOCS if name.startswith("chain.yaml")]
    assert chain == ["TrainingJob", "EvaluationJob", "ModelDeployment"]


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_example_is_admitted_and_parses(name: str, doc: dict[str, Any]) -> None:
    obj, errors = admit(crd(doc["kind"]), doc)
    assert errors == []
    assert pydantic_errors(doc) == []
    # What the API server stores parses too: the operator reads defaulted objects.
    assert pydantic_errors({k: v for k, v in obj.items() if k != "status"}) == []


def test_defaults_are_filled_in_like_pydantic_does() -> None:
    doc = next(d for n, d in DOCS if n == "pretrain-tiny.yaml[0]")
    minimal = {k: doc[k] for k in ("apiVersion", "kind", "metadata")}
    minimal["spec"] = {"model": "llama-tiny", "data": {"dataset": "d"}, "hyperparameters": {"steps": 5}}
    obj, errors = admit(crd("TrainingJob"), minimal)
    assert errors == []
    parsed = parse_training_job(minimal).spec
    assert obj["spec"]["resources"] == {"workers": 1, "gpusPerWorker": 0, "cpusPerWorker": 1}
    assert obj["spec"]["hyperparameters"]["globalBatchSize"] == parsed.hyperparameters.global_batch_size
    assert obj["spec"]["runPolicy"] == {"backoffLimit": 3, "suspend": False}
    assert obj["spec"]["strategy"] == {"type": "ddp"}


def _broken(kind: str, path: str, value: Any) -> dict[str, Any]:
    """The first example of ``kind`` with ``path`` (dotted, from the root) set to ``value`` (or deleted)."""
    doc = copy.deepcopy(next(d for _, d in DOCS if d["kind"] == kind))
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return doc


_DELETE = object()

INVALID = [
    # (kind, path set, value, path the API server names, path pydantic names)
    ("TrainingJob", "spec.hyperparameters.learningRate", 0, "spec.hyperparameters.learningRate", None),
    ("TrainingJob", "spec.hyperparameters.precision", "fp8", "spec.hyperparameters.precision", None),
    ("TrainingJob", "spec.resources.workers", 0, "spec.resources.workers", None),
    ("TrainingJob", "spec.resources.gpusPerWorker", 17, "spec.resources.gpusPerWorker", None),
    ("TrainingJob", "spec.type", "distill", "spec.type", None),
    ("TrainingJob", "spec.data", _DELETE, "spec", "spec.data"),
    ("TrainingJob", "spec.hyperparameters.stepz", 3, "spec.hyperparameters", "spec.hyperparameters.stepz"),
    ("TrainingJob", "spec.hyperparameters.globalBatchSize", 12, "spec.hyperparameters.globalBatchSize", None),
    ("EvaluationJob", "spec.tasks", [], "spec.tasks", None),
    ("EvaluationJob", "spec.resources.memory", "lots", "spec.resources.memory", None),
    ("EvaluationJob", "spec.model", "s3://m/x", "spec", None),
    ("ModelDeployment", "spec.replicas", -1, "spec.replicas", None),
    ("ModelDeployment", "spec.serving.quantization", "int4", "spec.serving.quantization", None),
    (
        "ModelDeployment",
        "spec.autoscaling.minReplicas",
        5,
        "spec.autoscaling.minReplicas",
        "spec.autoscaling",
    ),
    ("ModelDeployment", "metadata.name", "Llama_Tiny", "", "metadata.name"),
]


@pytest.mark.parametrize(("kind", "path", "value", "k8s_path", "pydantic_path"), INVALID)
def test_invalid_manifest_is_rejected_naming_the_field(
    kind: str, path: str, value: Any, k8s_path: str, pydantic_path: str | None
) -> None:
    doc = _broken(kind, path, value)
    _, errors = admit(crd(kind), doc)
    assert errors, f"{path}={value!r} was admitted"
    assert errors[0][0] == k8s_path, errors
    assert pydantic_errors(doc)[0] == (pydantic_path or k8s_path)


def test_rejection_message_says_why() -> None:
    _, errors = admit(crd("TrainingJob"), _broken("TrainingJob", "spec.hyperparameters.globalBatchSize", 12))
    assert errors == [
        ("spec.hyperparameters.globalBatchSize", "12 is not a multiple of microBatchSize x workers = 16")
    ]
    _, errors = admit(crd("TrainingJob"), _broken("TrainingJob", "spec.hyperparameters.stepz", 3))
    assert "'stepz' was unexpected" in errors[0][1]
