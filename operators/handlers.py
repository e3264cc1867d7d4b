"""kopf wiring: which events reconcile which object, and the operator's settings.

- Owners (TrainingJob, EvaluationJob, ModelDeployment, Agent): reconciled on create, on spec update and on
  operator resume. Status-only changes (our own patches) trigger nothing.
- Children (RayJob, Job, Deployment; selected by our managed-by label): a change reconciles the owner
  named in their ownerReference, so the owner's status follows its child without polling.
- Dependants: when a TrainingJob or EvaluationJob finishes, the ModelDeployments/EvaluationJobs that wait
  for it (found through an in-memory kopf index, no API call) are reconciled; when a ModelDeployment
  changes (created, Ready, deleted), so are the Agents that name it.
- A timer runs only for objects blocked on something no watch reports (a missing Secret, an unknown node
  pool, a referenced object that does not exist yet); a steady object is never reconciled again.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from shipyard.errors import ShipyardError, Unavailable
from shipyard_operator import contract
from shipyard_operator.apply import ApplyResult
from shipyard_operator.kube import ApiError
from shipyard_operator.plans.base import BLOCKING_TYPES
from shipyard_operator.reconcile import SHIPYARD, Reconciler, plain

log = logging.getLogger("shipyard.operator")

TRAINING = (contract.GROUP, contract.VERSION, "trainingjobs")
EVALUATION = (contract.GROUP, contract.VERSION, "evaluationjobs")
DEPLOYMENT = (contract.GROUP, contract.VERSION, "modeldeployments")
AGENT = (contract.GROUP, contract.VERSION, "agents")
MANAGED = {contract.MANAGED_BY_LABEL: contract.MANAGED_BY}
_FINISHED = ("Succeeded", "Failed", "Cancelled")


def configure(settings: kopf.OperatorSettings, *, peering_name: str = "shipyard-operator") -> None:
    """Settings shared by ``__main__`` and the tests."""
    # Progress and diff-base in annotations: the status schema is ours alone (the CRD rejects extras).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=contract.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=contract.GROUP)
    settings.posting.level = logging.WARNING  # our Events say what changed; kopf adds only its errors
    settings.watching.connect_timeout = 10
    settings.watching.server_timeout = 300  # the API server ends each watch; kopf reconnects
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.peering.name = peering_name
    settings.peering.clusterwide = True
    settings.execution.max_workers = 8  # reconciles are sync (threads); bounded API concurrency


def _run(step: Any, body: Any) -> ApplyResult:
    """Run a reconcile; a transient API failure becomes a kopf retry, never a crash loop."""
    try:
        return step(plain(body))
    except (ApiError, Unavailable) as exc:
        raise kopf.TemporaryError(str(exc), delay=5) from exc
    except ShipyardError as exc:
        raise kopf.PermanentError(str(exc)) from exc


def login_info(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's connection from the operator's own client configuration (in-cluster or kubeconfig)."""
    auth = configuration.get_api_key_with_prefix("authorization") or ""
    scheme, _, token = auth.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def _blocked(status: Any, **_: Any) -> bool:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("status") == "False" and cond.get("type") in BLOCKING_TYPES:
            return True
    return False


