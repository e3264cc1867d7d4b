"""The values every plan shares: the owner's identity, the plan itself, events and status helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard_operator import contract


@dataclass(frozen=True)
class Owner:
    """The custom resource being reconciled, as the API server knows it (uid and namespace included)."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> Owner:
        meta = body["metadata"]
        return cls(
            kind=body["kind"],
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid", ""),
            generation=meta.get("generation"),
        )

    def reference(self) -> dict[str, Any]:
        """An ownerReference: deleting the owner garbage-collects the child; ``controller`` marks us."""
        return {
            "apiVersion": f"{contract.GROUP}/{contract.VERSION}",
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def child_metadata(self, name: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {
                contract.MANAGED_BY_LABEL: contract.MANAGED_BY,
                contract.INSTANCE_LABEL: self.name,
                contract.OWNER_KIND_LABEL: self.kind,
                **(labels or {}),
            },
            "ownerReferences": [self.reference()],
        }


@dataclass(frozen=True)
class Ref:
    """Names a child object that must not exist (e.g. the HPA once autoscaling is switched off)."""

    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class EventNote:
    """A Kubernetes Event to post on the owner: ``type`` Normal or Warning, CamelCase ``reason``."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """Desired state: children to apply, children to remove, the owner's whole status, events to post."""

    children: list[dict[str, Any]] = field(default_factory=list)
    absent: list[Ref] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[EventNote] = field(default_factory=list)


def condition(ctype: str, status: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": ctype, "status": "True" if status else "False", "reason": reason, "message": message}


def stamp_conditions(
    new: list[dict[str, Any]], old: list[dict[str, Any]] | None, now: datetime
) -> list[dict[str, Any]]:
    """Give each condition its ``lastTransitionTime``: kept from ``old`` while its status is unchanged.

    Keeping the old timestamp is what makes a re-plan of a steady object produce an identical status,
    so the apply edge sends no patch (no hot loop).
    """
    before = {c.get("type"): c for c in old or []}
    stamped = []
    for cond in new:
        prev = before.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"] and prev.get("lastTransitionTime"):
            when = prev["lastTransitionTime"]
        else:
            when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        stamped.append({**cond, "lastTransitionTime": when})
    return stamped


# Conditions whose False status blocks progress: their reason is news (a Warning Event).
BLOCKING_TYPES = frozenset({"Created", "ModelReady", "GatePassed"})
# Blocking reasons that are an expected wait, not a problem: their Event is Normal.
WAITING_REASONS = frozenset({"WaitingForModel", "WaitingForEvaluation"})


def transition_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[EventNote]:
    """One Event per condition that newly became True, or newly blocks (False with a new reason)."""
    seen = {(c.get("type"), c.get("status"), c.get("reason")) for c in (old or {}).get("conditions") or []}
    events: list[EventNote] = []
    for cond in new.get("conditions") or []:
        if (cond["type"], cond["status"], cond.get("reason")) in seen:
            continue
        blocking = cond["status"] == "False" and cond["type"] in BLOCKING_TYPES
        if cond["status"] != "True" and not blocking:
            continue  # "not running yet" is not news
        warning = (blocking and cond.get("reason") not in WAITING_REASONS) or cond["type"] == "Failed"
        events.append(
            EventNote(
                "Warning" if warning else "Normal",
                cond.get("reason") or cond["type"],
                cond.get("message", ""),
            )
        )
    return events


def drop_none(value: Any) -> Any:
    """Remove ``None`` leaves so a manifest only says what we mean to own (server-side apply semantics)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value]
    return value


def blocked_conditions(reason: str, message: str) -> list[dict[str, Any]]:
    """The job-kind conditions while the child cannot be created (phase stays Pending)."""
    return [
        condition("Created", False, reason, message),
        condition("Running", False, reason),
        condition("Succeeded", False, reason),
        condition("Failed", False, reason),
        condition("Suspended", False, reason),
    ]


def job_conditions(phase: str, reason: str, message: str, *, created_reason: str) -> list[dict[str, Any]]:
    """The five job conditions for ``phase``; the one that holds carries ``reason`` and ``message``."""
    holds = {
        "Running": phase == "Running",
        "Succeeded": phase == "Succeeded",
        "Failed": phase in ("Failed", "Cancelled"),
        "Suspended": phase == "Suspended",
    }
    out = [condition("Created", True, created_reason)]
    for ctype, value in holds.items():
        out.append(condition(ctype, value, reason if value else f"Not{ctype}", message if value else ""))
    return out


def invalid_spec_status(message: str) -> dict[str, Any]:
    """Status of an object whose spec the models reject (only possible if the CRD schema drifted)."""
    return {
        "phase": "Failed",
        "conditions": [
            condition("Created", False, "InvalidSpec", message),
            condition("Failed", True, "InvalidSpec", message),
        ],
        "message": message,
    }
