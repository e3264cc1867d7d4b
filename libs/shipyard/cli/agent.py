"""``shipyard agent``: talk to agents (chat in sessions, one-off questions, research) and list them.

Embedded by default: the agent runs in this process over the session store in the data dir, the same
store ``shipyard apply -f`` registers agents in. ``--endpoint HOST:PORT`` talks to an agents service
instead; both return the same events, rendered live: thoughts dimmed, tool calls with their arguments,
results, the answer as it streams, then its citations and token usage.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import click
from rich.markup import escape
from rich.table import Table

from shipyard.agents.events import AgentEvent
from shipyard.cli import display
from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    from shipyard.agents.sessions.models import AgentRecord, SessionRecord
    from shipyard.cli.main import CliContext

__all__ = ["agent", "render_events"]

_RESULT_CHARS = 400  # tool output shown per call; the model saw all of it


class _Agents(Protocol):
    """What the commands need, from the embedded catalog or the service's client alike."""

    def list_agents(self) -> list[AgentRecord]: ...

    def list_sessions(self, agent: str | None = None) -> list[SessionRecord]: ...

    def create_session(self, agent: str, *, title: str = "") -> SessionRecord: ...

    def session(self, session_id: str) -> SessionRecord: ...

    def chat(self, session_id: str, message: str, cancel: threading.Event) -> Iterator[AgentEvent]: ...

    def ask(
        self, agent: str, question: str, research: bool, cancel: threading.Event
    ) -> Iterator[AgentEvent]: ...

    def close(self) -> None: ...


class _Embedded:
    def __init__(self, obj: CliContext) -> None:
        from shipyard.agents.catalog import open_catalog

        self._catalog = open_catalog(obj.config)
        self._store = self._catalog.store

    def list_agents(self) -> list[AgentRecord]:
        return self._catalog.list()

    def list_sessions(self, agent: str | None = None) -> list[SessionRecord]:
        return self._store.list_sessions(agent)

    def create_session(self, agent: str, *, title: str = "") -> SessionRecord:
        return self._store.create_session(agent, title=title)

    def session(self, session_id: str) -> SessionRecord:
        return self._store.get_session(session_id)

    def chat(self, session_id: str, message: str, cancel: threading.Event) -> Iterator[AgentEvent]:
        return self._catalog.chat(session_id, message, cancel=cancel)

    def ask(self, agent: str, question: str, research: bool, cancel: threading.Event) -> Iterator[AgentEvent]:
        return self._catalog.ask(agent, question, research=research, cancel=cancel)

    def close(self) -> None:
        self._catalog.close()
        self._store.close()


class _Remote:
    def __init__(self, endpoint: str) -> None:
        from shipyard.clients.agents import AgentsClient

        self._client = AgentsClient(endpoint)

    def list_agents(self) -> list[AgentRecord]:
        return self._client.list_agents()

    def list_sessions(self, agent: str | None = None) -> list[SessionRecord]:
        return self._client.list_sessions(agent)

    def create_session(self, agent: str, *, title: str = "") -> SessionRecord:
        return self._client.create_session(agent, title=title)

    def session(self, session_id: str) -> SessionRecord:
        return self._client.get_session(session_id)[0]

    def chat(self, session_id: str, message: str, cancel: threading.Event) -> Iterator[AgentEvent]:
        return self._client.chat(session_id, message)  # closing the iterator cancels the call

    def ask(self, agent: str, question: str, research: bool, cancel: threading.Event) -> Iterator[AgentEvent]:
        return self._client.ask(agent, question, research=research)

    def close(self) -> None:
        self._client.close()


def _open(obj: CliContext, endpoint: str | None) -> _Agents:
    return _Remote(endpoint) if endpoint else _Embedded(obj)


_endpoint_option = click.option(
    "--endpoint", metavar="HOST:PORT", help="An agents service (default: embedded)."
)


@click.group("agent")
def agent() -> None:
    """Chat with agents, ask them questions, list agents and sessions (`shipyard apply -f` registers them)."""


