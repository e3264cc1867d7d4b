"""``shipyard ingest submit|get|list|watch|cancel``: the same jobs through the ingest gRPC service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import grpc
from google.protobuf import json_format

from shipyard.api.v1 import ingest_pb2, ingest_pb2_grpc
from shipyard.cli import display
from shipyard.cli.main import CliContext
from shipyard.data.spec import load_job_file
from shipyard.rpc.client import connect
from shipyard.rpc.errors import from_rpc_error
from shipyard.rpc.from_config import client_options, target
from shipyard.wire.common import state_name
from shipyard.wire.ingest import spec_to_pb

_TARGET = click.option("--target", help="host:port of the ingest service (default: from config).")


@contextmanager
def _stub(obj: CliContext, address: str | None) -> Iterator[ingest_pb2_grpc.IngestServiceStub]:
    channel = connect(address or target(obj.config, "ingest"), client_options(obj.config))
    try:
        yield ingest_pb2_grpc.IngestServiceStub(channel)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    finally:
        channel.close()


def _spec_pb(path: str) -> tuple[str, ingest_pb2.IngestJobSpec]:
    job = load_job_file(path)
    return job.metadata.name, spec_to_pb(job.spec.model_dump(mode="json"))


def _state(job: ingest_pb2.IngestJob) -> str:
    return state_name(job.status.state)


@click.command("submit")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="IngestJob YAML.")
@click.option("--watch/--no-watch", default=True, help="Follow progress until the job ends.")
@_TARGET
@click.pass_obj
def submit(obj: CliContext, path: str, watch: bool, target: str | None) -> None:
    """Send an IngestJob to the ingest service."""
    name, spec = _spec_pb(path)
    with _stub(obj, target) as stub:
        op = stub.CreateIngestJob(ingest_pb2.CreateIngestJobRequest(job_id=name, spec=spec))
        display.console.print(f"created {op.metadata.target}")
        if watch:
            _follow(stub, name)


@click.command("watch")
@click.argument("name")
@_TARGET
@click.pass_obj
def watch_cmd(obj: CliContext, name: str, target: str | None) -> None:
    """Follow a job's progress until it ends."""
    with _stub(obj, target) as stub:
        _follow(stub, name)


def _follow(stub: ingest_pb2_grpc.IngestServiceStub, name: str) -> None:
    last = None
    with display.JobProgress(f"ingest {name}") as bar:
        for job in stub.WatchIngestJob(ingest_pb2.WatchIngestJobRequest(name=name), timeout=None):
            p = job.status.progress
            elapsed = p.completed and (job.status.documents_read / p.rate if p.rate else 0.0)
            bar.update(
                p.stage or _state(job), p.completed, p.total, job.status.documents_read, elapsed or 0.0
            )
            last = job
    if last is not None:
        _print_job(last)


@click.command("get")
@click.argument("name")
@_TARGET
@click.pass_obj
def get(obj: CliContext, name: str, target: str | None) -> None:
    """Show one job (status, per-step statistics) as JSON."""
    with _stub(obj, target) as stub:
        job = stub.GetIngestJob(ingest_pb2.GetIngestJobRequest(name=name))
    display.out.print_json(json_format.MessageToJson(job))


@click.command("list")
@click.option("--page-size", type=int, default=50)
@_TARGET
@click.pass_obj
def list_cmd(obj: CliContext, page_size: int, target: str | None) -> None:
    """List jobs, oldest first."""
    rows = []
    token = ""
    with _stub(obj, target) as stub:
        while True:
            resp = stub.ListIngestJobs(
                ingest_pb2.ListIngestJobsRequest(page_size=page_size, page_token=token)
            )
            rows += [(j.metadata.name, _state(j), f"{j.status.progress.fraction:.0%}") for j in resp.jobs]
            token = resp.next_page_token
            if not token:
                break
    display.out.print(display.summary_table((n, f"{s} {f}") for n, s, f in rows))


@click.command("cancel")
@click.argument("name")
@_TARGET
@click.pass_obj
def cancel(obj: CliContext, name: str, target: str | None) -> None:
    """Cancel a running job; its partial output is removed."""
    with _stub(obj, target) as stub:
        job = stub.CancelIngestJob(ingest_pb2.CancelIngestJobRequest(name=name))
    display.console.print(f"{name}: {_state(job)}")


def _print_job(job: ingest_pb2.IngestJob) -> None:
    from shipyard.data.step import StepStats

    steps = [
        StepStats.from_dict(
            {
                "name": s.name,
                "docs_in": s.docs_in,
                "docs_out": s.docs_out,
                "dropped": dict(s.dropped),
                "extra": dict(s.extra),
            }
        )
        for s in job.status.steps
    ]
    if steps:
        display.out.print(display.stats_table(steps))
    display.out.print(
        display.summary_table(
            [
                ("state", _state(job)),
                ("documents written", job.status.documents_written),
                ("tokens", job.status.tokens_written),
                ("quarantined records", job.status.quarantined),
                ("manifest", job.status.manifest_uri or "-"),
                ("message", job.status.message or "-"),
            ]
        )
    )


COMMANDS = [submit, watch_cmd, get, list_cmd, cancel]
