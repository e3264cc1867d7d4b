"""gRPC servicer for ``shipyard.v1.EvaluationService``: translate, delegate, translate back."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from shipyard.api.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc
from shipyard.evaluation.jobs import EvalSummary
from shipyard.evaluation.runner import EvalProgress
from shipyard.jobs.manager import JobManager
from shipyard.wire import common
from shipyard.wire import evaluation as convert


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, manager: JobManager[EvalSummary, EvalProgress]) -> None:
        self._jobs = manager

    def CreateEvaluationJob(
        self, request: evaluation_pb2.CreateEvaluationJobRequest, context: grpc.ServicerContext
    ) -> common_pb2.Operation:
        record = self._jobs.create(
            request.job_id or None,
            convert.spec_from_pb(request.spec),
            dict(request.labels),
            validate_only=request.validate_only,
        )
        return convert.record_to_operation(record)

    def GetEvaluationJob(
        self, request: evaluation_pb2.GetEvaluationJobRequest, context: grpc.ServicerContext
    ) -> evaluation_pb2.EvaluationJob:
        return convert.record_to_pb(self._jobs.get(request.name))

    def ListEvaluationJobs(
        self, request: evaluation_pb2.ListEvaluationJobsRequest, context: grpc.ServicerContext
    ) -> evaluation_pb2.ListEvaluationJobsResponse:
        records, token = self._jobs.list(
            request.page_size, request.page_token, common.state_from_pb(request.state)
        )
        return evaluation_pb2.ListEvaluationJobsResponse(
            jobs=[convert.record_to_pb(r) for r in records], next_page_token=token
        )

    def CancelEvaluationJob(
        self, request: evaluation_pb2.CancelEvaluationJobRequest, context: grpc.ServicerContext
    ) -> evaluation_pb2.EvaluationJob:
        return convert.record_to_pb(self._jobs.cancel(request.name))

    def WatchEvaluationJob(
        self, request: evaluation_pb2.WatchEvaluationJobRequest, context: grpc.ServicerContext
    ) -> Iterator[evaluation_pb2.EvaluationJob]:
        for record in self._jobs.watch(request.name, is_active=context.is_active):
            yield convert.record_to_pb(record)
