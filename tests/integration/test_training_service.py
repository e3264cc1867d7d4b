"""The training service over its real gRPC API: validation before compute, then a run to a model."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import grpc
import pytest

from shipyard.api.v1 import common_pb2, training_pb2, training_pb2_grpc
from shipyard.jobs.manager import JobManager
from shipyard.models.registry import ModelRegistry
from shipyard.rpc.client import connect
from shipyard.rpc.errors import from_rpc_error
from shipyard.rpc.server import ServerOptions, build_server
from shipyard.storage.local import LocalStorage
from shipyard.storage.uri import from_local_path
from shipyard.training.jobs import training_job_manager
from shipyard.wire.training import spec_to_pb
from shipyard_services.training.servicer import TrainingServicer
from tests.fixtures.ray import needs_loopback_netns
from tests.integration.training_fixtures import build_dataset, training_job

pytestmark = pytest.mark.integration
SERVICE = "shipyard.v1.TrainingService"


@pytest.fixture(scope="module")
def dataset(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_dataset(shared_data, tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def root(tmp_path: pathlib.Path) -> str:
    return from_local_path(tmp_path / "root")


@pytest.fixture
def manager(root: str) -> Iterator[JobManager]:
    m = training_job_manager(root)
    yield m
    m.close()


@pytest.fixture
def stub(manager: JobManager) -> Iterator[training_pb2_grpc.TrainingServiceStub]:
    server = build_server(
        [(training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(manager))],
        [SERVICE],
        ServerOptions(port=0),
    )
    with server:
        channel = connect(server.address)
        yield training_pb2_grpc.TrainingServiceStub(channel)
        channel.close()


def _create(stub, name: str, spec: training_pb2.TrainingJobSpec):  # type: ignore[no-untyped-def]
    return stub.CreateTrainingJob(training_pb2.CreateTrainingJobRequest(job_id=name, spec=spec))


def _spec(dataset: str, **changes: object) -> training_pb2.TrainingJobSpec:
    spec = training_job("x", dataset, steps=12).spec.model_dump(mode="json")
    for path, value in changes.items():
        section, _, key = path.partition("__")
        if key:
            spec[section][key] = value
        else:
            spec[section] = value
    return spec_to_pb(spec)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"model": "llama-huge"}, "spec.model", "llama-tiny"),
        ({"hyperparameters__learning_rate": 0.0}, "spec.hyperparameters.learningRate", "greater than 0"),
        ({"hyperparameters__global_batch_size": 10}, "spec.hyperparameters.globalBatchSize", "multiple"),
        ({"resources__gpus_per_worker": 1}, "spec.resources.gpusPerWorker", "this machine has 0"),
        ({"resources__cpus_per_worker": 64}, "spec.resources.workers", "this machine has"),
    ],
)
def test_bad_spec_is_rejected_before_anything_starts(
    stub, dataset: str, changes, field: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "bad", _spec(dataset, **changes))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in from_rpc_error(exc.value).violations}
    assert field in violations, violations
    assert words in violations[field]
    assert list(stub.ListTrainingJobs(training_pb2.ListTrainingJobsRequest()).jobs) == []


def test_missing_dataset_is_not_found(stub, tmp_path: pathlib.Path, dataset: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "nodata", _spec(dataset, data={"dataset": str(tmp_path / "nope")}))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert "spec.data.dataset" in exc.value.details()


@pytest.mark.ray
@pytest.mark.slow
@needs_loopback_netns
def test_suspended_job_resumes_trains_and_registers_its_model(  # type: ignore[no-untyped-def]
    stub, dataset: str, root: str, ray_cluster: None
) -> None:
    spec = _spec(dataset, run_policy={"suspend": True, "backoff_limit": 1})
    op = _create(stub, "tiny", spec)
    assert op.metadata.state == common_pb2.JOB_STATE_SUSPENDED and not op.done

    stub.ResumeTrainingJob(training_pb2.ResumeTrainingJobRequest(name="tiny"))
    updates = list(stub.WatchTrainingJob(training_pb2.WatchTrainingJobRequest(name="tiny"), timeout=600))
    final = updates[-1].status
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.message
    steps_seen = [u.status.step for u in updates if u.status.state == common_pb2.JOB_STATE_RUNNING]
    assert steps_seen == sorted(steps_seen) and max(steps_seen) >= 1
    assert final.step == 12 and final.tokens_seen == 12 * 16 * 64
    assert final.metrics.loss > 0 and final.metrics.tokens_per_second > 0
    assert final.output_model and final.registered_model.startswith("model:tiny@")
    assert {c.type for c in final.conditions} >= {"Created", "Suspended", "Running", "Succeeded"}

    record = ModelRegistry(LocalStorage(), root).resolve_record(final.registered_model)
    assert record.uri == final.output_model and record.lineage.dataset_uri
