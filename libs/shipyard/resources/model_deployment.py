"""The ``ModelDeployment`` spec: serve a model behind the OpenAI-compatible API, autoscaled.

The operator turns it into a Deployment running the inference service, a Service, a
HorizontalPodAutoscaler and a PodDisruptionBudget. ``modelFrom`` waits for a TrainingJob; ``gate``
deploys only when an EvaluationJob's metric passes a threshold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shipyard.resources.meta import API_VERSION, Metadata, SpecModel
from shipyard.resources.references import ModelSource

KIND = "ModelDeployment"


class Adapter(SpecModel):
    name: str = Field(min_length=1, description="Model name clients use to pick this adapter.")
    uri: str = Field(min_length=1, description="PEFT adapter directory URI or registry reference.")


class Autoscaling(SpecModel):
    min_replicas: int = Field(
        1, ge=0, description="Lower bound (0 allows scale to zero by an external scaler)."
    )
    max_replicas: int = Field(1, ge=1, le=1000, description="Upper bound.")
    target_cpu_utilization: int = Field(70, ge=1, le=100, description="HPA CPU utilization target (percent).")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class ServingResources(SpecModel):
    gpus_per_replica: int = Field(0, ge=0, le=16, description="GPUs per server pod.")
    cpus: float = Field(2, gt=0, description="CPUs per server pod.")
    memory: str = Field(
        "8Gi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$", description="Memory limit per pod."
    )
    node_pool: str | None = Field(None, description="Node pool to schedule on.")


class Gate(SpecModel):
    """Deploy only if ``metric`` of the named EvaluationJob satisfies ``operator threshold``."""

    evaluation_job: str = Field(min_length=1, description="EvaluationJob whose score decides.")
    metric: str = Field(min_length=1, description="Metric name in its report, e.g. gsm8k/accuracy.")
    threshold: float = Field(description="Value to compare against.")
    operator: Literal[">=", ">", "<=", "<"] = Field(">=", description="Comparison.")


class Serving(SpecModel):
    max_num_seqs: int = Field(64, ge=1, description="Most sequences in the running batch.")
    kv_cache_memory_fraction: float = Field(
        0.8, gt=0, le=1, description="Share of device memory for the KV cache."
    )
    quantization: Literal["none", "int8"] = Field("none", description="Weight-only quantization.")
    max_model_len: int | None = Field(
        None, ge=1, description="Longest prompt+completion; default the model's."
    )


class ModelDeploymentSpec(ModelSource):
    replicas: int = Field(
        1, ge=0, le=1000, description="Replicas when autoscaling is off (scale subresource)."
    )
    autoscaling: Autoscaling | None = Field(
        None, description="HorizontalPodAutoscaler bounds; off when unset."
    )
    adapters: list[Adapter] = Field(default_factory=list, description="LoRA adapters loaded by every server.")
    resources: ServingResources = Field(default_factory=ServingResources)
    serving: Serving = Field(default_factory=Serving)
    gate: Gate | None = Field(None, description="Only deploy when an evaluation passes.")


class ModelDeployment(SpecModel):
    api_version: Literal["shipyard.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["ModelDeployment"] = KIND
    metadata: Metadata
    spec: ModelDeploymentSpec
