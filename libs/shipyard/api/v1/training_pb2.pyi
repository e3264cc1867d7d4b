import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shipyard.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingData(_message.Message):
    __slots__ = ("dataset", "seq_len")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    seq_len: int
    def __init__(self, dataset: _Optional[str] = ..., seq_len: _Optional[int] = ...) -> None: ...

class Hyperparameters(_message.Message):
    __slots__ = ("steps", "tokens", "global_batch_size", "micro_batch_size", "learning_rate", "warmup_steps", "schedule", "min_lr_ratio", "weight_decay", "adam_beta1", "adam_beta2", "grad_clip", "seed", "precision")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MICRO_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    MIN_LR_RATIO_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    ADAM_BETA1_FIELD_NUMBER: _ClassVar[int]
    ADAM_BETA2_FIELD_NUMBER: _ClassVar[int]
    GRAD_CLIP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    steps: int
    tokens: int
    global_batch_size: int
    micro_batch_size: int
    learning_rate: float
    warmup_steps: int
    schedule: str
    min_lr_ratio: float
    weight_decay: float
    adam_beta1: float
    adam_beta2: float
    grad_clip: float
    seed: int
    precision: str
    def __init__(self, steps: _Optional[int] = ..., tokens: _Optional[int] = ..., global_batch_size: _Optional[int] = ..., micro_batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., warmup_steps: _Optional[int] = ..., schedule: _Optional[str] = ..., min_lr_ratio: _Optional[float] = ..., weight_decay: _Optional[float] = ..., adam_beta1: _Optional[float] = ..., adam_beta2: _Optional[float] = ..., grad_clip: _Optional[float] = ..., seed: _Optional[int] = ..., precision: _Optional[str] = ...) -> None: ...

class TrainingResources(_message.Message):
    __slots__ = ("workers", "gpus_per_worker", "cpus_per_worker", "node_pool")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    CPUS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    NODE_POOL_FIELD_NUMBER: _ClassVar[int]
    workers: int
    gpus_per_worker: int
    cpus_per_worker: float
    node_pool: str
    def __init__(self, workers: _Optional[int] = ..., gpus_per_worker: _Optional[int] = ..., cpus_per_worker: _Optional[float] = ..., node_pool: _Optional[str] = ...) -> None: ...

class TrainingStrategy(_message.Message):
    __slots__ = ("type", "zero_stage")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ZERO_STAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    zero_stage: int
    def __init__(self, type: _Optional[str] = ..., zero_stage: _Optional[int] = ...) -> None: ...

class CheckpointPolicy(_message.Message):
    __slots__ = ("uri", "every_steps", "keep")
    URI_FIELD_NUMBER: _ClassVar[int]
    EVERY_STEPS_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    uri: str
    every_steps: int
    keep: int
    def __init__(self, uri: _Optional[str] = ..., every_steps: _Optional[int] = ..., keep: _Optional[int] = ...) -> None: ...

class RunPolicy(_message.Message):
    __slots__ = ("backoff_limit", "active_deadline_seconds", "suspend")
    BACKOFF_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_FIELD_NUMBER: _ClassVar[int]
    backoff_limit: int
    active_deadline_seconds: int
    suspend: bool
    def __init__(self, backoff_limit: _Optional[int] = ..., active_deadline_seconds: _Optional[int] = ..., suspend: _Optional[bool] = ...) -> None: ...

class TrainingOutput(_message.Message):
    __slots__ = ("uri", "register_as")
    URI_FIELD_NUMBER: _ClassVar[int]
    REGISTER_AS_FIELD_NUMBER: _ClassVar[int]
    uri: str
    register_as: str
    def __init__(self, uri: _Optional[str] = ..., register_as: _Optional[str] = ...) -> None: ...

