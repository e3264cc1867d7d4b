"""The ``EvaluationJob`` spec: score a model on benchmark tasks (OpenCompass / lm-eval style).

The operator runs it as a Kubernetes Job; the evaluation service fills in the runner. Its status carries
the scores, which a ``ModelDeployment`` gate can require.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shipyard.resources.meta import API_VERSION, Metadata, SpecModel
from shipyard.resources.references import ModelSource

KIND = "EvaluationJob"
# The annotation an evaluation runner sets on its Kubernetes Job to report
# ``{"scores": {"<task>/<metric>": x}, "reportUri": ...}``; the operator reads it into the status.
SCORES_ANNOTATION = "shipyard.dev/scores"


class EvaluationResources(SpecModel):
    gpus: int = Field(0, ge=0, le=16, description="GPUs for the evaluation pod.")
    cpus: float = Field(2, gt=0, description="CPUs for the evaluation pod.")
    memory: str = Field("8Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$", description="Memory limit.")
    node_pool: str | None = Field(None, description="Node pool to schedule on.")


class EvaluationJobSpec(ModelSource):
    model_name: str | None = Field(
        None, description="Served model name, when model is an http(s) OpenAI-compatible endpoint."
    )
    tasks: list[str] = Field(min_length=1, description="Benchmark tasks, e.g. [gsm8k, mmlu, hellaswag].")
    limit: int | None = Field(None, ge=1, description="At most this many samples per task.")
    num_fewshot: int | None = Field(
        None, ge=0, le=64, description="Few-shot examples (task default if unset)."
    )
    batch_size: int = Field(8, ge=1, le=4096, description="Samples scored per model call.")
    seed: int = Field(0, ge=0, description="Seed for few-shot sampling and generation.")
    resources: EvaluationResources = Field(default_factory=EvaluationResources)
    output_uri: str | None = Field(
        None, description="Where the report goes; default <root>/evaluations/<job>."
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the Job this long after it ends."
    )


class EvaluationJob(SpecModel):
    api_version: Literal["shipyard.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["EvaluationJob"] = KIND
    metadata: Metadata
    spec: EvaluationJobSpec
