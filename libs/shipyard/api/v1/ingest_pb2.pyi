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

class IngestInput(_message.Message):
    __slots__ = ("uri", "format", "glob", "text_field", "id_field", "text_split", "shard_bytes")
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    GLOB_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_FIELD_NUMBER: _ClassVar[int]
    TEXT_SPLIT_FIELD_NUMBER: _ClassVar[int]
    SHARD_BYTES_FIELD_NUMBER: _ClassVar[int]
    uri: str
    format: str
    glob: str
    text_field: str
    id_field: str
    text_split: str
    shard_bytes: int
    def __init__(self, uri: _Optional[str] = ..., format: _Optional[str] = ..., glob: _Optional[str] = ..., text_field: _Optional[str] = ..., id_field: _Optional[str] = ..., text_split: _Optional[str] = ..., shard_bytes: _Optional[int] = ...) -> None: ...

class IngestOutput(_message.Message):
    __slots__ = ("uri", "format")
    URI_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    uri: str
    format: str
    def __init__(self, uri: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class IngestStep(_message.Message):
    __slots__ = ("type", "params")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    type: str
    params: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class IngestExecution(_message.Message):
    __slots__ = ("executor", "workers")
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    executor: str
    workers: int
    def __init__(self, executor: _Optional[str] = ..., workers: _Optional[int] = ...) -> None: ...

class IngestJobSpec(_message.Message):
    __slots__ = ("input", "output", "steps", "execution")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    input: IngestInput
    output: IngestOutput
    steps: _containers.RepeatedCompositeFieldContainer[IngestStep]
    execution: IngestExecution
    def __init__(self, input: _Optional[_Union[IngestInput, _Mapping]] = ..., output: _Optional[_Union[IngestOutput, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[IngestStep, _Mapping]]] = ..., execution: _Optional[_Union[IngestExecution, _Mapping]] = ...) -> None: ...

class StepStats(_message.Message):
    __slots__ = ("name", "docs_in", "docs_out", "dropped", "extra")
    class DroppedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCS_IN_FIELD_NUMBER: _ClassVar[int]
    DOCS_OUT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    docs_in: int
    docs_out: int
    dropped: _containers.ScalarMap[str, int]
    extra: _containers.ScalarMap[str, int]
    def __init__(self, name: _Optional[str] = ..., docs_in: _Optional[int] = ..., docs_out: _Optional[int] = ..., dropped: _Optional[_Mapping[str, int]] = ..., extra: _Optional[_Mapping[str, int]] = ...) -> None: ...

class IngestJobStatus(_message.Message):
    __slots__ = ("state", "progress", "conditions", "steps", "manifest_uri", "quarantined", "quarantine_uri", "documents_read", "documents_written", "tokens_written", "start_time", "completion_time", "message")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URI_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    QUARANTINE_URI_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_READ_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TIME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: _common_pb2.JobState
    progress: _common_pb2.Progress
    conditions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Condition]
    steps: _containers.RepeatedCompositeFieldContainer[StepStats]
    manifest_uri: str
    quarantined: int
    quarantine_uri: str
    documents_read: int
    documents_written: int
    tokens_written: int
    start_time: _timestamp_pb2.Timestamp
    completion_time: _timestamp_pb2.Timestamp
    message: str
    def __init__(self, state: _Optional[_Union[_common_pb2.JobState, str]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., conditions: _Optional[_Iterable[_Union[_common_pb2.Condition, _Mapping]]] = ..., steps: _Optional[_Iterable[_Union[StepStats, _Mapping]]] = ..., manifest_uri: _Optional[str] = ..., quarantined: _Optional[int] = ..., quarantine_uri: _Optional[str] = ..., documents_read: _Optional[int] = ..., documents_written: _Optional[int] = ..., tokens_written: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completion_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class IngestJob(_message.Message):
    __slots__ = ("metadata", "spec", "status")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    metadata: _common_pb2.ObjectMeta
    spec: IngestJobSpec
    status: IngestJobStatus
    def __init__(self, metadata: _Optional[_Union[_common_pb2.ObjectMeta, _Mapping]] = ..., spec: _Optional[_Union[IngestJobSpec, _Mapping]] = ..., status: _Optional[_Union[IngestJobStatus, _Mapping]] = ...) -> None: ...

class CreateIngestJobRequest(_message.Message):
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
    spec: IngestJobSpec
    labels: _containers.ScalarMap[str, str]
    validate_only: bool
    def __init__(self, job_id: _Optional[str] = ..., spec: _Optional[_Union[IngestJobSpec, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class GetIngestJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListIngestJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _common_pb2.JobState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.JobState, str]] = ...) -> None: ...

class ListIngestJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[IngestJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[IngestJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelIngestJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchIngestJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