class TrainingJobSpec(_message.Message):
    __slots__ = ("type", "model", "model_overrides", "data", "hyperparameters", "resources", "strategy", "checkpoint", "run_policy", "output", "finetune")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    RUN_POLICY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FINETUNE_FIELD_NUMBER: _ClassVar[int]
    type: str
    model: str
    model_overrides: _struct_pb2.Struct
    data: TrainingData
    hyperparameters: Hyperparameters
    resources: TrainingResources
    strategy: TrainingStrategy
    checkpoint: CheckpointPolicy
    run_policy: RunPolicy
    output: TrainingOutput
    finetune: FinetuneSpec
    def __init__(self, type: _Optional[str] = ..., model: _Optional[str] = ..., model_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., data: _Optional[_Union[TrainingData, _Mapping]] = ..., hyperparameters: _Optional[_Union[Hyperparameters, _Mapping]] = ..., resources: _Optional[_Union[TrainingResources, _Mapping]] = ..., strategy: _Optional[_Union[TrainingStrategy, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointPolicy, _Mapping]] = ..., run_policy: _Optional[_Union[RunPolicy, _Mapping]] = ..., output: _Optional[_Union[TrainingOutput, _Mapping]] = ..., finetune: _Optional[_Union[FinetuneSpec, _Mapping]] = ...) -> None: ...

class LoraSpec(_message.Message):
    __slots__ = ("r", "alpha", "dropout", "target_modules")
    R_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    DROPOUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MODULES_FIELD_NUMBER: _ClassVar[int]
    r: int
    alpha: float
    dropout: float
    target_modules: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, r: _Optional[int] = ..., alpha: _Optional[float] = ..., dropout: _Optional[float] = ..., target_modules: _Optional[_Iterable[str]] = ...) -> None: ...

class BadRecords(_message.Message):
    __slots__ = ("policy", "max_fraction")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MAX_FRACTION_FIELD_NUMBER: _ClassVar[int]
    policy: str
    max_fraction: float
    def __init__(self, policy: _Optional[str] = ..., max_fraction: _Optional[float] = ...) -> None: ...

class DpoSpec(_message.Message):
    __slots__ = ("beta", "reference_free")
    BETA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FREE_FIELD_NUMBER: _ClassVar[int]
    beta: float
    reference_free: bool
    def __init__(self, beta: _Optional[float] = ..., reference_free: _Optional[bool] = ...) -> None: ...

class FinetuneSpec(_message.Message):
    __slots__ = ("method", "adapter", "lora", "data_format", "chat_template", "train_on", "packing", "max_seq_len", "validation_fraction", "bad_records", "dpo", "merge_adapter", "gradient_checkpointing")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_FIELD_NUMBER: _ClassVar[int]
    LORA_FIELD_NUMBER: _ClassVar[int]
    DATA_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHAT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ON_FIELD_NUMBER: _ClassVar[int]
    PACKING_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    BAD_RECORDS_FIELD_NUMBER: _ClassVar[int]
    DPO_FIELD_NUMBER: _ClassVar[int]
    MERGE_ADAPTER_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_CHECKPOINTING_FIELD_NUMBER: _ClassVar[int]
    method: str
    adapter: str
    lora: LoraSpec
    data_format: str
    chat_template: str
    train_on: str
    packing: bool
    max_seq_len: int
    validation_fraction: float
    bad_records: BadRecords
    dpo: DpoSpec
    merge_adapter: bool
    gradient_checkpointing: bool
    def __init__(self, method: _Optional[str] = ..., adapter: _Optional[str] = ..., lora: _Optional[_Union[LoraSpec, _Mapping]] = ..., data_format: _Optional[str] = ..., chat_template: _Optional[str] = ..., train_on: _Optional[str] = ..., packing: _Optional[bool] = ..., max_seq_len: _Optional[int] = ..., validation_fraction: _Optional[float] = ..., bad_records: _Optional[_Union[BadRecords, _Mapping]] = ..., dpo: _Optional[_Union[DpoSpec, _Mapping]] = ..., merge_adapter: _Optional[bool] = ..., gradient_checkpointing: _Optional[bool] = ...) -> None: ...

