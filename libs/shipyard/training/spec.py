"""The typed ``TrainingJob`` spec and status: one model for YAML, gRPC and (later) the CRD.

Validation is in two parts, both before any compute: ``parse_training_job`` checks the document on its
own (types, ranges, enums, cross-field rules such as batch divisibility); ``check_feasible`` checks it
against the world (the preset exists, the dataset exists and fits, the GPUs exist). Every error names
the field by its path from the document root and says why.
"""

from __future__ import annotations

import enum
import pathlib
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from shipyard.errors import FieldViolation, InvalidArgument, from_pydantic
from shipyard.finetune.spec import FinetuneMethod, FinetuneSpec, finetune_violations
from shipyard.models.local import SMOLLM2
from shipyard.models.refs import MODEL_REF_PREFIX
from shipyard.resources.meta import API_VERSION, Metadata, SpecModel, read_manifest_file

KIND = "TrainingJob"


class JobType(enum.StrEnum):
    PRETRAIN = "pretrain"
    FINETUNE = "finetune"


class DataSpec(SpecModel):
    dataset: str = Field(
        description="pretrain: a dataset manifest URI (its root or manifest.json); finetune: a dataset "
        "file or directory URI (JSON/JSONL records)."
    )
    seq_len: int | None = Field(
        None, ge=2, description="Tokens per sequence (pretrain); default and maximum: the dataset's."
    )


class HyperParameters(SpecModel):
    steps: int | None = Field(None, ge=1, description="Optimizer steps to run (exactly one of steps/tokens).")
    tokens: int | None = Field(
        None, ge=1, description="Tokens to train on; steps = tokens / (batch x seqLen)."
    )
    global_batch_size: int = Field(32, ge=1, description="Sequences per optimizer step, over all workers.")
    micro_batch_size: int = Field(8, ge=1, description="Sequences per worker per forward/backward pass.")
    learning_rate: float = Field(3e-4, gt=0, le=1.0, description="Peak learning rate.")
    warmup_steps: int = Field(0, ge=0, description="Linear warmup steps.")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warmup.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final LR as a fraction of the peak.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    adam_beta1: float = Field(0.9, gt=0, lt=1)
    adam_beta2: float = Field(0.95, gt=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0, description="Max gradient norm; null disables clipping.")
    seed: int = Field(0, ge=0, description="Seed of weights init, data order and dropout.")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Compute precision; bf16/fp16 need GPUs (CPU bf16 is orders of magnitude slower)."
    )

    @model_validator(mode="after")
    def _steps_or_tokens(self) -> HyperParameters:
        if (self.steps is None) == (self.tokens is None):
            raise ValueError("set exactly one of steps or tokens")
        return self


class Resources(SpecModel):
    workers: int = Field(1, ge=1, le=4096, description="Ray Train workers (one process each).")
    gpus_per_worker: int = Field(0, ge=0, le=16, description="GPUs per worker; 0 trains on CPU.")
    cpus_per_worker: float = Field(1, gt=0, description="CPUs reserved per worker.")
    node_pool: str | None = Field(None, description="Node pool to schedule on (cluster mode).")


class Strategy(SpecModel):
    type: Literal["ddp", "deepspeed", "fsdp"] = Field("ddp", description="Data-parallel strategy.")
    zero_stage: int | None = Field(None, ge=1, le=3, description="DeepSpeed ZeRO stage (deepspeed only).")

    @model_validator(mode="after")
    def _zero_only_for_deepspeed(self) -> Strategy:
        if self.zero_stage is not None and self.type != "deepspeed":
            raise ValueError("zeroStage applies only to type: deepspeed")
        if self.type == "deepspeed" and self.zero_stage is None:
            self.zero_stage = 2
        return self


class CheckpointSpec(SpecModel):
    uri: str | None = Field(
        None, description="Where checkpoints go; default <storage root>/checkpoints/<job>."
    )
    every_steps: int = Field(100, ge=1, description="Checkpoint every N optimizer steps (and at the end).")
    keep: int = Field(3, ge=1, description="Keep the newest K checkpoints.")


class RunPolicy(SpecModel):
    backoff_limit: int = Field(3, ge=0, description="Worker-group restarts after failures before giving up.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Fail the job after this long.")
    suspend: bool = Field(False, description="Create the job without running it (Kueue-compatible).")


class OutputSpec(SpecModel):
    uri: str | None = Field(None, description="Final model directory; default <storage root>/models/<job>.")
    register_as: str | None = Field(None, description="Registry name; default the job name.")


