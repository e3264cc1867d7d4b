"""Iteration-level scheduling: which sequences run in the next step, and how many tokens each feeds.

Each step (vLLM v1 / LMDeploy "split & fuse"): running sequences first, oldest first, each feeding what
it still lacks (one token when decoding, the next chunk when its prompt is being prefilled); then
waiting sequences are admitted in arrival order with as much of their prompt as the step's token budget
still allows. So a long prompt is prefilled over several steps while the others keep decoding. When the
KV pool runs dry, the newest running sequence is preempted: its blocks are freed and it is requeued at
the front to be recomputed later. Requests that could never fit are rejected before they are queued.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.block_manager import BlockManager
from shipyard.engine.sequence import Sequence, SequenceStatus
from shipyard.errors import InvalidArgument

__all__ = ["ScheduledChunk", "Scheduler", "SchedulerOutput"]


@dataclass(frozen=True)
class ScheduledChunk:
    seq: Sequence
    num_tokens: int

    @property
    def needs_logits(self) -> bool:
        return self.seq.num_computed + self.num_tokens == self.seq.num_tokens

    @property
    def all_logits(self) -> bool:
        """Every fed token's logits are needed: this chunk is (part of) a prompt to score."""
        return self.seq.wants_prompt_logprobs


@dataclass
class SchedulerOutput:
    scheduled: list[ScheduledChunk] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(c.num_tokens for c in self.scheduled)

    def model_input(self) -> ModelInput:
        return ModelInput(
            [
                SequenceChunk(
                    seq_id=c.seq.seq_id,
                    token_ids=c.seq.token_ids[c.seq.num_computed : c.seq.num_computed + c.num_tokens],
                    start_pos=c.seq.num_computed,
                    block_table=list(c.seq.block_table),
                    needs_logits=c.needs_logits,
                    adapter=c.seq.adapter,
                    all_logits=c.all_logits,
                )
                for c in self.scheduled
            ]
        )


class Scheduler:
    """Owns the waiting queue and the running batch; the block manager owns the blocks."""

    def __init__(
        self,
        block_manager: BlockManager,
        *,
        max_num_seqs: int,
        max_num_batched_tokens: int,
        max_model_len: int,
    ) -> None:
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def check_fits(self, num_prompt_tokens: int, max_tokens: int) -> None:
        """``InvalidArgument`` naming "prompt" or "max_tokens" when a request can never be served."""
        if num_prompt_tokens < 1:
            raise InvalidArgument.field("prompt", "must hold at least one token")
        if num_prompt_tokens >= self.max_model_len:
            raise InvalidArgument.field(
                "prompt",
                f"{num_prompt_tokens} tokens do not fit in the context window of {self.max_model_len} "
                "(at least one token must be left to generate)",
            )
        if num_prompt_tokens + max_tokens > self.max_model_len:
            raise InvalidArgument.field(
                "max_tokens",
                f"{max_tokens} + {num_prompt_tokens} prompt tokens exceed the context window of "
                f"{self.max_model_len}; ask for at most {self.max_model_len - num_prompt_tokens}",
            )
        # The last sampled token is never fed back, so it needs no KV slot.
        capacity = self.block_manager.num_blocks * self.block_manager.block_size
        if num_prompt_tokens + 1 > capacity:
            raise InvalidArgument.field(
                "prompt", f"{num_prompt_tokens} tokens do not fit in the KV cache ({capacity} token slots)"
            )
        if num_prompt_tokens + max_tokens - 1 > capacity:
            raise InvalidArgument.field(
                "max_tokens",
                f"{max_tokens} + {num_prompt_tokens} prompt tokens do not fit in the KV cache "
                f"({capacity} token slots); ask for at most {capacity - num_prompt_tokens + 1}",
            )

    def add(self, seq: Sequence) -> None:
        self.check_fits(seq.num_prompt_tokens, seq.params.max_tokens)
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> SchedulerOutput:
        out = SchedulerOutput()
        budget = self.max_num_batched_tokens
        bm = self.block_manager
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            num_new = min(seq.num_tokens - seq.num_computed, budget)
            scheduled = True
            while not bm.allocate(seq, num_new):
                victim = self.running.pop()  # the newest: it has the least work to lose
                self._preempt(victim)
                out.preempted.append(victim)
                if victim is seq:
                    scheduled = False
                    break
            if not scheduled:
                break
            out.scheduled.append(ScheduledChunk(seq, num_new))
            budget -= num_new
            i += 1
        if out.preempted:
            # Memory is short: admitting more now would only preempt them again.
            return out
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            # Cached positions are never computed, so they would have no logits to score.
            cached = [] if seq.wants_prompt_logprobs else bm.lookup_prefix(seq)
            num_cached = len(cached) * bm.block_size
            num_new = min(seq.num_tokens - num_cached, budget)
            if not bm.allocate(seq, num_new, cached):
                break
            self.waiting.popleft()
            seq.num_computed = num_cached
            if not seq.admitted:
                seq.admitted = True
                seq.num_cached_tokens = num_cached
                if not seq.wants_prompt_logprobs:  # it did not look
                    bm.record_query(seq.num_prompt_tokens, num_cached)
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            out.scheduled.append(ScheduledChunk(seq, num_new))
            budget -= num_new
        return out

    def _preempt(self, seq: Sequence) -> None:
        self.block_manager.free(seq)
        seq.num_computed = 0
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def finish(self, seq: Sequence, reason: str) -> None:
        """Take ``seq`` out of the queue or the batch and free its blocks at once."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status is SequenceStatus.WAITING:
            self.waiting.remove(seq)
        self.block_manager.free(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
