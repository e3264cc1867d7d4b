"""The CRDs' CEL rules, run by a real CEL engine (``common-expression-language``), agree with pydantic.

For every combination of the fields the cross-field rules read, the API server (schema defaults + CEL)
admits a TrainingJob exactly when ``parse_training_job`` accepts it, and names the same field.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shipyard.resources.crd import crd
from shipyard.resources.crd_cel import rules_for
from shipyard.resources.evaluation_job import EvaluationJobSpec
from shipyard.resources.model_deployment import Autoscaling
from shipyard.resources.references import ModelSource
from shipyard.training.spec import TrainingJobSpec
from tests.unit.resources.crd_apiserver import admit
from tests.unit.resources.test_crd_examples import pydantic_errors

TJ, EJ, MD = crd("TrainingJob"), crd("EvaluationJob"), crd("ModelDeployment")


def _training(**sections: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": "llama-tiny", "data": {"dataset": "d"}, "hyperparameters": {"steps": 10}}
    for name, fields in sections.items():
        spec[name] = {**spec.get(name, {}), **fields}
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "t"},
        "spec": spec,
    }


def _cel_paths(manifest: dict[str, Any], crd_doc: dict[str, Any]) -> list[str]:
    _, errors = admit(crd_doc, manifest)
    return [path for path, _ in errors]


def _within(path: str, section: str) -> bool:
    return path == section or path.startswith(section + ".")


def _combinations() -> list[dict[str, Any]]:
    combos = []
    for gbs, mbs, workers, gpus, precision, strategy, zero in itertools.product(
        [8, 12, 16],
        [4, 8, None],
        [1, 2, 3, None],
        [0, 1, None],
        ["fp32", "bf16", None],
        ["ddp", "deepspeed", "fsdp", None],
        [None, 1, 3],
    ):
        hp = {"steps": 10, "globalBatchSize": gbs, "microBatchSize": mbs, "precision": precision}
        res = {"workers": workers, "gpusPerWorker": gpus}
        strat = {"type": strategy, "zeroStage": zero}
        # None means "omitted", so the API server's defaults and pydantic's are both exercised.
        drop = lambda d: {k: v for k, v in d.items() if v is not None}  # noqa: E731
        combos.append(_training(hyperparameters=drop(hp), resources=drop(res), strategy=drop(strat)))
    return combos


def test_cel_rules_agree_with_pydantic_on_every_combination() -> None:
    disagreements = []
    rejected = 0
    for manifest in _combinations():
        cel = _cel_paths(manifest, TJ)
        py = pydantic_errors(manifest)
        rejected += bool(py)
        # pydantic stops at the first failing validator, the API server reports every failing rule; a
        # section-level pydantic validator (Strategy) names the section, its CEL twin the field in it.
        if bool(cel) != bool(py) or (py and not any(_within(c, py[0]) for c in cel)):
            disagreements.append((manifest["spec"], cel, py))
    assert disagreements == []
    assert 0 < rejected < len(_combinations())  # the sweep covers both sides of every rule


@pytest.mark.parametrize(
    ("sections", "field", "pydantic_field"),
    [
        ({"hyperparameters": {"globalBatchSize": 12}}, "spec.hyperparameters.globalBatchSize", None),
        ({"hyperparameters": {"precision": "bf16"}}, "spec.hyperparameters.precision", None),
        ({"strategy": {"type": "fsdp"}}, "spec.strategy.type", None),
        ({"strategy": {"type": "deepspeed", "zeroStage": 3}}, "spec.strategy.zeroStage", None),
        ({"strategy": {"type": "ddp", "zeroStage": 2}}, "spec.strategy.zeroStage", "spec.strategy"),
        ({"hyperparameters": {"tokens": 1000}}, "spec.hyperparameters", None),
        ({"hyperparameters": {"steps": None, "tokens": None}}, "spec.hyperparameters", None),
    ],
)
def test_cross_field_rule_names_the_field(
    sections: dict[str, Any], field: str, pydantic_field: str | None
) -> None:
    manifest = _training(**sections)
    assert _cel_paths(manifest, TJ) == [field]
    assert pydantic_errors(manifest) == [pydantic_field or field]


def test_gpu_jobs_pass_the_gpu_rules() -> None:
    manifest = _training(
        hyperparameters={"precision": "bf16", "globalBatchSize": 64},
        resources={"workers": 4, "gpusPerWorker": 8},
        strategy={"type": "deepspeed", "zeroStage": 3},
    )
    assert _cel_paths(manifest, TJ) == [] and pydantic_errors(manifest) == []


def test_null_counts_as_absent_for_exactly_one_of() -> None:
    # `steps: null, tokens: 5` is "tokens only" both to pydantic and to Kubernetes CEL.
    manifest = _training(hyperparameters={"steps": None, "tokens": 5000})
    assert _cel_paths(manifest, TJ) == [] and pydantic_errors(manifest) == []


def _source(kind: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"tasks": ["gsm8k"]} if kind == "EvaluationJob" else {}
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": {**base, **spec},
    }


@pytest.mark.parametrize(("kind", "crd_doc"), [("EvaluationJob", EJ), ("ModelDeployment", MD)])
@pytest.mark.parametrize(
    ("spec", "ok"),
    [
        ({"model": "s3://b/m"}, True),
        ({"modelFrom": {"trainingJob": "t"}}, True),
        ({}, False),
        ({"model": "s3://b/m", "modelFrom": {"trainingJob": "t"}}, False),
        ({"model": None, "modelFrom": {"trainingJob": "t"}}, True),
    ],
)
def test_exactly_one_model_source(kind: str, crd_doc: dict[str, Any], spec: dict[str, Any], ok: bool) -> None:
    manifest = _source(kind, **spec)
    assert _cel_paths(manifest, crd_doc) == ([] if ok else ["spec"])
    assert pydantic_errors(manifest) == ([] if ok else ["spec"])


@pytest.mark.parametrize(
    ("autoscaling", "ok"),
    [
        ({"minReplicas": 2, "maxReplicas": 4}, True),
        ({"minReplicas": 2}, False),
        ({"maxReplicas": 3}, True),
        ({"minReplicas": 0, "maxReplicas": 1}, True),
        ({"minReplicas": 5, "maxReplicas": 4}, False),
    ],
)
def test_autoscaling_bounds(autoscaling: dict[str, int], ok: bool) -> None:
    manifest = _source("ModelDeployment", model="s3://b/m", autoscaling=autoscaling)
    assert _cel_paths(manifest, MD) == ([] if ok else ["spec.autoscaling.minReplicas"])
    assert bool(pydantic_errors(manifest)) is not ok


def test_rules_attach_to_the_models_that_own_the_validators() -> None:
    assert rules_for(EvaluationJobSpec) == rules_for(ModelSource)  # inherited from ModelSource
    assert len(rules_for(TrainingJobSpec)) == 4 and len(rules_for(Autoscaling)) == 1
    for rule in rules_for(TrainingJobSpec):
        assert rule["fieldPath"].startswith(".") and rule["message"]
