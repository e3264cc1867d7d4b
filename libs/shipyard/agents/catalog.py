"""The agents one deployment knows: validated specs in the session store, runtimes built on first use.

Both edges use this one object: the agents service (a servicer per RPC) and ``shipyard agent`` /
``shipyard apply`` in embedded mode. ``put`` validates a whole Agent manifest (pydantic errors name the
field, tools whose inputs do not exist name theirs: ``spec.tools[0].documents``) before anything is
stored. A runtime (``AgentRuntime``: tools, sandboxes, a model client) is built lazily per agent, rebuilt
when its spec changes and closed on delete and on ``close``.
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from shipyard.agents.endpoints import ModelEndpoint, local_endpoint_of, resolve_endpoint
from shipyard.agents.events import AgentEvent
from shipyard.agents.sessions.models import AgentRecord
from shipyard.agents.sessions.store import SessionStore
from shipyard.agents.telemetry import AgentTelemetry
from shipyard.config import ShipyardConfig
from shipyard.errors import AlreadyExists, InvalidArgument, from_pydantic
from shipyard.resources.agent import (
    Agent,
    AgentModel,
    AgentSpec,
    OpenApiToolSpec,
    SearchToolSpec,
    SqlToolSpec,
)
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = [
    "AgentCatalog",
    "AgentRunner",
    "RuntimeFactory",
    "check_tools",
    "open_catalog",
    "open_store",
    "parse_agent",
    "runtime_factory",
]


class AgentRunner(Protocol):
    """What the edges call on a built agent (``shipyard.agents.runtime.AgentRuntime``)."""

    def chat(
        self, session_id: str, text: str, *, cancel: threading.Event | None = None
    ) -> Iterator[AgentEvent]: ...

    def ask(self, question: str, *, cancel: threading.Event | None = None) -> Iterator[AgentEvent]: ...

    def research(self, question: str, *, cancel: threading.Event | None = None) -> Iterator[AgentEvent]: ...

    def close(self) -> None: ...


# (agent name, its spec, where its model answers) -> a runner.
RuntimeFactory = Callable[[str, AgentSpec, ModelEndpoint], AgentRunner]


def parse_agent(doc: Mapping[str, Any]) -> Agent:
    """A manifest (``kind: Agent``) as the typed resource; bad fields are ``InvalidArgument`` naming them."""
    try:
        return Agent.model_validate(dict(doc))
    except ValidationError as exc:
        raise from_pydantic(exc) from None


def check_tools(spec: AgentSpec, storage: Storage) -> AgentSpec:
    """Check that every tool's inputs exist; returns the spec with their URIs made absolute.

    Relative paths are resolved where the manifest is applied (the user's directory), not where the
    runtime later runs (the service's), so the stored spec keeps working from any process.
    """
    tools = []
    for i, tool in enumerate(spec.tools):
        if isinstance(tool, SearchToolSpec):
            tool = _check_search(tool, storage, f"spec.tools[{i}]")
        elif isinstance(tool, OpenApiToolSpec) and "://" not in tool.spec.split("?")[0][:8]:
            path = uris.normalize(tool.spec, field=f"spec.tools[{i}].spec")
            _require(storage, path, f"spec.tools[{i}].spec", "OpenAPI document")
            tool = tool.model_copy(update={"spec": path})
        elif isinstance(tool, SqlToolSpec) and tool.url.startswith("sqlite:///"):
            db = tool.url.removeprefix("sqlite:///")
            if db and db != ":memory:":
                _require(storage, uris.normalize(db), f"spec.tools[{i}].url", "SQLite database")
        tools.append(tool)
    return spec.model_copy(update={"tools": tools})


def _check_search(tool: SearchToolSpec, storage: Storage, field: str) -> SearchToolSpec:
    if tool.documents is not None:
        path = uris.normalize(tool.documents, field=f"{field}.documents")
        _require(storage, path, f"{field}.documents", "documents file")
        return tool.model_copy(update={"documents": path})
    if tool.manifest is not None:
        root = uris.normalize(tool.manifest, field=f"{field}.manifest")
        if uris.basename(root) != "manifest.json":
            root = uris.join(root, "manifest.json")
        _require(storage, root, f"{field}.manifest", "ingest manifest")
        return tool.model_copy(update={"manifest": uris.parent(root)})
    assert tool.collection is not None  # the spec type guarantees exactly one source
    root = uris.normalize(tool.collection, field=f"{field}.collection")
    _require(storage, uris.join(root, "collection.json"), f"{field}.collection", "collection")
    return tool.model_copy(update={"collection": root})


def _require(storage: Storage, uri: str, field: str, what: str) -> None:
    if not storage.exists(uri):
        raise InvalidArgument.field(field, f"{what} {uri} does not exist")


class AgentCatalog:
    """Agents in ``store``; ``resolve`` turns ``spec.model`` into an endpoint when a runtime is built."""

    def __init__(
        self,
        store: SessionStore,
        storage: Storage,
        *,
        resolve: Callable[[AgentModel], ModelEndpoint],
        runtime_factory: RuntimeFactory,
    ) -> None:
        self.store = store
        self.storage = storage
        self._resolve = resolve
        self._factory = runtime_factory
        self._runtimes: dict[str, tuple[dict[str, Any], AgentRunner]] = {}
        self._lock = threading.Lock()

    # -- agents --------------------------------------------------------------------------------------

    def put(
        self, doc: Agent | Mapping[str, Any], *, replace: bool = False, validate_only: bool = False
    ) -> tuple[AgentRecord, bool]:
        """Validate and store an Agent manifest; returns the record and whether it was new."""
        agent = doc if isinstance(doc, Agent) else parse_agent(doc)
        spec = check_tools(agent.spec, self.storage)
        stored = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        name = agent.metadata.name
        if validate_only:
            return AgentRecord(name, stored, datetime.now(UTC)), True
        try:
            return self.store.create_agent(name, stored), True
        except AlreadyExists:
            if not replace:
                raise
        record = self.store.update_agent(name, stored)
        self._drop_runtime(name)  # rebuilt from the new spec on next use
        return record, False

    def get(self, name: str) -> AgentRecord:
        return self.store.get_agent(name)

    def list(self) -> list[AgentRecord]:
        return self.store.list_agents()

    def delete(self, name: str) -> None:
        self.store.delete_agent(name)
        self._drop_runtime(name)

    def spec(self, name: str) -> AgentSpec:
        return AgentSpec.model_validate(self.get(name).spec)

    # -- runs ----------------------------------------------------------------------------------------

    def runtime(self, name: str) -> AgentRunner:
        """The agent's runtime, built on first use (and again after its spec changed)."""
        record = self.get(name)
        with self._lock:
            cached = self._runtimes.get(name)
            if cached is not None and cached[0] == record.spec:
                return cached[1]
            spec = AgentSpec.model_validate(record.spec)
            runner = self._factory(name, spec, self._resolve(spec.model))
            self._runtimes[name] = (record.spec, runner)
        if cached is not None:  # another process changed the spec in the shared store
            cached[1].close()
        return runner

    def chat(
        self, session_id: str, text: str, *, cancel: threading.Event | None = None
    ) -> Iterator[AgentEvent]:
        if not text.strip():
            raise InvalidArgument.field("message", "must not be empty")
        session = self.store.get_session(session_id)
        return self.runtime(session.agent).chat(session_id, text, cancel=cancel)

    def ask(
        self, agent: str, question: str, *, research: bool = False, cancel: threading.Event | None = None
    ) -> Iterator[AgentEvent]:
        if not question.strip():
            raise InvalidArgument.field("question", "must not be empty")
        runner = self.runtime(agent)
        return runner.research(question, cancel=cancel) if research else runner.ask(question, cancel=cancel)

    def close(self) -> None:
        with self._lock:
            runners = [r for _, r in self._runtimes.values()]
            self._runtimes.clear()
        for runner in runners:
            runner.close()

    def _drop_runtime(self, name: str) -> None:
        with self._lock:
            cached = self._runtimes.pop(name, None)
        if cached is not None:
            cached[1].close()


def runtime_factory(
    store: SessionStore,
    storage: Storage,
    *,
    telemetry: Callable[[str], AgentTelemetry] | None = None,
) -> RuntimeFactory:
    """Builds ``AgentRuntime``s over ``store`` that talk to their endpoint with ``OpenAIChatModel``.

    ``telemetry(name)`` gives each agent its metrics and spans (a service joins them to its own
    /metrics). One dense encoder is shared by every agent and loaded only if a search tool ranks
    with it (``mode`` hybrid or dense).
    """
    from shipyard.agents.retrieval.dense import Encoder

    encoder = Encoder()

    def build(name: str, spec: AgentSpec, endpoint: ModelEndpoint) -> AgentRunner:
        from shipyard.agents.llm import OpenAIChatModel
        from shipyard.agents.runtime import AgentRuntime

        dense = any(isinstance(t, SearchToolSpec) and t.mode != "bm25" for t in spec.tools)
        return AgentRuntime(
            name,
            spec,
            model=OpenAIChatModel(endpoint.base_url, endpoint.model),
            store=store,
            storage=storage,
            encoder=encoder if dense else None,
            telemetry=telemetry(name) if telemetry is not None else None,
        )

    return build


def open_store(config: ShipyardConfig) -> SessionStore:
    """``agents.database_url``, or the embedded SQLite store under the data dir when unset."""
    url = config.agents.database_url
    return SessionStore(url) if url else SessionStore.embedded(config.storage.data_dir)


def open_catalog(
    config: ShipyardConfig,
    *,
    factory: RuntimeFactory | None = None,
    telemetry: Callable[[str], AgentTelemetry] | None = None,
) -> AgentCatalog:
    """The catalog ``config`` describes: its session store, storage and ModelDeployment resolution."""
    from shipyard.deployments.local import LocalDeployments
    from shipyard.storage.routing import RoutingStorage

    section = config.agents
    store = open_store(config)
    storage = RoutingStorage(config.storage)
    deployments = LocalDeployments(pathlib.Path(config.storage.data_dir) / "deployments")

    def local_endpoint(name: str) -> str | None:
        record = deployments.get(name)
        return record.endpoint if record.alive() else None

    def resolve(model: AgentModel) -> ModelEndpoint:
        return resolve_endpoint(
            model,
            mode=section.deployments,
            namespace=section.namespace,
            local_endpoint=local_endpoint_of(local_endpoint),
        )

    return AgentCatalog(
        store,
        storage,
        resolve=resolve,
        runtime_factory=factory or runtime_factory(store, storage, telemetry=telemetry),
    )
