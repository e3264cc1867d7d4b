"""The sub-question graph of a research run: nodes, ``depends_on`` edges, validation and topological waves.

``ResearchGraph`` is always valid (unique non-empty ids, non-empty questions, known dependencies, no
cycles): its constructor raises ``InvalidArgument`` naming the offending node otherwise. What a planner
model writes is rarely that clean, so ``repair_graph`` turns raw entries into a valid graph by dropping
what cannot be used (and trimming past ``max_nodes``), returning one human-readable note per repair so
the run can report it instead of failing. ``waves()`` groups the nodes into layers whose members depend
only on earlier layers: the nodes of one wave can be searched in parallel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidArgument

__all__ = ["ResearchGraph", "SubQuestion", "repair_graph"]

_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SubQuestion:
    """One node: a single question a searcher answers, after the nodes it ``depends_on``."""

    id: str
    question: str
    depends_on: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "depends_on": list(self.depends_on)}


class ResearchGraph:
    """A DAG of sub-questions, in the planner's order."""

    def __init__(self, nodes: Sequence[SubQuestion]) -> None:
        if not nodes:
            raise InvalidArgument.field("plan.nodes", "the plan needs at least one sub-question")
        seen: set[str] = set()
        for i, node in enumerate(nodes):
            if not node.id:
                raise InvalidArgument.field(f"plan.nodes[{i}].id", "must not be empty")
            if node.id in seen:
                raise InvalidArgument.field(f"plan.nodes[{i}].id", f"{node.id!r} is used by an earlier node")
            if not node.question.strip():
                raise InvalidArgument.field(f"plan.nodes[{i}].question", "must not be empty")
            seen.add(node.id)
        for i, node in enumerate(nodes):
            for dep in node.depends_on:
                if dep not in seen:
                    raise InvalidArgument.field(f"plan.nodes[{i}].depends_on", f"unknown node {dep!r}")
        self.nodes: tuple[SubQuestion, ...] = tuple(nodes)
        self._by_id = {n.id: n for n in self.nodes}
        cycle = _find_cycle(self._by_id)
        if cycle:
            raise InvalidArgument.field("plan.nodes", f"dependencies form a cycle: {' -> '.join(cycle)}")

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, node_id: str) -> SubQuestion:
        return self._by_id[node_id]

    def waves(self) -> list[list[SubQuestion]]:
        """Layers of nodes, each depending only on earlier layers; planner order kept within a layer."""
        depth: dict[str, int] = {}

        def level(node_id: str) -> int:
            if node_id not in depth:
                deps = self._by_id[node_id].depends_on
                depth[node_id] = 1 + max((level(d) for d in deps), default=-1)
            return depth[node_id]

        layers: dict[int, list[SubQuestion]] = {}
        for node in self.nodes:
            layers.setdefault(level(node.id), []).append(node)
        return [layers[i] for i in sorted(layers)]

    def as_dict(self) -> dict[str, Any]:
        """The ``plan`` event's ``data``."""
        return {"nodes": [n.as_dict() for n in self.nodes]}


def _find_cycle(by_id: Mapping[str, SubQuestion]) -> list[str]:
    """One dependency cycle as a path ``a -> b -> a``, or ``[]`` when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished
    stack: list[str] = []

    def visit(node_id: str) -> list[str]:
        state[node_id] = 1
        stack.append(node_id)
        for dep in by_id[node_id].depends_on:
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node_id] = 2
        return []

    for node_id in by_id:
        if node_id not in state:
            found = visit(node_id)
            if found:
                return found
    return []


def repair_graph(entries: Iterable[Mapping[str, Any]], *, max_nodes: int) -> tuple[ResearchGraph, list[str]]:
    """A valid graph from a planner's raw node entries, and one note per thing that was dropped or fixed.

    Entries are ``{"id", "question", "depends_on"}`` mappings. Empty questions and repeated questions
    are dropped; missing or repeated ids are renamed; nodes past ``max_nodes`` are trimmed; dependencies
    on unknown (or trimmed) nodes and on the node itself are dropped, and so is every edge that would
    close a cycle. Raises ``InvalidArgument`` when no usable node is left.
    """
    notes: list[str] = []
    nodes: list[SubQuestion] = []
    questions: set[str] = set()
    raw_deps: list[list[str]] = []
    for i, entry in enumerate(entries):
        question = " ".join(str(entry.get("question") or "").split())
        if not question:
            notes.append(f"dropped sub-question {i + 1}: it has no question")
            continue
        if question.casefold() in questions:
            notes.append(f"dropped sub-question {i + 1}: it repeats {question!r}")
            continue
        if len(nodes) == max_nodes:
            notes.append(f"trimmed the plan to {max_nodes} sub-questions (research.max_sub_questions)")
            break
        node_id = _ID_CHARS.sub("_", str(entry.get("id") or "").strip()).strip("_") or f"q{len(nodes) + 1}"
        if any(n.id == node_id for n in nodes):
            renamed = f"q{len(nodes) + 1}"
            notes.append(f"renamed the second node {node_id!r} to {renamed!r}")
            node_id = renamed
        deps = entry.get("depends_on") or []
        raw_deps.append([str(d) for d in deps] if isinstance(deps, list | tuple) else [str(deps)])
        nodes.append(SubQuestion(node_id, question))
        questions.add(question.casefold())
    if not nodes:
        raise InvalidArgument.field("plan.nodes", "the plan has no usable sub-question")
    known = {n.id for n in nodes}
    kept: dict[str, SubQuestion] = {}
    for node, deps in zip(nodes, raw_deps, strict=True):
        final: list[str] = []
        for dep in dict.fromkeys(deps):
            if dep == node.id:
                notes.append(f"dropped {node.id!r} depending on itself")
            elif dep not in known:
                notes.append(f"dropped {node.id!r}'s dependency on unknown node {dep!r}")
            else:
                final.append(dep)
        kept[node.id] = SubQuestion(node.id, node.question, tuple(final))
    # Break cycles one edge at a time. Planners list a question after the ones it needs, so the edge to
    # go is one pointing forward in the plan (a node waiting on a later one); the closing edge otherwise.
    position = {node_id: i for i, node_id in enumerate(kept)}
    while cycle := _find_cycle(kept):
        edges = list(zip(cycle, cycle[1:], strict=False))
        source, target = next(((s, t) for s, t in edges if position[t] > position[s]), edges[-1])
        node = kept[source]
        kept[source] = SubQuestion(node.id, node.question, tuple(d for d in node.depends_on if d != target))
        notes.append(f"dropped {source!r}'s dependency on {target!r}: it closed a cycle")
    return ResearchGraph(list(kept.values())), notes