def _owner(body: Any, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """(kind, name) of the owner among ``kinds`` named in ``body``'s ownerReferences."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") in kinds and ref.get("apiVersion", "").startswith(contract.GROUP + "/"):
            return str(ref["kind"]), str(ref["name"])
    return None


def build_registry(reconciler: Reconciler, *, recheck_seconds: float | None = None) -> kopf.OperatorRegistry:
    """All handlers, bound to ``reconciler`` (no module-level state: tests build their own)."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry, id="login")(lambda **_: login_info(reconciler.client.configuration))
    client, interval = reconciler.client, recheck_seconds or reconciler.cfg.recheck_seconds
    owners = (
        (TRAINING, "TrainingJob", reconciler.training),
        (EVALUATION, "EvaluationJob", reconciler.evaluation),
        (DEPLOYMENT, "ModelDeployment", reconciler.deployment),
        (AGENT, "Agent", reconciler.agent),
    )

    for resource, kind, step in owners:

        def reconcile(body: Any, step: Any = step, **_: Any) -> None:
            _run(step, body)

        for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
            decorator(*resource, registry=registry, id=f"reconcile-{kind}")(reconcile)
        kopf.timer(
            *resource,
            registry=registry,
            id=f"recheck-{kind}",
            interval=interval,
            initial_delay=interval,
            when=_blocked,
        )(reconcile)

    children = (
        ("ray.io", "v1", "rayjobs", ("TrainingJob",)),
        ("batch", "v1", "jobs", ("EvaluationJob",)),
        ("apps", "v1", "deployments", ("ModelDeployment", "Agent")),
    )
    steps = {kind: step for _, kind, step in owners}

    for group, version, plural, owner_kinds in children:

        def child_changed(
            event: Any, body: Any, namespace: str, owner_kinds: tuple[str, ...] = owner_kinds, **_: Any
        ) -> None:
            # Initial listing (type None) is covered by the owners' resume handlers.
            found = _owner(body, owner_kinds)
            if event.get("type") is None or found is None:
                return
            owner_kind, name = found
            if event.get("type") == "ADDED" and not body.get("status"):
                # Our own create of the child: the owner's handler is reconciling it right now, and a
                # second reconcile racing it would only repeat the status patch and the Event.
                return
            owner = client.get(SHIPYARD, owner_kind, namespace, name)
            if owner is not None:
                _run(steps[owner_kind], owner)

        kopf.on.event(group, version, plural, registry=registry, labels=MANAGED, id=f"child-{plural}")(
            child_changed
        )

    @kopf.index(*DEPLOYMENT, registry=registry, id="md_dependencies")
    @kopf.index(*EVALUATION, registry=registry, id="ev_dependencies")
    def dependencies(body: Any, namespace: str, name: str, spec: Any, **_: Any) -> dict[Any, Any]:
        refs: dict[Any, Any] = {}
        if (spec.get("modelFrom") or {}).get("trainingJob"):
            refs[(namespace, "TrainingJob", spec["modelFrom"]["trainingJob"])] = (body["kind"], name)
        if (spec.get("gate") or {}).get("evaluationJob"):
            refs[(namespace, "EvaluationJob", spec["gate"]["evaluationJob"])] = (body["kind"], name)
        return refs

    @kopf.index(*AGENT, registry=registry, id="agent_dependencies")
    def agent_dependencies(namespace: str, name: str, spec: Any, **_: Any) -> dict[Any, Any]:
        deployment = (spec.get("model") or {}).get("deployment")
        return {(namespace, "ModelDeployment", deployment): ("Agent", name)} if deployment else {}

    @kopf.on.event(*DEPLOYMENT, registry=registry, id="dependants-of-ModelDeployment")
    def model_deployment_changed(event: Any, namespace: str, name: str, **kw: Any) -> None:
        # Any change may matter to a waiting Agent (created, became Ready, deleted); a steady Agent's
        # reconcile is a few GETs and no writes.
        if event.get("type") is None:
            return
        for dep_kind, dep_name in kw["agent_dependencies"].get((namespace, "ModelDeployment", name), ()):
            dependant = client.get(SHIPYARD, dep_kind, namespace, dep_name)
            if dependant is not None:
                _run(steps[dep_kind], dependant)

    for resource, kind, _step in owners[:2]:

        def finished(
            event: Any, body: Any, namespace: str, name: str, status: Any, kind: str = kind, **kw: Any
        ) -> None:
            if event.get("type") is None or (status or {}).get("phase") not in _FINISHED:
                return
            for index in (kw["md_dependencies"], kw["ev_dependencies"]):
                for dep_kind, dep_name in index.get((namespace, kind, name), ()):
                    dependant = client.get(SHIPYARD, dep_kind, namespace, dep_name)
                    if dependant is not None:
                        _run(steps[dep_kind], dependant)

        kopf.on.event(*resource, registry=registry, id=f"dependants-of-{kind}")(finished)

    return registry
