"""The ``Agent`` spec: a model endpoint, a system prompt, tools and limits (Lagent / MindSearch style).

``model`` names a ``ModelDeployment`` (``deployment``) or any OpenAI-compatible endpoint (``url``).
``tools`` is a list of typed entries told apart by ``type``; each becomes a tool the model may call.
``shipyard apply -f`` registers the agent with the agents service; on a cluster the operator runs an
agents Deployment configured for it.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from shipyard.resources.meta import API_VERSION, Metadata, SpecModel

KIND = "Agent"

Protocol = Literal["auto", "function-calling", "react"]
ToolChoice = Literal["auto", "required", "none"]


class AgentModel(SpecModel):
    """Exactly one of ``deployment`` (a ModelDeployment's name) or ``url`` (an OpenAI-compatible ``/v1``)."""

    deployment: str | None = Field(None, min_length=1, description="ModelDeployment serving the model.")
    url: str | None = Field(None, description="Base URL of an OpenAI-compatible API, ending in /v1.")
    name: str | None = Field(None, min_length=1, description="Model name to request; default first served.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key, if any.")

    @model_validator(mode="after")
    def _exactly_one(self) -> AgentModel:
        if (self.deployment is None) == (self.url is None):
            raise ValueError("set exactly one of deployment or url")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"url must be http(s), got {self.url!r}")
        return self


class CalculatorToolSpec(SpecModel):
    type: Literal["calculator"]
    name: str = Field("calculator", description="Function name the model sees.")


class PythonToolSpec(SpecModel):
    """A Python interpreter in a sandbox process; state persists across calls in one session."""

    type: Literal["python"]
    name: str = Field("python", description="Function name the model sees.")
    timeout_seconds: float = Field(10.0, ge=0.1, le=600, description="Wall-clock limit per call.")
    cpu_seconds: int = Field(5, ge=1, le=600, description="CPU seconds per call.")
    memory_mb: int = Field(512, ge=64, le=65536, description="Address-space limit of the interpreter.")
    output_chars: int = Field(16384, ge=256, le=1_000_000, description="Output kept per call.")


class SearchToolSpec(SpecModel):
    """Search over a document collection (BM25 + dense, hybrid ranking)."""

    type: Literal["search"]
    name: str = Field("search", description="Function name the model sees.")
    collection: str | None = Field(None, description="URI of a collection saved by the agents service.")
    manifest: str | None = Field(None, description="URI of an ingest manifest to build the collection from.")
    documents: str | None = Field(None, description="URI of a JSONL file of {id, title?, text} documents.")
    mode: Literal["hybrid", "bm25", "dense"] = Field("hybrid", description="Ranking.")
    top_k: int = Field(3, ge=1, le=50, description="Default passages per query.")

    @model_validator(mode="after")
    def _one_source(self) -> SearchToolSpec:
        sources = [s for s in (self.collection, self.manifest, self.documents) if s is not None]
        if len(sources) != 1:
            raise ValueError("set exactly one of collection, manifest or documents")
        return self


class SqlToolSpec(SpecModel):
    """Read-only SQL over a database named by URL (enforced by the connection)."""

    type: Literal["sql"]
    name: str = Field("sql", description="Function name the model sees.")
    url: str = Field(min_length=1, description="SQLAlchemy URL: sqlite:///path or postgresql://...")
    max_rows: int = Field(50, ge=1, le=10000, description="Rows returned per query.")


class McpServer(SpecModel):
    name: str = Field(min_length=1, description="Prefix of this server's tools.")
    command: list[str] = Field(default_factory=list, description="argv of a stdio MCP server.")
    url: str | None = Field(None, description="Streamable-HTTP URL of an MCP server (loopback).")
    env: dict[str, str] = Field(default_factory=dict, description="Environment of a stdio server.")


class McpToolSpec(SpecModel):
    """Every tool of the listed MCP servers."""

    type: Literal["mcp"]
    servers: list[McpServer] = Field(min_length=1, description="MCP servers whose tools the model sees.")


class OpenApiToolSpec(SpecModel):
    """The operations of an OpenAPI description, callable only on allowed hosts."""

    type: Literal["openapi"]
    spec: str = Field(min_length=1, description="URI or path of the OpenAPI 3 document (JSON or YAML).")
    base_url: str | None = Field(None, description="Server URL; default the document's first server.")
    allowed_hosts: list[str] = Field(min_length=1, description="Hosts the tools may call; others refused.")
    operations: list[str] = Field(default_factory=list, description="operationIds to expose; default all.")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Per-request timeout.")


ToolEntry = Annotated[
    CalculatorToolSpec | PythonToolSpec | SearchToolSpec | SqlToolSpec | McpToolSpec | OpenApiToolSpec,
    Field(discriminator="type"),
]


class AgentLimits(SpecModel):
    max_steps: int = Field(8, ge=1, le=100, description="Model calls per turn before giving up.")
    max_tokens: int = Field(4096, ge=16, description="Completion tokens per turn, all steps together.")
    max_tokens_per_step: int = Field(512, ge=8, description="Completion tokens of one model call.")
    wall_time_seconds: float = Field(120.0, gt=0, le=3600, description="Wall-clock limit of one turn.")
    context_tokens: int = Field(
        2048, ge=256, description="History budget; older turns are dropped or summarised past it."
    )


class Research(SpecModel):
    """MindSearch-style research mode: plan a graph of sub-questions, search them in parallel, cite."""

    max_sub_questions: int = Field(4, ge=1, le=16, description="Nodes the planner may create.")
    parallelism: int = Field(4, ge=1, le=32, description="Searcher agents at once.")
    passages_per_question: int = Field(3, ge=1, le=20, description="Passages each searcher retrieves.")


class AgentSpec(SpecModel):
    model: AgentModel
    system_prompt: str = Field("You are a helpful assistant.", description="The agent's instructions.")
    protocol: Protocol = Field(
        "auto",
        description="function-calling (OpenAI tools), react (Thought/Action text), or auto (function calling "
        "when the server supports tools).",
    )
    tool_choice: ToolChoice = Field(
        "auto",
        description="Function calling: auto (the model decides), required (it must call a tool before it may "
        "answer; back to auto after its first call, as the OpenAI Agents SDK resets it, so it cannot loop), "
        "none (tools are listed but never called).",
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of every model call.")
    tools: list[ToolEntry] = Field(default_factory=list, description="Tools the model may call.")
    limits: AgentLimits = Field(default_factory=AgentLimits)
    research: Research = Field(default_factory=Research)

    @model_validator(mode="after")
    def _unique_tool_names(self) -> AgentSpec:
        names = [t.name for t in self.tools if not isinstance(t, McpToolSpec | OpenApiToolSpec)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        return self


class Agent(SpecModel):
    api_version: Literal["shipyard.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["Agent"] = KIND
    metadata: Metadata
    spec: AgentSpec
