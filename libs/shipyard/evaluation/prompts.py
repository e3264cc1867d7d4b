"""Prompt and request building: zero-/few-shot contexts and the backend requests for each sample.

Prompts are laid out exactly as lm-evaluation-harness lays them out, so scores are comparable:

    description + (example_text + target_delimiter + example_target + fewshot_delimiter) * k + text

Multiple-choice samples become one ``LoglikelihoodRequest(prompt, target_delimiter + choice)`` per choice;
generation samples become ``generation.repeats`` ``GenerationRequest``s with seeds 0..repeats-1.

Few-shot selection is deterministic per sample: ``first_n`` takes the pool's first rows, ``random`` draws
with ``random.Random(f"{seed}/{sample.id}")``. Seeding per sample (lm-eval seeds once per task and draws
in document order) keeps a sample's prompt the same however the work is sharded, limited or cached.
The evaluated sample itself is never one of its examples.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.sandbox

from shipyard.errors import InvalidArgument
from shipyard.evaluation.tasks.spec import FewshotSampler, TaskSpec
from shipyard.evaluation.types import (
    GenerationRequest,
    LoglikelihoodRequest,
    ModelRequest,
    OutputType,
    Sample,
)

__all__ = [
    "SampleRequests",
    "build_prompt",
    "build_requests",
    "choices_of",
    "flatten",
    "render",
    "select_fewshot",
    "target_text",
]

DEFAULT_SEED = 1234  # lm-eval's default few-shot seed

# Task files may come from users: templates run sandboxed. StrictUndefined turns a typo'd field into an
# error instead of an empty string; keep_trailing_newline matches lm-eval's rendering.
_ENV = jinja2.sandbox.ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


@functools.lru_cache(maxsize=512)
def _template(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(template: str, doc: Mapping[str, Any]) -> str:
    """Render a task template over a doc's fields."""
    try:
        return _template(template).render(**doc)
    except jinja2.TemplateError as exc:
        raise InvalidArgument.field("template", f"{template!r} failed: {exc}") from exc


def choices_of(task: TaskSpec, doc: Mapping[str, Any]) -> list[str]:
    """A multiple-choice doc's choices: the task's literal list, or the doc field it names."""
    if isinstance(task.doc_to_choice, tuple):
        return list(task.doc_to_choice)
    return [str(c) for c in doc[task.doc_to_choice or "choices"]]


def target_text(task: TaskSpec, doc: Mapping[str, Any]) -> str:
    """The answer as shown after a few-shot example (and recorded as a sample's target).

    Multiple choice: the gold choice (for MC2, the first true answer); otherwise ``doc_to_target``.
    """
    if task.output_type is OutputType.MULTIPLE_CHOICE:
        gold = doc[task.gold_field]
        index = gold.index(1) if isinstance(gold, list) else int(gold)
        return choices_of(task, doc)[index]
    return render(task.doc_to_target, doc)


def select_fewshot(
    task: TaskSpec, sample: Sample, pool: Sequence[Sample], num_fewshot: int, seed: int
) -> list[Mapping[str, Any]]:
    """The docs shown as examples before ``sample``: fixed exemplars first, else drawn from ``pool``."""
    if num_fewshot == 0:
        return []
    if task.fewshot_examples:
        docs: list[Mapping[str, Any]] = list(task.fewshot_examples)
    else:
        # Draw one extra so that excluding the sample itself (same split) still leaves enough.
        want = min(num_fewshot + 1, len(pool))
        if task.fewshot_sampler is FewshotSampler.FIRST_N:
            drawn = list(pool[:want])
        else:
            drawn = random.Random(f"{seed}/{sample.id}").sample(pool, want)
        docs = [s.doc for s in drawn if s.doc != sample.doc]
    if len(docs) < num_fewshot:
        raise InvalidArgument.field(
            "num_fewshot", f"task {task.name!r} has only {len(docs)} few-shot examples, {num_fewshot} asked"
        )
    return docs[:num_fewshot]


def build_prompt(task: TaskSpec, sample: Sample, examples: Sequence[Mapping[str, Any]]) -> str:
    """The full text prompt: description, the labelled examples, then the sample's question."""
    parts = [task.description]
    for doc in examples:
        parts.append(render(task.doc_to_text, doc) + task.target_delimiter + target_text(task, doc))
        parts.append(task.fewshot_delimiter)
    parts.append(render(task.doc_to_text, sample.doc))
    return "".join(parts)


@dataclass(frozen=True)
class SampleRequests:
    """One sample, its prompt and the backend requests it needs (in the order scoring expects)."""

    sample: Sample
    prompt: str
    requests: tuple[ModelRequest, ...]


def _requests(task: TaskSpec, sample: Sample, prompt: str) -> tuple[ModelRequest, ...]:
    if task.output_type is OutputType.MULTIPLE_CHOICE:
        return tuple(
            LoglikelihoodRequest(prompt, task.target_delimiter + c) for c in choices_of(task, sample.doc)
        )
    gen = task.generation
    message: str | list[dict[str, str]] = [{"role": "user", "content": prompt}] if task.chat else prompt
    return tuple(
        GenerationRequest(message, gen.max_tokens, gen.until, gen.temperature, seed)
        for seed in range(gen.repeats)
    )


def build_requests(
    task: TaskSpec,
    samples: Sequence[Sample],
    *,
    fewshot: Sequence[Sample] = (),
    num_fewshot: int | None = None,
    seed: int = DEFAULT_SEED,
) -> list[SampleRequests]:
    """Prompts and requests for ``samples``; ``fewshot`` is the task's few-shot split (loaded by caller).

    ``num_fewshot`` defaults to the task's; it must be >= 0 and the pool must hold enough examples.
    """
    shots = task.num_fewshot if num_fewshot is None else num_fewshot
    if shots < 0:
        raise InvalidArgument.field("num_fewshot", "must be >= 0")
    planned = []
    for sample in samples:
        prompt = build_prompt(task, sample, select_fewshot(task, sample, fewshot, shots, seed))
        planned.append(SampleRequests(sample, prompt, _requests(task, sample, prompt)))
    return planned


def flatten(planned: Sequence[SampleRequests]) -> list[ModelRequest]:
    """All requests in order, ready for one batched backend call; ``score`` takes results in this order."""
    return [r for p in planned for r in p.requests]
