"""Build or load the model and tokenizer a training job starts from.

``spec.model`` is either a preset name (``llama-tiny``...: a fresh ``LlamaForCausalLM`` whose vocabulary
and special token ids come from the dataset's tokenizer) or a model URI (``s3://...``, ``file://...`` or
an absolute path: an HF model directory, copied to a local directory first when it is remote). The
driver calls ``resolve_model_config`` before starting any worker, so a bad preset or an unloadable or
incompatible model directory fails the job up front as ``InvalidModel``.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig
from transformers import PreTrainedTokenizerBase as Tokenizer

from shipyard.data.manifest import DatasetManifest
from shipyard.errors import FailedPrecondition, NotFound
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.checkpoint import download_dir
from shipyard.training.failures import TrainingFailed
from shipyard.training.presets import build_config, get_preset
from shipyard.training.spec import TrainingJobSpec

__all__ = ["ModelSource", "fetch_tokenizer", "init_model", "is_model_uri", "resolve_model_config"]


def is_model_uri(model: str) -> bool:
    """Whether ``spec.model`` names a model directory rather than a preset."""
    return "://" in model or model.startswith("/")


@dataclass(frozen=True)
class ModelSource:
    """What to build: ``config`` always; ``weights_dir`` (a local HF dir) when starting from a model."""

    config: PretrainedConfig
    weights_dir: pathlib.Path | None


def fetch_tokenizer(storage: Storage, manifest: DatasetManifest, local_dir: pathlib.Path) -> Tokenizer:
    """The dataset's tokenizer, copied into ``local_dir`` (later copied next to the final model)."""
    if manifest.tokenizer is None:
        raise FailedPrecondition(f"dataset {manifest.uri} has no tokenizer; it was not tokenized")
    if download_dir(storage, manifest.resolve(manifest.tokenizer.uri), local_dir) == 0:
        raise NotFound(f"tokenizer {manifest.tokenizer.uri} of dataset {manifest.uri} is empty or missing")
    return AutoTokenizer.from_pretrained(str(local_dir))


def resolve_model_config(
    spec: TrainingJobSpec,
    manifest: DatasetManifest,
    tokenizer: Tokenizer,
    *,
    storage: Storage,
    local_dir: pathlib.Path,
    seq_len: int,
) -> ModelSource:
    """The model's config (and local weights when ``spec.model`` is a URI), checked against the data."""
    ref = manifest.tokenizer
    assert ref is not None  # fetch_tokenizer checked it
    vocab = max(len(tokenizer), ref.vocab_size)
    if not is_model_uri(spec.model):
        config = build_config(
            get_preset(spec.model),
            vocab_size=vocab,
            seq_len=seq_len,
            bos_id=ref.bos_id,
            eos_id=ref.eos_id,
            pad_id=ref.pad_id,
            overrides=spec.model_overrides,
        )
        return ModelSource(config, None)
    uri = uris.normalize(spec.model, field="spec.model")
    try:
        if download_dir(storage, uri, local_dir) == 0:
            raise NotFound(f"no files under {uri}")
        config = AutoConfig.from_pretrained(str(local_dir))
    except (NotFound, OSError, ValueError) as exc:
        raise TrainingFailed(
            "InvalidModel", f"spec.model: cannot load an HF model from {uri}: {exc}"
        ) from exc
    if getattr(config, "vocab_size", 0) < vocab:
        raise TrainingFailed(
            "InvalidModel",
            f"spec.model: {uri} has vocab_size {config.vocab_size}, "
            f"less than the dataset tokenizer's {vocab}",
        )
    return ModelSource(config, local_dir)


def init_model(source: ModelSource, *, seed: int) -> torch.nn.Module:
    """The fp32 model: loaded from ``weights_dir``, or freshly initialised from a seed (same on all ranks)."""
    if source.weights_dir is not None:
        return AutoModelForCausalLM.from_pretrained(str(source.weights_dir), dtype=torch.float32)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(source.config, dtype=torch.float32)