# -- rendering ---------------------------------------------------------------------------------------


def render_events(events: Iterator[AgentEvent]) -> AgentEvent | None:
    """Print a run's steps as they come; returns the terminal event (None if the stream ended early)."""
    out = display.out
    open_line = False  # streamed answer text waiting for its newline
    answered = False  # the answer's text was streamed, so the final event need not repeat it
    for event in events:
        if event.kind == "partial_answer":
            if event.node:  # a searcher's answer to its sub-question: context, not the answer
                continue
            out.print(event.text, end="", markup=False, highlight=False)
            open_line = answered = True
            continue
        if open_line:
            out.print()
            open_line = False
        if event.kind == "final_answer" and event.node:
            continue
        if event.kind == "final_answer":
            _final(event, streamed=answered)
            return event
        if event.kind == "error":
            display.console.print(f"[bold red]error:[/bold red] {escape(event.text)}")
            return event
        if event.kind in ("thought", "tool_call", "tool_result"):
            answered = False  # text streamed before a tool call was a preamble, not the answer
        _step(event)
    if open_line:
        out.print()
    return None


def _step(event: AgentEvent) -> None:
    out = display.out
    node = f"[magenta]\\[{escape(event.node)}][/magenta] " if event.node else ""
    if event.kind == "thought":
        out.print(f"{node}[dim italic]{escape(event.text.strip())}[/dim italic]")
        if event.error:
            out.print(f"{node}[dim red]({escape(event.error)})[/dim red]")
    elif event.kind == "plan":
        out.print("[bold]plan[/bold]")
        for n in event.data.get("nodes", []):
            deps = n.get("depends_on") or []
            after = f" [dim](after {escape(', '.join(map(str, deps)))})[/dim]" if deps else ""
            out.print(
                f"  [magenta]{escape(str(n.get('id')))}[/magenta] {escape(str(n.get('question')))}{after}"
            )
    elif event.kind == "tool_call" and event.tool_call is not None:
        args = json.dumps(event.tool_call.arguments, ensure_ascii=False)
        out.print(f"{node}[cyan]→ {escape(event.tool_call.name)}[/cyan]({escape(args)})")
    elif event.kind == "tool_result":
        shown = event.error or event.text
        if len(shown) > _RESULT_CHARS:
            shown = shown[:_RESULT_CHARS] + " …"
        style = "red" if event.error else "green"
        out.print(f"{node}[{style}]← {escape(shown.strip())}[/{style}] [dim]{event.elapsed_s:.2f}s[/dim]")


def _final(event: AgentEvent, *, streamed: bool) -> None:
    out = display.out
    if not streamed:
        out.print(event.text, markup=False, highlight=False)
    if event.citations:
        out.print("[bold]sources[/bold]")
    for c in event.citations:
        title = f"{c.title} " if c.title else ""
        out.print(f"  \\[{c.index}] {escape(title)}[dim]({escape(c.doc_id)})[/dim]")
    if event.usage is not None:
        u = event.usage
        out.print(
            f"[dim]{u.model_calls} model calls · {u.prompt_tokens} prompt + "
            f"{u.completion_tokens} completion tokens[/dim]"
        )


def _run(start: Any) -> AgentEvent | None:
    """Render a run started by ``start(cancel)``; Ctrl-C cancels it (and returns None)."""
    cancel = threading.Event()
    events = start(cancel)
    try:
        return render_events(events)
    except KeyboardInterrupt:
        cancel.set()
        display.console.print("[yellow]cancelled[/yellow]")
        return None
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


# -- commands ----------------------------------------------------------------------------------------


def _pick_agent(agents: _Agents, name: str | None) -> str:
    if name:
        return name
    names = [a.name for a in agents.list_agents()]
    if len(names) == 1:
        return names[0]
    have = ", ".join(names) if names else "none; register one with shipyard apply -f agent.yaml"
    raise InvalidArgument.field("agent", f"name the agent with --agent (agents: {have})")


