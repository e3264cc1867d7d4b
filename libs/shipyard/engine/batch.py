"""The contract between the scheduler and the model runner: what one engine step computes.

Each step the scheduler hands the runner a ``ModelInput``: for every scheduled sequence, the tokens to
feed now (a prefill chunk, or the one token sampled last step), where they start in the sequence, and
the sequence's block table. The runner writes those tokens' keys and values into the KV cache at the
slots the block table gives (position ``p`` lives in block ``block_table[p // block_size]`` at offset
``p % block_size``), attends over positions ``[0, start_pos + len(token_ids))``, and returns the
next-token logits of the chunks that asked for them: one row (the chunk's last token) per chunk with
``needs_logits``, or one row per token of a chunk with ``all_logits`` (prompt log-probabilities).
Blocks are owned by the block manager; the runner only reads and writes the KV tensors behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["ModelInput", "ModelRunner", "SequenceChunk"]


@dataclass(frozen=True)
class SequenceChunk:
    """The slice of one sequence computed this step."""

    # Names one sequence for its life: the runner may keep per-sequence state across steps under it
    # (the decode view), checked against start_pos and block_table before it is trusted.
    seq_id: int
    token_ids: list[int]  # tokens fed now: a prefill chunk, or the single decode token
    start_pos: int  # position of token_ids[0]; positions [0, start_pos) are already in the KV cache
    block_table: list[int]  # physical blocks covering positions [0, start_pos + len(token_ids))
    needs_logits: bool  # True when the chunk reaches the sequence's last token: sample the next one
    adapter: str | None = None  # LoRA adapter name; None = the base model
    # Logits of every token fed (prompt logprobs), not only the last; its last row is then the
    # next-token row when ``needs_logits`` is also set.
    all_logits: bool = False

    @property
    def num_logit_rows(self) -> int:
        """Rows of the step's logits this chunk owns."""
        if self.all_logits:
            return len(self.token_ids)
        return 1 if self.needs_logits else 0


@dataclass(frozen=True)
class ModelInput:
    chunks: list[SequenceChunk]

    @property
    def num_tokens(self) -> int:
        return sum(len(c.token_ids) for c in self.chunks)


class ModelRunner(Protocol):
    """Computes engine steps on one device; built by ``shipyard.engine.model_runner.load_runner``."""

    vocab_size: int  # logits width
    max_model_len: int  # longest sequence (prompt + output) the model supports here
    block_size: int  # tokens per KV block
    num_blocks: int  # KV blocks allocated (sized from the configured memory budget)

    def execute(self, batch: ModelInput) -> torch.Tensor:
        """float32 logits ``[sum(c.num_logit_rows), vocab_size]``, in chunk order (see the module doc)."""
        ...

    def load_adapter(self, name: str, path: str) -> None:
        """Load a PEFT LoRA adapter directory under ``name`` (InvalidArgument if incompatible)."""
        ...

    def unload_adapter(self, name: str) -> None: ...

    def adapters(self) -> list[str]: ...
