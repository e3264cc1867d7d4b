"""The Ray Train driver: ``run_training(job)`` resolves the job, runs it on N workers, publishes the model.

Steps: read the dataset manifest and tokenizer, resolve the model config (a bad preset or model URI
fails here, before any compute), start a progress channel and a ``TorchTrainer`` (gloo on CPU, NCCL on
GPU) whose ``FailureConfig(max_failures=backoffLimit)`` restarts the worker group after a crash; the
workers resume from the newest complete checkpoint in *Shipyard* storage (Ray's own ``storage_path`` is
a throwaway temp dir for its bookkeeping). While ``fit()`` runs in a thread, this thread drains the
channel into ``on_progress`` and turns ``cancel``/the deadline into a stop request. Finally the last
checkpoint's model is exported next to the tokenizer and registered. A finetune (``type: finetune``)
prepares its base model and encoded data first (``shipyard.finetune.prepare``), runs the same loop,
and publishes an adapter (and merged model) instead (``shipyard.finetune.publish``).
"""

from __future__ import annotations

import math
import pathlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.config import StorageConfig
from shipyard.errors import Cancelled, DeadlineExceeded, InvalidArgument
from shipyard.storage import uri as uris
from shipyard.storage.routing import RoutingStorage
from shipyard.training.checkpoint import CheckpointStore
from shipyard.training.export import export_model, register_model
from shipyard.training.failures import TrainingFailed, failure_from_report
from shipyard.training.metrics import METRICS_FILE, StepMetrics, TrainingMeters
from shipyard.training.plans import finetune_plan, peak_flops_per_worker, pretrain_plan
from shipyard.training.progress import ChannelSnapshot, start_channel
from shipyard.training.spec import JobType, TrainingJob
from shipyard.training.worker_loop import WorkerPlan, train_worker

if TYPE_CHECKING:
    pass

__all__ = ["TrainingProgress", "TrainingResult", "run_training"]

_POLL_S = 0.2


@dataclass(frozen=True)
class TrainingProgress:
    """Where a run is. ``metrics``: loss, lr, tokens_per_s, step_time_s, grad_norm, mfu (when known)."""

    step: int
    total_steps: int
    tokens_seen: int
    elapsed: float
    metrics: dict[str, float]
    last_checkpoint: str | None
    restarts: int
    worker_pids: tuple[int, ...] = ()  # by rank, for operators (and the crash test)


@dataclass
class TrainingResult:
    output_model_uri: str
    steps: int
    tokens_seen: int
    final_metrics: dict[str, float]
    metrics_uri: str
    last_checkpoint: str | None
    restarts: int
    registered: str | None  # "model:<name>@<version>"
    history: list[dict[str, Any]] = field(default_factory=list)  # the step records this run streamed
    merged_model_uri: str | None = None  # finetune with mergeAdapter: the merged HF model
    merged_registered: str | None = None
    data_report: dict[str, Any] = field(default_factory=dict)  # finetune: records kept/bad and why


