"""The worker's half of a finetune: what ``train_worker`` builds differently when ``type: finetune``.

The loop itself (steps, all-reduce, checkpoints, stop flag, restarts) is the pretraining loop of
``shipyard.training.worker_loop``; this module gives it the finetune model (``methods.build_model``,
resumed from a checkpoint's adapter or full weights), the objective (cross-entropy over labelled tokens,
with the LM head run on those positions only: ``LabelledTokenLoss``; or DPO), the loader over the
encoded rows, and the eval loss over the validation rows.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from shipyard.finetune.dpo import DpoObjective
from shipyard.finetune.loader import FinetuneLoader, eval_batches, read_rows
from shipyard.finetune.methods import build_model
from shipyard.finetune.spec import FinetuneMethod, FinetuneSpec
from shipyard.models.local import LocalModel
from shipyard.storage.base import Storage
from shipyard.training.checkpoint import download_dir
from shipyard.training.data_loader import DataPosition
from shipyard.training.objective import LabelledTokenLoss, Objective
from shipyard.training.spec import TrainingJobSpec
from shipyard.training.strategies import Engine, make_engine

__all__ = ["FinetunePlan", "FinetuneRuntime"]


@dataclass(frozen=True)
class FinetunePlan:
    """What the driver prepared (plain data: it crosses process boundaries)."""

    base_model_uri: str
    train_uri: str
    validation_uri: str
    pad_id: int


class FinetuneRuntime:
    """One worker's finetune pieces; ``tmp`` is the worker's scratch directory."""

    def __init__(
        self, plan: dict[str, Any], spec: TrainingJobSpec, storage: Storage, tmp: pathlib.Path
    ) -> None:
        self.plan = FinetunePlan(**plan)
        self.spec, self.storage, self.tmp = spec, storage, tmp
        assert spec.finetune is not None
        self.ft: FinetuneSpec = spec.finetune
        self._validation: list[dict[str, list[int]]] | None = None

    def base(self) -> LocalModel:
        directory = self.tmp / "base-model"
        if not (directory / "config.json").exists():
            download_dir(self.storage, self.plan.base_model_uri, directory)
        return LocalModel(directory, directory.name)

    def engine(
        self, total_steps: int, device: torch.device, resume_dir: pathlib.Path | None, seed: int
    ) -> Engine:
        """Model (fresh adapter, or the checkpoint's ``resume_dir``) + objective, in an ``Engine``."""
        torch.manual_seed(seed)  # the same LoRA init on every rank (DDP would broadcast it anyway)
        base = self.base()
        if resume_dir is not None and not self.ft.uses_lora:
            model = build_model(LocalModel(resume_dir, "resume"), self.ft, device=device)
        else:
            model = build_model(base, self.ft, device=device, adapter_dir=resume_dir)
        model.train()
        return make_engine(model, self.spec, total_steps, device, self._objective(model, base, device))

    def _objective(self, model: torch.nn.Module, base: LocalModel, device: torch.device) -> Objective:
        if self.ft.method is not FinetuneMethod.DPO:
            return LabelledTokenLoss(model)  # prompts and padding carry no label: skip their logits
        reference = None
        if not self.ft.uses_lora and not self.ft.dpo.reference_free:
            full = self.ft.model_copy(update={"method": FinetuneMethod.FULL})
            reference = build_model(base, full, device=device).eval().requires_grad_(False)
        return DpoObjective(
            model,
            beta=self.ft.dpo.beta,
            pad_id=self.plan.pad_id,
            reference=reference,
            reference_free=self.ft.dpo.reference_free,
        )

    def loader(self, rank: int, world: int, position: DataPosition) -> FinetuneLoader:
        hp = self.spec.hyperparameters
        return FinetuneLoader(
            read_rows(self.storage, self.plan.train_uri),
            pad_id=self.plan.pad_id,
            rank=rank,
            world_size=world,
            micro_batch_size=hp.micro_batch_size,
            grad_accum=self.spec.gradient_accumulation_steps,
            seed=hp.seed,
            position=position,
        )

    def evaluate(self, engine: Engine, rank: int, world: int, comm: torch.device) -> dict[str, float]:
        """Mean eval loss (and DPO reward stats) over the validation rows, on all ranks; {} if none."""
        if self._validation is None:
            self._validation = read_rows(self.storage, self.plan.validation_uri)
        if not self._validation:
            return {}
        totals: dict[str, float] = {}
        count = 0
        batches = eval_batches(
            self._validation,
            pad_id=self.plan.pad_id,
            rank=rank,
            world_size=world,
            batch_size=self.spec.hyperparameters.micro_batch_size,
        )
        for batch in batches:
            rows = next(iter(batch.values())).shape[0]
            for key, value in engine.evaluate(batch).items():
                totals[key] = totals.get(key, 0.0) + value * rows
            count += rows
        keys = ["loss", "reward_accuracy", "reward_margin"]
        t = torch.tensor(
            [totals.get(k, 0.0) for k in keys] + [float(count)], dtype=torch.float64, device=comm
        )
        dist.all_reduce(t)  # every rank evaluates its share; the means are over all of them
        n = float(t[-1].item()) or 1.0
        out = {"eval_loss": float(t[0].item()) / n}
        if self.ft.method is FinetuneMethod.DPO:
            out["eval_reward_accuracy"] = float(t[1].item()) / n
            out["eval_reward_margin"] = float(t[2].item()) / n
        return out
