"""Trained models as named, versioned things: the registry that maps names to URIs and keeps lineage.

from shipyard.models import ModelRegistry
registry = ModelRegistry(storage, config.storage.root)
registry.register("llama-tiny-pretrain", "s3://b/models/job-1", kind="model", lineage=Lineage(...))
registry.resolve("model:llama-tiny-pretrain@1")   # -> "s3://b/models/job-1"
"""

from __future__ import annotations

from shipyard.models.refs import MODEL_REF_PREFIX, ModelRef, parse_model_ref, validate_model_name
from shipyard.models.registry import Lineage, ModelKind, ModelRecord, ModelRegistry

__all__ = [
    "MODEL_REF_PREFIX",
    "Lineage",
    "ModelKind",
    "ModelRecord",
    "ModelRef",
    "ModelRegistry",
    "parse_model_ref",
    "validate_model_name",
]
