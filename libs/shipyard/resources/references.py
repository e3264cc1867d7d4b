"""Ways a resource names a model: a URI, a registry reference, or the output of a TrainingJob."""

from __future__ import annotations

from pydantic import Field, model_validator

from shipyard.resources.meta import SpecModel


class ModelFrom(SpecModel):
    """Take the model another resource produced (waits until it is there)."""

    training_job: str = Field(
        description="Name of a TrainingJob in the same namespace; its outputModel is used."
    )


class ModelSource(SpecModel):
    """Exactly one of ``model`` (a URI or ``model:NAME[@VERSION]``) or ``modelFrom``."""

    model: str | None = Field(
        None, description="Model directory URI, or a registry reference model:NAME[@V]."
    )
    model_from: ModelFrom | None = Field(None, description="Use the output model of a TrainingJob.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        if (self.model is None) == (self.model_from is None):
            raise ValueError("set exactly one of model or modelFrom")
        return self
