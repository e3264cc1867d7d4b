"""A model runner whose next token is a fixed function of the whole context it reads from its KV cache.

It stands in for the model (not for the thing under test) in scheduler and engine-loop tests: it keeps a
real paged cache of token ids, writes each chunk at the slots its block table gives and reads the
context back through the block table, so any paging, chunking, prefix-caching or preemption mistake
changes its output. ``reference`` computes the same tokens without any cache at all.
"""

from __future__ import annotations

import torch

from shipyard.engine.batch import ModelInput
from shipyard.errors import InvalidArgument

FIRST_TOKEN = 3  # 0-2 are special in the tokenizers the tests use


def next_token(context: list[int], vocab_size: int, adapter: str | None = None) -> int:
    salt = 0 if adapter is None else sum(map(ord, adapter))
    h = 7
    for t in context:
        h = (h * 1_000_003 + t) % 2_147_483_647
    return FIRST_TOKEN + (h + salt) % (vocab_size - FIRST_TOKEN)


def reference(prompt: list[int], n: int, vocab_size: int, adapter: str | None = None) -> list[int]:
    tokens = list(prompt)
    for _ in range(n):
        tokens.append(next_token(tokens, vocab_size, adapter))
    return tokens[len(prompt) :]


class ScriptedRunner:
    def __init__(
        self, *, vocab_size: int = 64, num_blocks: int = 32, block_size: int = 4, max_model_len: int = 256
    ) -> None:
        self.vocab_size = vocab_size
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.max_model_len = max_model_len
        self.cache = [[-1] * block_size for _ in range(num_blocks)]
        self.batches: list[ModelInput] = []
        self.fail_next = False
        self._adapters: dict[str, str] = {}
        # Fixed background so the distribution is not one-hot: sampling tests see several candidates.
        self.background = torch.linspace(-2.0, 2.0, vocab_size)

    def execute(self, batch: ModelInput) -> torch.Tensor:
        self.batches.append(batch)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("device lost")
        rows = []
        for chunk in batch.chunks:
            for i, token in enumerate(chunk.token_ids):
                pos = chunk.start_pos + i
                self.cache[chunk.block_table[pos // self.block_size]][pos % self.block_size] = token
            if chunk.needs_logits:
                end = chunk.start_pos + len(chunk.token_ids)
                context = [
                    self.cache[chunk.block_table[p // self.block_size]][p % self.block_size]
                    for p in range(end)
                ]
                logits = self.background.clone()
                logits[next_token(context, self.vocab_size, chunk.adapter)] = 10.0
                rows.append(logits)
        return torch.stack(rows) if rows else torch.empty(0, self.vocab_size)

    def load_adapter(self, name: str, path: str) -> None:
        if not path:
            raise InvalidArgument.field("path", "empty")
        self._adapters[name] = path

    def unload_adapter(self, name: str) -> None:
        del self._adapters[name]

    def adapters(self) -> list[str]:
        return list(self._adapters)
