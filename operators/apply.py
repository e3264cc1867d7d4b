"""The one edge that changes the cluster: apply a ``Plan`` idempotently.

- Children: server-side apply (``fieldManager=shipyard-operator``, ``force=true``: the operator is the
  sole owner of the fields it sets). A child whose observed state already holds every desired field is
  not sent at all, so a steady object costs no API calls and causes no watch events (no hot loop).
- Status: one merge-patch of the ``status`` subresource, only when it differs from what is stored.
- Events: one per state change the plan reports (best effort: a lost Event never fails a reconcile).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard_operator import contract
from shipyard_operator.kube import ApiError, KubeClient, object_path
from shipyard_operator.plans.base import Owner, Plan

log = logging.getLogger("shipyard.operator")

ChildKey = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    deleted: int
    status_patched: bool
    events: int


def contains(desired: Any, observed: Any) -> bool:
    """True when ``observed`` already holds every field of ``desired`` (extra observed fields are fine).

    Lists compare element by element (same length), because the API server keeps list order for the
    containers, ports and tolerations we set.
    """
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(
            k in observed and contains(v, observed[k]) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(desired) == len(observed)
            and all(contains(d, o) for d, o in zip(desired, observed, strict=True))
        )
    return desired == observed


def apply_plan(
    client: KubeClient,
    owner: Owner,
    plan: Plan,
    *,
    observed_children: dict[ChildKey, dict[str, Any] | None],
    current_status: dict[str, Any] | None,
) -> ApplyResult:
    applied = deleted = 0
    for child in plan.children:
        key = (child["kind"], child["metadata"]["name"])
        seen = observed_children.get(key)
        if seen is not None and contains(child, seen):
            continue
        server_side_apply(client, child)
        applied += 1
    for ref in plan.absent:
        if observed_children.get((ref.kind, ref.name)) is not None:
            client.request("DELETE", object_path(ref.api_version, ref.kind, owner.namespace, ref.name))
            deleted += 1
    patched = patch_status_if_changed(client, owner, current_status, plan.status)
    for note in plan.events:
        post_event(client, owner, note.type, note.reason, note.message)
    return ApplyResult(applied, deleted, patched, len(plan.events))


def server_side_apply(client: KubeClient, body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    path = object_path(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
    query = [("fieldManager", contract.FIELD_MANAGER), ("force", "true")]
    result = client.request("PATCH", path, body, content_type="application/apply-patch+yaml", query=query)
    if result is None:
        # A real API server creates on apply; a server without apply-creates (the kmock test server)
        # answers 404 for an absent object, so create it explicitly. 404 again: the kind is not installed.
        created = client.request(
            "POST",
            object_path(body["apiVersion"], body["kind"], meta.get("namespace")),
            body,
            query=[("fieldManager", contract.FIELD_MANAGER)],
        )
        if created is None:
            raise ApiError(
                404, f"{body['apiVersion']} {body['kind']} is not served (is its CRD/operator installed?)"
            )
        return created
    return result


def status_patch(current: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge-patch turning ``current`` into ``desired`` (``None`` deletes a key), or None if equal."""
    current = current or {}
    if current == desired:
        return None
    patch: dict[str, Any] = dict(desired)
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def patch_status_if_changed(
    client: KubeClient, owner: Owner, current: dict[str, Any] | None, desired: dict[str, Any]
) -> bool:
    patch = status_patch(current, desired)
    if patch is None:
        return False
    path = (
        object_path(f"{contract.GROUP}/{contract.VERSION}", owner.kind, owner.namespace, owner.name)
        + "/status"
    )
    client.request("PATCH", path, {"status": patch}, content_type="application/merge-patch+json")
    return True


def post_event(client: KubeClient, owner: Owner, etype: str, reason: str, message: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        # An explicit unique name rather than generateName: the same on every server, mocks included.
        "metadata": {"name": f"{owner.name}.{secrets.token_hex(8)}", "namespace": owner.namespace},
        "involvedObject": {
            "apiVersion": f"{contract.GROUP}/{contract.VERSION}",
            "kind": owner.kind,
            "name": owner.name,
            "namespace": owner.namespace,
            "uid": owner.uid,
        },
        "type": etype,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": contract.FIELD_MANAGER},
        "reportingComponent": contract.FIELD_MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        client.request("POST", object_path("v1", "Event", owner.namespace), body)
    except ApiError as exc:
        # Events are diagnostics: losing one must not undo or retry the reconcile that already happened.
        log.warning("could not post event %s on %s/%s: %s", reason, owner.kind, owner.name, exc)