@agent.command("chat")
@click.option("--agent", "agent_name", help="The agent (default: the only one registered).")
@click.option("--session", "session_id", help="Continue this session (default: start a new one).")
@click.option("-m", "--message", "messages", multiple=True, help="Send this message and exit (repeatable).")
@_endpoint_option
@click.pass_obj
def chat(
    obj: CliContext,
    agent_name: str | None,
    session_id: str | None,
    messages: tuple[str, ...],
    endpoint: str | None,
) -> None:
    """Chat with an agent in a session that remembers (interactive unless -m is given; Ctrl-D ends)."""
    agents = _open(obj, endpoint)
    try:
        if session_id:
            session = agents.session(session_id)
            display.console.print(f"session {session.id} ({session.agent}, {session.message_count} messages)")
        else:
            session = agents.create_session(_pick_agent(agents, agent_name))
            display.console.print(f"session {session.id} with {session.agent}")
        if messages:
            for text in messages:
                final = _run(lambda cancel, text=text: agents.chat(session.id, text, cancel))
                if final is None or final.kind == "error":
                    raise click.exceptions.Exit(1)
            return
        while True:
            try:
                text = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
            except (EOFError, click.Abort):
                break
            if text.strip() in ("exit", "quit"):
                break
            if text.strip():
                _run(lambda cancel, text=text: agents.chat(session.id, text, cancel))
        display.console.print(f"continue with: shipyard agent chat --session {session.id}")
    finally:
        agents.close()


@agent.command("ask")
@click.argument("question")
@click.option("--agent", "agent_name", help="The agent (default: the only one registered).")
@click.option("--research", is_flag=True, help="Plan sub-questions, search them in parallel, cite sources.")
@_endpoint_option
@click.pass_obj
def ask(obj: CliContext, question: str, agent_name: str | None, research: bool, endpoint: str | None) -> None:
    """Ask QUESTION once (no session) and print the answer with its sources."""
    agents = _open(obj, endpoint)
    try:
        name = _pick_agent(agents, agent_name)
        final = _run(lambda cancel: agents.ask(name, question, research, cancel))
    finally:
        agents.close()
    if final is None or final.kind == "error":
        raise click.exceptions.Exit(1)


@agent.command("list")
@_endpoint_option
@click.pass_obj
def list_agents(obj: CliContext, endpoint: str | None) -> None:
    """The registered agents: model, tools, registration time."""
    agents = _open(obj, endpoint)
    try:
        records = agents.list_agents()
    finally:
        agents.close()
    display.out.print(agents_table(records))


@agent.command("sessions")
@click.option("--agent", "agent_name", help="Only this agent's sessions.")
@_endpoint_option
@click.pass_obj
def sessions(obj: CliContext, agent_name: str | None, endpoint: str | None) -> None:
    """Sessions (oldest first) with their message counts; continue one with `agent chat --session ID`."""
    agents = _open(obj, endpoint)
    try:
        records = agents.list_sessions(agent_name)
    finally:
        agents.close()
    table = Table(box=None)
    for column in ("SESSION", "AGENT", "TITLE", "MESSAGES", "UPDATED"):
        table.add_column(column)
    for s in records:
        table.add_row(
            s.id, s.agent, s.title, str(s.message_count), s.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        )
    display.out.print(table)


def agents_table(records: list[AgentRecord]) -> Table:
    """Agents as ``shipyard get agents`` and ``agent list`` show them."""
    table = Table(box=None)
    for column in ("NAME", "MODEL", "TOOLS", "PROTOCOL", "CREATED"):
        table.add_column(column)
    for r in records:
        model = r.spec.get("model", {})
        target = f"deployment/{model['deployment']}" if model.get("deployment") else str(model.get("url", ""))
        tools = ", ".join(str(t.get("name", t.get("type"))) for t in r.spec.get("tools", []))
        table.add_row(
            r.name,
            target,
            tools,
            str(r.spec.get("protocol", "auto")),
            r.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table
