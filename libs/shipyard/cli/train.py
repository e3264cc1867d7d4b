"""``shipyard train``: run a TrainingJob (pretrain or finetune), here or through the training service."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import click
import grpc

from shipyard.api.v1 import training_pb2, training_pb2_grpc
from shipyard.cli import display, loss_curve
from shipyard.cli.embedded import run_to_completion
from shipyard.cli.main import CliContext
from shipyard.rpc.client import connect
from shipyard.rpc.errors import from_rpc_error
from shipyard.rpc.from_config import client_options, target
from shipyard.storage.routing import RoutingStorage
from shipyard.storage.uri import parse
from shipyard.training.spec import TrainingJob, load_training_job_file
from shipyard.wire.common import state_name
from shipyard.wire.training import spec_to_pb

if TYPE_CHECKING:
    from shipyard.training.jobs import TrainingJobRecord
    from shipyard.training.trainer import TrainingResult


@click.command("train")
@click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="TrainingJob YAML."
)
@click.option("--submit", is_flag=True, help="Send it to the training service instead of running it here.")
@click.option("--target", "address", help="host:port of the training service (with --submit).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Where to save the loss curve PNG.")
@click.pass_obj
def train(obj: CliContext, path: str, submit: bool, address: str | None, plot: str | None) -> None:
    """Train a model from a TrainingJob manifest (kind: TrainingJob; pretrain or finetune).

    Runs on a local Ray (embedded mode) with a progress bar, then prints a summary and saves the loss
    curve as a PNG. Rerunning a job continues from its newest checkpoint. Ctrl-C stops it (the
    checkpoint is kept). With --submit, the job goes to the training service and is followed there.
    """
    job = load_training_job_file(path)
    if submit:
        submit_job(obj, job, address)
        return
    run_job(obj, job, plot)


def run_job(obj: CliContext, job: TrainingJob, plot: str | None = None) -> TrainingResult:
    """Run ``job`` here with a progress bar, print its summary and loss curve, return its result."""
    from shipyard.training.jobs import training_job_manager  # torch and ray: imported only when training

    manager = training_job_manager(
        obj.config.storage.root,
        obj.config.storage,
        ray_address=obj.config.training.ray_address,
        recover=False,
    )
    with display.JobProgress(f"train {job.metadata.name}", unit="tokens") as bar:

        def update(record: TrainingJobRecord) -> None:
            p = record.progress
            if p is not None:
                loss = p.metrics.get("loss")
                stage = f"step {p.step}/{p.total_steps}" + (f" loss {loss:.3f}" if loss is not None else "")
                bar.update(stage, p.step, p.total_steps, p.tokens_seen, p.elapsed)

        result = run_to_completion(
            manager, job.metadata.name, job.spec.model_dump(mode="json"), job.metadata.labels, update
        )
    print_summary(obj, job, result, plot)
    return result


def print_summary(obj: CliContext, job: TrainingJob, result: TrainingResult, plot: str | None) -> None:
    storage = RoutingStorage(obj.config.storage)
    records = loss_curve.read_metrics(storage, result.metrics_uri)
    losses = [float(r["loss"]) for r in records]
    png = pathlib.Path(plot) if plot else _default_plot_path(obj, job)
    loss_curve.save_png(records, png, f"{job.metadata.name}: {job.spec.model}")
    m = result.final_metrics
    display.out.print(f"loss  {loss_curve.sparkline(losses)}")
    display.out.print(
        display.summary_table(
            [
                ("steps", result.steps),
                ("tokens", result.tokens_seen),
                ("loss first → last", f"{losses[0]:.3f} → {losses[-1]:.3f}" if losses else "-"),
                ("tokens/s", f"{m.get('tokens_per_s', 0.0):,.0f}"),
                ("MFU", f"{m['mfu']:.1%}" if m.get("mfu") else "-"),
                ("worker restarts", result.restarts),
                ("model", result.output_model_uri),
                ("registered as", result.registered or "-"),
                ("loss curve", str(png)),
            ]
        )
    )


def _default_plot_path(obj: CliContext, job: TrainingJob) -> pathlib.Path:
    root = parse(obj.config.storage.root)
    base = pathlib.Path(root.path) if root.scheme == "file" else pathlib.Path.cwd()
    return base / "plots" / f"{job.metadata.name}-loss.png"


def submit_job(obj: CliContext, job: TrainingJob, address: str | None) -> None:
    """Send ``job`` to the training service and follow it there with a progress bar."""
    channel = connect(address or target(obj.config, "training"), client_options(obj.config))
    stub = training_pb2_grpc.TrainingServiceStub(channel)
    try:
        stub.CreateTrainingJob(
            training_pb2.CreateTrainingJobRequest(
                job_id=job.metadata.name,
                spec=spec_to_pb(job.spec.model_dump(mode="json")),
                labels=job.metadata.labels,
            )
        )
        last = None
        with display.JobProgress(f"train {job.metadata.name}", unit="tokens") as bar:
            request = training_pb2.WatchTrainingJobRequest(name=job.metadata.name)
            for last in stub.WatchTrainingJob(request, timeout=None):
                s = last.status
                bar.update(s.progress.stage or state_name(s.state), s.step, s.total_steps, s.tokens_seen, 0.0)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    finally:
        channel.close()
    if last is not None:
        display.out.print(
            display.summary_table(
                [
                    ("state", state_name(last.status.state)),
                    ("loss", f"{last.status.metrics.loss:.3f}"),
                    ("model", last.status.output_model or "-"),
                    ("message", last.status.message or "-"),
                ]
            )
        )
