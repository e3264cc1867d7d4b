"""The benchmark's Kubernetes API: kmock's emulator on 127.0.0.1, its request log, and its object store.

The resource table comes from the kmock integration tests (one definition of what the mock serves).

Always, for speed only (what is served does not change): kmock 0.8 decides how to answer a request by
walking its whole request log through each reaction's filter (``request in payload._source``), and finds
an object by scanning every stored object, so a request costs O(requests so far + objects) and 10,000
requests take minutes. ``BenchEmulator`` keeps only in-flight requests in kmock's log (its own compact
log of every call is what the driver counts) and looks objects up by key.

With ``realistic=True`` (the default) two behaviours of a real API server that kmock 0.8 lacks are added,
both because they change what is being measured:

- every create, and every patch that changes something, gets a new ``metadata.resourceVersion`` (kmock
  keeps whatever the client sent). kopf
  relies on it: after patching its annotations it ignores events older than its patch's version
  (``settings.persistence.consistency_timeout``). With one version forever, kopf takes the stale event
  caused by the operator's own status patch for a fresh object and runs the create handler twice.
- a write that leaves an object as it was emits no watch event (kmock emits MODIFIED for every PATCH).
  Without it, a controller that writes unconditionally (the naive loop) wakes itself up forever.

The log is read on the server's own loop thread (``requests_since``): the driver counts every call the
controller makes, kopf's own watches and annotation patches included, without adding any.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import attrs
import kmock
from kmock._internal import aiobus, dicts, enums
from kmock._internal import k8s as kmock_k8s

from tests.integration.kmock_harness import CLUSTER_SCOPED, NS, RESOURCES

DRIVER_AGENT = "shipyard-bench-driver"  # the driver's own calls carry this User-Agent and are not counted


_VERBS = {
    "LIST": "list",
    "WATCH": "watch",
    "FETCH": "get",
    "CREATE": "create",
    "UPDATE": "patch",
    "DELETE": "delete",
}


@attrs.mutable
class QuietNoopBus(aiobus.Bus[Any]):
    """A watch bus that drops a MODIFIED event whose object equals the one last streamed for that name."""

    _last: dict[tuple[str | None, str | None], Any] = attrs.field(init=False, factory=dict)

    async def put(self, item: Any) -> None:
        meta = (item.get("object") or {}).get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        if item.get("type") == "MODIFIED" and self._last.get(key) == item["object"]:
            return
        self._last[key] = None if item.get("type") == "DELETED" else item["object"]
        await super().put(item)


@attrs.define
class BenchEmulator(kmock.KubernetesEmulator):
    """kmock's emulator, O(1) per request, logging (verb, resource, subresource, from driver) per call.

    ``versioned``: a cluster-wide resourceVersion, bumped by every write that changes something.
    """

    versioned: bool = True
    log: list[tuple[str, str, str, bool]] = attrs.field(factory=list, init=False)
    _version: int = attrs.field(default=1, init=False)

    async def _handle(self, request: Any) -> Any:
        self.log.append(_entry(request))
        if self.versioned:
            self._stamp_version(request)
        try:
            return await super()._handle(request)
        finally:
            # Out of kmock's log once answered: its reaction matching walks that log on every request.
            for i in range(len(self._requests) - 1, -1, -1):
                if self._requests[i] is request:
                    del self._requests[i]
                    break

    def _stamp_version(self, request: Any) -> None:
        data = request.data
        if request.action == enums.action.CREATE and isinstance(data, dict):
            self._version += 1
            data.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        elif request.action == enums.action.UPDATE and request.name is not None and isinstance(data, dict):
            obj = self._lookup(request.resource, request.namespace, request.name)
            if obj is not None:
                current = copy.deepcopy(obj.last.raw)
                version = current.get("metadata", {}).get("resourceVersion")
                if dicts.patch_dict(copy.deepcopy(current), data) != current:
                    self._version += 1
                    version = str(self._version)
                # A no-op write keeps the version, as on a real API server (kopf waits for new versions).
                data.setdefault("metadata", {})["resourceVersion"] = version

    def _lookup(self, resource: Any, namespace: str | None, name: str | None) -> Any:
        key = (resource, namespace, name)
        if key in self._objects and not (obj := self._objects[key]).deleted:
            return obj
        return None

    async def _serve_fetch(self, request: Any) -> Any:
        async with self._lock:
            obj = self._lookup(request.resource, request.namespace, request.name)
        if obj is None:
            raise kmock_k8s.KubernetesObjectNotFoundError()
        return obj.raw

    async def _serve_create(self, request: Any) -> Any:
        meta = (request.data or {}).get("metadata", {})
        async with self._lock:
            obj = self._objects[
                (request.resource, request.namespace or meta.get("namespace"), meta.get("name"))
            ]
        return obj.last.raw

    async def _serve_update(self, request: Any) -> Any:
        async with self._lock:
            obj = self._objects[(request.resource, request.namespace, request.name)]
        return obj.last.raw


def _entry(request: Any) -> tuple[str, str, str, bool]:
    verb = _VERBS.get(request.action.value if request.action is not None else "", str(request.method).lower())
    if verb == "patch" and "apply-patch" in request.headers.get("Content-Type", ""):
        verb = "apply"  # server-side apply, told apart from merge patches
    plural = request.resource.plural if request.resource is not None else "-"
    return verb, plural, request.subresource or "", request.headers.get("User-Agent") == DRIVER_AGENT


class MockApiServer:
    """kmock's KubernetesEmulator served on 127.0.0.1 from its own event-loop thread."""

    def __init__(self, *, realistic: bool = True) -> None:
        self.realistic = realistic

    def __enter__(self) -> MockApiServer:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="kmock")
        self.thread.start()
        self.call(self._start(), timeout=10)
        return self

    async def _start(self) -> None:
        bus = QuietNoopBus if self.realistic else aiobus.Bus
        self.handler = BenchEmulator(versioned=self.realistic, buses=collections.defaultdict(bus))
        for key, (kind, subresources) in RESOURCES.items():
            verbs = {"list", "watch", "get", "create", "patch", "delete"}
            self.handler.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=key not in CLUSTER_SCOPED, verbs=verbs, subresources=subresources
            )
        await self.handler.__aenter__()
        self.server = kmock.Server(self.handler)
        await self.server.__aenter__()
        self.url = str(self.server.url).rstrip("/")

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def on_loop(self, fn: Callable[[], Any], timeout: float = 60) -> Any:
        """Run ``fn`` on the server's loop thread: reads of the store never race its writes."""

        async def run() -> Any:
            return fn()

        return self.call(run(), timeout)

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            await self.server.__aexit__(None, None, None)
            await self.handler.__aexit__(None, None, None)

        self.call(stop(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def write_kubeconfig(self, path: pathlib.Path) -> pathlib.Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "mock",
                    "clusters": [{"name": "mock", "cluster": {"server": self.url}}],
                    "users": [{"name": "mock", "user": {"token": "bench"}}],
                    "contexts": [
                        {"name": "mock", "context": {"cluster": "mock", "user": "mock", "namespace": NS}}
                    ],
                }
            )
        )
        return path

    # --- what the driver reads ------------------------------------------------------------------

    def request_count(self) -> int:
        return self.on_loop(lambda: len(self.handler.log))

    def requests_since(self, start: int) -> list[tuple[str, str, str]]:
        """(verb, resource, subresource) of every request after index ``start``, the driver's excluded."""
        return self.on_loop(lambda: [e[:3] for e in self.handler.log[start:] if not e[3]])

    def settled(self, names: list[str]) -> tuple[int, int]:
        """How many of ``names`` have a TrainingJob with ``status.phase``, and how many have a RayJob."""

        def count() -> tuple[int, int]:
            phased = with_ray = 0
            for (resource, _ns, name), obj in self.handler.objects.items():
                if obj.deleted or name not in wanted:
                    continue
                raw = obj.raw
                if resource.plural == "trainingjobs" and (raw.get("status") or {}).get("phase"):
                    phased += 1
                elif resource.plural == "rayjobs":
                    with_ray += 1
            return phased, with_ray

        wanted = set(names)
        return self.on_loop(count)
