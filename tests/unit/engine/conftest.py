"""Engine unit-test fixtures: a real offline tokenizer from the shared data (loaded once)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tokenizer(shared_data: pathlib.Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_data / "tokenizer" / "mistral_7b_v1", local_files_only=True)