def run_training(
    job: TrainingJob,
    *,
    storage_root: str,
    storage_config: StorageConfig | None = None,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    cancel: threading.Event | None = None,
    ray_address: str | None = None,
) -> TrainingResult:
    """Train ``job`` (already validated) to completion; see the module docstring for the stages.

    Raises ``Cancelled`` (``cancel`` set), ``DeadlineExceeded`` (``runPolicy.activeDeadlineSeconds``)
    or ``TrainingFailed`` with a classified ``reason``; the last good checkpoint is kept in every case.
    """
    started = time.monotonic()
    spec, name = job.spec, job.metadata.name
    if spec.strategy.type == "fsdp" and spec.resources.gpus_per_worker == 0:
        # FSDP reduce-scatters gradients, which gloo (the CPU backend) does not implement.
        raise InvalidArgument.field(
            "spec.strategy.type",
            "fsdp needs GPUs (gpusPerWorker >= 1); use ddp or deepspeed zeroStage 1/2 on CPU",
        )
    storage = RoutingStorage(storage_config)
    hp = spec.hyperparameters
    ckpt_uri = spec.checkpoint.uri or uris.join(storage_root, "checkpoints", name)
    store = CheckpointStore(storage, ckpt_uri, keep=spec.checkpoint.keep)
    device = "cuda" if spec.resources.gpus_per_worker else "cpu"
    peak = peak_flops_per_worker(device, hp.precision, spec.resources.cpus_per_worker)
    sc = storage_config.model_dump(mode="json") if storage_config else None
    with tempfile.TemporaryDirectory(prefix="shipyard-train-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        if spec.type is JobType.FINETUNE:
            from shipyard.finetune.prepare import prepare_finetune  # heavy: only finetunes pay for it

            prepared = prepare_finetune(
                spec,
                storage=storage,
                storage_root=storage_root,
                storage_config=storage_config,
                work_uri=store.uri,
                tmp=tmp,
            )
            plan = finetune_plan(spec, prepared, store.uri, peak, sc)
        else:
            plan, tokenizer_dir, dataset_uri = pretrain_plan(spec, storage, store.uri, tmp, peak, sc)
        total_steps = plan.total_steps
        run = _Run(job, plan, tmp, on_progress, cancel, started)
        snapshot = run.fit(ray_address)
        step = store.latest()
        if step is None or step < total_steps:
            raise TrainingFailed("WorkerCrashed", f"workers exited at step {step or 0} of {total_steps}")
        state = store.read_state(step)
        final = {**state.get("metrics", {}), "tokens_seen": float(state["tokens_seen"]), "steps": float(step)}
        extra: dict[str, Any] = {}
        if spec.type is JobType.FINETUNE:
            from shipyard.finetune.publish import publish_finetune

            published = publish_finetune(
                storage, storage_root, store, step, job, prepared, metrics=final, state=state, tmp=tmp
            )
            output, ref = published.output_uri, published.registered
            extra = {
                "merged_model_uri": published.merged_uri,
                "merged_registered": published.merged_registered,
                "data_report": prepared.report,
            }
        else:
            output = export_model(
                storage,
                store,
                step,
                tokenizer_dir,
                spec.output.uri or uris.join(storage_root, "models", name),
                {"job": job.model_dump(mode="json", by_alias=True), "state": state},
            )
            ref = register_model(storage, storage_root, job, output, dataset_uri=dataset_uri, metrics=final)
    return TrainingResult(
        output_model_uri=output,
        steps=step,
        tokens_seen=int(state["tokens_seen"]),
        final_metrics=final,
        metrics_uri=uris.join(store.uri, METRICS_FILE),
        last_checkpoint=store.step_uri(step),
        restarts=snapshot.restarts,
        registered=ref,
        history=run.history,
        **extra,
    )


class _Run:
    """One ``fit()`` of the TorchTrainer plus the monitoring loop around it."""

    def __init__(
        self,
        job: TrainingJob,
        plan: WorkerPlan,
        tmp: Any,
        on_progress: Callable[[TrainingProgress], None] | None,
        cancel: threading.Event | None,
        started: float,
    ) -> None:
        self.job, self.plan, self.tmp = job, plan, tmp
        self.on_progress, self.cancel, self.started = on_progress, cancel, started
        self.history: list[dict[str, Any]] = []
        self.meters = TrainingMeters(job.metadata.name)
        # Eval metrics come at checkpoints only; progress keeps showing the latest until the next one.
        self._last_eval: dict[str, float] = {}

    def fit(self, ray_address: str | None) -> ChannelSnapshot:
        import ray
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        spec = self.job.spec
        res = spec.resources
        owns_ray = not ray.is_initialized()
        if owns_ray:
            # Ray starts workers at nice 15 by default; training workers are the point of the job.
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "_system_config": {"worker_niceness": 0},
            }
            if ray_address:
                kwargs["address"] = ray_address
            else:
                kwargs["num_cpus"] = math.ceil(res.workers * res.cpus_per_worker)
                kwargs["num_gpus"] = res.workers * res.gpus_per_worker
            ray.init(**kwargs)
        channel = start_channel()
        per_worker: dict[str, float] = {"CPU": res.cpus_per_worker}
        if res.gpus_per_worker:
            per_worker["GPU"] = res.gpus_per_worker
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"plan": asdict(self.plan), "channel": channel},
            torch_config=TorchConfig(backend="nccl" if res.gpus_per_worker else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=res.workers, use_gpu=res.gpus_per_worker > 0, resources_per_worker=per_worker
            ),
            run_config=RunConfig(
                name=self.job.metadata.name,
                storage_path=str(self.tmp / "ray"),
                failure_config=FailureConfig(max_failures=spec.run_policy.backoff_limit),
            ),
        )
        outcome: dict[str, BaseException] = {}

        def target() -> None:
            try:
                trainer.fit()
            except BaseException as exc:  # handed to the monitoring thread, which classifies it
                outcome["error"] = exc

        thread = threading.Thread(target=target, name="shipyard-train-fit", daemon=True)
        try:
            thread.start()
            snapshot = self._monitor(thread, channel)
        finally:
            thread.join()
            final = ray.get(channel.drain.remote())
            ray.kill(channel)
            if owns_ray:
                ray.shutdown()
        self._report(final, snapshot)
        return self._outcome(outcome.get("error"), final, snapshot)

    def _monitor(self, thread: threading.Thread, channel: Any) -> ChannelSnapshot:
        import ray

        deadline = self.job.spec.run_policy.active_deadline_seconds
        snapshot = ChannelSnapshot()
        while thread.is_alive():
            thread.join(_POLL_S)
            if self.cancel is not None and self.cancel.is_set():
                channel.request_stop.remote("cancel")
            elif deadline is not None and time.monotonic() - self.started > deadline:
                channel.request_stop.remote("deadline")
            self._report(ray.get(channel.drain.remote()), snapshot)
        return snapshot

    def _report(self, new: ChannelSnapshot, acc: ChannelSnapshot) -> None:
        """Fold ``new`` into ``acc`` and tell ``on_progress`` about each new step."""
        acc.pids.update(new.pids)
        acc.starts, acc.failure, acc.stop_reason = new.starts, new.failure, new.stop_reason
        acc.last_checkpoint = new.last_checkpoint or acc.last_checkpoint
        for record in new.records:
            self.history.append(record)
            metrics = StepMetrics(**record)
            previous = acc.records[-1]["tokens_seen"] if acc.records else 0
            self.meters.record(metrics, max(metrics.tokens_seen - previous, 0))
            acc.records = [record]  # only the latest is kept: the history lives in self.history
            self._last_eval.update({k: v for k, v in metrics.extras.items() if k.startswith("eval_")})
            if self.on_progress is not None:
                self.on_progress(
                    TrainingProgress(
                        step=metrics.step,
                        total_steps=self.plan.total_steps,
                        tokens_seen=metrics.tokens_seen,
                        elapsed=time.monotonic() - self.started,
                        metrics={**self._last_eval, **metrics.scalars()},
                        last_checkpoint=acc.last_checkpoint,
                        restarts=acc.restarts,
                        worker_pids=tuple(acc.pids[r] for r in sorted(acc.pids)),
                    )
                )

    def _outcome(
        self, error: BaseException | None, final: ChannelSnapshot, snapshot: ChannelSnapshot
    ) -> ChannelSnapshot:
        if snapshot.failure is not None:
            raise failure_from_report(*snapshot.failure)
        if snapshot.stop_reason == "cancel":
            raise Cancelled(f"training job {self.job.metadata.name} was cancelled; last checkpoint kept")
        if snapshot.stop_reason == "deadline":
            raise DeadlineExceeded(
                f"training job {self.job.metadata.name} ran past activeDeadlineSeconds="
                f"{self.job.spec.run_policy.active_deadline_seconds}; last checkpoint kept"
            )
        if error is not None:
            text = str(error)
            if "OutOfMemoryError" in text or "out of memory" in text.lower():
                raise TrainingFailed("OutOfMemory", f"a worker ran out of memory: {text[:2000]}") from error
            limit = self.job.spec.run_policy.backoff_limit
            reason = "BackoffLimitExceeded" if limit and snapshot.restarts >= limit else "WorkerCrashed"
            raise TrainingFailed(
                reason, f"after {snapshot.restarts} restarts (backoffLimit {limit}): {text[:2000]}"
            ) from error
        return snapshot
