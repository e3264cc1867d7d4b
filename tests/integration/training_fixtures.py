"""Inputs for training tests: a real tokenized dataset (built once by the ingest pipeline) and jobs."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

from shipyard.data.executor.runner import run_ingest
from shipyard.data.spec import parse_job
from shipyard.training.spec import TrainingJob, parse_training_job

# A ~100k-parameter Llama: 2 layers of width 64, so a step on 2 CPU workers takes milliseconds.
TINY = {
    "hiddenSize": 64,
    "numHiddenLayers": 2,
    "numAttentionHeads": 4,
    "numKeyValueHeads": 2,
    "intermediateSize": 128,
}


def build_dataset(shared_data: pathlib.Path, root: pathlib.Path) -> str:
    """Tiny Shakespeare → a 2000-token BPE tokenizer → packed 64-token sequences; returns the dataset URI."""
    (root / "in").mkdir(parents=True)
    shutil.copy(shared_data / "corpus/tinyshakespeare/input.txt", root / "in" / "input.txt")
    job = parse_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "IngestJob",
            "metadata": {"name": "shakespeare"},
            "spec": {
                "input": {"uri": str(root / "in"), "textSplit": "paragraph"},
                "output": {"uri": str(root / "dataset"), "format": "jsonl"},
                "steps": [{"type": "train_tokenizer", "vocabSize": 2000}, {"type": "tokenize", "seqLen": 64}],
            },
        }
    )
    return run_ingest(job).manifest.uri


def training_job(
    name: str,
    dataset: str,
    *,
    steps: int = 30,
    workers: int = 2,
    checkpoint: dict[str, Any] | None = None,
    strategy: dict[str, Any] | None = None,
    **hyper: Any,
) -> TrainingJob:
    return parse_training_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {
                "model": "llama-tiny",
                "modelOverrides": TINY,
                "data": {"dataset": dataset},
                "hyperparameters": {
                    "steps": steps,
                    "globalBatchSize": 16,
                    "microBatchSize": 4,
                    "learningRate": 3e-3,
                    "warmupSteps": 3,
                    "seed": 1,
                    **hyper,
                },
                "resources": {"workers": workers, "cpusPerWorker": 1},
                "strategy": strategy or {"type": "ddp"},
                "checkpoint": {"everySteps": 10, "keep": 2, **(checkpoint or {})},
                "runPolicy": {"backoffLimit": 2},
            },
        }
    )


MISTRAL_TOKENIZER = "tokenizer/mistral_7b_v1"


def build_tiny_base(shared_data: pathlib.Path, root: pathlib.Path) -> str:
    """A 2-layer, width-64 Llama with the shared Mistral tokenizer (32k vocab), saved as an HF directory:
    a base model that finetunes in seconds. Returns its directory."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(shared_data / MISTRAL_TOKENIZER, local_files_only=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        # Wider than the default 0.02: with tiny embeddings a random model's logits are nearly uniform
        # whatever its hidden state, so an adapter on the projections could not move the loss.
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = root / "tiny-base"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return str(out)


def write_alpaca_subset(shared_data: pathlib.Path, path: pathlib.Path, n: int, *, skip: int = 0) -> str:
    """The first ``n`` alpaca-libre records after ``skip``, as a JSONL file; returns its path."""
    lines = (shared_data / "sft/alpaca_libre/alpaca_libre.jsonl").read_text().splitlines()
    path.write_text("\n".join(lines[skip : skip + n]) + "\n")
    return str(path)


def finetune_job(
    name: str,
    model: str,
    dataset: str,
    *,
    steps: int = 10,
    workers: int = 1,
    finetune: dict[str, Any] | None = None,
    checkpoint: dict[str, Any] | None = None,
    strategy: dict[str, Any] | None = None,
    **hyper: Any,
) -> TrainingJob:
    return parse_training_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {
                "type": "finetune",
                "model": model,
                "data": {"dataset": dataset},
                "finetune": {"chatTemplate": "mistral", "maxSeqLen": 128, **(finetune or {})},
                "hyperparameters": {
                    "steps": steps,
                    "globalBatchSize": 8,
                    "microBatchSize": 4 // workers if workers <= 4 else 1,
                    "learningRate": 3e-3,
                    "warmupSteps": 0,
                    "schedule": "constant",
                    "weightDecay": 0.0,
                    "seed": 1,
                    **hyper,
                },
                "resources": {"workers": workers, "cpusPerWorker": 1},
                "strategy": strategy or {"type": "ddp"},
                "checkpoint": {"everySteps": 5, "keep": 2, **(checkpoint or {})},
                "runPolicy": {"backoffLimit": 1},
            },
        }
    )
