"""MT-bench judging: the grading prompt, ``[[rating]]`` extraction, ratings as metrics."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import pytest

from shipyard.evaluation.judge import judge_prompt, judge_task, parse_rating
from shipyard.evaluation.prompts import build_requests
from shipyard.evaluation.scoring import score
from shipyard.evaluation.tasks import TaskRegistry
from shipyard.evaluation.types import GenerationRequest, GenerationResult, LoglikelihoodResult, Sample


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("Good answer. Rating: [[8]]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("Rating: [6]", 6.0),  # FastChat's fallback pattern
        ("I cannot rate this.", None),
        ("Rating: [[0]]", None),  # outside 1..10
        ("first [[3]] then [[9]]", 3.0),
    ],
)
def test_parse_rating(text: str, rating: float | None) -> None:
    assert parse_rating(text) == rating


def test_prompt_uses_the_reference_template_when_there_is_a_reference() -> None:
    general = judge_prompt("Q?", "A.")
    assert "helpfulness, relevance, accuracy" in general and "Reference" not in general
    math_prompt = judge_prompt("2+2?", "5", reference="4")
    assert "[The Start of Reference Answer]\n4\n" in math_prompt and "correctness" in math_prompt
    assert math_prompt.endswith("[The Start of Assistant's Answer]\n5\n[The End of Assistant's Answer]")


class ScriptedJudge:
    """Stands in for a judge LLM (none can run here): rates an answer by its length, once it says nothing."""

    name = "scripted-judge"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def loglikelihood(self, requests: Sequence[object]) -> list[LoglikelihoodResult]:
        raise AssertionError("judging only generates")

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        out = []
        for r in requests:
            assert isinstance(r.prompt, list) and r.prompt[0]["role"] == "system"
            user = r.prompt[1]["content"]
            self.prompts.append(user)
            answer = re.search(r"Assistant's Answer\]\n(.*?)\n\[The End", user, re.DOTALL)
            text = answer.group(1) if answer else ""
            out.append(
                GenerationResult(f"Rating: [[{min(10, len(text))}]]" if text != "?" else "hmm", "stop")
            )
        return out


def test_judged_mt_bench_reports_mean_rating_with_stderr() -> None:
    task = TaskRegistry.builtin().get("mt_bench")
    docs = [
        {"question": "Write a poem.", "turns": ["Write a poem."]},
        {"question": "What is 2+2?", "turns": ["What is 2+2?"], "reference": ["4"]},
        {"question": "Say something.", "turns": ["Say something."]},
    ]
    planned = build_requests(task, [Sample(f"mt_bench/test/{i}", d) for i, d in enumerate(docs)])
    answers = [
        GenerationResult("roses", "stop"),
        GenerationResult("4 of them", "stop"),
        GenerationResult("?", "stop"),
    ]
    unjudged = score(task, planned, answers)
    assert unjudged.needs_judge and unjudged.metrics == {}

    judge = ScriptedJudge()
    judged = judge_task(unjudged, planned, judge)
    assert judged.metrics["rating"] == pytest.approx((5 + 9) / 2)
    assert judged.metrics["rating_norm"] == pytest.approx(0.7)
    assert judged.stderr["rating"] == pytest.approx(2.0) and not judged.needs_judge
    assert judged.primary_metric == "rating_norm" and judged.num_samples == 2 and judged.num_failed == 1
    assert "Write a poem." in judge.prompts[0] and "Reference Answer]\n4\n" in judge.prompts[1]
    assert "no [[rating]]" in judged.records[2].extra["error"]
    assert not math.isnan(judged.metrics["rating"])
