"""The per-worker training function Ray Train runs on every rank (``train_worker``).

Each (re)start of the worker group runs it from the top: it finds the newest complete checkpoint in
Shipyard storage (rank 0 decides, every rank follows), rebuilds model, optimizer, scheduler, RNG and
data position from it, and trains to ``total_steps``. At every step boundary rank 0 reads the stop flag
from the progress channel and broadcasts it, so all ranks stop together; a stop first writes a
checkpoint. A finetune (``type: finetune``) runs the same loop with the model, objective, loader and
eval loss of ``shipyard.finetune.runtime``. A NaN loss (the same on every rank after the all-reduce)
is recorded as a fatal failure and ends the workers normally, so Ray does not retry a run that
cannot succeed.
"""

from __future__ import annotations

import math
import os
import pathlib
import random
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from transformers import AutoModelForCausalLM, LlamaConfig

from shipyard.config import StorageConfig
from shipyard.data.manifest import read_manifest
from shipyard.storage import uri as uris
from shipyard.storage.routing import RoutingStorage
from shipyard.training.checkpoint import CheckpointStore, download_dir
from shipyard.training.data_loader import DataPosition, ResumableLoader, StepLoader
from shipyard.training.failures import TrainingFailed
from shipyard.training.metrics import METRICS_FILE, MetricsLog, StepMetrics, mfu
from shipyard.training.model_init import ModelSource, init_model
from shipyard.training.spec import TrainingJobSpec
from shipyard.training.strategies import Engine, make_engine

if TYPE_CHECKING:
    from shipyard.finetune.runtime import FinetuneRuntime

__all__ = ["WorkerPlan", "train_worker"]

_STOP_CODES = {None: 0, "cancel": 1, "deadline": 2}
_STOP_NAMES = {code: name for name, code in _STOP_CODES.items()}


