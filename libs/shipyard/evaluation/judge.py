"""MT-bench judging: a judge model grades each answer 1-10 with MT-bench's single-answer prompts.

The prompts are FastChat's ``single-v1`` (general questions) and ``single-math-v1`` (questions with a
reference answer: math, reasoning, coding), sent as a system + user chat to any ``ModelBackend``
(greedy). The rating is read from ``[[N]]`` as FastChat does (``[N]`` accepted as a fallback); an answer
the judge did not rate (no rating, or the judge call failed) is marked failed: counted, left out.
Metrics: ``rating`` (1-10, MT-bench's scale) and ``rating_norm`` (rating / 10, the primary metric, so
the dimension summary stays on the same 0-1 scale as accuracies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from shipyard.evaluation import metrics as m
from shipyard.evaluation.backends import RequestsFailed
from shipyard.evaluation.prompts import SampleRequests
from shipyard.evaluation.types import GenerationRequest, GenerationResult, ModelBackend, TaskResult

__all__ = ["JUDGE_SYSTEM", "judge_prompt", "judge_task", "parse_rating"]

JUDGE_SYSTEM = "You are a helpful assistant."
_INSTRUCTION = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by "
    "an AI assistant to the user question displayed below. "
)
_GENERAL = (
    "Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, "
    "creativity, and level of detail of the response. Begin your evaluation by providing a short "
    "explanation. Be as objective as possible. "
)
_MATH = (
    "Your evaluation should consider correctness and helpfulness. You will be given a reference answer and "
    "the assistant's answer. Begin your evaluation by comparing the assistant's answer with the reference "
    "answer. Identify and correct any mistakes. Be as objective as possible. "
)
_RATE = (
    "After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
)
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[\[?(\d+\.?\d*)\]\]?")
JUDGE_MAX_TOKENS = 2048  # FastChat's judge budget; explanations come before the rating


def judge_prompt(question: str, answer: str, reference: str | None = None) -> str:
    """The user message of MT-bench's single-answer grading (with the reference when there is one)."""
    head = _INSTRUCTION + (_MATH if reference else _GENERAL) + _RATE + f"[Question]\n{question}\n\n"
    ref = (
        f"[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
        if reference
        else ""
    )
    return head + ref + f"[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"


def parse_rating(judgment: str) -> float | None:
    """The judge's rating from ``[[N]]`` (fallback ``[N]``), or None if there is none in 1..10."""
    match = _RATING.search(judgment) or _RATING_FALLBACK.search(judgment)
    if match is None:
        return None
    value = float(match.group(1))
    return value if 1.0 <= value <= 10.0 else None


def judge_task(result: TaskResult, planned: Sequence[SampleRequests], judge: ModelBackend) -> TaskResult:
    """Grade every answered sample of an MT-bench-style result; returns the result with ratings."""
    docs = {p.sample.id: p.sample.doc for p in planned}
    answered = [r for r in result.records if not r.failed]
    requests = []
    for record in answered:
        doc = docs[record.sample_id]
        reference = doc.get("reference")
        ref = reference[0] if isinstance(reference, list) and reference else None
        prompt = judge_prompt(str(doc.get("question", record.prompt)), record.prediction, ref)
        messages = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]
        requests.append(GenerationRequest(messages, JUDGE_MAX_TOKENS))
    try:
        judgments: list[GenerationResult | None] = list(judge.generate(requests)) if requests else []
    except RequestsFailed as exc:
        judgments = exc.results
    verdicts = dict(zip((r.sample_id for r in answered), judgments, strict=True))
    records, ratings = [], []
    for record in result.records:
        judgment = verdicts.get(record.sample_id)
        rating = parse_rating(judgment.text) if judgment is not None else None
        extra = {**record.extra, "judgment": judgment.text if judgment is not None else None}
        if rating is not None:
            ratings.append(rating)
            extra["metrics"] = {"rating": rating, "rating_norm": rating / 10}
            records.append(replace(record, extra=extra))
        elif record.failed:
            records.append(record)
        else:
            extra["error"] = (
                "the judge gave no [[rating]]" if judgment is not None else "the judge call failed"
            )
            records.append(replace(record, failed=True, extra=extra))
    rating_mean, rating_se = m.mean_and_stderr(ratings)
    return replace(
        result,
        metrics={"rating": rating_mean, "rating_norm": rating_mean / 10},
        stderr={"rating": rating_se, "rating_norm": rating_se / 10},
        num_samples=len(ratings),
        num_failed=sum(r.failed for r in records),
        needs_judge=False,
        primary_metric="rating_norm",
        records=tuple(records),
    )
