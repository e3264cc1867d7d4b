"""Builders and a minimal step driver for the model-runner tests (no scheduler: blocks from a free list).

The driver stands in for the engine's scheduler only as far as these tests need: it hands out block
tables, feeds prompts in chunks, batches the one-token decode steps and picks the argmax.
"""

from __future__ import annotations

import math
import pathlib
import shutil
from typing import Any

import torch

from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.models.local import LocalModel

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


def build_tiny_llama(
    directory: pathlib.Path, tokenizer_dir: pathlib.Path, *, seed: int = 0, **overrides: Any
) -> None:
    """A random 2-layer GQA Llama (hidden 64) saved with ``save_pretrained``, plus an offline tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    settings: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 32000,
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
    }
    LlamaForCausalLM(LlamaConfig(**(settings | overrides))).save_pretrained(directory)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer_dir / name, directory / name)


def make_runner(directory: pathlib.Path, **config: Any) -> PagedModelRunner:
    settings: dict[str, Any] = {"kv_cache_memory": 8e6, "block_size": 4}
    runner, _ = load_runner(LocalModel(directory, directory.name), InferenceConfig(**(settings | config)))
    return runner


class BlockPool:
    """Hands out block ids in a scrambled order, so tests exercise non-contiguous block tables."""

    def __init__(self, runner: PagedModelRunner) -> None:
        generator = torch.Generator().manual_seed(1)
        self._free = torch.randperm(runner.num_blocks, generator=generator).tolist()
        self.block_size = runner.block_size

    def table(self, length: int) -> list[int]:
        count = math.ceil(length / self.block_size)
        table, self._free = self._free[:count], self._free[count:]
        return table


def prefill_logits(
    runner: PagedModelRunner,
    tokens: list[int],
    chunk_sizes: list[int],
    table: list[int],
    adapter: str | None = None,
) -> list[tuple[int, torch.Tensor]]:
    """Feed ``tokens`` in chunks of ``chunk_sizes`` (cycled); (last position, logits) of every chunk."""
    out: list[tuple[int, torch.Tensor]] = []
    pos, i = 0, 0
    while pos < len(tokens):
        n = min(chunk_sizes[i % len(chunk_sizes)], len(tokens) - pos)
        chunk = SequenceChunk(0, tokens[pos : pos + n], pos, table, True, adapter)
        out.append((pos + n - 1, runner.execute(ModelInput([chunk]))[0]))
        pos, i = pos + n, i + 1
    return out


def greedy_generate(
    runner: PagedModelRunner,
    prompts: list[list[int]],
    max_new_tokens: int,
    *,
    chunk_size: int = 5,
    adapters: list[str | None] | None = None,
) -> list[list[int]]:
    """Greedy outputs of all ``prompts`` run together: chunked prefills batched with decodes each step."""
    pool = BlockPool(runner)
    tables = [pool.table(len(p) + max_new_tokens) for p in prompts]
    adapters = adapters or [None] * len(prompts)
    seqs = [list(p) for p in prompts]
    done = [0] * len(prompts)  # tokens already in the KV cache
    outputs: list[list[int]] = [[] for _ in prompts]
    while any(len(o) < max_new_tokens for o in outputs):
        chunks, owners = [], []
        for i, seq in enumerate(seqs):
            if len(outputs[i]) >= max_new_tokens:
                continue
            n = min(chunk_size, len(seq) - done[i])
            ends = done[i] + n == len(seq)
            chunks.append(SequenceChunk(i, seq[done[i] : done[i] + n], done[i], tables[i], ends, adapters[i]))
            owners.append(i) if ends else None
            done[i] += n
        logits = runner.execute(ModelInput(chunks))
        for row, i in enumerate(owners):
            token = int(logits[row].argmax())
            outputs[i].append(token)
            seqs[i].append(token)
    return outputs


def hf_generate(model: Any, prompt: list[int], max_new_tokens: int) -> list[int]:
    """HF's greedy continuation; it stops after an EOS token (so compare with ``until_eos``)."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=0,
    )
    return until_eos(out[0, len(prompt) :].tolist(), model)


def until_eos(tokens: list[int], model: Any) -> list[int]:
    """``tokens`` up to and including the first of the model's EOS tokens."""
    eos = model.generation_config.eos_token_id
    stops = set(eos if isinstance(eos, list) else [eos]) - {None}
    for i, token in enumerate(tokens):
        if token in stops:
            return tokens[: i + 1]
    return tokens
