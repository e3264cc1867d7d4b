"""The evaluation service over its real gRPC API: validation before compute, progress, scores, cancel."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import grpc
import pytest

from shipyard.api.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc
from shipyard.evaluation.jobs import evaluation_job_manager
from shipyard.rpc.client import connect
from shipyard.rpc.errors import from_rpc_error
from shipyard.rpc.server import ServerOptions, build_server
from shipyard.storage.uri import from_local_path
from shipyard.wire.evaluation import scores_from_pb
from shipyard_services.evaluation.servicer import EvaluationServicer
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration
SERVICE = "shipyard.v1.EvaluationService"
WATCH_TIMEOUT = 120.0  # a bound for a run on a loaded machine; a passing run takes seconds


@pytest.fixture(scope="module")
def tiny_model(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture
def stub(
    shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> Iterator[evaluation_pb2_grpc.EvaluationServiceStub]:
    manager = evaluation_job_manager(
        from_local_path(tmp_path / "root"), data_root=from_local_path(shared_data / "eval")
    )
    server = build_server(
        [(evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server, EvaluationServicer(manager))],
        [SERVICE],
        ServerOptions(host="127.0.0.1", port=0),
    )
    with server:
        channel = connect(server.address)
        yield evaluation_pb2_grpc.EvaluationServiceStub(channel)
        channel.close()
    manager.close()


def _spec(model: str, tasks: list[str], **fields: object) -> evaluation_pb2.EvaluationJobSpec:
    return evaluation_pb2.EvaluationJobSpec(model=model, tasks=tasks, **fields)  # type: ignore[arg-type]


def _create(stub, name: str, spec: evaluation_pb2.EvaluationJobSpec, **kw: object) -> common_pb2.Operation:  # type: ignore[no-untyped-def]
    return stub.CreateEvaluationJob(evaluation_pb2.CreateEvaluationJobRequest(job_id=name, spec=spec, **kw))


def _watch(stub, name: str) -> list[evaluation_pb2.EvaluationJob]:  # type: ignore[no-untyped-def]
    request = evaluation_pb2.WatchEvaluationJobRequest(name=name)
    return list(stub.WatchEvaluationJob(request, timeout=WATCH_TIMEOUT))


def test_job_streams_progress_and_ends_with_scores_and_a_report(stub, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    op = _create(stub, "tiny-eval", _spec(tiny_model, ["hellaswag", "mmlu_anatomy"], limit=3, batch_size=2))
    assert op.name == "operations/evaluationJobs/tiny-eval" and not op.done

    updates = _watch(stub, "tiny-eval")
    final = updates[-1].status
    assert final.state == common_pb2.JOB_STATE_SUCCEEDED, final.message
    done = [u.status.progress.completed for u in updates]
    assert done == sorted(done) and done[-1] == 6 and final.progress.fraction == 1.0
    assert {t.task: (t.completed, t.total) for t in final.tasks} == {
        "hellaswag": (3, 3),
        "mmlu_anatomy": (3, 3),
    }
    scores = scores_from_pb(final)
    for key in ("hellaswag/acc", "hellaswag/acc_norm", "mmlu_anatomy/acc", "mmlu/acc"):
        assert 0.0 <= scores[key][0] <= 1.0, key
    assert set(final.dimensions) >= {"knowledge", "reasoning", "language"}
    assert final.failed_samples == 0
    report = json.loads(pathlib.Path(final.report_uri.removeprefix("file://")).read_text())
    assert report["scores"]["hellaswag/acc"] == pytest.approx(scores["hellaswag/acc"][0])

    job = stub.GetEvaluationJob(evaluation_pb2.GetEvaluationJobRequest(name="evaluationJobs/tiny-eval"))
    assert list(job.spec.tasks) == ["hellaswag", "mmlu_anatomy"] and job.spec.limit == 3
    assert job.status.state == common_pb2.JOB_STATE_SUCCEEDED


def test_unknown_task_is_invalid_argument_naming_the_field_and_the_closest_task(
    stub, tiny_model: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "typo", _spec(tiny_model, ["hellaswag", "gsm8kk"]))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in from_rpc_error(exc.value).violations}
    assert "spec.tasks" in violations, violations
    assert "'gsm8kk'" in violations["spec.tasks"] and "did you mean 'gsm8k'" in violations["spec.tasks"]
    assert list(stub.ListEvaluationJobs(evaluation_pb2.ListEvaluationJobsRequest()).jobs) == []


def test_bad_fields_and_validate_only_start_nothing(stub, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        _create(stub, "zero-batch", _spec(tiny_model, ["hellaswag"], batch_size=0))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.batchSize" in {v.field for v in from_rpc_error(exc.value).violations}

    op = _create(stub, "dry", _spec(tiny_model, ["hellaswag"], limit=2), validate_only=True)
    assert op.metadata.state == common_pb2.JOB_STATE_PENDING and not op.done
    assert list(stub.ListEvaluationJobs(evaluation_pb2.ListEvaluationJobsRequest()).jobs) == []
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetEvaluationJob(evaluation_pb2.GetEvaluationJobRequest(name="dry"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_cancel_stops_a_running_job(stub, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    # Generation (up to 256 tokens a sample, one sample per batch) keeps even the tiny model busy for a
    # while after the first batch; scoring choices is so fast it could finish before the cancel lands.
    _create(stub, "long", _spec(tiny_model, ["gsm8k"], limit=200, batch_size=1, num_fewshot=0))
    request = evaluation_pb2.WatchEvaluationJobRequest(name="long")
    states, cancelled = [], None
    for update in stub.WatchEvaluationJob(request, timeout=WATCH_TIMEOUT):
        states.append(update.status.state)
        # Once: updates sent before the cancel landed may still be in the stream's buffer.
        if cancelled is None and update.status.progress.completed > 0:
            cancelled = stub.CancelEvaluationJob(evaluation_pb2.CancelEvaluationJobRequest(name="long"))
            assert cancelled.status.state == common_pb2.JOB_STATE_CANCELLING
    final = stub.GetEvaluationJob(evaluation_pb2.GetEvaluationJobRequest(name="long")).status
    assert final.state == common_pb2.JOB_STATE_CANCELLED, final.message
    assert common_pb2.JOB_STATE_CANCELLING in states
    assert 0 < final.progress.completed < 200 and "cached" in final.message


def test_list_pages_and_filters_by_state(stub, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b"):
        _create(stub, name, _spec(tiny_model, ["mmlu_anatomy"], limit=1))
    for name in ("a", "b"):
        assert _watch(stub, name)[-1].status.state == common_pb2.JOB_STATE_SUCCEEDED

    first = stub.ListEvaluationJobs(evaluation_pb2.ListEvaluationJobsRequest(page_size=1))
    second = stub.ListEvaluationJobs(
        evaluation_pb2.ListEvaluationJobsRequest(page_size=1, page_token=first.next_page_token)
    )
    assert [j.metadata.name for j in (*first.jobs, *second.jobs)] == ["a", "b"]
    assert second.next_page_token == ""
    failed = stub.ListEvaluationJobs(
        evaluation_pb2.ListEvaluationJobsRequest(state=common_pb2.JOB_STATE_FAILED)
    )
    assert list(failed.jobs) == []
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListEvaluationJobs(evaluation_pb2.ListEvaluationJobsRequest(page_token="garbage!"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
