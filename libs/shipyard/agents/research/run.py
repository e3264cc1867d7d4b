"""One research run: plan → searchers in parallel, wave by wave → responder, as a stream of events.

The searchers of one wave run on a ``ThreadPoolExecutor`` of ``settings.parallelism`` workers and put
their events on a queue; the run yields them in plan order (the first unfinished node's events as they
come, later nodes' events held until the nodes before them are done), so two runs of the same plan
read the same whatever the threads' timing. Limits are enforced by one ``RunBudget``; any typed error
(a limit, cancellation, the model endpoint failing) ends the run with one ``error`` event, and closing
the generator early stops the searchers still running at their next streamed chunk.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import ChatModel
from shipyard.agents.research.budget import RunBudget
from shipyard.agents.research.graph import ResearchGraph, SubQuestion
from shipyard.agents.research.planner import plan_research, single_node
from shipyard.agents.research.responder import respond
from shipyard.agents.research.searcher import NodeAnswer, answer_node
from shipyard.agents.tools.search import SearchTool
from shipyard.errors import Internal, InvalidArgument, ShipyardError
from shipyard.resources.agent import AgentLimits, Research

__all__ = ["run_research"]

_log = logging.getLogger(__name__)
_POLL_S = 0.05  # how often the waiting run re-checks cancellation and the deadline
_Item = AgentEvent | NodeAnswer | BaseException


def run_research(
    question: str,
    *,
    model: ChatModel,
    search: SearchTool,
    settings: Research,
    limits: AgentLimits,
    cancel: threading.Event | None = None,
) -> Iterator[AgentEvent]:
    """Research ``question``: ``plan``, per-node ``tool_call``/``tool_result``/``thought`` events,
    ``partial_answer``s, then one ``final_answer`` citing retrieved passages, or one ``error``.

    Raises ``InvalidArgument`` at once for an empty question; everything later is reported as events.
    """
    if not question.strip():
        raise InvalidArgument.field("question", "must not be empty")
    return _run(question.strip(), model, search, settings, RunBudget(limits, cancel))


def _run(
    question: str, model: ChatModel, search: SearchTool, settings: Research, budget: RunBudget
) -> Iterator[AgentEvent]:
    step = 0
    try:
        graph = yield from _plan(question, model, budget, settings)
        steps = {node.id: i for i, node in enumerate(graph.nodes, start=1)}
        answers: dict[str, NodeAnswer] = {}
        for wave in graph.waves():
            step = steps[wave[0].id]
            yield from _run_wave(question, wave, steps, answers, model, search, settings, budget)
        step = len(graph) + 1
        yield from respond(
            question, [answers[n.id] for n in graph.nodes], model=model, budget=budget, step=step
        )
    except ShipyardError as exc:
        yield AgentEvent("error", step, text=str(exc), error=exc.code.name, usage=budget.usage)
    except Exception as exc:  # a bug must still end the stream with its one terminal event, never a hang
        _log.exception("research run failed")
        error = Internal(f"the research run failed: {type(exc).__name__}: {exc}")
        yield AgentEvent("error", step, text=str(error), error=error.code.name, usage=budget.usage)
    finally:
        budget.stopped.set()


def _plan(
    question: str, model: ChatModel, budget: RunBudget, settings: Research
) -> Generator[AgentEvent, None, ResearchGraph]:
    """Yield the planner's notes and the ``plan`` event; return the graph (via ``yield from``)."""
    # The planner and the responder take one model call each; the rest of max_steps is for the nodes.
    max_nodes = min(settings.max_sub_questions, budget.limits.max_steps - 2)
    if max_nodes <= 1:
        graph, notes = single_node(question), []
        if settings.max_sub_questions > 1:
            notes.append(
                f"limits.max_steps={budget.limits.max_steps} leaves no model call for planning; "
                "researching the question as one sub-question"
            )
    else:
        plan = plan_research(question, model=model, budget=budget, max_nodes=max_nodes)
        graph, notes = plan.graph, plan.notes
    for note in notes:
        yield AgentEvent("thought", 0, text=note)
    summary = "\n".join(
        f"{n.id}: {n.question}" + (f" (after {', '.join(n.depends_on)})" if n.depends_on else "")
        for n in graph.nodes
    )
    yield AgentEvent("plan", 0, text=summary, data=graph.as_dict())
    return graph


def _run_wave(
    question: str,
    wave: Sequence[SubQuestion],
    steps: dict[str, int],
    answers: dict[str, NodeAnswer],
    model: ChatModel,
    search: SearchTool,
    settings: Research,
    budget: RunBudget,
) -> Iterator[AgentEvent]:
    """Answer the nodes of one wave in parallel, yielding their events in plan order."""
    items: queue.Queue[tuple[str, _Item]] = queue.Queue()

    def work(node: SubQuestion) -> None:
        try:
            answer = answer_node(
                node,
                topic=question,
                context=[answers[d] for d in node.depends_on],
                model=model,
                search=search,
                k=settings.passages_per_question,
                budget=budget,
                step=steps[node.id],
                emit=lambda event: items.put((node.id, event)),
            )
            items.put((node.id, answer))
        except BaseException as exc:  # handed to the run's thread, which reports it as the run's error
            items.put((node.id, exc))

    order = [n.id for n in wave]
    held: dict[str, list[AgentEvent | NodeAnswer]] = {node_id: [] for node_id in order}
    executor = ThreadPoolExecutor(
        max_workers=min(settings.parallelism, len(wave)), thread_name_prefix="searcher"
    )
    try:
        for node in wave:
            executor.submit(work, node)
        position = 0
        while position < len(order):
            budget.check()
            try:
                node_id, item = items.get(timeout=min(_POLL_S, max(budget.remaining_s(), 0.001)))
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise _as_error(node_id, item)
            held[node_id].append(item)
            while position < len(order) and held[order[position]]:
                current = held[order[position]].pop(0)
                if isinstance(current, NodeAnswer):
                    answers[current.node.id] = current
                    position += 1
                else:
                    yield current
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def _as_error(node_id: str, exc: BaseException) -> ShipyardError:
    if isinstance(exc, ShipyardError):
        return exc
    _log.error("research: the searcher of node %s failed", node_id, exc_info=exc)
    return Internal(f"the searcher of node {node_id!r} failed: {type(exc).__name__}: {exc}")
