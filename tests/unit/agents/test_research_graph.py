"""Research mode's pure parts: the sub-question graph, plan parsing and citation markers."""

from __future__ import annotations

import json

import pytest

from shipyard.agents.research import ResearchGraph, SubQuestion, repair_graph
from shipyard.agents.research.citations import cited_numbers, rewrite_markers, strip_markers
from shipyard.agents.research.planner import parse_plan, plan_schema
from shipyard.errors import InvalidArgument

Q = "Which river flows through the capital of France?"


def node(node_id: str, question: str = "", *deps: str) -> dict[str, object]:
    return {"id": node_id, "question": question or f"question {node_id}?", "depends_on": list(deps)}


@pytest.mark.parametrize(
    ("entries", "max_nodes", "expected", "note"),
    [
        ([node("a"), node("b", "", "a")], 4, {"a": (), "b": ("a",)}, None),
        ([node("a"), node("b", "", "zz")], 4, {"a": (), "b": ()}, "unknown node 'zz'"),
        ([node("a", "", "a")], 4, {"a": ()}, "depending on itself"),
        ([node("a", "", "b"), node("b", "", "a")], 4, {"a": (), "b": ("a",)}, "closed a cycle"),
        ([node("a"), node("b"), node("c"), node("d")], 2, {"a": (), "b": ()}, "trimmed the plan to 2"),
        ([node("a"), node("c", "", "d"), node("d")], 2, {"a": (), "c": ()}, "unknown node 'd'"),
        ([node("a"), node("a", "other?")], 4, {"a": (), "q2": ()}, "renamed the second node 'a'"),
        ([node("a"), {"id": "b", "question": "  "}], 4, {"a": ()}, "has no question"),
        ([node("a", "Same?"), node("b", "same?")], 4, {"a": ()}, "repeats"),
        ([{"question": "no id?"}, {"id": "bad id!", "question": "x?"}], 4, {"q1": (), "bad_id": ()}, None),
    ],
    ids=[
        "valid",
        "unknown-dep",
        "self-dep",
        "cycle",
        "too-many",
        "dep-on-trimmed",
        "dup-id",
        "empty",
        "repeat",
        "ids",
    ],
)
def test_repair_graph_fixes_what_a_planner_gets_wrong_and_says_so(
    entries: list[dict[str, object]], max_nodes: int, expected: dict[str, tuple[str, ...]], note: str | None
) -> None:
    graph, notes = repair_graph(entries, max_nodes=max_nodes)
    assert {n.id: n.depends_on for n in graph.nodes} == expected
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes), notes


def test_repair_graph_with_no_usable_node_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="no usable sub-question"):
        repair_graph([{"id": "a", "question": ""}], max_nodes=3)


@pytest.mark.parametrize(
    ("nodes", "field", "reason"),
    [
        ([], "plan.nodes", "at least one"),
        ([SubQuestion("a", "x?"), SubQuestion("a", "y?")], "plan.nodes[1].id", "earlier node"),
        ([SubQuestion("a", " ")], "plan.nodes[0].question", "must not be empty"),
        ([SubQuestion("a", "x?", ("b",))], "plan.nodes[0].depends_on", "unknown node 'b'"),
        ([SubQuestion("a", "x?", ("b",)), SubQuestion("b", "y?", ("a",))], "plan.nodes", "a -> b -> a"),
    ],
)
def test_graph_rejects_invalid_nodes_naming_the_field(
    nodes: list[SubQuestion], field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        ResearchGraph(nodes)
    assert info.value.violations[0].field == field
    assert reason in info.value.violations[0].description


def test_waves_run_a_node_only_after_everything_it_depends_on() -> None:
    graph = ResearchGraph(
        [
            SubQuestion("d", "d?", ("b", "c")),
            SubQuestion("b", "b?", ("a",)),
            SubQuestion("a", "a?"),
            SubQuestion("c", "c?", ("a",)),
            SubQuestion("e", "e?"),
        ]
    )
    assert [[n.id for n in wave] for wave in graph.waves()] == [["a", "e"], ["b", "c"], ["d"]]
    assert graph.as_dict()["nodes"][0] == {"id": "d", "question": "d?", "depends_on": ["b", "c"]}


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps({"nodes": [node("q1", "Capital of France?"), node("q2", "River of Paris?", "q1")]}),
        'Here is the plan:\n```json\n{"nodes": [{"id": "q1", "question": "Capital of France?"}, '
        '{"id": "q2", "question": "River of Paris?", "depends_on": ["q1"]}]}\n```',
        '{"sub_questions": [{"name": "q1", "content": "Capital of France?"}, '
        '{"name": "q2", "content": "River of Paris?", "dependencies": ["q1"]}]}',
        '{"nodes": [{"id": "q1", "question": "Capital of France?"}, '
        '{"id": "q2", "question": "River of Paris?", "depends_on": ["q1"',  # cut off by max_tokens
    ],
    ids=["schema", "fenced", "other-keys", "truncated"],
)
def test_parse_plan_reads_plans_in_the_shapes_models_write(reply: str) -> None:
    plan = parse_plan(reply, Q, max_nodes=4)
    assert not plan.fallback
    assert [(n.id, n.question, n.depends_on) for n in plan.graph.nodes] == [
        ("q1", "Capital of France?", ()),
        ("q2", "River of Paris?", ("q1",)),
    ]


def test_parse_plan_of_a_list_of_strings_makes_independent_nodes() -> None:
    plan = parse_plan('["Capital of France?", "River of Paris?"]', Q, max_nodes=4)
    assert [(n.id, n.depends_on) for n in plan.graph.nodes] == [("q1", ()), ("q2", ())]


@pytest.mark.parametrize(
    "reply", ["I am sorry, I cannot plan that.", "", '{"nodes": []}', '{"nodes": [{"id": "q1"}]}']
)
def test_an_unusable_plan_falls_back_to_the_question_itself(reply: str) -> None:
    plan = parse_plan(reply, Q, max_nodes=4)
    assert plan.fallback
    assert [(n.id, n.question) for n in plan.graph.nodes] == [("q1", Q)]
    assert "unusable" in plan.notes[0]


def test_plan_schema_bounds_the_number_of_nodes() -> None:
    schema = plan_schema(3)
    assert schema["properties"]["nodes"]["maxItems"] == 3
    assert schema["properties"]["nodes"]["items"]["required"] == ["id", "question", "depends_on"]


def test_citation_markers_are_found_renumbered_and_dropped() -> None:
    text = "France [2]. Paris [[1]], on the Seine [1, 3]; see also [9]."
    assert cited_numbers(text) == [2, 1, 3, 9]
    mapping = {1: 5, 2: 6, 3: 7}
    assert rewrite_markers(text, mapping.get) == "France [6]. Paris [5], on the Seine [5][7]; see also."
    assert strip_markers(text) == "France. Paris, on the Seine; see also."
    assert rewrite_markers("no markers [x] here", mapping.get) == "no markers [x] here"


def test_a_plan_cut_off_by_the_token_limit_loses_its_unfinished_last_node() -> None:
    reply = '{"nodes": [{"id": "q1", "question": "Capital of France?"}, {"id": "q2", "question": "How many'
    plan = parse_plan(reply, Q, max_nodes=4, truncated=True)
    assert [n.question for n in plan.graph.nodes] == ["Capital of France?"]
    assert "cut off" in plan.notes[0]
    assert [n.question for n in parse_plan(reply, Q, max_nodes=4).graph.nodes][1] == "How many"
