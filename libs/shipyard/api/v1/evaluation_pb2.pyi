import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from shipyard.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelFrom(_message.Message):
    __slots__ = ("training_job",)
    TRAINING_JOB_FIELD_NUMBER: _ClassVar[int]
    training_job: str
    def __init__(self, training_job: _Optional[str] = ...) -> None: ...

class EvaluationResources(_message.Message):
    __slots__ = ("gpus", "cpus", "memory", "node_pool")
    GPUS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NODE_POOL_FIELD_NUMBER: _ClassVar[int]
    gpus: int
    cpus: float
    memory: str
    node_pool: str
    def __init__(self, gpus: _Optional[int] = ..., cpus: _Optional[float] = ..., memory: _Optional[str] = ..., node_pool: _Optional[str] = ...) -> None: ...

class EvaluationJobSpec(_message.Message):
    __slots__ = ("model", "model_from", "tasks", "limit", "num_fewshot", "batch_size", "seed", "resources", "output_uri", "ttl_seconds_after_finished", "model_name")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FROM_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    NUM_FEWSHOT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_AFTER_FINISHED_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model: str
    model_from: ModelFrom
    tasks: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    num_fewshot: int
    batch_size: int
    seed: int
    resources: EvaluationResources
    output_uri: str
    ttl_seconds_after_finished: int
    model_name: str
    def __init__(self, model: _Optional[str] = ..., model_from: _Optional[_Union[ModelFrom, _Mapping]] = ..., tasks: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., num_fewshot: _Optional[int] = ..., batch_size: _Optional[int] = ..., seed: _Optional[int] = ..., resources: _Optional[_Union[EvaluationResources, _Mapping]] = ..., output_uri: _Optional[str] = ..., ttl_seconds_after_finished: _Optional[int] = ..., model_name: _Optional[str] = ...) -> None: ...

class Score(_message.Message):
    __slots__ = ("value", "stderr")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    value: float
    stderr: float
    def __init__(self, value: _Optional[float] = ..., stderr: _Optional[float] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task", "completed", "total")
    TASK_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    task: str
    completed: int
    total: int
    def __init__(self, task: _Optional[str] = ..., completed: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class EvaluationJobStatus(_message.Message):
    __slots__ = ("state", "progress", "conditions", "tasks", "scores", "dimensions", "report_uri", "failed_samples", "start_time", "completion_time", "message")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Score
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Score, _Mapping]] = ...) -> None: ...
    class DimensionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    REPORT_URI_FIELD_NUMBER: _ClassVar[int]
    FAILED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.JobState
    progress: _common_pb2.Progress
    conditions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Condition]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskProgress]
    scores: _containers.MessageMap[str, Score]
    dimensions: _containers.ScalarMap[str, float]
    report_uri: str
    failed_samples: int
    start_time: _timestamp_pb2.Timestamp
    completion_time: _timestamp_pb2.Timestamp
    message: str
    def __init__(self, state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[_common_pb2.Condition, _Mapping]]] = ..., tasks: _Optional[_Iterable[_Union[TaskProgress, _Mapping]]] = ..., scores: _Optional[_Mapping[str, Score]] = ..., dimensions: _Optional[_Mapping[str, float]] = ..., report_uri: _Optional[str] = ..., failed_samples: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completion_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class EvaluationJob(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: _common_pb2.ObjectMeta
    spec: EvaluationJobSpec
    status: EvaluationJobStatus
    def __init__(self, metadata: _Optional[_Union[_common_pb2.ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[EvaluationJobSpec, _Mapping]] = ..., status: _Optional[_Union[EvaluationJobStatus, _Mapping]] = ...) -> None: ...

class CreateEvaluationJobRequest(_message.Message):
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
    spec: EvaluationJobSpec
    labels: _containers.ScalarMap[str, str]
    validate_only: bool
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[EvaluationJobSpec, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class GetEvaluationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEvaluationJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class ListEvaluationJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[EvaluationJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[EvaluationJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelEvaluationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
