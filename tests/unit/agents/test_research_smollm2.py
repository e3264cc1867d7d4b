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
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from shipyard.agents.llm import OpenAIChatModel
from shipyard.agents.research import run_research
from shipyard.agents.retrieval import Collection
from shipyard.agents.tools.search import SearchTool
from shipyard.config import InferenceConfig
from shipyard.data.document import Document
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.models.local import SMOLLM2
from shipyard.resources.agent import AgentLimits, Research
from shipyard.rpc import ServerOptions
from shipyard_services.inference.server import InferenceServers
from shipyard_services.inference.serving_models import ServedModels

pytestmark = pytest.mark.slow

PASSAGES = 200


@pytest.fixture(scope="session")
def smollm2_openai_url() -> Iterator[str]:
    """Our inference server (HTTP, OpenAI API) serving SmolLM2 on a free loopback port."""
    registry = CollectorRegistry()
    config = InferenceConfig(device="cpu", block_size=16, max_num_batched_tokens=512, kv_cache_memory=64e6)
    engine = AsyncLLMEngine.from_config(SMOLLM2, config, metrics=EngineMetrics(registry))
    servers = InferenceServers.start(
        ServedModels(engine, source=SMOLLM2),
        registry,
        http_host="127.0.0.1",
        http_port=0,
        grpc_options=ServerOptions(shutdown_grace_seconds=1.0),
    )
    yield servers.http.url
    servers.stop()


def read_jsonl(path: pathlib.Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def test_research_on_xquad_cites_the_passage_the_question_came_from(
    shared_data: pathlib.Path, smollm2_openai_url: str
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
            model=OpenAIChatModel(smollm2_openai_url),
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
