"""What the driver hands the training workers: the ``WorkerPlan`` of a pretraining run or a finetune.

``pretrain_plan`` reads the dataset manifest and tokenizer and resolves the model config (a bad preset
or model URI fails here, before any compute); ``finetune_plan`` turns what ``prepare_finetune`` made
(base model in storage, encoded rows) into the same plan, with its ``finetune`` part set.
"""

from __future__ import annotations

import math
import os
import pathlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from shipyard.data.manifest import read_manifest
from shipyard.errors import InvalidArgument
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.model_init import fetch_tokenizer, is_model_uri, resolve_model_config
from shipyard.training.presets import flops_per_token, peak_flops
from shipyard.training.spec import TrainingJobSpec
from shipyard.training.worker_loop import WorkerPlan

if TYPE_CHECKING:
    from shipyard.finetune.prepare import PreparedFinetune

__all__ = ["finetune_plan", "peak_flops_per_worker", "pretrain_plan"]


def pretrain_plan(
    spec: TrainingJobSpec,
    storage: Storage,
    checkpoint_uri: str,
    tmp: pathlib.Path,
    peak: float | None,
    storage_config: dict[str, Any] | None,
) -> tuple[WorkerPlan, pathlib.Path, str]:
    """The workers' plan of a pretraining run, the local tokenizer directory and the dataset URI."""
    manifest = read_manifest(storage, spec.data.dataset)
    if not manifest.token_shards or manifest.seq_len is None:
        raise InvalidArgument.field(
            "spec.data.dataset", f"{manifest.uri} has no token shards; tokenize it first"
        )
    seq_len = spec.data.seq_len or manifest.seq_len
    if seq_len > manifest.seq_len:
        raise InvalidArgument.field(
            "spec.data.seqLen", f"{seq_len} is more than the dataset's {manifest.seq_len}"
        )
    hp = spec.hyperparameters
    total_steps = hp.steps or math.ceil((hp.tokens or 0) / (hp.global_batch_size * seq_len))
    tokenizer = fetch_tokenizer(storage, manifest, tmp / "tokenizer")
    source = resolve_model_config(
        spec, manifest, tokenizer, storage=storage, local_dir=tmp / "base-model", seq_len=seq_len
    )
    plan = WorkerPlan(
        spec=spec.model_dump(mode="json"),
        dataset_uri=manifest.uri,
        checkpoint_uri=checkpoint_uri,
        seq_len=seq_len,
        total_steps=total_steps,
        model_config=source.config.to_dict(),
        model_weights_uri=uris.normalize(spec.model) if is_model_uri(spec.model) else None,
        flops_per_token=flops_per_token(source.config, seq_len),
        peak_flops=peak,
        storage_config=storage_config,
    )
    return plan, tmp / "tokenizer", manifest.uri


def finetune_plan(
    spec: TrainingJobSpec,
    prepared: PreparedFinetune,
    checkpoint_uri: str,
    peak: float | None,
    storage_config: dict[str, Any] | None,
) -> WorkerPlan:
    from shipyard.finetune.flops import finetune_flops_per_token, matmul_weights
    from shipyard.finetune.runtime import FinetunePlan

    hp = spec.hyperparameters
    assert spec.finetune is not None
    seq_len = spec.finetune.max_seq_len
    mean_row = prepared.train_tokens / max(prepared.num_train, 1)
    total_steps = hp.steps or math.ceil((hp.tokens or 0) / (hp.global_batch_size * max(mean_row, 1.0)))
    try:  # what the method computes per token (shipyard.finetune.flops), over rows of the mean length
        weights = matmul_weights(prepared.config, spec.finetune)
        flops = finetune_flops_per_token(weights, spec.finetune, max(mean_row, 1.0))
    except (AttributeError, TypeError, ValueError):  # unknown architecture: MFU is unknown, training is not
        flops = 0.0
    ft = FinetunePlan(
        base_model_uri=prepared.base_model_uri,
        train_uri=prepared.train_uri,
        validation_uri=prepared.validation_uri,
        pad_id=prepared.pad_id,
    )
    return WorkerPlan(
        spec=spec.model_dump(mode="json"),
        dataset_uri=uris.normalize(spec.data.dataset, field="spec.data.dataset"),
        checkpoint_uri=checkpoint_uri,
        seq_len=seq_len,
        total_steps=total_steps,
        model_config=prepared.config.to_dict(),
        model_weights_uri=prepared.base_model_uri,
        flops_per_token=flops,
        peak_flops=peak if flops else None,
        storage_config=storage_config,
        finetune=asdict(ft),
    )


def peak_flops_per_worker(device: str, precision: str, cpus_per_worker: float) -> float | None:
    """Peak FLOP/s of one worker's device. A GPU is the worker's own; on CPU the known figure is the whole
    machine's, and each worker gets the share of cores it reserved (so 2 workers on a 2-core machine
    together count the machine's peak once, not twice)."""
    if device == "cuda":
        import torch

        return peak_flops(torch.cuda.get_device_name() if torch.cuda.is_available() else "unknown", precision)
    machine = peak_flops("cpu", precision)
    if machine is None:
        return None
    return machine * min(1.0, cpus_per_worker / (os.cpu_count() or 1))
