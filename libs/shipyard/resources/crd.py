"""CustomResourceDefinitions generated from the spec and status models (the single source of truth).

``crd(kind)`` returns the ``apiextensions.k8s.io/v1`` CRD of one kind as a dict: pydantic's JSON schema of
the spec and status models, rewritten into a Kubernetes *structural* schema (every ``$ref`` inlined,
``Optional`` as ``nullable``, no ``anyOf``/``allOf``/``additionalProperties: false``, numeric exclusive
bounds as OpenAPI v3.0 booleans, free-form maps as ``x-kubernetes-preserve-unknown-fields``), with the
CEL rules of ``crd_cel`` attached to the nodes of the models they belong to, printer columns, short
names, the ``shipyard`` category and the status (and, for ModelDeployment, scale) subresource.
``tools/gen_crds.py`` writes them into ``charts/shipyard/crds/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from shipyard.resources import crd_cel, status
from shipyard.resources.agent import AgentSpec
from shipyard.resources.crd_union import merge_tagged
from shipyard.resources.evaluation_job import EvaluationJobSpec
from shipyard.resources.meta import API_VERSION
from shipyard.resources.model_deployment import ModelDeploymentSpec
from shipyard.training.spec import TrainingJobSpec

__all__ = [
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "CrdKind",
    "crd",
    "kopf_peering_crds",
    "structural_schema",
]

GROUP, VERSION = API_VERSION.split("/")
CATEGORY = "shipyard"
# Keys a structural schema node may carry after conversion; anything else pydantic emits is a bug here.
_KEPT = [
    "description",
    "type",
    "format",
    "nullable",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
]
_DROPPED = {"title"}
_RULE_KEYS = ["rule", "message", "messageExpression", "fieldPath", "reason"]


def _column(name: str, path: str, type_: str, description: str, priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        col["priority"] = priority
    return col


_AGE = _column("Age", ".metadata.creationTimestamp", "date", "Time since the resource was created.")


@dataclass(frozen=True)
class CrdKind:
    """What the CRD of one kind is made of."""

    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: list[dict[str, Any]]
    scale: dict[str, str] | None = None
    extra_short_names: list[str] = field(default_factory=list)


KINDS: dict[str, CrdKind] = {
    "TrainingJob": CrdKind(
        "TrainingJob",
        "trainingjobs",
        "tj",
        "Pretrains or finetunes a model on a KubeRay RayJob sized and placed from spec.resources.",
        TrainingJobSpec,
        status.TrainingJobStatus,
        [
            _column("Phase", ".status.phase", "string", "Where the job is in its lifecycle."),
            _column("Step", ".status.step", "integer", "Optimizer steps completed."),
            _column("Total", ".status.totalSteps", "integer", "Optimizer steps the job will run."),
            _column("Loss", ".status.metrics.loss", "number", "Training loss at the last logged step."),
            _column("Model", ".spec.model", "string", "Preset or base model."),
            _column("Workers", ".spec.resources.workers", "integer", "Ray Train workers.", 1),
            _column("Output", ".status.outputModel", "string", "The trained model's URI.", 1),
            _AGE,
        ],
    ),
    "EvaluationJob": CrdKind(
        "EvaluationJob",
        "evaluationjobs",
        "ej",
        "Scores a model on benchmark tasks in a Kubernetes Job; status.scores carries the results.",
        EvaluationJobSpec,
        status.EvaluationJobStatus,
        [
            _column("Phase", ".status.phase", "string", "Where the job is in its lifecycle."),
            _column("Model", ".spec.model", "string", "The model URI evaluated."),
            _column("From", ".spec.modelFrom.trainingJob", "string", "TrainingJob whose model is evaluated."),
            _column("Scores", ".status.scores", "string", "Metric -> score."),
            _column("Report", ".status.reportUri", "string", "The full report's URI.", 1),
            _AGE,
        ],
    ),
    "ModelDeployment": CrdKind(
        "ModelDeployment",
        "modeldeployments",
        "md",
        "Serves a model behind the OpenAI-compatible API: Deployment, Service, autoscaler, PDB.",
        ModelDeploymentSpec,
        status.ModelDeploymentStatus,
        [
            _column("Phase", ".status.phase", "string", "Where the deployment is."),
            _column("Ready", ".status.readyReplicas", "integer", "Server pods ready to serve."),
            _column("Replicas", ".status.replicas", "integer", "Server pods that exist."),
            _column("Model", ".status.model", "string", "The model URI being served."),
            _column("Endpoint", ".status.endpoint", "string", "In-cluster URL of the API.", 1),
            _AGE,
        ],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
}

KINDS["Agent"] = CrdKind(
    "Agent",
    "agents",
    "ag",
    "An LLM agent (model endpoint, system prompt, tools, limits) served by an agents Deployment.",
    AgentSpec,
    status.AgentStatus,
    [
        _column("Phase", ".status.phase", "string", "Where the agent is."),
        _column("Deployment", ".spec.model.deployment", "string", "ModelDeployment serving the model."),
        _column("Model", ".status.modelEndpoint", "string", "OpenAI-compatible URL the agent calls."),
        _column("Ready", ".status.readyReplicas", "integer", "Agent pods ready to serve."),
        _column("Endpoint", ".status.endpoint", "string", "In-cluster gRPC address of the agent.", 1),
        _AGE,
    ],
)

# Names end up in Service and label values (DNS-1123 labels); a CR's own name rule is laxer (subdomain).
_NAME_RULE = {
    "rule": "self.metadata.name.size() <= 63"
    " && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    "message": "metadata.name must be a DNS-1123 label (lowercase a-z, 0-9, '-'; at most 63 characters)",
}


class _Generator(GenerateJsonSchema):
    """pydantic's JSON schema plus our CEL rules per model and ``default: {}`` for defaulted sections."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        rules = crd_cel.rules_for(schema["cls"])
        if rules:
            json_schema["x-kubernetes-validations"] = rules
        return json_schema

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            # `default: {}` makes the API server fill in the section's own defaults when it is omitted,
            # as pydantic's default_factory does (nested defaults only apply under a present parent).
            return {"allOf": [self.generate_inner(schema["schema"])], "default": {}}
        return super().default_schema(schema)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of ``model`` (camelCase names), as the CRD embeds it."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    node.pop("$defs", None)
    merged: dict[str, Any] = {}
    if "discriminator" in node:
        tag = node.pop("discriminator")["propertyName"]
        union = merge_tagged(
            [_convert(v, defs) for v in node.pop("oneOf")], tag, node.pop("description", None)
        )
        union["properties"] = {
            name: {k: sub[k] for k in sorted(sub, key=_KEPT.index)}
            for name, sub in union["properties"].items()
        }
        merged.update(union)
    if "$ref" in node:
        merged.update(_convert(defs[node.pop("$ref").rsplit("/", 1)[-1]], defs))
    for part in node.pop("allOf", []):
        merged.update(_convert(part, defs))
    if "anyOf" in node:
        variants = node.pop("anyOf")
        non_null = [v for v in variants if v != {"type": "null"}]
        if len(non_null) != 1:
            raise TypeError(f"only Optional[X] unions fit a structural schema, got {variants}")
        merged.update(_convert(non_null[0], defs))
        # The API server checks a null against `enum` even when nullable, so an optional enum (status
        # phase) is optional but not nullable: omit it instead of writing null.
        if len(non_null) < len(variants) and "enum" not in merged:
            merged["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        if key == "description":
            merged[key] = value.replace("``", "")
        elif key == "properties":
            merged[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            merged[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if value is True or value == {}:
                merged["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                merged[key] = _convert(value, defs)
            # `false` (extra="forbid") is what structural pruning already does; the key is not allowed.
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            merged["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            merged[key] = True
        elif key == "x-kubernetes-validations":  # pydantic sorted the keys; lead with the rule again
            merged[key] = [{k: r[k] for k in sorted(r, key=_RULE_KEYS.index)} for r in value]
        elif key in _KEPT:
            merged[key] = value
        else:
            raise TypeError(f"schema keyword {key!r} has no structural equivalent")
    return {k: merged[k] for k in sorted(merged, key=_KEPT.index)}


def crd(kind: str) -> dict[str, Any]:
    """The ``CustomResourceDefinition`` of ``kind``: TrainingJob, EvaluationJob, ModelDeployment or Agent."""
    k = KINDS[kind]
    schema = {
        "description": k.description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "shipyard.dev/v1alpha1"},
            "kind": {"type": "string", "description": kind},
            "metadata": {"type": "object"},
            "spec": structural_schema(k.spec),
            "status": structural_schema(k.status),
        },
        "x-kubernetes-validations": [_NAME_RULE],
    }
    subresources: dict[str, Any] = {"status": {}}
    if k.scale:
        subresources["scale"] = dict(k.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k.plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "shipyard"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": k.plural,
                "singular": kind.lower(),
                "shortNames": [k.short_name, *k.extra_short_names],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": subresources,
                    "additionalPrinterColumns": k.columns,
                }
            ],
        },
    }


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs (its documented manifests): two operator replicas elect one active by them."""
    out = []
    for kind, scope in (("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")):
        plural = kind.lower() + "s"
        open_status = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        out.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.kopf.dev"},
                "spec": {
                    "scope": scope,
                    "group": "kopf.dev",
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "deprecated": False,
                            "schema": {
                                "openAPIV3Schema": {"type": "object", "properties": {"status": open_status}}
                            },
                        }
                    ],
                },
            }
        )
    return out
