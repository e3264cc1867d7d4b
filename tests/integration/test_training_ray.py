"""Distributed pretraining on Ray Train with 2 CPU workers (gloo), on a real tokenized corpus.

Every test runs a real ``TorchTrainer`` inside the loopback-only network namespace ``make test`` sets up.
The model is a ~100k-parameter Llama, so each run takes seconds; what is checked is what a user sees:
the loss falls, the exported model loads with stock HF code, a crashed worker or a cancelled job
continues from its checkpoint on the same loss curve.
"""

from __future__ import annotations

import os
import pathlib
import signal
import threading
from collections.abc import Callable

import pytest

from shipyard.errors import Cancelled, DeadlineExceeded
from shipyard.models import ModelRegistry
from shipyard.storage import from_local_path, join, parse
from shipyard.storage.local import LocalStorage
from shipyard.training.checkpoint import CheckpointStore
from shipyard.training.metrics import MetricsLog
from shipyard.training.trainer import TrainingProgress, TrainingResult, run_training
from tests.fixtures.ray import needs_loopback_netns
from tests.integration.training_fixtures import build_dataset, training_job

pytestmark = [
    pytest.mark.integration,
    pytest.mark.ray,
    pytest.mark.slow,  # each test starts a worker group: 10-25 s on a 2-core machine
    needs_loopback_netns,
]

STEPS = 30
Reference = tuple[TrainingResult, list[TrainingProgress]]


@pytest.fixture(scope="module")
def dataset(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_dataset(shared_data, tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return from_local_path(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def reference(dataset: str, store_root: str, ray_cluster: None) -> Reference:
    """An uninterrupted DDP run: the loss curve the interrupted runs must reproduce."""
    seen: list[TrainingProgress] = []
    result = run_training(
        training_job("reference", dataset, steps=STEPS), storage_root=store_root, on_progress=seen.append
    )
    return result, seen


def _losses(metrics_uri: str) -> list[float]:
    rows = MetricsLog.read(LocalStorage(), metrics_uri)
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["loss"] for r in rows]


def _cancel_at(step: int, cancel: threading.Event) -> Callable[[TrainingProgress], None]:
    def on_progress(p: TrainingProgress) -> None:
        if p.step >= step:
            cancel.set()

    return on_progress


def test_loss_falls_and_the_model_loads_with_stock_hf(reference: Reference, store_root: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, seen = reference
    losses = _losses(result.metrics_uri)
    assert len(losses) == STEPS and result.steps == STEPS and result.restarts == 0
    assert sum(losses[-5:]) / 5 < losses[0] - 0.5, losses
    assert [p.step for p in seen] == list(range(1, STEPS + 1))
    assert {"loss", "lr", "tokens_per_s", "step_time_s", "grad_norm", "mfu"} <= set(seen[-1].metrics)
    assert seen[-1].tokens_seen == STEPS * 16 * 64 == result.tokens_seen
    # Only the newest `keep` (2) checkpoints survive, and the last is the final step.
    assert result.last_checkpoint is not None and result.last_checkpoint.endswith("step-000030")

    path = parse(result.output_model_uri).path
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = tokenizer("ROMEO:", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 8
    assert isinstance(tokenizer.decode(out[0]), str)

    record = ModelRegistry(LocalStorage(), store_root).resolve_record(result.registered or "")
    assert record.uri == result.output_model_uri
    assert record.lineage.job_name == "reference" and record.lineage.metrics["steps"] == STEPS


def test_a_killed_worker_restarts_from_its_checkpoint_and_finishes(
    dataset: str, store_root: str, reference: Reference
) -> None:
    killed: list[int] = []

    def kill_rank1_once_a_step_past_a_checkpoint_is_reported(p: TrainingProgress) -> None:
        # Killing as soon as the checkpoint is reported could land before any later step ran, and then
        # nothing would run twice; wait for a step past it (checkpoints are 5 steps apart, so the
        # restart still resumes from this one).
        if killed or p.last_checkpoint is None or len(p.worker_pids) != 2:
            return
        if p.step > int(p.last_checkpoint.rstrip("/").rsplit("step-", 1)[1]):
            killed.append(p.step)
            os.kill(p.worker_pids[1], signal.SIGKILL)

    job = training_job("crash", dataset, steps=STEPS, checkpoint={"everySteps": 5})
    result = run_training(
        job, storage_root=store_root, on_progress=kill_rank1_once_a_step_past_a_checkpoint_is_reported
    )
    assert killed and killed[0] < STEPS, "the worker was not killed mid-run"
    assert result.restarts == 1 and result.steps == STEPS
    # Steps after the checkpoint ran twice; the rerun gives the same losses, and the whole curve
    # matches the uninterrupted run.
    assert len(result.history) > STEPS
    ref = _losses(reference[0].metrics_uri)
    assert _losses(result.metrics_uri) == pytest.approx(ref, rel=1e-4)
    assert [r["loss"] for r in result.history] == pytest.approx(
        [ref[r["step"] - 1] for r in result.history], rel=1e-4
    )


def test_a_cancelled_job_resubmitted_continues_the_same_loss_curve(
    dataset: str, store_root: str, reference: Reference
) -> None:
    cancel = threading.Event()
    job = training_job("stop-and-go", dataset, steps=STEPS)
    with pytest.raises(Cancelled):
        run_training(job, storage_root=store_root, on_progress=_cancel_at(5, cancel), cancel=cancel)
    first: list[TrainingProgress] = []
    result = run_training(job, storage_root=store_root, on_progress=first.append)
    assert first and 5 < first[0].step < STEPS, "the resubmitted job did not start from the stop checkpoint"
    assert result.steps == STEPS and result.restarts == 0
    assert _losses(result.metrics_uri) == pytest.approx(_losses(reference[0].metrics_uri), rel=1e-4)


def test_deepspeed_zero2_stops_resumes_and_follows_the_ddp_curve(
    dataset: str, store_root: str, reference: Reference
) -> None:
    cancel = threading.Event()
    job = training_job("zero2", dataset, steps=STEPS, strategy={"type": "deepspeed", "zeroStage": 2})
    with pytest.raises(Cancelled):
        run_training(job, storage_root=store_root, on_progress=_cancel_at(5, cancel), cancel=cancel)
    first: list[TrainingProgress] = []
    result = run_training(job, storage_root=store_root, on_progress=first.append)
    assert first and first[0].step > 5 and result.steps == STEPS
    # ZeRO-2 shards optimizer state and gradients but computes the same update as DDP, and its own
    # checkpoint (optimizer partitions per rank) restores it exactly.
    assert _losses(result.metrics_uri) == pytest.approx(_losses(reference[0].metrics_uri), rel=1e-3)


def test_a_job_past_its_deadline_stops_with_a_checkpoint(
    dataset: str, store_root: str, ray_cluster: None
) -> None:

    job = training_job("deadline", dataset, steps=1000)
    job.spec.run_policy.active_deadline_seconds = 1  # shorter than the worker group's start-up
    with pytest.raises(DeadlineExceeded, match="activeDeadlineSeconds=1"):
        run_training(job, storage_root=store_root)
    store = CheckpointStore(LocalStorage(), join(store_root, "checkpoints", "deadline"), keep=2)
    latest = store.latest()
    assert latest is not None and latest < 1000  # stopped early, and the work so far is kept
