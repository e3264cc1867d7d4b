"""The benchmark workloads: seeded requests cut from the shared corpus, and per-request latency figures.

``mixed_requests``: prompts of mixed lengths (slices of *Pride and Prejudice*) with mixed output lengths,
all arriving at once. ``shared_prefix_requests``: a long system prompt shared by every request, then a
short question of its own (the prefix-cache workload). Every side of a comparison generates exactly each
request's ``max_tokens`` (EOS ignored), greedily, so they do the same work.
"""

from __future__ import annotations

import pathlib
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "data" / "corpus" / "books" / "pride_and_prejudice.en.txt"


@dataclass(frozen=True)
class Request:
    prompt: list[int]
    max_tokens: int


@dataclass
class Timeline:
    """When each of one request's tokens arrived, in seconds since all requests were submitted."""

    token_times: list[float] = field(default_factory=list)

    def ttft(self) -> float:
        return self.token_times[0]

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.token_times, self.token_times[1:], strict=False)]


def corpus_tokens(tokenizer: Any, limit: int = 60_000) -> list[int]:
    text = CORPUS.read_text(encoding="utf-8").replace("\r\n", "\n")
    return tokenizer(text[: limit * 4], add_special_tokens=False)["input_ids"][:limit]


def mixed_requests(
    tokenizer: Any, count: int, *, prompt_range: tuple[int, int], output_range: tuple[int, int], seed: int = 0
) -> list[Request]:
    tokens = corpus_tokens(tokenizer)
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        length = rng.randint(*prompt_range)
        start = rng.randrange(0, len(tokens) - length)
        requests.append(Request(tokens[start : start + length], rng.randint(*output_range)))
    return requests


def shared_prefix_requests(
    tokenizer: Any, count: int, *, prefix_tokens: int, question_tokens: int, max_tokens: int, seed: int = 1
) -> list[Request]:
    tokens = corpus_tokens(tokenizer)
    rng = random.Random(seed)
    prefix = tokens[:prefix_tokens]
    out = []
    for _ in range(count):
        start = rng.randrange(prefix_tokens, len(tokens) - question_tokens)
        out.append(Request(prefix + tokens[start : start + question_tokens], max_tokens))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return (
        statistics.quantiles(ordered, n=100, method="inclusive")[round(q) - 1] if 0 < q < 100 else ordered[-1]
    )


def summarize(name: str, timelines: list[Timeline], wall_s: float) -> dict[str, float | str]:
    """Output tokens/s over the whole run, and TTFT / inter-token latency percentiles (ms)."""
    tokens = sum(len(t.token_times) for t in timelines)
    ttfts = [t.ttft() for t in timelines]
    gaps = [g for t in timelines for g in t.gaps()] or [0.0]
    return {
        "system": name,
        "output_tok_s": tokens / wall_s,
        "wall_s": wall_s,
        "ttft_p50_ms": 1000 * percentile(ttfts, 50),
        "ttft_p99_ms": 1000 * percentile(ttfts, 99),
        "itl_p50_ms": 1000 * percentile(gaps, 50),
        "itl_p99_ms": 1000 * percentile(gaps, 99),
        "output_tokens": tokens,
    }
