"""The baseline: reconcile every TrainingJob on every watch event, writing everything every time.

Only the control loop differs from the operator: the same typed spec, the same ``plan_training_job``,
the same server-side apply and Event posting. What it leaves out is what the operator adds on top of
them: per-object handling, "is the child already as desired?" (``apply.contains``) and "did the status
change?" (``apply.status_patch``).

One pass = LIST TrainingJobs + LIST RayJobs + one GET of the storage Secret, then for every TrainingJob
an apply of its RayJob and a patch of its status (and the Events its plan reports). A watch thread marks
the world dirty on each event; events that arrive while a pass runs are coalesced into the next pass
(the literal "one pass per event" would cost N passes for N creations, i.e. O(N^2) calls).
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from shipyard.training.spec import TrainingJob
from shipyard_operator import contract
from shipyard_operator.apply import post_event, server_side_apply, status_patch
from shipyard_operator.config import OperatorConfig
from shipyard_operator.kube import KubeClient, object_path
from shipyard_operator.plans.base import Owner
from shipyard_operator.plans.training import RAY_API_VERSION, TrainingObserved, plan_training_job
from shipyard_operator.reconcile import SHIPYARD, Reconciler

log = logging.getLogger("shipyard.bench.naive")


class NaiveLoop:
    def __init__(self, client: KubeClient, api: k8s.ApiClient, cfg: OperatorConfig) -> None:
        self.client, self.api, self.cfg = client, api, cfg
        self.dirty = threading.Event()
        self.stop = threading.Event()
        self.passes = 0
        self.events_seen = 0

    def watch(self) -> None:
        """Mark dirty on every TrainingJob event (the initial listing arrives as ADDED events)."""
        objects = k8s.CustomObjectsApi(self.api)
        while not self.stop.is_set():
            stream = k8s_watch.Watch().stream(
                objects.list_cluster_custom_object,
                contract.GROUP,
                contract.VERSION,
                "trainingjobs",
                timeout_seconds=300,
            )
            for _event in stream:
                self.events_seen += 1
                self.dirty.set()
                if self.stop.is_set():
                    return

    def run(self) -> None:
        threading.Thread(target=self.watch, daemon=True, name="naive-watch").start()
        while not self.stop.is_set():
            # A wake-up interval only so that ``stop`` is noticed; work starts the moment dirty is set.
            if not self.dirty.wait(timeout=0.5):
                continue
            self.dirty.clear()
            try:
                self.reconcile_all()
            except Exception:  # a failed pass is retried on the next event, as a naive loop would
                log.exception("naive pass failed")

    def reconcile_all(self) -> None:
        self.passes += 1
        jobs = (self.client.request("GET", object_path(SHIPYARD, "TrainingJob", None)) or {}).get("items", [])
        rays = (self.client.request("GET", object_path(RAY_API_VERSION, "RayJob", None)) or {}).get(
            "items", []
        )
        by_name = {(r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in rays}
        secrets: dict[str, bool] = collections.defaultdict(bool)
        for ns in {(j["metadata"].get("namespace") or "default") for j in jobs}:
            secrets[ns] = self.client.get("v1", "Secret", ns, self.cfg.storage_secret) is not None
        now = datetime.now(UTC)
        for body in jobs:
            self.reconcile_one(body, by_name, secrets, now)

    def reconcile_one(
        self, body: dict[str, Any], rays: dict[Any, Any], secrets: dict[str, bool], now: datetime
    ) -> None:
        owner, status = Owner.from_body(body), body.get("status")
        job = Reconciler._typed(TrainingJob, body)
        if isinstance(job, str):
            return
        ray = rays.get((owner.namespace, owner.name))
        plan = plan_training_job(
            job, TrainingObserved(owner, ray, secrets[owner.namespace], status, now), self.cfg
        )
        for child in plan.children:
            server_side_apply(self.client, child)
        path = object_path(SHIPYARD, owner.kind, owner.namespace, owner.name) + "/status"
        patch = status_patch(status, plan.status) or dict(plan.status)
        self.client.request("PATCH", path, {"status": patch}, content_type="application/merge-patch+json")
        for note in plan.events:
            post_event(self.client, owner, note.type, note.reason, note.message)
