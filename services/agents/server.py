"""The agents service's parts: its servicer over a catalog built from the config, and what to close.

``__main__`` hands ``build`` to the shared ``service_main``; tests call ``servicer_parts`` with a catalog
of their own and serve it with ``build_server`` exactly as ``service_main`` does. Each agent reports
into a registry of its own (``AgentTelemetry``); ``AgentMetrics`` joins them into the service's
/metrics, one family per metric with an ``agent`` label.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from shipyard.agents.catalog import AgentCatalog, open_catalog
from shipyard.agents.telemetry import AgentTelemetry
from shipyard.api.v1 import agents_pb2, agents_pb2_grpc
from shipyard.config import ShipyardConfig
from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.resources.meta import read_manifest_file
from shipyard.rpc.service_main import ServiceParts
from shipyard.telemetry.bootstrap import Telemetry
from shipyard_services.agents.servicer import AgentServicer

__all__ = ["SERVICE_NAME", "AgentMetrics", "build", "register_manifest", "servicer_parts"]

SERVICE_NAME = agents_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name


class AgentMetrics:
    """A Prometheus collector over every agent's registry (each agent's runtime owns its own)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer_provider = tracer_provider
        self._registries: dict[str, CollectorRegistry] = {}
        self._lock = threading.Lock()

    def telemetry(self, agent: str) -> AgentTelemetry:
        """Telemetry for a (re)built runtime of ``agent``; a rebuilt one's counters start again at 0."""
        telemetry = AgentTelemetry(agent, tracer_provider=self._tracer_provider)
        with self._lock:
            self._registries[agent] = telemetry.registry
        return telemetry

    def describe(self) -> list[Metric]:
        # Nothing to check up front: families appear as agents are first used.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            registries = list(self._registries.values())
        families: dict[str, Metric] = {}
        for registry in registries:
            for family in registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                merged.samples.extend(family.samples)
        yield from families.values()


def servicer_parts(catalog: AgentCatalog) -> ServiceParts:
    """The servicer over ``catalog``; stopping closes its runtimes, then the store's connections."""

    def stop() -> None:
        catalog.close()
        catalog.store.close()

    return ServiceParts(
        [(agents_pb2_grpc.add_AgentServiceServicer_to_server, AgentServicer(catalog))],
        [SERVICE_NAME],
        on_stop=stop,
    )


def build(
    config: ShipyardConfig, telemetry: Telemetry, *, agent: str | None = None, agent_spec: str | None = None
) -> ServiceParts:
    """The service for ``config``; with ``agent_spec``, that manifest registered first (see ``__main__``)."""
    metrics = AgentMetrics(telemetry.tracer_provider)
    telemetry.metrics.registry.register(metrics)
    catalog = open_catalog(config, telemetry=metrics.telemetry)
    if agent_spec is not None:
        try:
            register_manifest(catalog, agent_spec, agent)
        except ShipyardError as exc:
            catalog.store.close()
            print(f"shipyard agents: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return servicer_parts(catalog)


def register_manifest(catalog: AgentCatalog, path: str, name: str | None) -> None:
    """Register (or update) the Agent manifest at ``path``; ``name``, if given, must be its name."""
    doc = read_manifest_file(path)
    if not isinstance(doc, dict):
        raise InvalidArgument.field("--agent-spec", f"{path} must hold an Agent manifest (a mapping)")
    found = (doc.get("metadata") or {}).get("name")
    if name is not None and found != name:
        raise InvalidArgument.field("--agent", f"{name!r} does not match metadata.name {found!r} of {path}")
    catalog.put(doc, replace=True)
