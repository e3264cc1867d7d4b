"""Publishing a finished finetune: the adapter (or full model) directory, the merged model, the registry.

The last checkpoint's ``model/`` is the PEFT adapter (``adapter_config.json`` +
``adapter_model.safetensors``) for LoRA/QLoRA/DPO-with-LoRA, or the whole model for full finetuning; it
is copied to the output URI with the base model's tokenizer, so ``PeftModel.from_pretrained(base, dir)``
and the inference engine's multi-LoRA load it as-is. With ``mergeAdapter`` the merged model goes next to
it (``<output>-merged``, see ``merge.py``). Registration comes last, with lineage: the adapter is
registered as ``kind: adapter`` on its base, a merged or full model as a model whose parent is the base.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

from shipyard.finetune.merge import merge_adapter
from shipyard.finetune.prepare import PreparedFinetune
from shipyard.models import Lineage, ModelRegistry
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.checkpoint import CheckpointStore, download_dir, upload_dir
from shipyard.training.export import export_model
from shipyard.training.spec import TrainingJob

__all__ = ["Published", "publish_finetune"]


@dataclass(frozen=True)
class Published:
    output_uri: str
    registered: str
    merged_uri: str | None
    merged_registered: str | None


def publish_finetune(
    storage: Storage,
    storage_root: str,
    store: CheckpointStore,
    step: int,
    job: TrainingJob,
    prepared: PreparedFinetune,
    *,
    metrics: dict[str, float],
    state: dict[str, Any],
    tmp: pathlib.Path,
) -> Published:
    spec, ft = job.spec, job.spec.finetune
    assert ft is not None
    output = spec.output.uri or uris.join(storage_root, "models", job.metadata.name)
    record = {"job": job.model_dump(mode="json", by_alias=True), "state": state, "data": prepared.report}
    output = export_model(storage, store, step, prepared.tokenizer_dir, output, record)
    registry = ModelRegistry(storage, storage_root)
    name = spec.output.register_as or job.metadata.name
    lineage = Lineage(
        dataset_uri=uris.normalize(spec.data.dataset, field="spec.data.dataset"),
        job_name=job.metadata.name,
        spec=spec.model_dump(mode="json", by_alias=True),
        metrics=metrics,
        parent_model=prepared.base_lineage,
    )
    if ft.uses_lora:
        ref = registry.register(
            name, output, kind="adapter", base_model=prepared.base_lineage, lineage=lineage
        )
    else:
        ref = registry.register(name, output, lineage=lineage)
    if not (ft.merge_adapter and ft.uses_lora):
        return Published(output, ref.ref, None, None)
    adapter_dir = tmp / "adapter"
    download_dir(storage, output, adapter_dir)
    merged_dir = tmp / "merged"
    merge_adapter(_local_base(storage, prepared, tmp), adapter_dir, merged_dir)
    merged_uri = output.rstrip("/") + "-merged"
    storage.delete_prefix(merged_uri)
    upload_dir(storage, merged_dir, merged_uri)
    upload_dir(storage, prepared.tokenizer_dir, merged_uri)
    storage.write_text(
        uris.join(merged_uri, "training.json"), json.dumps(record, indent=2, sort_keys=True) + "\n"
    )
    merged = registry.register(f"{name}-merged", merged_uri, lineage=lineage)
    return Published(output, ref.ref, merged_uri, merged.ref)


def _local_base(storage: Storage, prepared: PreparedFinetune, tmp: pathlib.Path) -> pathlib.Path:
    directory = tmp / "merge-base"
    download_dir(storage, prepared.base_model_uri, directory)
    return directory
