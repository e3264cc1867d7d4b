"""Fixtures for the inference API tests: a tiny Llama with a chat template, an engine, a PEFT adapter.

The model is the engine tests' random 2-layer Llama (hidden 64) with the shared offline tokenizer, plus
a ChatML template so ``/v1/chat/completions`` has something to render. Built once per session.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from shipyard.config import InferenceConfig
from tests.unit.engine.model_runner_support import build_tiny_llama

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ENGINE_SETTINGS = {"kv_cache_memory": 8e6, "block_size": 4, "max_num_seqs": 8, "max_queue_len": 64}


def engine_config(**overrides: object) -> InferenceConfig:
    return InferenceConfig(**(ENGINE_SETTINGS | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("models") / "tiny-llama"
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1")
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: pathlib.Path) -> pathlib.Path:
    """A LoRA adapter made with peft, with B initialised non-zero so it changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    config = LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    directory = tmp_path_factory.mktemp("adapters") / "pirate"
    model.save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_engine(tiny_model_dir: pathlib.Path) -> Iterator[object]:
    from shipyard.engine.async_engine import AsyncLLMEngine

    engine = AsyncLLMEngine.from_config(str(tiny_model_dir), engine_config(), served_model_name="tiny")
    engine.start()
    yield engine
    engine.shutdown()
