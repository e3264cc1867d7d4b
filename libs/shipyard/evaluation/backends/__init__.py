"""Model backends for evaluation, and ``open_backend``: one model reference -> the backend that serves it.

A model reference is ``http://host:port[/v1]`` or ``https://...`` (an OpenAI-compatible endpoint;
``model_name`` names the served model), or anything ``shipyard.models.local`` resolves: the bundled
``smollm2-135m-instruct``, a ``.gguf`` path, ``model:NAME[@VERSION]`` or an HF model directory URI —
run with ``transformers`` (``HFBackend``), or through Shipyard's inference engine in this process when
prefixed ``engine:`` (or opened with ``engine=True``).

Other schemes are plug-ins, found through the ``shipyard.evaluation_backends`` entry point group (or
``register_backend``): that is how backends living outside this core (which must not import gRPC) join
in, e.g. ``grpc://host:port`` -> ``shipyard.clients.inference_backend`` (the inference service).

``transformers``/``torch`` are imported only when a local model is opened, so endpoint-only users never
load them.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidArgument
from shipyard.evaluation.backends.failures import RequestsFailed
from shipyard.evaluation.backends.openai_http import OpenAIBackend
from shipyard.evaluation.backends.retrying import RetryPolicy
from shipyard.evaluation.types import ModelBackend
from shipyard.models.local import SMOLLM2, resolve_local_model

if TYPE_CHECKING:
    from shipyard.config import InferenceConfig, StorageConfig
    from shipyard.models import ModelRegistry

__all__ = [
    "SMOLLM2",
    "BackendFactory",
    "OpenAIBackend",
    "RequestsFailed",
    "RetryPolicy",
    "open_backend",
    "register_backend",
]

ENGINE_PREFIX = "engine:"

# ``factory(model_ref, model_name=..., api_key=..., **options)`` for references ``<scheme>://...``.
BackendFactory = Callable[..., ModelBackend]
# Plug-ins are found through this entry point group (pyproject: grpc -> shipyard.clients), so even the
# operator's runner Job (``python -m shipyard.evaluation.runner``) opens grpc:// without importing gRPC here.
ENTRY_POINT_GROUP = "shipyard.evaluation_backends"
# Filled by ``register_backend`` and by entry points as they are first used; read by ``open_backend``.
_PLUGINS: dict[str, BackendFactory] = {}


def _plugin(scheme: str) -> BackendFactory | None:
    """The factory for ``scheme``: registered in this process, else from an installed entry point."""
    if scheme not in _PLUGINS:
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
            _PLUGINS[scheme] = entry.load()
    return _PLUGINS.get(scheme)


def register_backend(scheme: str, factory: BackendFactory) -> None:
    """Open ``<scheme>://...`` model references with ``factory``; registering a scheme again replaces it."""
    if not scheme or not scheme.isidentifier() or scheme in ("http", "https"):
        raise InvalidArgument.field("scheme", f"{scheme!r} is not a scheme a plug-in may claim")
    _PLUGINS[scheme] = factory


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
    engine: bool = False,
    inference_config: InferenceConfig | None = None,
    **endpoint_options: Any,
) -> ModelBackend:
    """The backend for ``model_ref`` (see the module docstring); bad references are ``InvalidArgument``.

    ``endpoint_options`` go to ``OpenAIBackend`` (``concurrency``, ``timeout_s``, ``retry``, ``chat``)
    or to a plug-in's factory; ``inference_config`` sizes the engine of an ``engine:`` model.
    """
    if not isinstance(model_ref, str) or not model_ref.strip():
        raise InvalidArgument.field("model", "must be a model reference, a path/URI or an http(s) endpoint")
    if model_ref.startswith(("http://", "https://")):
        if not model_name:
            raise InvalidArgument.field("model_name", f"endpoint {model_ref} needs the served model's name")
        return OpenAIBackend(model_ref, model_name, api_key=api_key, **endpoint_options)
    scheme = model_ref.split("://", 1)[0] if "://" in model_ref else None
    plugin = _plugin(scheme) if scheme else None
    if plugin is not None:
        return plugin(model_ref, model_name=model_name, api_key=api_key, **endpoint_options)
    if scheme == "grpc":
        raise InvalidArgument.field(
            "model",
            f"no backend is registered for {model_ref!r}: install shipyard with its gRPC clients "
            f"(entry point group {ENTRY_POINT_GROUP!r})",
        )
    if endpoint_options:
        raise InvalidArgument.field(
            "model", f"options {sorted(endpoint_options)} only apply to endpoints, not {model_ref!r}"
        )
    if model_ref.startswith(ENGINE_PREFIX):
        model_ref, engine = model_ref[len(ENGINE_PREFIX) :], True

    from shipyard.evaluation.backends.hf import HFBackend

    local = resolve_local_model(
        model_ref, registry=registry, storage_config=storage_config, cache_dir=cache_dir, field="model"
    )
    if engine:
        from shipyard.evaluation.backends.engine import EngineBackend

        return EngineBackend.load(local, inference_config)
    return HFBackend.load(
        local.directory,
        gguf_file=local.gguf_file,
        name=local.name,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
    )