@dataclass(frozen=True)
class WorkerPlan:
    """Everything the driver resolved for the workers (plain data: it crosses process boundaries)."""

    spec: dict[str, Any]
    dataset_uri: str
    checkpoint_uri: str
    seq_len: int
    total_steps: int
    model_config: dict[str, Any]
    model_weights_uri: str | None
    flops_per_token: float
    peak_flops: float | None
    storage_config: dict[str, Any] | None
    finetune: dict[str, Any] | None = None  # a FinetunePlan as a dict, for type: finetune


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train's ``train_loop_per_worker``: ``config`` holds ``plan`` (a dict) and ``channel``."""
    plan = WorkerPlan(**config["plan"])
    channel = config["channel"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if ray.get(channel.worker_started.remote(rank, os.getpid())) is not None:
        return  # a fatal failure was recorded before this restart: do not repeat it
    try:
        with tempfile.TemporaryDirectory(prefix=f"shipyard-train-{rank}-") as tmp:
            _Worker(plan, channel, rank, world, pathlib.Path(tmp)).run()
    except TrainingFailed as exc:  # deterministic (same on every rank): record it, do not retry
        ray.get(channel.fail.remote(exc.reason, exc.message))
    except torch.OutOfMemoryError as exc:  # record it so the restarted group gives up at once
        ray.get(channel.fail.remote("OutOfMemory", f"rank {rank}: {exc}; lower microBatchSize or use ZeRO"))
        raise


class _Worker:
    def __init__(self, plan: WorkerPlan, channel: Any, rank: int, world: int, tmp: pathlib.Path) -> None:
        self.plan, self.channel, self.rank, self.world, self.tmp = plan, channel, rank, world, tmp
        self.spec = TrainingJobSpec.model_validate(plan.spec)
        sc = StorageConfig.model_validate(plan.storage_config) if plan.storage_config else None
        self.storage = RoutingStorage(sc)
        self.store = CheckpointStore(self.storage, plan.checkpoint_uri, keep=self.spec.checkpoint.keep)
        self.device = ray.train.torch.get_device()
        if self.device.type == "cpu":
            # Ray exports OMP_NUM_THREADS for the worker's CPUs after torch may have sized its pool;
            # without this a 2-CPU worker can compute on one thread.
            torch.set_num_threads(max(1, int(self.spec.resources.cpus_per_worker)))
        self.log = MetricsLog(self.storage, uris.join(plan.checkpoint_uri, METRICS_FILE), tmp / METRICS_FILE)
        self._stop_ref: Any = None  # rank 0: the stop-flag request in flight
        self._stop_seen = 0
        self.finetune: FinetuneRuntime | None = None
        if plan.finetune is not None:
            from shipyard.finetune.runtime import FinetuneRuntime

            self.finetune = FinetuneRuntime(plan.finetune, self.spec, self.storage, tmp)

    def run(self) -> None:
        hp = self.spec.hyperparameters
        start = self._broadcast_int((self.store.latest() or 0) if self.rank == 0 else 0)
        state = self.store.read_state(start) if start else {}
        engine = self._engine(start)
        position = DataPosition.from_dict(state["data_position"]) if start else DataPosition()
        if start:
            self._load_rng(start)
        else:
            _seed_everything(hp.seed + self.rank)
        loader = self._loader(position)
        if self.rank == 0:
            self.log.resume(start)
        step, tokens_seen = start, int(state.get("tokens_seen", 0))
        elapsed0 = float(state.get("elapsed", 0.0))
        began = time.monotonic()
        while step < self.plan.total_steps:
            t0 = time.monotonic()
            lr = engine.lr()  # the rate this step uses (DeepSpeed steps the scheduler inside micro_step)
            micro = loader.next_step()
            outs = [engine.micro_step(mb, last=i == len(micro) - 1) for i, mb in enumerate(micro)]
            grad_norm = engine.optimizer_step()
            means = {k: sum(o[k] for o in outs) / len(outs) for k in outs[0]}
            # One collective per step carries the mean loss (and extras), the step's tokens and rank 0's
            # view of the stop flag.
            means, tokens_per_step, stop = self._reduce_step(means, self._step_tokens(loader))
            loss = means.pop("loss")
            step, tokens_seen = step + 1, tokens_seen + tokens_per_step
            checkpoint_now = step % self.spec.checkpoint.every_steps == 0 or step == self.plan.total_steps
            dt = time.monotonic() - t0  # the eval below is not training time
            if self.finetune is not None and (checkpoint_now or stop):
                means.update(self.finetune.evaluate(engine, self.rank, self.world, self._comm_device()))
            metrics = StepMetrics(
                step=step,
                loss=loss,
                lr=lr,
                grad_norm=grad_norm,
                tokens_per_s=tokens_per_step / dt,
                step_time_s=dt,
                tokens_seen=tokens_seen,
                elapsed=elapsed0 + time.monotonic() - began,
                mfu=mfu(self.plan.flops_per_token, tokens_per_step / dt, self.plan.peak_flops, self.world),
                extras=means,
            )
            if not math.isfinite(loss):
                if self.rank == 0:
                    message = f"loss is {loss} at step {step}; lower learningRate or enable gradClip"
                    ray.get(self.channel.fail.remote("NaNLoss", message))
                return
            if self.rank == 0:
                self.log.append(metrics)
                self.channel.push.remote(metrics.to_dict())
            if checkpoint_now or stop:
                self._checkpoint(engine, step, tokens_seen, loader.position, metrics)
            if stop:
                return

    def _loader(self, position: DataPosition) -> StepLoader:
        hp = self.spec.hyperparameters
        if self.finetune is not None:
            return self.finetune.loader(self.rank, self.world, position)
        return ResumableLoader(
            self.storage,
            read_manifest(self.storage, self.plan.dataset_uri),
            rank=self.rank,
            world_size=self.world,
            micro_batch_size=hp.micro_batch_size,
            grad_accum=self.spec.gradient_accumulation_steps,
            seq_len=self.plan.seq_len,
            seed=hp.seed,
            position=position,
        )

    def _step_tokens(self, loader: StepLoader) -> int:
        """This rank's tokens of the step: fixed-length rows for pretraining, real tokens for finetunes."""
        if isinstance(loader, ResumableLoader):
            return loader.global_batch * self.plan.seq_len // self.world
        return int(getattr(loader, "last_tokens", 0))

    def _engine(self, start: int) -> Engine:
        if self.finetune is not None:
            resume_dir = None
            if start:
                resume_dir = self.tmp / "resume-model"
                self.store.download(start, "model", resume_dir)
            hp = self.spec.hyperparameters
            engine = self.finetune.engine(self.plan.total_steps, self.device, resume_dir, hp.seed)
            if start:
                trainer_dir = self.tmp / "resume-trainer"
                self.store.download(start, "trainer", trainer_dir)
                engine.load(trainer_dir)
            return engine
        source = ModelSource(LlamaConfig.from_dict(self.plan.model_config), None)
        if start:
            model_dir = self.tmp / "resume-model"
            self.store.download(start, "model", model_dir)
            model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        elif self.plan.model_weights_uri is not None:
            download_dir(self.storage, self.plan.model_weights_uri, self.tmp / "base-model")
            model = init_model(ModelSource(source.config, self.tmp / "base-model"), seed=0)
        else:
            model = init_model(source, seed=self.spec.hyperparameters.seed)
        engine = make_engine(model, self.spec, self.plan.total_steps, self.device)
        if start:
            trainer_dir = self.tmp / "resume-trainer"
            self.store.download(start, "trainer", trainer_dir)
            engine.load(trainer_dir)
        return engine

    def _checkpoint(
        self, engine: Engine, step: int, tokens_seen: int, position: DataPosition, metrics: StepMetrics
    ) -> None:
        if self.rank == 0:
            self.store.begin(step)
        dist.barrier()
        local = self.tmp / f"ckpt-{step}"
        engine.save_model(local / "model", self.rank)
        engine.save(local / "trainer", self.rank)
        (local / "rng").mkdir(parents=True, exist_ok=True)
        torch.save(_rng_state(), local / "rng" / f"rank-{self.rank:05d}.pt")
        self.store.upload(step, local, "")
        dist.barrier()
        if self.rank == 0:
            self.log.upload()
            state = {
                "step": step,
                "tokens_seen": tokens_seen,
                "data_position": position.to_dict(),
                "world_size": self.world,
                "strategy": self.spec.strategy.type,
                "elapsed": metrics.elapsed,
                "metrics": metrics.scalars(),
            }
            uri = self.store.commit(step, state)
            self.store.prune()
            ray.get(self.channel.checkpointed.remote(uri))
        dist.barrier()  # nobody races ahead into a checkpoint that prune() might still be deleting

    def _load_rng(self, step: int) -> None:
        rng_dir = self.tmp / "resume-rng"
        self.store.download(step, "rng", rng_dir)
        path = rng_dir / f"rank-{self.rank:05d}.pt"
        if path.exists():  # absent when the world size grew: fresh ranks keep their seeds
            _set_rng_state(torch.load(path, weights_only=False))  # our own file: numpy/python states

    def _stop_code(self) -> int:
        """Rank 0's latest answer from the driver's stop flag, without waiting for it.

        One request is kept in flight and read when ready, so a step never blocks on the actor; a stop
        therefore lands a step or so after it was asked for.
        """
        if self.rank != 0:
            return 0
        if self._stop_ref is None:
            self._stop_ref = self.channel.stop_reason.remote()
        ready, _ = ray.wait([self._stop_ref], timeout=0)
        if ready:
            self._stop_seen = _STOP_CODES[ray.get(self._stop_ref)]
            self._stop_ref = self.channel.stop_reason.remote()
        return self._stop_seen

    def _broadcast_int(self, value: int) -> int:
        t = torch.tensor([value], dtype=torch.int64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return int(t.item())

    def _reduce_step(self, means: dict[str, float], tokens: int) -> tuple[dict[str, float], int, str | None]:
        """Means over ranks of ``means``, the sum of ``tokens``, and rank 0's stop flag: one all-reduce."""
        keys = sorted(means)
        values = [means[k] for k in keys] + [float(tokens), float(self._stop_code())]
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)  # the stop code comes from rank 0 only (the others add 0)
        out = {k: float(t[i].item()) / self.world for i, k in enumerate(keys)}
        return out, int(t[-2].item()), _STOP_NAMES[int(t[-1].item())]

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
