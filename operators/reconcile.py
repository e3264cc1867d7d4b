"""One reconcile per kind: observe (a few GETs) -> pure plan -> idempotent apply.

Called by the kopf handlers with the owner's body; nothing here knows about kopf, so the benchmark and
other drivers reuse it unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from shipyard.errors import from_pydantic
from shipyard.resources.agent import Agent
from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.training.spec import TrainingJob
from shipyard_operator import contract
from shipyard_operator.apply import ApplyResult, apply_plan
from shipyard_operator.config import OperatorConfig
from shipyard_operator.kube import KubeClient
from shipyard_operator.plans.agent import AgentObserved, child_name, plan_agent
from shipyard_operator.plans.base import Owner, Plan, invalid_spec_status, stamp_conditions, transition_events
from shipyard_operator.plans.deployment import DeploymentObserved, plan_model_deployment
from shipyard_operator.plans.evaluation import EvaluationObserved, plan_evaluation_job
from shipyard_operator.plans.training import RAY_API_VERSION, TrainingObserved, plan_training_job

SHIPYARD = f"{contract.GROUP}/{contract.VERSION}"


@dataclass
class Reconciler:
    client: KubeClient
    cfg: OperatorConfig
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def training(self, body: dict[str, Any]) -> ApplyResult:
        owner, status = Owner.from_body(body), body.get("status")
        job = self._typed(TrainingJob, body)
        ray = self.client.get(RAY_API_VERSION, "RayJob", owner.namespace, owner.name)
        if isinstance(job, str):
            return self._apply(owner, self._invalid(job, status), {}, status)
        observed = TrainingObserved(owner, ray, ray is not None or self._secret(owner), status, self.clock())
        plan = plan_training_job(job, observed, self.cfg)
        return self._apply(owner, plan, {("RayJob", owner.name): ray}, status)

    def evaluation(self, body: dict[str, Any]) -> ApplyResult:
        owner, status = Owner.from_body(body), body.get("status")
        ev = self._typed(EvaluationJob, body)
        if isinstance(ev, str):
            return self._apply(owner, self._invalid(ev, status), {}, status)
        job = self.client.get("batch/v1", "Job", owner.namespace, owner.name)
        training = secret = None
        if job is None:
            training = self._training_job(
                owner, ev.spec.model_from.training_job if ev.spec.model_from else None
            )
            secret = self._secret(owner)
        observed = EvaluationObserved(owner, job, training, bool(secret), status, self.clock())
        return self._apply(
            owner, plan_evaluation_job(ev, observed, self.cfg), {("Job", owner.name): job}, status
        )

    def deployment(self, body: dict[str, Any]) -> ApplyResult:
        owner, status = Owner.from_body(body), body.get("status")
        md = self._typed(ModelDeployment, body)
        if isinstance(md, str):
            return self._apply(owner, self._invalid(md, status), {}, status)
        ns, name = owner.namespace, owner.name
        training = self._training_job(owner, md.spec.model_from.training_job if md.spec.model_from else None)
        evaluation = (
            self.client.get(SHIPYARD, "EvaluationJob", ns, md.spec.gate.evaluation_job)
            if md.spec.gate
            else None
        )
        children = {
            ("Deployment", name): self.client.get("apps/v1", "Deployment", ns, name),
            ("Service", name): self.client.get("v1", "Service", ns, name),
            ("PodDisruptionBudget", name): self.client.get("policy/v1", "PodDisruptionBudget", ns, name),
            ("HorizontalPodAutoscaler", name): self.client.get(
                "autoscaling/v2", "HorizontalPodAutoscaler", ns, name
            ),
        }
        deployment = children[("Deployment", name)]
        secret = deployment is not None or self._secret(owner)
        observed = DeploymentObserved(owner, deployment, training, evaluation, secret, status, self.clock())
        return self._apply(owner, plan_model_deployment(md, observed, self.cfg), children, status)

    def agent(self, body: dict[str, Any]) -> ApplyResult:
        owner, status = Owner.from_body(body), body.get("status")
        agent = self._typed(Agent, body)
        if isinstance(agent, str):
            return self._apply(owner, self._invalid(agent, status), {}, status)
        ns, name = owner.namespace, child_name(owner)
        model = agent.spec.model.deployment
        md = self.client.get(SHIPYARD, "ModelDeployment", ns, model) if model else None
        children = {
            ("ConfigMap", name): self.client.get("v1", "ConfigMap", ns, name),
            ("Deployment", name): self.client.get("apps/v1", "Deployment", ns, name),
            ("Service", name): self.client.get("v1", "Service", ns, name),
        }
        deployment = children[("Deployment", name)]
        secret = deployment is not None or self._secret(owner)
        observed = AgentObserved(owner, deployment, md, secret, status, self.clock())
        return self._apply(owner, plan_agent(agent, observed, self.cfg), children, status)

    def _apply(
        self, owner: Owner, plan: Plan, children: dict[Any, Any], status: dict[str, Any] | None
    ) -> ApplyResult:
        return apply_plan(self.client, owner, plan, observed_children=children, current_status=status)

    def _secret(self, owner: Owner) -> bool:
        return self.client.get("v1", "Secret", owner.namespace, self.cfg.storage_secret) is not None

    def _training_job(self, owner: Owner, name: str | None) -> dict[str, Any] | None:
        return self.client.get(SHIPYARD, "TrainingJob", owner.namespace, name) if name else None

    def _invalid(self, message: str, status: dict[str, Any] | None) -> Plan:
        new = invalid_spec_status(message)
        new["conditions"] = stamp_conditions(
            new["conditions"], (status or {}).get("conditions"), self.clock()
        )
        return Plan(status=new, events=transition_events(status, new))

    @staticmethod
    def _typed(model: type[BaseModel], body: dict[str, Any]) -> Any:
        """The typed resource, or the validation message naming the bad fields."""
        meta = body.get("metadata") or {}
        doc = {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})},
            "spec": body.get("spec") or {},
        }
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            return str(from_pydantic(exc))


def plain(body: Any) -> dict[str, Any]:
    """A deep plain-dict copy of a kopf body (its views are mappings, not dicts)."""
    return json.loads(json.dumps(body, default=dict))
