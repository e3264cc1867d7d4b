"""gRPC servicer for ``shipyard.v1.IngestService``: translate, delegate, translate back.

No business logic here: validation, state and execution live in the ingest ``JobManager``; typed errors
raised there become gRPC status codes in the shared error interceptor.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from shipyard.api.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc
from shipyard.data.executor.runner import IngestResult, ProgressUpdate
from shipyard.jobs.manager import JobManager
from shipyard.wire import common
from shipyard.wire import ingest as convert


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, manager: JobManager[IngestResult, ProgressUpdate]) -> None:
        self._jobs = manager

    def CreateIngestJob(
        self, request: ingest_pb2.CreateIngestJobRequest, context: grpc.ServicerContext
    ) -> common_pb2.Operation:
        record = self._jobs.create(
            request.job_id or None,
            convert.spec_from_pb(request.spec),
            dict(request.labels),
            validate_only=request.validate_only,
        )
        return convert.record_to_operation(record)

    def GetIngestJob(
        self, request: ingest_pb2.GetIngestJobRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestJob:
        return convert.record_to_pb(self._jobs.get(request.name))

    def ListIngestJobs(
        self, request: ingest_pb2.ListIngestJobsRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.ListIngestJobsResponse:
        records, token = self._jobs.list(
            request.page_size, request.page_token, common.state_from_pb(request.state)
        )
        return ingest_pb2.ListIngestJobsResponse(
            jobs=[convert.record_to_pb(r) for r in records], next_page_token=token
        )

    def CancelIngestJob(
        self, request: ingest_pb2.CancelIngestJobRequest, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestJob:
        return convert.record_to_pb(self._jobs.cancel(request.name))

    def WatchIngestJob(
        self, request: ingest_pb2.WatchIngestJobRequest, context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.IngestJob]:
        for record in self._jobs.watch(request.name, is_active=context.is_active):
            yield convert.record_to_pb(record)
