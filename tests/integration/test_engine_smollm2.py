"""The engine serving a real pretrained model (SmolLM2-135M-Instruct, GGUF, fp32 on CPU).

Greedy chat completions run together (batched, paged, prefills chunked into 24-token steps) must be
token-identical to Hugging Face ``generate()`` on the same weights, one prompt at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import torch

from shipyard.config import InferenceConfig
from shipyard.engine import AsyncLLMEngine, SamplingParams
from shipyard.models.local import SMOLLM2

pytestmark = pytest.mark.slow

CHATS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Translate 'good morning' into Spanish.",
]


@pytest.fixture(scope="session")
def smollm2_engine() -> Iterator[AsyncLLMEngine]:
    config = InferenceConfig(device="cpu", block_size=8, max_num_batched_tokens=24, kv_cache_memory=32e6)
    with AsyncLLMEngine.from_config(SMOLLM2, config) as engine:
        yield engine


def chat_prompt(engine: AsyncLLMEngine, question: str) -> list[int]:
    ids = engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=True
    )
    return list(ids["input_ids"]) if hasattr(ids, "keys") else list(ids)


def test_smollm2_batched_greedy_is_token_identical_to_hf_generate(smollm2_engine: AsyncLLMEngine) -> None:
    prompts = [chat_prompt(smollm2_engine, q) for q in CHATS]
    params = SamplingParams(max_tokens=16, temperature=0)

    async def one(i: int) -> tuple[list[int], str]:
        tokens: list[int] = []
        text = ""
        async for out in smollm2_engine.generate(prompts[i], params, request_id=f"chat{i}"):
            tokens.extend(out.token_ids)
            text += out.text
        return tokens, text

    async def main() -> list[tuple[list[int], str]]:
        return await asyncio.gather(*(one(i) for i in range(len(prompts))))

    got = asyncio.run(main())
    model = smollm2_engine.engine.runner.model
    for prompt, (tokens, _) in zip(prompts, got, strict=True):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            expected = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=16, do_sample=False
            )
        assert tokens == expected[0, len(prompt) :].tolist()
    assert "Paris" in got[0][1]
    assert smollm2_engine.stats().kv_cache_usage == 0
    assert smollm2_engine.model_name == SMOLLM2


def test_smollm2_seeded_sampling_reproduces(smollm2_engine: AsyncLLMEngine) -> None:
    prompt = chat_prompt(smollm2_engine, CHATS[1])
    params = SamplingParams(max_tokens=12, temperature=0.9, top_p=0.95, seed=1234, ignore_eos=True)
    runs = [
        [
            t
            for out in smollm2_engine.generate_sync(prompt, params, request_id=f"seed{i}")
            for t in out.token_ids
        ]
        for i in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == 12
