"""Publishing a finished run: the final model directory and its registry entry.

The final checkpoint's ``model/`` (HF safetensors) and the dataset's tokenizer files are copied to the
output URI, so ``AutoModelForCausalLM.from_pretrained(dir)`` and ``AutoTokenizer.from_pretrained(dir)``
both work offline from that one directory; ``training.json`` records the job and its final state.
Then the directory is registered (a new version of the name) with its lineage. Registration comes
last: a model that is registered is complete.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from shipyard.models import Lineage, ModelRegistry
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.checkpoint import CheckpointStore, upload_dir
from shipyard.training.spec import TrainingJob

__all__ = ["export_model", "register_model"]


def export_model(
    storage: Storage,
    store: CheckpointStore,
    step: int,
    tokenizer_dir: pathlib.Path,
    output_uri: str,
    record: dict[str, Any],
) -> str:
    """Copy checkpoint ``step``'s model plus the tokenizer to ``output_uri``; returns the normalised URI."""
    output_uri = uris.normalize(output_uri, field="spec.output.uri")
    storage.delete_prefix(output_uri)  # an earlier, partial export of the same job
    source = uris.join(store.step_uri(step), "model")
    prefix = source.rstrip("/") + "/"
    for obj in storage.list(source):
        with (
            storage.open_read(obj.uri) as src,
            storage.open_write(uris.join(output_uri, obj.uri[len(prefix) :])) as dst,
        ):
            while chunk := src.read(8 << 20):
                dst.write(chunk)
    upload_dir(storage, tokenizer_dir, output_uri)
    storage.write_text(
        uris.join(output_uri, "training.json"), json.dumps(record, indent=2, sort_keys=True) + "\n"
    )
    return output_uri


def register_model(
    storage: Storage,
    storage_root: str,
    job: TrainingJob,
    output_uri: str,
    *,
    dataset_uri: str,
    metrics: dict[str, float],
) -> str:
    """Register ``output_uri`` under ``spec.output.registerAs`` (default: the job name); returns the ref."""
    spec = job.spec
    parent = spec.model if "://" in spec.model or spec.model.startswith("/") else None
    lineage = Lineage(
        dataset_uri=dataset_uri,
        job_name=job.metadata.name,
        spec=spec.model_dump(mode="json", by_alias=True),
        metrics=metrics,
        parent_model=parent,
    )
    registry = ModelRegistry(storage, storage_root)
    record = registry.register(spec.output.register_as or job.metadata.name, output_uri, lineage=lineage)
    return record.ref
