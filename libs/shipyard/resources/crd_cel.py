"""CEL (``x-kubernetes-validations``) rules mirroring the spec models' cross-field validators.

The pydantic validators (``_cross_field``, ``_exactly_one``, ...) are Python and cannot be translated
automatically, so each one has its CEL twin here, keyed by the model class it sits on; the CRD generator
attaches the rules to that class's schema node (and to subclasses: ``ModelSource`` rules apply to both
EvaluationJobSpec and ModelDeploymentSpec). ``tests/unit/resources/test_crd_cel.py`` evaluates every
rule against valid and invalid specs and checks it agrees with pydantic.

The API server applies schema defaults before it runs the rules, but a rule must still never fail on
an absent field (a ``no such key`` evaluation error rejects the object with a confusing message), so
every optional field is read through ``_read``: ``has()`` guards with the model's own default as the
fallback. A null value of a nullable field counts as absent in Kubernetes CEL, as it does here.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from shipyard.resources.agent import AgentModel, SearchToolSpec
from shipyard.resources.model_deployment import Autoscaling
from shipyard.resources.references import ModelSource
from shipyard.training.spec import HyperParameters, Resources, Strategy, TrainingJobSpec

__all__ = ["Rule", "rules_for"]

Rule = dict[str, str]


def _read(path: str, model: type[BaseModel], field: str) -> str:
    """CEL reading ``self.<path>.<field alias>``, falling back to the pydantic default when absent."""
    info = model.model_fields[field]
    alias = info.alias or field
    parts = [p for p in path.split(".") if p] + [alias]
    guards = " && ".join(f"has(self.{'.'.join(parts[: i + 1])})" for i in range(len(parts)))
    value = f"self.{'.'.join(parts)}"
    if info.is_required():
        return value
    default = info.get_default(call_default_factory=True)
    return f"({guards} ? {value} : {json.dumps(default)})"


def _present(path: str, model: type[BaseModel], field: str) -> str:
    alias = model.model_fields[field].alias or field
    parts = [p for p in path.split(".") if p] + [alias]
    return " && ".join(f"has(self.{'.'.join(parts[: i + 1])})" for i in range(len(parts)))


def _training_spec_rules() -> list[Rule]:
    gbs = _read("hyperparameters", HyperParameters, "global_batch_size")
    mbs = _read("hyperparameters", HyperParameters, "micro_batch_size")
    workers = _read("resources", Resources, "workers")
    gpus = _read("resources", Resources, "gpus_per_worker")
    precision = _read("hyperparameters", HyperParameters, "precision")
    strategy = _read("strategy", Strategy, "type")
    zero = _present("strategy", Strategy, "zero_stage")
    return [
        {
            "rule": f"{gbs} % ({mbs} * {workers}) == 0",
            "message": "globalBatchSize must be a multiple of microBatchSize x workers",
            "messageExpression": f"string({gbs}) + ' is not a multiple of microBatchSize x workers = '"
            f" + string({mbs} * {workers})",
            "fieldPath": ".hyperparameters.globalBatchSize",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"{precision} == 'fp32' || {gpus} >= 1",
            "message": "bf16/fp16 need gpusPerWorker >= 1; use fp32 on CPU",
            "fieldPath": ".hyperparameters.precision",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"{strategy} != 'fsdp' || {gpus} >= 1",
            "message": "fsdp needs gpusPerWorker >= 1; use ddp or deepspeed on CPU",
            "fieldPath": ".strategy.type",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!({zero} && self.strategy.zeroStage == 3) || {gpus} >= 1",
            "message": "ZeRO-3 needs GPUs; use zeroStage 1 or 2 on CPU",
            "fieldPath": ".strategy.zeroStage",
            "reason": "FieldValueInvalid",
        },
    ]


def _strategy_rules() -> list[Rule]:
    return [
        {
            "rule": f"!has(self.zeroStage) || {_read('', Strategy, 'type')} == 'deepspeed'",
            "message": "zeroStage applies only to type: deepspeed",
            "fieldPath": ".zeroStage",
            "reason": "FieldValueForbidden",
        }
    ]


def _rules() -> dict[type[BaseModel], list[Rule]]:
    min_replicas, max_replicas = (_read("", Autoscaling, f) for f in ("min_replicas", "max_replicas"))
    return {
        TrainingJobSpec: _training_spec_rules(),
        HyperParameters: [
            {
                "rule": "has(self.steps) != has(self.tokens)",
                "message": "set exactly one of steps or tokens",
            }
        ],
        Strategy: _strategy_rules(),
        ModelSource: [
            {
                "rule": "has(self.model) != has(self.modelFrom)",
                "message": "set exactly one of model or modelFrom",
            }
        ],
        AgentModel: [
            {
                "rule": "has(self.deployment) != has(self.url)",
                "message": "set exactly one of deployment or url",
            },
            {
                "rule": "!has(self.url) || self.url.matches('^[hH][tT][tT][pP][sS]?:')",
                "message": "url must be http(s)",
                "fieldPath": ".url",
                "reason": "FieldValueInvalid",
            },
        ],
        SearchToolSpec: [
            {
                "rule": "[has(self.collection), has(self.manifest), has(self.documents)]"
                ".filter(x, x).size() == 1",
                "message": "set exactly one of collection, manifest or documents",
            }
        ],
        Autoscaling: [
            {
                "rule": f"{min_replicas} <= {max_replicas}",
                "message": "minReplicas must not exceed maxReplicas",
                "fieldPath": ".minReplicas",
                "reason": "FieldValueInvalid",
            }
        ],
    }


_RULES = _rules()


def rules_for(model: type[Any]) -> list[Rule]:
    """The CEL rules of ``model`` and of the spec classes it inherits from, most general first."""
    found: list[Rule] = []
    for klass in reversed(model.__mro__):
        found.extend(_RULES.get(klass, []))
    return found
