"""What the three benchmarked systems share: the job document, the model/data/optimizer built from it,
and how a run's step records become steady-state figures.

All three sides are built from one ``TrainingJob`` document (``job_document``), so the model config
(``resolve_model_config``), the initial weights (``init_model`` with the job's seed), the optimizer
(AdamW with ``param_groups``), the LR schedule (``make_scheduler``) and the data order
(``ResumableLoader``) are the ones Shipyard's workers build: the only thing that differs between the
sides is the harness around the training step.

Each side records, per optimizer step, ``elapsed``: seconds since its loop began, taken right after the
step's compute (before any logging), exactly where ``worker_loop.py`` takes it. The steady-state window
``(warmup, steps]`` is then timed as ``elapsed[steps] - elapsed[warmup]`` on every side, so anything a
harness does between steps (progress reporting, stop polling, metrics I/O) is inside the window.
"""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))  # tests.integration.training_fixtures: the real ingest-built dataset

from tests.integration.training_fixtures import TINY  # noqa: E402

# The machine's fp32 peak for both cores together (the brief; presets.DEFAULT_CPU_PEAK_FLOPS).
MACHINE_PEAK_FLOPS = 180e9

# Model shapes: a preset plus modelOverrides. "fixture" is the ~100k-parameter model of the training
# tests, where the fixed per-step cost of the harness dominates.
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "fixture": ("llama-tiny", TINY),
    "llama-tiny": ("llama-tiny", {}),
    "llama-small": ("llama-small", {}),
}


@dataclass(frozen=True)
class BenchConfig:
    dataset: str
    shape: str
    steps: int
    warmup: int
    global_batch: int
    micro_batch: int
    workers: int = 2

    def to_args(self) -> list[str]:
        """The command-line flags that rebuild this config in a child (``add_config_args``)."""
        return [
            f"--dataset={self.dataset}",
            f"--shape={self.shape}",
            f"--steps={self.steps}",
            f"--warmup={self.warmup}",
            f"--global-batch={self.global_batch}",
            f"--micro-batch={self.micro_batch}",
            f"--workers={self.workers}",
        ]


def add_config_args(parser: Any) -> None:
    parser.add_argument("--dataset", required=True, help="dataset URI (a tokenized manifest)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the steady-state window")
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)


def config_from_args(args: Any) -> BenchConfig:
    return BenchConfig(
        args.dataset, args.shape, args.steps, args.warmup, args.global_batch, args.micro_batch, args.workers
    )


def job_document(cfg: BenchConfig, *, workers: int, checkpoint_uri: str | None = None) -> dict[str, Any]:
    """The TrainingJob all sides train: checkpoints only at the end (everySteps > steps)."""
    preset, overrides = SHAPES[cfg.shape]
    checkpoint: dict[str, Any] = {"everySteps": 1_000_000, "keep": 1}
    if checkpoint_uri:
        checkpoint["uri"] = checkpoint_uri
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-{cfg.shape}"},
        "spec": {
            "model": preset,
            "modelOverrides": overrides,
            "data": {"dataset": cfg.dataset},
            "hyperparameters": {
                "steps": cfg.steps,
                "globalBatchSize": cfg.global_batch,
                "microBatchSize": cfg.micro_batch,
                "learningRate": 2e-3,
                "warmupSteps": 10,
                "schedule": "cosine",
                "gradClip": 1.0,
                "seed": 0,
                "precision": "fp32",
            },
            "resources": {"workers": workers, "cpusPerWorker": 1},
            "strategy": {"type": "ddp"},
            "checkpoint": checkpoint,
            "runPolicy": {"backoffLimit": 0},
        },
    }


@dataclass
class Trainee:
    """One rank's model, optimizer, scheduler and loader, as Shipyard's worker builds them."""

    model: Any
    optimizer: Any
    scheduler: Any
    loader: Any
    accum: int
    flops_per_token: float
    params: int


def _resolve(cfg: BenchConfig, world: int) -> tuple[Any, Any, Any, Any]:
    """(spec, storage, manifest, model source) exactly as ``run_training`` resolves them."""
    import tempfile

    from shipyard.data.manifest import read_manifest
    from shipyard.storage.routing import RoutingStorage
    from shipyard.training.model_init import fetch_tokenizer, resolve_model_config
    from shipyard.training.spec import parse_training_job

    spec = parse_training_job(job_document(cfg, workers=world)).spec
    storage = RoutingStorage(None)
    manifest = read_manifest(storage, cfg.dataset)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = fetch_tokenizer(storage, manifest, pathlib.Path(tmp) / "tokenizer")
        source = resolve_model_config(
            spec, manifest, tokenizer, storage=storage, local_dir=pathlib.Path(tmp) / "m",
            seq_len=manifest.seq_len or 0,
        )  # fmt: skip
    return spec, storage, manifest, source


def model_figures(cfg: BenchConfig) -> dict[str, float]:
    """Parameters, training FLOPs per token and tokens per optimizer step of ``cfg``'s model."""
    from shipyard.training.presets import flops_per_token, parameter_count

    _, _, manifest, source = _resolve(cfg, cfg.workers)
    seq_len = manifest.seq_len or 0
    return {
        "params": parameter_count(source.config),
        "flops_per_token": flops_per_token(source.config, seq_len),
        "tokens_per_step": cfg.global_batch * seq_len,
        "seq_len": seq_len,
    }


def build_trainee(cfg: BenchConfig, *, rank: int, world: int) -> Trainee:
    import torch

    from shipyard.training.data_loader import ResumableLoader
    from shipyard.training.model_init import init_model
    from shipyard.training.presets import flops_per_token, parameter_count
    from shipyard.training.schedule import make_scheduler
    from shipyard.training.strategies import param_groups

    spec, storage, manifest, source = _resolve(cfg, world)
    hp = spec.hyperparameters
    seq_len = manifest.seq_len or 0
    model = init_model(source, seed=hp.seed)
    optimizer = torch.optim.AdamW(
        param_groups(model, hp.weight_decay), lr=hp.learning_rate, betas=(hp.adam_beta1, hp.adam_beta2)
    )
    loader = ResumableLoader(
        storage,
        manifest,
        rank=rank,
        world_size=world,
        micro_batch_size=hp.micro_batch_size,
        grad_accum=spec.gradient_accumulation_steps,
        seq_len=seq_len,
        seed=hp.seed,
    )
    return Trainee(
        model,
        optimizer,
        make_scheduler(optimizer, hp, cfg.steps),
        loader,
        spec.gradient_accumulation_steps,
        flops_per_token(source.config, seq_len),
        parameter_count(source.config),
    )


def steady_state(records: list[dict[str, Any]], warmup: int, tokens_per_step: int) -> dict[str, float]:
    """tokens/s and step time over the window ``(warmup, last]``, from the ``elapsed`` timestamps."""
    by_step = {int(r["step"]): r for r in records}
    last = max(by_step)
    window = [by_step[s] for s in range(warmup + 1, last + 1)]
    seconds = float(by_step[last]["elapsed"]) - float(by_step[warmup]["elapsed"])
    return {
        "tokens_per_s": len(window) * tokens_per_step / seconds,
        "step_s": seconds / len(window),  # everything between step ends, harness included
        "step_compute_s": sum(float(r["step_time_s"]) for r in window) / len(window),  # the timed step alone
        "loop_s": float(by_step[last]["elapsed"]),
        "final_loss": float(by_step[last]["loss"]),
    }
