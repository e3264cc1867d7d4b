"""Embedded runs of the kinds that need more than one job manager: EvaluationJob and ModelDeployment.

``shipyard apply`` calls these with the same manifests ``kubectl apply`` sends to a cluster. References
between resources (``modelFrom``, a deployment's ``gate``) resolve against what ran here, through
``shipyard.deployments.references``; a ModelDeployment becomes a local inference server process
(``shipyard.deployments.local``) that keeps serving after the command returns.
"""

from __future__ import annotations

import pathlib
import time
from typing import TYPE_CHECKING

from shipyard.cli import display
from shipyard.cli.embedded import run_to_completion
from shipyard.cli.main import CliContext
from shipyard.deployments import references
from shipyard.deployments.local import Action, LocalDeployments, ServerLaunch
from shipyard.errors import FailedPrecondition
from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.storage.routing import RoutingStorage

if TYPE_CHECKING:
    from shipyard.evaluation.jobs import EvalSummary
    from shipyard.evaluation.runner import EvalProgress
    from shipyard.jobs.record import JobRecord
    from shipyard.resources.agent import Agent

__all__ = ["local_deployments", "run_agent", "run_evaluation_job", "run_model_deployment"]


def local_deployments(obj: CliContext) -> LocalDeployments:
    """Where this machine's deployments are recorded (always local: they are local processes)."""
    return LocalDeployments(pathlib.Path(obj.config.storage.data_dir) / "deployments")


def run_evaluation_job(obj: CliContext, job: EvaluationJob) -> EvalSummary:
    """Run ``job`` here through the evaluation job manager (recorded, so a gate can read its scores)."""
    from shipyard.evaluation.jobs import evaluation_job_manager

    storage, root = RoutingStorage(obj.config.storage), obj.config.storage.root
    manager = evaluation_job_manager(
        root,
        obj.config.storage,
        data_root=obj.config.evaluation.data_root,
        executor=obj.config.evaluation.executor,
        workers=obj.config.evaluation.workers,
        resolve_model_from=lambda name: references.training_output_model(
            storage, root, name, field="spec.modelFrom.trainingJob"
        ),
        recover=False,
    )
    began = time.monotonic()
    with display.JobProgress(f"eval {job.metadata.name}", unit="samples") as bar:

        def update(record: JobRecord[EvalSummary, EvalProgress]) -> None:
            p = record.progress
            if p is not None:
                done = p.samples_done
                bar.update("scoring", done, max(p.samples_total, 1), done, time.monotonic() - began)

        summary = run_to_completion(
            manager, job.metadata.name, job.spec.model_dump(mode="json"), job.metadata.labels, update
        )
    rows: list[tuple[str, object]] = [
        (metric, f"{value:.4f}") for metric, value in sorted(summary.scores.items())
    ]
    rows += [("failed samples", summary.num_failed), ("report", summary.report_uri)]
    display.out.print(display.summary_table(rows))
    return summary


def run_model_deployment(obj: CliContext, deployment: ModelDeployment) -> None:
    """Start (or keep, or replace) the local inference server for ``deployment``; print its endpoint."""
    storage, root = RoutingStorage(obj.config.storage), obj.config.storage.root
    spec, name = deployment.spec, deployment.metadata.name
    if spec.model_from is not None:
        model = references.training_output_model(
            storage, root, spec.model_from.training_job, field="spec.modelFrom.trainingJob"
        )
    else:
        assert spec.model is not None  # the spec type guarantees exactly one
        model = spec.model
    if spec.gate is not None:
        decision = references.deployment_gate(storage, root, spec.gate)
        if not decision.passed:
            raise FailedPrecondition(f"spec.gate: not deployed: {decision.message}")
    desired = (
        None
        if spec.replicas == 0 and spec.autoscaling is None
        else ServerLaunch.from_deployment(deployment, model)
    )
    with display.console.status(f"deploying {name} (loading {model})…"):
        action, record = local_deployments(obj).apply(name, desired)
    if record is None:
        display.out.print(f"{name}: scaled to zero ({action})")
        return
    display.out.print(
        display.summary_table(
            [
                ("deployment", f"{name} ({'unchanged' if action is Action.KEEP else action})"),
                ("model", model),
                ("endpoint", record.endpoint or "-"),
                ("grpc", record.grpc_target or "-"),
                ("log", record.log_path or "-"),
                ("stop with", f"shipyard delete modeldeployment {name}"),
            ]
        )
    )


def run_agent(obj: CliContext, agent: Agent) -> None:
    """Register ``agent`` in the embedded session store (or update its spec; its sessions stay)."""
    from shipyard.agents.catalog import open_catalog

    catalog = open_catalog(obj.config)
    try:
        record, created = catalog.put(agent, replace=True)
    finally:
        catalog.close()
        catalog.store.close()
    model = agent.spec.model
    display.out.print(
        display.summary_table(
            [
                ("agent", f"{record.name} ({'created' if created else 'updated'})"),
                ("model", f"deployment/{model.deployment}" if model.deployment else str(model.url)),
                ("tools", ", ".join(getattr(t, "name", t.type) for t in agent.spec.tools) or "-"),
                ("try", f'shipyard agent ask --agent {record.name} "..."'),
            ]
        )
    )
