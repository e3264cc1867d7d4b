"""The ``finetune:`` section of a ``TrainingJob`` with ``type: finetune`` and its own cross-field rules.

``finetune_violations`` lists the section's own rules; ``TrainingJobSpec``'s validator reports them
with the rules that involve other sections (the base model is not a preset, ZeRO only with full
finetuning, ...), each under its full field path; everything that needs
the world (the base model's module names, the dataset file) is checked in the feasibility step.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field

from shipyard.resources.meta import SpecModel

__all__ = ["BadRecordsSpec", "DpoSpec", "FinetuneMethod", "FinetuneSpec", "LoraSpec", "finetune_violations"]


class FinetuneMethod(enum.StrEnum):
    FULL = "full"
    LORA = "lora"
    QLORA = "qlora"
    DPO = "dpo"


class LoraSpec(SpecModel):
    r: int = Field(8, ge=1, le=1024, description="LoRA rank.")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (the update is scaled by alpha/r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | None = Field(
        None,
        description="Module names to adapt (e.g. [q_proj, v_proj]); default: every linear projection "
        "of the decoder layers.",
    )


class BadRecordsSpec(SpecModel):
    policy: Literal["skip", "reject"] = Field(
        "skip", description="skip: drop bad records (counted and reported); reject: fail on the first one."
    )
    max_fraction: float = Field(
        0.1, ge=0, le=1, description="With skip: fail the job when more than this fraction is bad."
    )


class DpoSpec(SpecModel):
    beta: float = Field(0.1, gt=0, le=10, description="DPO temperature: how far from the reference to go.")
    reference_free: bool = Field(
        False, description="Ignore the reference model (its log-probabilities count as 0)."
    )


class FinetuneSpec(SpecModel):
    method: FinetuneMethod = Field(FinetuneMethod.LORA, description="full, lora, qlora (4-bit base) or dpo.")
    adapter: Literal["lora", "none"] = Field(
        "lora", description="For method dpo: train a LoRA adapter (default) or all weights (none)."
    )
    lora: LoraSpec = Field(default_factory=LoraSpec)
    data_format: Literal["auto", "alpaca", "sharegpt", "messages", "text", "preference"] = Field(
        "auto", description="Record format of data.dataset; auto detects it from the first records."
    )
    chat_template: str | None = Field(
        None, description="Named chat template (chatml, llama-3, ...); null: the tokenizer's own."
    )
    train_on: Literal["assistant", "all"] = Field(
        "assistant", description="Which tokens carry loss: assistant replies only, or every token."
    )
    packing: bool = Field(False, description="Pack several examples per row (attention kept per example).")
    max_seq_len: int = Field(512, ge=8, le=131072, description="Tokens per row; longer examples are dropped.")
    validation_fraction: float = Field(
        0.05, ge=0, lt=1, description="Fraction of examples held out for the eval loss."
    )
    bad_records: BadRecordsSpec = Field(default_factory=BadRecordsSpec)
    dpo: DpoSpec = Field(default_factory=DpoSpec)
    merge_adapter: bool = Field(False, description="Also write the base model with the adapter merged in.")
    gradient_checkpointing: bool | None = Field(
        None,
        description="Recompute each decoder layer's activations in the backward pass instead of keeping "
        "them: far less activation memory for ~1/3 more compute. Default (null): true for qlora, false "
        "otherwise.",
    )

    @property
    def uses_lora(self) -> bool:
        if self.method is FinetuneMethod.DPO:
            return self.adapter == "lora"
        return self.method in (FinetuneMethod.LORA, FinetuneMethod.QLORA)

    @property
    def checkpoints_activations(self) -> bool:
        """Whether gradient checkpointing is on: the explicit setting, else on for QLoRA only.

        QLoRA exists to fit a big base into little memory, and once the base is 4-bit the activations
        are most of what is left (XTuner's QLoRA configs and peft's ``prepare_model_for_kbit_training``
        turn it on too); LoRA and full finetuning keep the faster default.
        """
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        return self.method is FinetuneMethod.QLORA


def finetune_violations(ft: FinetuneSpec) -> list[tuple[str, str]]:
    """The section's own rules as ``(path relative to finetune, reason)``."""
    out: list[tuple[str, str]] = []
    if ft.method is FinetuneMethod.DPO and ft.data_format not in ("auto", "preference"):
        out.append(
            ("dataFormat", f"method dpo needs preference data (chosen/rejected), not {ft.data_format}")
        )
    if ft.method is not FinetuneMethod.DPO and ft.data_format == "preference":
        out.append(("dataFormat", f"preference data needs method dpo, not {ft.method.value}"))
    if ft.method is FinetuneMethod.DPO and ft.packing:
        out.append(("packing", "method dpo compares whole chosen/rejected sequences: packing must be false"))
    if ft.lora.target_modules is not None and not ft.lora.target_modules:
        out.append(("lora.targetModules", "must name at least one module, or be omitted for all linears"))
    return out
