"""The ingest service over its real gRPC API on loopback, driven by the generated client."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shipyard.api.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc
from shipyard.data.jobs import ingest_job_manager
from shipyard.jobs.manager import JobManager
from shipyard.rpc.client import connect
from shipyard.rpc.errors import from_rpc_error
from shipyard.rpc.server import ServerOptions, build_server
from shipyard.storage.uri import from_local_path
from shipyard.wire.ingest import spec_to_pb
from shipyard_services.ingest.servicer import IngestServicer
from tests.integration.ingest_fixtures import build_corpus, job

pytestmark = pytest.mark.integration
SERVICE = "shipyard.v1.IngestService"


@pytest.fixture
def corpus(shared_data: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    build_corpus(shared_data, tmp_path / "in")
    return tmp_path / "in"


@pytest.fixture
def manager(tmp_path: pathlib.Path) -> Iterator[JobManager]:
    m = ingest_job_manager(from_local_path(tmp_path / "root"), workers=1, max_concurrent_jobs=1)
    yield m
    m.close()


@pytest.fixture
def stub(manager: JobManager) -> Iterator[ingest_pb2_grpc.IngestServiceStub]:
    server = build_server(
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestServicer(manager))],
        [SERVICE],
        ServerOptions(port=0),
    )
    with server:
        channel = connect(server.address)
        yield ingest_pb2_grpc.IngestServiceStub(channel)
        channel.close()


def _spec(
    corpus: pathlib.Path, out: pathlib.Path, steps: list[dict] | None = None
) -> ingest_pb2.IngestJobSpec:
    return spec_to_pb(job(str(corpus), str(out), steps=steps).spec.model_dump(mode="json"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _violations(exc: grpc.RpcError) -> dict[str, str]:
    return {v.field: v.description for v in from_rpc_error(exc).violations}


def test_create_watch_until_succeeded(stub, corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    op = stub.CreateIngestJob(
        ingest_pb2.CreateIngestJobRequest(job_id="corpus", spec=_spec(corpus, tmp_path / "o"))
    )
    assert op.name == "operations/ingestJobs/corpus" and not op.done
    updates = list(stub.WatchIngestJob(ingest_pb2.WatchIngestJobRequest(name="corpus"), timeout=120))
    final = updates[-1]
    assert final.status.state == common_pb2.JOB_STATE_SUCCEEDED, final.status.message
    assert [u.status.progress.fraction for u in updates] == sorted(
        u.status.progress.fraction for u in updates
    )
    assert final.status.progress.fraction == 1.0
    assert (tmp_path / "o" / "manifest.json").exists() and final.status.manifest_uri.endswith("manifest.json")
    steps = {s.name: s for s in final.status.steps}
    assert steps["exact_dedup"].dropped["exact_duplicate"] > 0
    assert final.status.quarantined == 2 and final.status.tokens_written > 0
    assert {c.type for c in final.status.conditions} >= {"Created", "Running", "Succeeded"}

    got = stub.GetIngestJob(ingest_pb2.GetIngestJobRequest(name="ingestJobs/corpus"))
    assert got.status.documents_written == final.status.documents_written > 0


def test_bad_spec_is_invalid_argument_naming_fields(
    stub, corpus: pathlib.Path, tmp_path: pathlib.Path
) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(corpus, tmp_path / "o", steps=[])
    spec.steps.add(type="minhash_dedupe")
    spec.steps.add(type="minhash_dedup").params.update({"bands": -1})
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateIngestJob(ingest_pb2.CreateIngestJobRequest(job_id="bad", spec=spec))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = _violations(exc.value)
    assert "did you mean 'minhash_dedup'" in fields["spec.steps[0].type"]
    assert "spec.steps[1].bands" in fields
    # Nothing was created.
    assert stub.ListIngestJobs(ingest_pb2.ListIngestJobsRequest()).jobs == []


def test_missing_input_is_not_found(stub, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateIngestJob(ingest_pb2.CreateIngestJobRequest(spec=_spec(tmp_path / "nope", tmp_path / "o")))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in exc.value.details()


def test_get_unknown_and_bad_page_token(stub) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetIngestJob(ingest_pb2.GetIngestJobRequest(name="ghost"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListIngestJobs(ingest_pb2.ListIngestJobsRequest(page_token="%%%"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in _violations(exc.value)


def test_list_paginates_and_cancel_of_queued_job(stub, corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    # One job at a time: the second and third wait PENDING, so cancelling one is deterministic.
    for name in ("a", "b", "c"):
        stub.CreateIngestJob(
            ingest_pb2.CreateIngestJobRequest(job_id=name, spec=_spec(corpus, tmp_path / name, steps=[]))
        )
    cancelled = stub.CancelIngestJob(ingest_pb2.CancelIngestJobRequest(name="c"))
    assert cancelled.status.state in (common_pb2.JOB_STATE_CANCELLED, common_pb2.JOB_STATE_CANCELLING)
    final_c = list(stub.WatchIngestJob(ingest_pb2.WatchIngestJobRequest(name="c"), timeout=60))[-1]
    assert final_c.status.state == common_pb2.JOB_STATE_CANCELLED
    assert not (tmp_path / "c" / "manifest.json").exists()

    first = stub.ListIngestJobs(ingest_pb2.ListIngestJobsRequest(page_size=2))
    rest = stub.ListIngestJobs(
        ingest_pb2.ListIngestJobsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [j.metadata.name for j in first.jobs] + [j.metadata.name for j in rest.jobs] == ["a", "b", "c"]
    assert rest.next_page_token == ""

    list(stub.WatchIngestJob(ingest_pb2.WatchIngestJobRequest(name="b"), timeout=60))
    with pytest.raises(grpc.RpcError) as exc:
        stub.CancelIngestJob(ingest_pb2.CancelIngestJobRequest(name="b"))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_duplicate_name_is_already_exists(stub, corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    req = ingest_pb2.CreateIngestJobRequest(job_id="same", spec=_spec(corpus, tmp_path / "o", steps=[]))
    stub.CreateIngestJob(req)
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateIngestJob(req)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_restarted_service_keeps_job_history(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    root = from_local_path(tmp_path / "root")
    first = ingest_job_manager(root, workers=1)
    first.create("kept", job(str(corpus), str(tmp_path / "o"), steps=[]).spec.model_dump(mode="json"))
    assert list(first.watch("kept"))[-1].state.value == "SUCCEEDED"
    first.close()
    second = ingest_job_manager(root, workers=1)
    try:
        record = second.get("kept")
        assert record.state.value == "SUCCEEDED" and record.result is not None
        assert record.result.documents_written > 0
    finally:
        second.close()


def test_service_process_serves_health_api_and_metrics(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard_services.ingest", "--port", "0", "--metrics-port", str(_free_port())]
        + ["--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("READY ingest grpc=127.0.0.1:"), ready
        address = ready.split("grpc=")[1].split()[0]
        metrics_url = ready.split("metrics=")[1].strip()
        channel = connect(address)
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        spec = _spec(corpus, tmp_path / "o", steps=[{"type": "normalize"}])
        stub.CreateIngestJob(ingest_pb2.CreateIngestJobRequest(job_id="m", spec=spec))
        final = list(stub.WatchIngestJob(ingest_pb2.WatchIngestJobRequest(name="m"), timeout=120))[-1]
        assert final.status.state == common_pb2.JOB_STATE_SUCCEEDED
        channel.close()
        with urllib.request.urlopen(metrics_url, timeout=10) as resp:
            text = resp.read().decode()
        read = [line for line in text.splitlines() if line.startswith("shipyard_ingest_documents_read")]
        assert read and float(read[0].split()[-1]) == final.status.documents_read > 0
        assert "CreateIngestJob" in text  # per-RPC metrics carry the method
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0  # graceful shutdown on SIGTERM


def test_shipyard_up_starts_the_services(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "SHIPYARD_INGEST_PORT": "0", "SHIPYARD_METRICS_PORT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "--data-dir", str(tmp_path), "up"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = next(text for text in proc.stderr if text.startswith("ingest grpc=") or "error" in text)
        assert line.startswith("ingest grpc="), line
        address = line.split("grpc=")[1].split()[0]
        channel = connect(address)
        assert (
            ingest_pb2_grpc.IngestServiceStub(channel).ListIngestJobs(ingest_pb2.ListIngestJobsRequest()).jobs
            == []
        )
        channel.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