class TrainingMetrics(_message.Message):
    __slots__ = ("loss", "learning_rate", "tokens_per_second", "step_time_seconds", "mfu", "grad_norm", "eval_loss", "reward_accuracy", "reward_margin")
    LOSS_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STEP_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MFU_FIELD_NUMBER: _ClassVar[int]
    GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    EVAL_LOSS_FIELD_NUMBER: _ClassVar[int]
    REWARD_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    REWARD_MARGIN_FIELD_NUMBER: _ClassVar[int]
    loss: float
    learning_rate: float
    tokens_per_second: float
    step_time_seconds: float
    mfu: float
    grad_norm: float
    eval_loss: float
    reward_accuracy: float
    reward_margin: float
    def __init__(self, loss: _Optional[float] = ..., learning_rate: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., step_time_seconds: _Optional[float] = ..., mfu: _Optional[float] = ..., grad_norm: _Optional[float] = ..., eval_loss: _Optional[float] = ..., reward_accuracy: _Optional[float] = ..., reward_margin: _Optional[float] = ...) -> None: ...

class DataReport(_message.Message):
    __slots__ = ("format", "total", "kept", "bad", "truncated", "reasons", "bad_examples")
    class ReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    BAD_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    BAD_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    format: str
    total: int
    kept: int
    bad: int
    truncated: int
    reasons: _containers.ScalarMap[str, int]
    bad_examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, format: _Optional[str] = ..., total: _Optional[int] = ..., kept: _Optional[int] = ..., bad: _Optional[int] = ..., truncated: _Optional[int] = ..., reasons: _Optional[_Mapping[str, int]] = ..., bad_examples: _Optional[_Iterable[str]] = ...) -> None: ...

class TrainingJobStatus(_message.Message):
    __slots__ = ("state", "progress", "conditions", "step", "total_steps", "tokens_seen", "last_checkpoint", "metrics", "output_model", "registered_model", "metrics_uri", "restarts", "start_time", "completion_time", "message", "merged_model", "registered_merged_model", "data_report")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MODEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_MODEL_FIELD_NUMBER: _ClassVar[int]
    METRICS_URI_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MERGED_MODEL_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_MERGED_MODEL_FIELD_NUMBER: _ClassVar[int]
    DATA_REPORT_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.JobState
    progress: _common_pb2.Progress
    conditions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Condition]
    step: int
    total_steps: int
    tokens_seen: int
    last_checkpoint: str
    metrics: TrainingMetrics
    output_model: str
    registered_model: str
    metrics_uri: str
    restarts: int
    start_time: _timestamp_pb2.Timestamp
    completion_time: _timestamp_pb2.Timestamp
    message: str
    merged_model: str
    registered_merged_model: str
    data_report: DataReport
    def __init__(self, state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[_common_pb2.Condition, _Mapping]]] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., tokens_seen: _Optional[int] = ..., last_checkpoint: _Optional[str] = ..., metrics: _Optional[_Union[TrainingMetrics, _Mapping]] = ..., output_model: _Optional[str] = ..., registered_model: _Optional[str] = ..., metrics_uri: _Optional[str] = ..., restarts: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completion_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., merged_model: _Optional[str] = ..., registered_merged_model: _Optional[str] = ..., data_report: _Optional[_Union[DataReport, _Mapping]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: _common_pb2.ObjectMeta
    spec: TrainingJobSpec
    status: TrainingJobStatus
    def __init__(self, metadata: _Optional[_Union[_common_pb2.ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[TrainingJobSpec, _Mapping]] = ..., status: _Optional[_Union[TrainingJobStatus, _Mapping]] = ...) -> None: ...

class CreateTrainingJobRequest(_message.Message):
    __slots__ = ("job_id", "spec", "labels", "validate_only")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec: TrainingJobSpec
    labels: _containers.ScalarMap[str, str]
    validate_only: bool
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[TrainingJobSpec, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class GetTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListTrainingJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class ListTrainingJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[TrainingJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[TrainingJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchTrainingJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
