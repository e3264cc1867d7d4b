"""Scheduler: continuous batching, chunked prefill, preemption, and requests that can never fit."""

from __future__ import annotations

import pytest

from shipyard.engine.block_manager import BlockManager
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.scheduler import Scheduler, SchedulerOutput
from shipyard.engine.sequence import Sequence, SequenceStatus
from shipyard.errors import InvalidArgument


def make(num_blocks: int = 32, block_size: int = 4, budget: int = 64, max_seqs: int = 8, max_len: int = 128):
    bm = BlockManager(num_blocks, block_size)
    return Scheduler(bm, max_num_seqs=max_seqs, max_num_batched_tokens=budget, max_model_len=max_len), bm


def seq(seq_id: int, n: int, max_tokens: int = 8) -> Sequence:
    return Sequence(seq_id, f"r{seq_id}", [10 + seq_id] * n, SamplingParams(max_tokens=max_tokens))


def run(out: SchedulerOutput, token: int = 5) -> None:
    """What the engine does after the runner computed a step: advance, and sample where asked."""
    for chunk in out.scheduled:
        last = chunk.needs_logits
        chunk.seq.num_computed += chunk.num_tokens
        if last:
            chunk.seq.token_ids.append(token)


def plan(out: SchedulerOutput) -> dict[int, int]:
    return {c.seq.seq_id: c.num_tokens for c in out.scheduled}


def test_request_joins_running_batch_and_leaves_when_done() -> None:
    sched, bm = make()
    a = seq(0, 5)
    sched.add(a)
    out = sched.schedule()
    assert plan(out) == {0: 5}
    run(out)
    b = seq(1, 3)
    sched.add(b)
    out = sched.schedule()
    assert plan(out) == {0: 1, 1: 3}  # a decodes while b prefills, in one step
    run(out)
    sched.finish(a, "length")
    out = sched.schedule()
    assert plan(out) == {1: 1}
    assert a.status is SequenceStatus.FINISHED and a.block_table == []
    run(out)
    sched.finish(b, "stop")
    assert not sched.has_unfinished() and bm.usage == 0


def test_long_prompt_is_prefilled_in_chunks_while_others_decode() -> None:
    sched, _ = make(budget=8)
    short = seq(0, 3)
    sched.add(short)
    run(sched.schedule())
    long = seq(1, 20)
    sched.add(long)
    steps = []
    while long.num_computed < 20:
        out = sched.schedule()
        steps.append(plan(out))
        run(out)
    assert steps == [{0: 1, 1: 7}, {0: 1, 1: 7}, {0: 1, 1: 6}]
    assert long.num_tokens == 21  # sampled once its last chunk ran


def test_only_the_last_chunk_asks_for_logits() -> None:
    sched, _ = make(budget=4)
    s = seq(0, 10)
    sched.add(s)
    flags = []
    for _ in range(3):
        out = sched.schedule()
        flags.append([c.needs_logits for c in out.scheduled])
        chunk = out.model_input().chunks[0]
        assert chunk.start_pos == s.num_computed
        assert len(chunk.block_table) * 4 >= chunk.start_pos + len(chunk.token_ids)
        run(out)
    assert flags == [[False], [False], [True]]


def test_max_num_seqs_caps_the_running_batch() -> None:
    sched, _ = make(max_seqs=2)
    for i in range(3):
        sched.add(seq(i, 2))
    out = sched.schedule()
    assert sorted(plan(out)) == [0, 1]
    assert [s.seq_id for s in sched.waiting] == [2]


def test_out_of_blocks_preempts_newest_and_recomputes_later() -> None:
    sched, bm = make(num_blocks=4, block_size=4)
    a, b = seq(0, 7, max_tokens=8), seq(1, 7, max_tokens=8)
    sched.add(a)
    sched.add(b)
    run(sched.schedule())  # 2 blocks each: 8 slots, 7 used; one token sampled each
    out = sched.schedule()  # position 7 fits in block 2 for both
    assert plan(out) == {0: 1, 1: 1}
    run(out)
    out = sched.schedule()  # both need a 3rd block; only one can have it
    assert plan(out) == {0: 1}
    assert out.preempted == [b]
    assert b.status is SequenceStatus.WAITING and b.num_computed == 0 and b.block_table == []
    assert sched.num_preemptions == 1
    assert b.num_tokens == 9  # generated tokens are kept and recomputed
    run(out)
    sched.finish(a, "length")
    out = sched.schedule()
    # b comes back (prefix-cache hits on its own full blocks, if still there) and recomputes the rest.
    assert plan(out)[1] + b.num_computed == 9
    assert bm.usage > 0


def test_requests_that_never_fit_are_rejected_naming_the_field() -> None:
    sched, _ = make(num_blocks=4, block_size=4, max_len=64)  # 16 KV slots
    with pytest.raises(InvalidArgument) as info:
        sched.add(seq(0, 64))
    assert info.value.violations[0].field == "prompt"
    with pytest.raises(InvalidArgument) as info:
        sched.add(seq(1, 60, max_tokens=10))
    assert info.value.violations[0].field == "max_tokens"
    with pytest.raises(InvalidArgument) as info:
        sched.add(seq(2, 20, max_tokens=1))
    assert info.value.violations[0].field == "prompt" and "KV cache" in info.value.violations[0].description
    with pytest.raises(InvalidArgument) as info:
        sched.add(seq(3, 10, max_tokens=8))
    assert info.value.violations[0].field == "max_tokens"
    sched.add(seq(4, 10, max_tokens=7))  # 10 + 7 - 1 = 16 slots: fits exactly
    assert not sched.running and len(sched.waiting) == 1
