"""The ``status`` of each custom resource kind, as the operator writes it and ``kubectl get`` shows it.

One pydantic model per kind; camelCase on the wire (``model_dump(mode="json", by_alias=True,
exclude_none=True)`` gives the patch body). The CRD's status schema is generated from these models
(``shipyard.resources.crd``), so the operator cannot write a status the API server would reject.
Conditions follow ``metav1.Condition`` (type, status, reason, message, lastTransitionTime).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shipyard.lifecycle import JobState

__all__ = [
    "AgentPhase",
    "AgentStatus",
    "Condition",
    "DeploymentPhase",
    "EvaluationJobStatus",
    "JobPhase",
    "ModelDeploymentStatus",
    "TrainingJobStatus",
    "TrainingMetrics",
]


class StatusModel(BaseModel):
    """Base of status sections: camelCase names (snake_case accepted), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class JobPhase(enum.StrEnum):
    """Phase of a TrainingJob or EvaluationJob (the lifecycle's states, spelled the Kubernetes way)."""

    PENDING = "Pending"
    SUSPENDED = "Suspended"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @classmethod
    def from_state(cls, state: JobState) -> JobPhase:
        """The phase shown for an embedded job in ``state`` (cancelling is still running)."""
        return _PHASE_OF_STATE[state]


_PHASE_OF_STATE = {
    JobState.PENDING: JobPhase.PENDING,
    JobState.SUSPENDED: JobPhase.SUSPENDED,
    JobState.RUNNING: JobPhase.RUNNING,
    JobState.CANCELLING: JobPhase.RUNNING,
    JobState.SUCCEEDED: JobPhase.SUCCEEDED,
    JobState.FAILED: JobPhase.FAILED,
    JobState.CANCELLED: JobPhase.CANCELLED,
}


class DeploymentPhase(enum.StrEnum):
    """Phase of a ModelDeployment."""

    PENDING = "Pending"
    WAITING = "Waiting"  # for modelFrom's TrainingJob to succeed or for the gate's EvaluationJob
    PROGRESSING = "Progressing"  # rolling out (new model or scale change)
    READY = "Ready"
    BLOCKED = "Blocked"  # the gate's metric did not pass its threshold
    FAILED = "Failed"


class AgentPhase(enum.StrEnum):
    """Phase of an Agent on a cluster."""

    PENDING = "Pending"
    WAITING = "Waiting"  # for the named ModelDeployment to exist and be Ready
    PROGRESSING = "Progressing"  # the agents Deployment is rolling out (new spec or model endpoint)
    RUNNING = "Running"
    FAILED = "Failed"


class Condition(StatusModel):
    """One ``metav1.Condition``: the latest observation of one aspect of the resource."""

    type: str = Field(min_length=1, description="Condition type, e.g. Created, Running, Succeeded, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="Whether the condition holds.")
    reason: str | None = Field(None, description="CamelCase reason for the last transition.")
    message: str | None = Field(None, description="Human-readable details.")
    last_transition_time: datetime | None = Field(None, description="When the status last changed.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the condition was set from."
    )


_CONDITIONS = Field(
    default_factory=list,
    description="Observations of the resource's state, one per type.",
    # A list-map keyed by type lets server-side apply merge conditions instead of replacing the list.
    json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
)


def conditions_from_record(record: dict[str, Any]) -> list[Condition]:
    """The conditions of a stored embedded job record (``JobStore`` JSON), as the CRD status has them."""
    return [
        Condition(
            type=c["type"],
            status=c["status"],
            reason=c["reason"] or None,
            message=c["message"] or None,
            last_transition_time=c["lastTransitionTime"],
        )
        for c in record.get("conditions", [])
    ]


class TrainingMetrics(StatusModel):
    """The latest logged training metrics."""

    loss: float | None = Field(None, description="Training loss at the last logged step.")
    learning_rate: float | None = Field(None, ge=0, description="Learning rate at the last logged step.")
    tokens_per_second: float | None = Field(None, ge=0, description="Training throughput over all workers.")
    mfu: float | None = Field(None, ge=0, description="Model FLOPs utilization (0..1).")
    eval_loss: float | None = Field(None, description="Loss on the validation split (finetuning).")


class TrainingJobStatus(StatusModel):
    phase: JobPhase | None = Field(None, description="Where the job is in its lifecycle.")
    conditions: list[Condition] = _CONDITIONS
    step: int | None = Field(None, ge=0, description="Optimizer steps completed.")
    total_steps: int | None = Field(None, ge=0, description="Optimizer steps the job will run.")
    tokens_seen: int | None = Field(None, ge=0, description="Training tokens consumed so far.")
    last_checkpoint: str | None = Field(None, description="URI of the newest complete checkpoint.")
    metrics: TrainingMetrics | None = Field(None, description="The latest logged metrics.")
    output_model: str | None = Field(None, description="URI of the final model once the job succeeded.")
    registered_model: str | None = Field(None, description="Registry reference model:NAME@VERSION.")
    restarts: int | None = Field(None, ge=0, description="Worker-group restarts after failures.")
    message: str | None = Field(None, description="Human-readable summary of the current state.")
    ray_job_name: str | None = Field(None, description="The KubeRay RayJob running this job.")


class EvaluationJobStatus(StatusModel):
    phase: JobPhase | None = Field(None, description="Where the job is in its lifecycle.")
    conditions: list[Condition] = _CONDITIONS
    scores: dict[str, float] = Field(
        default_factory=dict, description="Metric name (e.g. gsm8k/accuracy) -> score."
    )
    report_uri: str | None = Field(None, description="URI of the full evaluation report.")
    message: str | None = Field(None, description="Human-readable summary of the current state.")


class ModelDeploymentStatus(StatusModel):
    phase: DeploymentPhase | None = Field(None, description="Where the deployment is.")
    conditions: list[Condition] = _CONDITIONS
    replicas: int | None = Field(None, ge=0, description="Server pods that exist (scale subresource).")
    ready_replicas: int | None = Field(None, ge=0, description="Server pods ready to serve.")
    endpoint: str | None = Field(None, description="In-cluster URL of the OpenAI-compatible API.")
    model: str | None = Field(None, description="The model URI being served.")
    selector: str | None = Field(
        None, description="Label selector of the server pods, as a string (scale subresource)."
    )
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the status reflects."
    )


class AgentStatus(StatusModel):
    phase: AgentPhase | None = Field(None, description="Where the agent is.")
    conditions: list[Condition] = _CONDITIONS
    endpoint: str | None = Field(None, description="In-cluster gRPC address of the agent's service.")
    model_endpoint: str | None = Field(None, description="OpenAI-compatible base URL the agent calls.")
    replicas: int | None = Field(None, ge=0, description="Agent pods that exist.")
    ready_replicas: int | None = Field(None, ge=0, description="Agent pods ready to serve.")
    message: str | None = Field(None, description="Human-readable summary of the current state.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the status reflects."
    )