class TrainingJobSpec(SpecModel):
    type: JobType = Field(JobType.PRETRAIN, description="pretrain, or finetune (see the finetune service).")
    model: str = Field(
        description="A preset name (llama-tiny, llama-1b, llama-7b, ...) or a base model URI; finetune: "
        "the base model (a URI, model:NAME[@VERSION] or smollm2-135m-instruct)."
    )
    model_overrides: dict[str, Any] = Field(
        default_factory=dict, description="LlamaConfig fields to override, e.g. {numHiddenLayers: 2}."
    )
    data: DataSpec
    hyperparameters: HyperParameters
    resources: Resources = Field(default_factory=Resources)
    strategy: Strategy = Field(default_factory=Strategy)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    output: OutputSpec = Field(default_factory=OutputSpec)
    finetune: FinetuneSpec | None = Field(None, description="Finetuning settings (type: finetune only).")

    @model_validator(mode="after")
    def _cross_field(self) -> TrainingJobSpec:
        hp, res = self.hyperparameters, self.resources
        per_step = hp.micro_batch_size * res.workers
        if hp.global_batch_size % per_step:
            raise _field_error(
                "hyperparameters.globalBatchSize",
                f"{hp.global_batch_size} is not a multiple of microBatchSize x workers = {per_step}",
            )
        if hp.precision != "fp32" and res.gpus_per_worker == 0:
            raise _field_error(
                "hyperparameters.precision", f"{hp.precision} needs gpusPerWorker >= 1; use fp32 on CPU"
            )
        if self.strategy.type == "fsdp" and res.gpus_per_worker == 0:
            raise _field_error("strategy.type", "fsdp needs gpusPerWorker >= 1; use ddp or deepspeed on CPU")
        if self.strategy.type == "deepspeed" and self.strategy.zero_stage == 3 and res.gpus_per_worker == 0:
            raise _field_error("strategy.zeroStage", "ZeRO-3 needs GPUs; use zeroStage 1 or 2 on CPU")
        if self.type is JobType.FINETUNE:
            self._finetune_rules()
        elif self.finetune is not None:
            raise _field_error("finetune", "applies only to type: finetune")
        return self

    def _finetune_rules(self) -> None:
        if self.finetune is None:
            self.finetune = FinetuneSpec()
        ft = self.finetune
        for path, message in finetune_violations(ft):
            raise _field_error(f"finetune.{path}", message)
        if not is_base_model_ref(self.model):
            raise _field_error(
                "model",
                f"{self.model!r} is not a base model: finetuning needs trained weights, given as a "
                f"model directory URI/path, model:NAME[@VERSION], a .gguf file or {SMOLLM2!r}",
            )
        if self.model_overrides:
            raise _field_error("modelOverrides", "a finetune keeps the base model's architecture")
        if self.data.seq_len is not None:
            raise _field_error("data.seqLen", "for finetune, set finetune.maxSeqLen instead")
        if self.strategy.type == "deepspeed" and (ft.uses_lora or ft.method is FinetuneMethod.QLORA):
            # ZeRO partitions optimizer state of full weights; with a few adapter weights it buys nothing.
            raise _field_error(
                "strategy.type", f"DeepSpeed ZeRO applies to method full only, not {ft.method.value}"
            )
        if ft.method is FinetuneMethod.QLORA and self.strategy.type == "fsdp":
            raise _field_error("strategy.type", "qlora's 4-bit weights cannot be sharded by fsdp; use ddp")
        if ft.method is FinetuneMethod.QLORA and self.hyperparameters.precision == "fp16":
            raise _field_error("hyperparameters.precision", "qlora computes in bf16 or fp32, not fp16")

    @property
    def gradient_accumulation_steps(self) -> int:
        hp = self.hyperparameters
        return hp.global_batch_size // (hp.micro_batch_size * self.resources.workers)


class TrainingJob(SpecModel):
    api_version: Literal["shipyard.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["TrainingJob"] = KIND
    metadata: Metadata
    spec: TrainingJobSpec


def is_base_model_ref(model: str) -> bool:
    """Whether ``model`` names trained weights (not a preset): what a finetune starts from."""
    return (
        model == SMOLLM2
        or model.startswith(MODEL_REF_PREFIX)
        or model.endswith(".gguf")
        or "://" in model
        or model.startswith("/")
    )


class _CrossFieldError(ValueError):
    """Raised inside validators to report a specific nested field instead of the model root."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[_CrossFieldError], tuple[str, str]]:
        # Ray pickles exceptions raised in workers; the default reduce would drop ``field``.
        return type(self), (self.field, str(self))


def _field_error(field: str, message: str) -> _CrossFieldError:
    return _CrossFieldError(field, message)


def parse_training_job(data: Any) -> TrainingJob:
    """Validate a whole ``TrainingJob`` document (no I/O)."""
    if not isinstance(data, dict):
        raise InvalidArgument.field(
            "<root>", "a TrainingJob must be a mapping with apiVersion, kind, metadata, spec"
        )
    try:
        return TrainingJob.model_validate(data)
    except ValidationError as exc:
        raise _to_invalid(exc, prefix="") from None


def parse_training_spec(data: Any) -> TrainingJobSpec:
    """Validate the ``spec`` part alone (what gRPC carries)."""
    try:
        return TrainingJobSpec.model_validate(data)
    except ValidationError as exc:
        raise _to_invalid(exc, prefix="spec") from None


def load_training_job_file(path: str | pathlib.Path) -> TrainingJob:
    return parse_training_job(read_manifest_file(path))


def _to_invalid(exc: ValidationError, *, prefix: str) -> InvalidArgument:
    """Like ``from_pydantic``, but cross-field errors point at the field they are about."""
    violations: list[FieldViolation] = []
    rest = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _CrossFieldError):
            loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
            path = ".".join([*([prefix] if prefix else []), *loc, cause.field])
            violations.append(FieldViolation(path, str(cause)))
        else:
            rest.append(err)
    if rest:
        violations.extend(from_pydantic(_Errors(rest), prefix=prefix).violations)
    return InvalidArgument("invalid training job", violations=violations)


class _Errors:
    """Adapter so ``from_pydantic`` can format a filtered list of pydantic error dicts."""

    def __init__(self, errors: list[Any]) -> None:
        self._errors = errors

    def errors(self) -> list[Any]:
        return self._errors
