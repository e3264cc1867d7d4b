"""Finetuning through the training service's real gRPC API (``type: finetune`` on CreateTrainingJob)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

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
from tests.integration.training_fixtures import build_tiny_base, finetune_job, write_alpaca_subset

pytestmark = pytest.mark.integration
SERVICE = "shipyard.v1.TrainingService"


@pytest.fixture(scope="module")
def inputs(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("inputs")
    return build_tiny_base(shared_data, root), write_alpaca_subset(shared_data, root / "alpaca.jsonl", 120)


@pytest.fixture
def root(tmp_path: pathlib.Path) -> str:
    return from_local_path(tmp_path / "root")


@pytest.fixture
def stub(root: str) -> Iterator[training_pb2_grpc.TrainingServiceStub]:
    manager: JobManager = training_job_manager(root)
    server = build_server(
        [(training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(manager))],
        [SERVICE],
        ServerOptions(port=0),
    )
    with server:
        channel = connect(server.address)
        yield training_pb2_grpc.TrainingServiceStub(channel)
        channel.close()
    manager.close()


def _create(stub: Any, name: str, spec: dict[str, Any]) -> common_pb2.Operation:
    request = training_pb2.CreateTrainingJobRequest(job_id=name, spec=spec_to_pb(spec))
    return stub.CreateTrainingJob(request)


def _spec(inputs: tuple[str, str], **finetune: Any) -> dict[str, Any]:
    base, data = inputs
    finetune = {"badRecords": {"maxFraction": 0.3}, **finetune}  # ~10% of alpaca is over 128 tokens
    return finetune_job("x", base, data, steps=4, finetune=finetune).spec.model_dump(mode="json")


def test_unknown_target_modules_are_invalid_argument_listing_the_valid_ones(
    stub: Any, inputs: tuple[str, str]
) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "typo", _spec(inputs, lora={"targetModules": ["q_proj", "query"]}))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in from_rpc_error(exc.value).violations}
    why = violations["spec.finetune.lora.targetModules"]
    assert "query" in why and "q_proj, up_proj, v_proj" in why
    assert list(stub.ListTrainingJobs(training_pb2.ListTrainingJobsRequest()).jobs) == []


def test_a_missing_dataset_file_is_not_found(
    stub: Any, inputs: tuple[str, str], tmp_path: pathlib.Path
) -> None:
    spec = _spec(inputs)
    spec["data"]["dataset"] = str(tmp_path / "nope.jsonl")
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "nodata", spec)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "spec.data.dataset" in exc.value.details()


def test_a_preset_as_base_model_is_invalid_argument(stub: Any, inputs: tuple[str, str]) -> None:
    spec = _spec(inputs)
    spec["model"] = "llama-tiny"
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "preset", spec)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec.model" in str(
        from_rpc_error(exc.value).violations
    )


@pytest.mark.ray
@pytest.mark.slow
@needs_loopback_netns
def test_a_lora_finetune_runs_to_a_registered_adapter_with_eval_loss_and_data_report(
    stub: Any, inputs: tuple[str, str], root: str, ray_cluster: None
) -> None:
    _create(stub, "sft", _spec(inputs, mergeAdapter=True))
    updates = list(stub.WatchTrainingJob(training_pb2.WatchTrainingJobRequest(name="sft"), timeout=600))
    final = updates[-1].status
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.message
    assert final.step == 4 and final.tokens_seen > 0
    assert final.metrics.HasField("eval_loss") and 0 < final.metrics.eval_loss < 20
    assert final.data_report.total == 120 and 0 < final.data_report.kept <= 120
    assert final.data_report.format == "alpaca"
    assert final.merged_model and final.registered_merged_model.startswith("model:sft-merged@")

    record = ModelRegistry(LocalStorage(), root).resolve_record(final.registered_model)
    assert record.kind == "adapter" and record.uri == final.output_model
    assert record.base_model == from_local_path(inputs[0]) and record.lineage.dataset_uri
    assert record.lineage.metrics["eval_loss"] == pytest.approx(final.metrics.eval_loss)
