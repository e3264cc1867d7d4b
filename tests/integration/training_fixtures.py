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
