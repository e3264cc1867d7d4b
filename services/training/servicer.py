"""gRPC servicer for ``shipyard.v1.TrainingService``: translate, delegate, translate back."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from shipyard.api.v1 import common_pb2, training_pb2, training_pb2_grpc
from shipyard.jobs.manager import JobManager
from shipyard.training.trainer import TrainingProgress, TrainingResult
from shipyard.wire import common
from shipyard.wire import training as convert


class TrainingServicer(training_pb2_grpc.TrainingServiceServicer):
    def __init__(self, manager: JobManager[TrainingResult, TrainingProgress]) -> None:
        self._jobs = manager

    def CreateTrainingJob(
        self, request: training_pb2.CreateTrainingJobRequest, context: grpc.ServicerContext
    ) -> common_pb2.Operation:
        record = self._jobs.create(
            request.job_id or None,
            convert.spec_from_pb(request.spec),
            dict(request.labels),
            validate_only=request.validate_only,
        )
        return convert.record_to_operation(record)

    def GetTrainingJob(
        self, request: training_pb2.GetTrainingJobRequest, context: grpc.ServicerContext
    ) -> training_pb2.TrainingJob:
        return convert.record_to_pb(self._jobs.get(request.name))

    def ListTrainingJobs(
        self, request: training_pb2.ListTrainingJobsRequest, context: grpc.ServicerContext
    ) -> training_pb2.ListTrainingJobsResponse:
        records, token = self._jobs.list(
            request.page_size, request.page_token, common.state_from_pb(request.state)
        )
        return training_pb2.ListTrainingJobsResponse(
            jobs=[convert.record_to_pb(r) for r in records], next_page_token=token
        )

    def CancelTrainingJob(
        self, request: training_pb2.CancelTrainingJobRequest, context: grpc.ServicerContext
    ) -> training_pb2.TrainingJob:
        return convert.record_to_pb(self._jobs.cancel(request.name))

    def ResumeTrainingJob(
        self, request: training_pb2.ResumeTrainingJobRequest, context: grpc.ServicerContext
    ) -> training_pb2.TrainingJob:
        return convert.record_to_pb(self._jobs.resume(request.name))

    def WatchTrainingJob(
        self, request: training_pb2.WatchTrainingJobRequest, context: grpc.ServicerContext
    ) -> Iterator[training_pb2.TrainingJob]:
        for record in self._jobs.watch(request.name, is_active=context.is_active):
            yield convert.record_to_pb(record)
