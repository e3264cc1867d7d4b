"""Block manager: allocation, ref counts, prefix-cache hits, eviction and the hit rate."""

from __future__ import annotations

from shipyard.engine.block_manager import BlockManager
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.sequence import Sequence


def seq(seq_id: int, tokens: list[int], adapter: str | None = None) -> Sequence:
    return Sequence(seq_id, f"r{seq_id}", tokens, SamplingParams(), adapter)


def admit(bm: BlockManager, s: Sequence) -> int:
    """Admit the whole prompt at once, the way the scheduler does with a large budget."""
    cached = bm.lookup_prefix(s)
    hit = len(cached) * bm.block_size
    assert bm.allocate(s, s.num_tokens - hit, cached)
    bm.record_query(s.num_prompt_tokens, hit)
    s.num_computed = s.num_tokens  # the step ran
    bm.cache_computed(s)
    return hit


def test_allocate_and_free_return_every_block() -> None:
    bm = BlockManager(8, 4)
    a = seq(0, list(range(10)))  # 3 blocks
    assert bm.allocate(a, 10)
    assert len(a.block_table) == 3 and len(set(a.block_table)) == 3
    assert bm.num_free_blocks == 5 and bm.usage == 3 / 8
    a.num_computed = 10
    assert bm.allocate(a, 3)  # 13 tokens: one more block
    assert len(a.block_table) == 4
    bm.free(a)
    assert bm.num_free_blocks == 8 and bm.usage == 0 and a.block_table == []


def test_allocation_is_all_or_nothing() -> None:
    bm = BlockManager(4, 4)
    a, b = seq(0, list(range(12))), seq(1, list(range(8)))
    assert bm.allocate(a, 12)
    assert not bm.allocate(b, 8)  # needs 2, 1 free
    assert b.block_table == [] and bm.num_free_blocks == 1


def test_shared_prefix_hits_full_blocks_and_counts_refs() -> None:
    bm = BlockManager(16, 4)
    system = list(range(100, 108))  # two full blocks
    a = seq(0, system + [1, 2, 3])
    assert admit(bm, a) == 0
    b = seq(1, system + [7, 8])
    assert admit(bm, b) == 8
    assert b.block_table[:2] == a.block_table[:2]
    assert b.block_table[2] != a.block_table[2]
    assert bm.hit_rate == 8 / (11 + 10)
    bm.free(a)  # the shared blocks are still held by b
    assert bm.num_free_blocks == 16 - 3
    bm.free(b)
    assert bm.num_free_blocks == 16


def test_hit_is_capped_so_one_prompt_token_is_computed() -> None:
    bm = BlockManager(16, 4)
    prompt = list(range(8))
    admit(bm, seq(0, prompt))
    again = seq(1, prompt)
    cached = bm.lookup_prefix(again)
    assert len(cached) == 1  # not 2: the last token must be fed to get its logits


def test_adapter_and_parent_are_part_of_the_block_identity() -> None:
    bm = BlockManager(16, 4)
    admit(bm, seq(0, [1, 2, 3, 4, 5, 6, 7, 8, 9]))
    assert bm.lookup_prefix(seq(1, [1, 2, 3, 4, 5, 6, 7, 8, 9], adapter="sql")) == []
    # Same second block, different first block: no hit on the second.
    assert bm.lookup_prefix(seq(2, [0, 2, 3, 4, 5, 6, 7, 8, 9])) == []


def test_freed_cached_blocks_are_reused_until_evicted_lru() -> None:
    bm = BlockManager(4, 4)
    a = seq(0, list(range(9)))  # blocks: [0-3] [4-7] [8]
    admit(bm, a)
    bm.free(a)
    assert bm.usage == 0
    b = seq(1, list(range(9)))
    assert len(bm.lookup_prefix(b)) == 2  # still cached after free
    # Filling the pool with other tokens evicts them.
    c = seq(2, list(range(50, 66)))
    admit(bm, c)
    assert bm.lookup_prefix(b) == []
    bm.free(c)


def test_evicts_tail_blocks_before_shared_prefix() -> None:
    bm = BlockManager(4, 4)
    a = seq(0, list(range(13)))  # 4 blocks, 3 full and cached
    admit(bm, a)
    bm.free(a)
    b = seq(1, [90, 91, 92, 93, 94])  # takes two blocks: a's tail and its last full block go first
    assert bm.allocate(b, 5)
    assert len(bm.lookup_prefix(seq(2, list(range(13))))) == 2


def test_without_prefix_caching_nothing_is_shared() -> None:
    bm = BlockManager(8, 4, enable_prefix_caching=False)
    admit(bm, seq(0, list(range(9))))
    assert bm.lookup_prefix(seq(1, list(range(9)))) == []
    assert bm.hit_rate == 0
