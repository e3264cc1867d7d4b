"""One request's life inside the engine: its tokens, how many are in the KV cache, its block table.

``num_computed`` counts tokens whose keys/values are in the cache; the tokens after it are what the
next step must feed. A preempted sequence drops its blocks and goes back to ``num_computed == 0``
(recompute), keeping the tokens it generated so far — so a constrained sequence's ``grammar`` (which
has consumed exactly those tokens) stays valid across preemption.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shipyard.engine.outputs import TokenLogprob
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.structured import GrammarMatcher

__all__ = ["Sequence", "SequenceStatus"]


class SequenceStatus(enum.Enum):
    WAITING = "waiting"  # queued, holds no blocks (new or preempted)
    RUNNING = "running"  # holds blocks; prefilling in chunks or decoding
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    seq_id: int
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    adapter: str | None = None
    arrival_time: float = 0.0
    token_ids: list[int] = field(default_factory=list)  # prompt + output
    num_computed: int = 0
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)  # hashes of the leading full blocks
    num_cached_tokens: int = 0  # prompt tokens found in the prefix cache at first admission
    admitted: bool = False
    status: SequenceStatus = SequenceStatus.WAITING
    finish_reason: str | None = None
    # Timing for metrics (monotonic seconds).
    first_token_time: float | None = None
    last_token_time: float | None = None
    # Prompt logprobs gathered chunk by chunk while prefilling: entry i is prompt token i's (None for
    # token 0, which nothing predicts). Only filled when ``params.prompt_logprobs`` is set.
    prompt_logprobs: list[TokenLogprob | None] = field(default_factory=lambda: [None])
    # Where the output stands in its grammar; only set when ``params.structured`` is.
    grammar: GrammarMatcher | None = None

    def __post_init__(self) -> None:
        if not self.token_ids:
            self.token_ids = list(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[len(self.prompt_token_ids) :]

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - len(self.prompt_token_ids)

    @property
    def wants_prompt_logprobs(self) -> bool:
        """Prompt logprobs still to compute: asked for, and not yet delivered with the first token."""
        return self.params.prompt_logprobs is not None and self.num_output_tokens == 0

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED
