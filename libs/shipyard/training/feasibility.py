"""Checks of a valid ``TrainingJob`` against the world, before any compute starts.

``parse_training_*`` already checked the document on its own; here: the model preset or base model
exists, the dataset exists, is tokenized and is long enough, and the requested GPUs/CPUs exist on this
machine (embedded mode — on a cluster, Ray/Kueue does the admission). For a finetune: the base model
resolves, the dataset file or directory exists, and ``lora.targetModules`` are linear modules of the
base architecture (``InvalidArgument`` listing the valid ones). Errors name the field.
"""

from __future__ import annotations

import os

from shipyard.data.manifest import DatasetManifest, read_manifest
from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage.base import Storage
from shipyard.storage.uri import join
from shipyard.training.presets import get_preset
from shipyard.training.spec import JobType, TrainingJobSpec


def is_model_uri(model: str) -> bool:
    return "://" in model or model.startswith(("/", "./", "../"))


def check_feasible(
    spec: TrainingJobSpec,
    storage: Storage,
    *,
    embedded: bool = True,
    gpus_available: int | None = None,
    cpus_available: int | None = None,
    storage_root: str | None = None,
) -> DatasetManifest | None:
    """Raise ``InvalidArgument``/``NotFound`` naming the field; return the dataset manifest (pretrain)."""
    if spec.type is JobType.FINETUNE:
        _check_finetune(spec, storage, storage_root)
        if embedded:
            _check_machine(spec, gpus_available, cpus_available)
        return None
    if is_model_uri(spec.model):
        if not storage.exists(join(spec.model, "config.json")):
            raise NotFound(f"spec.model: no Hugging Face model (config.json) at {spec.model}")
    else:
        get_preset(spec.model, field="spec.model")

    try:
        manifest = read_manifest(storage, spec.data.dataset)
    except NotFound:
        raise NotFound(f"spec.data.dataset: no dataset manifest at {spec.data.dataset}") from None
    if not manifest.token_shards or manifest.seq_len is None or manifest.tokenizer is None:
        raise InvalidArgument.field(
            "spec.data.dataset",
            "the dataset has no token shards; add train_tokenizer and tokenize steps to its ingest job",
        )
    if spec.data.seq_len is not None and spec.data.seq_len > manifest.seq_len:
        raise InvalidArgument.field(
            "spec.data.seqLen",
            f"{spec.data.seq_len} is longer than the dataset's sequences ({manifest.seq_len})",
        )
    batch = spec.hyperparameters.global_batch_size
    if manifest.num_sequences < batch:
        raise InvalidArgument.field(
            "spec.hyperparameters.globalBatchSize",
            f"{batch} is more than the dataset's {manifest.num_sequences} sequences",
        )

    if embedded:
        _check_machine(spec, gpus_available, cpus_available)
    return manifest


def _check_finetune(spec: TrainingJobSpec, storage: Storage, storage_root: str | None) -> None:
    from shipyard.finetune.methods import check_target_modules, load_config
    from shipyard.models import ModelRegistry
    from shipyard.models.local import LocalModel, resolve_local_model

    ft = spec.finetune
    assert ft is not None  # the spec validator fills it for type: finetune
    model = spec.model
    if model.startswith("model:"):
        if storage_root is None:
            raise InvalidArgument.field("spec.model", f"{model!r} needs a model registry (a storage root)")
        model = ModelRegistry(storage, storage_root).resolve(model, field="spec.model")
    if is_model_uri(model) and not model.endswith(".gguf"):
        if not storage.exists(join(model, "config.json")):
            raise NotFound(f"spec.model: no Hugging Face model (config.json) at {model}")
        config = _config_from_storage(storage, join(model, "config.json"))
    else:
        local: LocalModel = resolve_local_model(model, field="spec.model")
        config = load_config(local)
    if not storage.exists(spec.data.dataset) and not storage.list(spec.data.dataset):
        raise NotFound(f"spec.data.dataset: no dataset file or directory at {spec.data.dataset}")
    if ft.uses_lora:
        check_target_modules(config, ft)


def _config_from_storage(storage: Storage, uri: str) -> object:
    import json

    from transformers import AutoConfig

    data = json.loads(storage.read_text(uri))
    if "model_type" not in data:
        raise InvalidArgument.field("spec.model", f"{uri} has no model_type: not a transformers config")
    return AutoConfig.for_model(**data)


def _check_machine(spec: TrainingJobSpec, gpus: int | None, cpus: int | None) -> None:
    res = spec.resources
    if gpus is None:
        gpus = _cuda_devices()
    if cpus is None:
        cpus = os.cpu_count() or 1
    need_gpus = res.workers * res.gpus_per_worker
    if need_gpus > gpus:
        raise InvalidArgument.field(
            "spec.resources.gpusPerWorker",
            f"{res.workers} workers x {res.gpus_per_worker} GPUs = {need_gpus}, but this machine has {gpus}",
        )
    need_cpus = res.workers * res.cpus_per_worker
    if need_cpus > cpus:
        raise InvalidArgument.field(
            "spec.resources.workers",
            f"{res.workers} workers x {res.cpus_per_worker} CPUs = {need_cpus:g}, this machine has {cpus}",
        )


def _cuda_devices() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
