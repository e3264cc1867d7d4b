"""The typed ingest job spec (``kind: IngestJob``) and its validation before any work starts.

The same document is accepted from a YAML file (``shipyard ingest run -f job.yaml``), over gRPC
(``CreateIngestJob``) and, later, as a custom resource. Field names follow Kubernetes style
(camelCase) and snake_case is accepted too. Every error names the field by its path from the
document root (``spec.steps[2].bands``) and says why.
"""

from __future__ import annotations

import pathlib
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from shipyard.data.registry import step_class
from shipyard.data.step import GlobalStep, PipelineStep
from shipyard.data.steps.readers import InputSpec
from shipyard.errors import FieldViolation, InvalidArgument, from_pydantic
from shipyard.resources.meta import API_VERSION, Metadata, SpecModel, read_manifest_file

KIND = "IngestJob"


class StepSpec(SpecModel):
    """One step: ``type`` names a registered step; every other key is a parameter of that step."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str = Field(description="Registered step name, e.g. `minhash_dedup`.")

    @model_validator(mode="before")
    @classmethod
    def _flatten_params(cls, data: Any) -> Any:
        # Accept both `{type: x, params: {...}}` (the gRPC shape) and `{type: x, k: v}` (YAML shape).
        if isinstance(data, dict) and isinstance(data.get("params"), dict):
            data = {**{k: v for k, v in data.items() if k != "params"}, **data["params"]}
        return data

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OutputSpec(SpecModel):
    uri: str = Field(description="Dataset root: documents, token shards, tokenizer and manifest.json.")
    format: Literal["jsonl", "jsonl.gz", "parquet"] = Field("jsonl.gz", description="Document file format.")


class ExecutionSpec(SpecModel):
    executor: Literal["local", "ray"] = Field("local", description="Local processes, or tasks on Ray.")
    workers: int | None = Field(None, ge=1, le=4096, description="Parallel workers (default: config).")
    ray_address: str | None = Field(None, description="Ray cluster address; default starts local Ray.")


class IngestSpec(SpecModel):
    input: InputSpec
    output: OutputSpec
    steps: list[StepSpec] = Field(default_factory=list, description="Steps in order.")
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)


class IngestJob(SpecModel):
    """A whole ``IngestJob`` document (apiVersion, kind, metadata, spec)."""

    api_version: Literal["shipyard.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["IngestJob"] = KIND
    metadata: Metadata
    spec: IngestSpec


def parse_spec(data: Any, *, prefix: str = "spec") -> IngestSpec:
    """Validate a spec mapping (the ``spec:`` part) and every step's parameters."""
    try:
        spec = IngestSpec.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=prefix) from None
    build_steps(spec, prefix=prefix)  # validates step types and params, discards the instances
    return spec


def parse_job(data: Any) -> IngestJob:
    """Validate a whole ``IngestJob`` document."""
    if not isinstance(data, dict):
        raise InvalidArgument.field(
            "<root>", "an IngestJob must be a mapping with apiVersion, kind, metadata, spec"
        )
    try:
        job = IngestJob.model_validate(data)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    build_steps(job.spec, prefix="spec")
    return job


def load_job_file(path: str | pathlib.Path) -> IngestJob:
    """Read and validate an IngestJob from a YAML or JSON file."""
    return parse_job(read_manifest_file(path))


def build_steps(spec: IngestSpec, *, prefix: str = "spec") -> list[PipelineStep]:
    """Instantiate the steps of ``spec``; bad types/params raise one ``InvalidArgument`` listing all."""
    steps: list[PipelineStep] = []
    violations: list[FieldViolation] = []
    for i, step_spec in enumerate(spec.steps):
        where = f"{prefix}.steps[{i}]"
        try:
            cls = step_class(step_spec.type, field=f"{where}.type")
            params = cls.Params.model_validate(step_spec.params)
            steps.append(cls(params))
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        except ValidationError as exc:
            violations.extend(from_pydantic(exc, prefix=where).violations)
    violations.extend(_ordering_violations(spec, prefix))
    if violations:
        raise InvalidArgument("invalid ingest spec", violations=violations)
    return steps


def _ordering_violations(spec: IngestSpec, prefix: str) -> list[FieldViolation]:
    """Cross-step rules: a step that tokenizes needs a tokenizer trained before it or a tokenizerUri."""
    out: list[FieldViolation] = []
    trained = False
    for i, step in enumerate(spec.steps):
        if step.type == "train_tokenizer":
            trained = True
        if step.type == "tokenize":
            has_uri = any(k in step.params for k in ("tokenizer_uri", "tokenizerUri"))
            if not (trained or has_uri):
                out.append(
                    FieldViolation(
                        f"{prefix}.steps[{i}].tokenizerUri",
                        "tokenize needs a tokenizer: set tokenizerUri or add a train_tokenizer step first",
                    )
                )
    return out


def is_global(step: PipelineStep) -> bool:
    return isinstance(step, GlobalStep)
