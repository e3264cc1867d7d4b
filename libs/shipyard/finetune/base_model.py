"""The base model of a finetune as an HF directory in Shipyard storage, which every worker can fetch.

``spec.model`` may name a registered model (``model:NAME``), a directory URI, a ``.gguf`` file or the
bundled SmolLM2. Workers (and, on a cluster, other machines) need one loadable form, and QLoRA needs
safetensors weights (transformers cannot quantize a GGUF file on load), so a GGUF base is converted
once into ``<storage root>/cache/base-models/<name>/`` (fp32 safetensors + tokenizer; a ``COMPLETE``
marker written last makes the cache safe to reuse after a crash) and later jobs reuse it.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from shipyard.config import StorageConfig
from shipyard.models import ModelRegistry
from shipyard.models.local import LocalModel, load_pretrained, resolve_local_model
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.checkpoint import upload_dir

__all__ = ["BaseModel", "resolve_base_model"]

_COMPLETE = "COMPLETE"


@dataclass(frozen=True)
class BaseModel:
    """``uri``: the HF directory workers load; ``local``: the same files on this machine; ``lineage``:
    what the registry records as the parent (a pinned ``model:`` ref or a URI)."""

    uri: str
    local: LocalModel
    lineage: str


def resolve_base_model(
    model: str,
    *,
    storage: Storage,
    storage_root: str,
    storage_config: StorageConfig | None,
    cache_dir: pathlib.Path,
) -> BaseModel:
    """Resolve ``spec.model`` (errors name ``spec.model``), converting a GGUF base on first use."""
    registry = ModelRegistry(storage, storage_root)
    local = resolve_local_model(
        model, registry=registry, storage_config=storage_config, cache_dir=cache_dir, field="spec.model"
    )
    if model.startswith("model:"):
        record = registry.resolve_record(model, field="spec.model")
        return BaseModel(record.uri, local, record.ref)
    if local.gguf_file is None:
        uri = uris.normalize(model, field="spec.model")
        return BaseModel(uri, local, uri)
    target = uris.join(storage_root, "cache", "base-models", local.name)
    if not storage.exists(uris.join(target, _COMPLETE)):
        out = cache_dir / f"{local.name}-hf"
        weights, tokenizer = load_pretrained(local)
        # transformers dequantizes GGUF on load but keeps marking the model as "GGUF-quantized", which
        # save_pretrained refuses; the weights in memory are plain fp32, so drop the marker.
        weights.hf_quantizer = None
        if hasattr(weights.config, "quantization_config"):
            del weights.config.quantization_config
        weights.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        del weights
        storage.delete_prefix(target)
        upload_dir(storage, out, target)
        storage.write_text(uris.join(target, _COMPLETE), f"converted from {local.gguf_file}\n")
        local = LocalModel(out, local.name)
    else:
        local = resolve_local_model(
            target, storage_config=storage_config, cache_dir=cache_dir, field="spec.model"
        )
    return BaseModel(target, local, target)
