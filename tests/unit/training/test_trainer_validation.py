"""``run_training`` rejects what cannot run before any worker (or Ray) starts."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage import from_local_path
from shipyard.training.spec import parse_training_job
from shipyard.training.trainer import run_training


def _job(dataset: str, strategy: str = "ddp") -> object:
    return parse_training_job(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "bad"},
            "spec": {
                "model": "llama-tiny",
                "data": {"dataset": dataset},
                "hyperparameters": {"steps": 2, "globalBatchSize": 8, "microBatchSize": 4},
                "resources": {"workers": 2},
                "strategy": {"type": strategy},
            },
        }
    )


def test_fsdp_on_cpu_is_rejected_naming_the_field(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        run_training(_job(str(tmp_path), "fsdp"), storage_root=from_local_path(tmp_path))  # type: ignore[arg-type]
    assert info.value.violations[0].field == "spec.strategy.type"
    assert "gpusPerWorker" in str(info.value)


def test_a_missing_dataset_is_not_found(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NotFound, match="no dataset at"):
        run_training(_job(str(tmp_path / "nope")), storage_root=from_local_path(tmp_path))  # type: ignore[arg-type]
