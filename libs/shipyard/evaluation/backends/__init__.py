"""Model backends for evaluation, and ``open_backend``: one model reference -> the backend that serves it.

A model reference is ``http://host:port[/v1]`` or ``https://...`` (an OpenAI-compatible endpoint;
``model_name`` names the served model), or anything ``shipyard.models.local`` resolves: the bundled
``smollm2-135m-instruct``, a ``.gguf`` path, ``model:NAME[@VERSION]`` or an HF model directory URI.

``transformers``/``torch`` are imported only when a local model is opened, so endpoint-only users never
load them.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument
from shipyard.evaluation.backends.failures import RequestsFailed
from shipyard.evaluation.backends.openai_http import OpenAIBackend, RetryPolicy
from shipyard.evaluation.types import ModelBackend
from shipyard.models.local import SMOLLM2, resolve_local_model

if TYPE_CHECKING:
    from shipyard.config import StorageConfig
    from shipyard.models import ModelRegistry

__all__ = ["SMOLLM2", "OpenAIBackend", "RequestsFailed", "RetryPolicy", "open_backend"]


def open_backend(
    model_ref: str,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    device: str = "cpu",
    registry: ModelRegistry | None = None,
    storage_config: StorageConfig | None = None,
    cache_dir: str | pathlib.Path | None = None,
    **endpoint_options: Any,
) -> ModelBackend:
    """The backend for ``model_ref`` (see the module docstring); bad references are ``InvalidArgument``.

    ``endpoint_options`` go to ``OpenAIBackend`` (``concurrency``, ``timeout_s``, ``retry``, ``chat``).
    """
    if not isinstance(model_ref, str) or not model_ref.strip():
        raise InvalidArgument.field("model", "must be a model reference, a path/URI or an http(s) endpoint")
    if model_ref.startswith(("http://", "https://")):
        if not model_name:
            raise InvalidArgument.field("model_name", f"endpoint {model_ref} needs the served model's name")
        return OpenAIBackend(model_ref, model_name, api_key=api_key, **endpoint_options)
    if endpoint_options:
        raise InvalidArgument.field(
            "model", f"options {sorted(endpoint_options)} only apply to http(s) endpoints, not {model_ref!r}"
        )

    from shipyard.evaluation.backends.hf import HFBackend

    local = resolve_local_model(
        model_ref, registry=registry, storage_config=storage_config, cache_dir=cache_dir, field="model"
    )
    return HFBackend.load(
        local.directory,
        gguf_file=local.gguf_file,
        name=local.name,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
    )
