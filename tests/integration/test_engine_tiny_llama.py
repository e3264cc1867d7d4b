"""The whole engine on a real (tiny, random) Llama: greedy output token-identical to HF ``generate()``.

Batching, paging (block_size 4), chunked prefill (8-token steps) and, with the small cache, preemption
are all in play while the outputs are compared.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
import torch

from shipyard.config import InferenceConfig
from shipyard.engine import AsyncLLMEngine, SamplingParams
from shipyard.errors import ResourceExhausted
from tests.polling import wait_for
from tests.unit.engine.model_runner_support import build_tiny_llama

BYTES_PER_BLOCK = 2 * 2 * 4 * 2 * 16 * 4  # layers x (k, v) x block_size x kv_heads x head_dim x fp32
TEXTS = [
    "Hi",
    "The quick brown fox jumps over the lazy dog.",
    "In 1813, Jane Austen published Pride and Prejudice, a novel of manners set in rural England "
    "among the landed gentry.",
    "def add(a, b):\n    return a + b\n",
    "海内存知己，天涯若比邻。",
]
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("engine-tiny-llama")
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1")
    return directory


def engine(tiny_dir: pathlib.Path, **config: Any) -> AsyncLLMEngine:
    settings = {"block_size": 4, "max_num_batched_tokens": 8, "max_num_seqs": 8, "kv_cache_memory": 4e6}
    return AsyncLLMEngine.from_config(str(tiny_dir), InferenceConfig(**(settings | config)))


def hf_generate(model: Any, prompt: list[int], n: int) -> list[int]:
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return out[0, len(prompt) :].tolist()


async def run_all(
    eng: AsyncLLMEngine, prompts: list[list[int]], params: SamplingParams
) -> list[tuple[list[int], str, int]]:
    async def one(i: int) -> tuple[list[int], str, int]:
        tokens: list[int] = []
        text = ""
        cached = 0
        async for out in eng.generate(prompts[i], params, request_id=f"r{i}"):
            tokens.extend(out.token_ids)
            text += out.text
            cached = out.cached_tokens
        return tokens, text, cached

    return await asyncio.gather(*(one(i) for i in range(len(prompts))))


@pytest.mark.parametrize("num_blocks", [200, 14])  # 14 blocks of 4 tokens: sequences get preempted
def test_greedy_matches_hf_generate_under_batching_paging_and_chunking(
    tiny_dir: pathlib.Path, num_blocks: int
) -> None:
    with engine(tiny_dir, kv_cache_memory=num_blocks * BYTES_PER_BLOCK) as eng:
        assert eng.engine.runner.num_blocks == num_blocks
        prompts = [eng.tokenizer.encode(t) for t in TEXTS]
        got = asyncio.run(run_all(eng, prompts, SamplingParams(max_tokens=NEW_TOKENS, temperature=0)))
        model = eng.engine.runner.model
        for prompt, (tokens, text, _) in zip(prompts, got, strict=True):
            expected = hf_generate(model, prompt, NEW_TOKENS)
            assert tokens == expected
            assert text.strip() == eng.tokenizer.decode(expected, skip_special_tokens=True).strip()
        stats = eng.stats()
        assert stats.kv_cache_usage == 0
        assert (stats.num_preemptions > 0) == (num_blocks == 14)


def test_many_concurrent_streaming_requests_all_finish(tiny_dir: pathlib.Path) -> None:
    with engine(tiny_dir, max_num_batched_tokens=64, max_num_seqs=16) as eng:
        base = [eng.tokenizer.encode(t) for t in TEXTS]
        prompts = [base[i % len(base)] for i in range(48)]
        got = asyncio.run(run_all(eng, prompts, SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)))
        model = eng.engine.runner.model
        for prompt, (tokens, _, _) in zip(base, got[: len(base)], strict=True):
            assert tokens == hf_generate(model, prompt, 8) or 2 in tokens  # EOS ignored vs HF stopping
        for i, (tokens, _, _) in enumerate(got):
            assert tokens == got[i % len(base)][0] and len(tokens) == 8
        assert eng.stats().kv_cache_usage == 0 and eng.stats().generation_tokens_total == 48 * 8


def test_closing_a_stream_frees_all_its_blocks(tiny_dir: pathlib.Path) -> None:
    async def main(eng: AsyncLLMEngine) -> float:
        prompt = eng.tokenizer.encode(TEXTS[2])
        stream = eng.generate(prompt, SamplingParams(max_tokens=100, ignore_eos=True), request_id="gone")
        async for out in stream:
            if out.completion_tokens == 3:
                break
        usage = eng.stats().kv_cache_usage
        await stream.aclose()
        return usage

    with engine(tiny_dir) as eng:
        assert asyncio.run(main(eng)) > 0
        stats = eng.stats
        wait_for("blocks freed", lambda: stats().kv_cache_usage == 0 and not stats().num_running, timeout=10)


def test_shared_system_prompt_hits_the_prefix_cache_with_the_same_output(tiny_dir: pathlib.Path) -> None:
    system = "You are a helpful assistant who answers in one short sentence. " * 3
    questions = ["What is the capital of France?", "Name a prime number.", "Why is the sky blue?"]
    results = {}
    for caching in (False, True):
        with engine(tiny_dir, enable_prefix_caching=caching) as eng:
            prompts = [eng.tokenizer.encode(system + q) for q in questions]
            params = SamplingParams(max_tokens=6, temperature=0)
            asyncio.run(run_all(eng, prompts[:1], params))  # warm the cache with the system prompt
            results[caching] = asyncio.run(run_all(eng, prompts, params))
            hit_rate = eng.stats().prefix_cache_hit_rate
        assert (hit_rate > 0.4) == caching
    assert [r[0] for r in results[True]] == [r[0] for r in results[False]]
    assert all(cached >= 32 for _, _, cached in results[True])  # 9 of the ~10 system-prompt blocks
    assert all(cached == 0 for _, _, cached in results[False])


def test_full_queue_rejects_with_resource_exhausted_and_serves_the_rest(tiny_dir: pathlib.Path) -> None:
    with engine(tiny_dir, max_queue_len=3, max_num_seqs=1) as eng:
        prompt = eng.tokenizer.encode(TEXTS[1])
        params = SamplingParams(max_tokens=20, temperature=0, ignore_eos=True)
        accepted, rejected = [], 0
        for i in range(12):
            try:
                accepted.append(eng.generate_sync(prompt, params, request_id=f"q{i}"))
            except ResourceExhausted:
                rejected += 1
        assert rejected > 0 and len(accepted) >= 3
        outputs = [[t for out in stream for t in out.token_ids] for stream in accepted]
        assert all(tokens == outputs[0] and len(tokens) == 20 for tokens in outputs)
