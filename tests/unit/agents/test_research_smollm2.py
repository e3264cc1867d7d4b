"""Research mode for real: SmolLM2-135M-Instruct behind our inference server, over XQuAD passages.

The collection holds the first 200 English XQuAD paragraphs (one passage each, BM25: the dense
MiniLM index would take minutes to embed them on this CPU, and BM25 alone finds the source paragraph
in the top 5 for 98.8% of the English questions, see benchmarks/RESULTS.md). The question is one of
the set's; the answer must cite passages that exist, one of them the paragraph the question was
written from.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from shipyard.agents.llm import OpenAIChatModel
from shipyard.agents.research import run_research
from shipyard.agents.retrieval import Collection
from shipyard.agents.tools.search import SearchTool
from shipyard.data.document import Document
from shipyard.resources.agent import AgentLimits, Research
from shipyard_services.inference.server import InferenceServers

pytestmark = pytest.mark.slow

PASSAGES = 200


def read_jsonl(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def test_research_on_xquad_cites_the_passage_the_question_came_from(
    shared_data: pathlib.Path, smollm2_servers: InferenceServers
) -> None:
    xquad = shared_data / "retrieval" / "xquad"
    contexts = [d for d in read_jsonl(xquad / "corpus.jsonl") if d["lang"] == "en"][:PASSAGES]
    collection = Collection.build(
        "xquad-en",
        (
            Document(str(d["id"]), str(d["text"]), {"title": str(d["title"]).replace("_", " ")})
            for d in contexts
        ),
        encoder=None,
        max_chars=4000,  # one passage per paragraph: the unit XQuAD labels
    )
    assert len(collection) == PASSAGES
    doc_ids = {str(d["id"]) for d in contexts}
    query = next(
        q for q in read_jsonl(xquad / "queries.jsonl") if q["lang"] == "en" and q["context_id"] in doc_ids
    )

    events = list(
        run_research(
            str(query["question"]),
            model=OpenAIChatModel(smollm2_servers.http.url),
            search=SearchTool(collection, mode="bm25"),
            settings=Research(max_sub_questions=2, passages_per_question=2),
            # Generous wall time: the CI machine's two cores are shared; on an idle one this takes ~30 s.
            limits=AgentLimits(max_tokens_per_step=64, max_tokens=512, wall_time_seconds=400),
        )
    )

    kinds = [e.kind for e in events]
    assert "plan" in kinds and kinds[-1] == "final_answer", [(e.kind, e.text) for e in events]
    retrieved = [e.text for e in events if e.kind == "tool_result"]
    assert any(f"({query['context_id']})" in text for text in retrieved)
    final = events[-1]
    assert final.text.strip() and final.citations
    assert {c.doc_id for c in final.citations} <= doc_ids
    assert query["context_id"] in {c.doc_id for c in final.citations}
    assert all(f"[{c.index}]" in final.text for c in final.citations)
    assert final.usage is not None and final.usage.model_calls >= 3 and final.usage.completion_tokens > 0
