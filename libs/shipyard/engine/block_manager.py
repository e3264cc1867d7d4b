"""The paged KV cache's bookkeeping: a fixed pool of blocks, ref counts, block tables, prefix cache.

Blocks are owned here; the model runner only reads and writes the tensors behind them. Prefix caching
(vLLM v1's ``BlockPool``) works on FULL blocks only: a block's hash chains its parent's hash, its token
ids and the LoRA adapter, so two sequences share a block only when everything before it matches too.
A block whose last user frees it keeps its hash and stays in the free queue: it is reused on a hit
until a new allocation evicts it, least recently freed first. Hashes are registered only after a step
has computed the block's keys/values (``cache_computed``), so a hit never points at pending work.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shipyard.engine.sequence import Sequence
from shipyard.errors import Internal

__all__ = ["BlockManager"]

_BlockKey = tuple[int | None, tuple[int, ...], str | None]


@dataclass
class _Block:
    block_id: int
    ref_count: int = 0
    key: _BlockKey | None = None  # set while the block holds a cached full block


class BlockManager:
    """Allocates KV blocks to sequences; ``num_blocks * block_size`` token slots in all."""

    def __init__(self, num_blocks: int, block_size: int, *, enable_prefix_caching: bool = True) -> None:
        if num_blocks < 1 or block_size < 1:
            raise Internal(f"a KV cache needs blocks: num_blocks={num_blocks}, block_size={block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._blocks = [_Block(i) for i in range(num_blocks)]
        # Blocks with ref_count 0, oldest-freed first; cached ones among them are evicted lazily.
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self._cached: dict[_BlockKey, int] = {}
        self.queried_tokens = 0
        self.hit_tokens = 0

    # -- state -------------------------------------------------------------------------------------

    @property
    def num_free_blocks(self) -> int:
        """Blocks no live sequence holds (cached-but-unused ones included: they can be evicted)."""
        return len(self._free)

    @property
    def usage(self) -> float:
        return 1.0 - len(self._free) / self.num_blocks

    @property
    def hit_rate(self) -> float:
        return self.hit_tokens / self.queried_tokens if self.queried_tokens else 0.0

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # -- prefix cache ------------------------------------------------------------------------------

    def lookup_prefix(self, seq: Sequence) -> list[int]:
        """Cached blocks covering the longest prefix of ``seq``'s tokens.

        Capped so at least one token is left to compute: its logits are what the next step samples.
        Takes no references; pass the result to ``allocate``.
        """
        if not self.enable_prefix_caching:
            return []
        max_blocks = (seq.num_tokens - 1) // self.block_size
        self._extend_hashes(seq, max_blocks)
        hits: list[int] = []
        for key in self._keys(seq, max_blocks):
            block_id = self._cached.get(key)
            if block_id is None:
                break
            hits.append(block_id)
        return hits

    def record_query(self, num_queried: int, num_hit: int) -> None:
        """Count an admission's prompt lookup toward the hit rate."""
        self.queried_tokens += num_queried
        self.hit_tokens += num_hit

    def cache_computed(self, seq: Sequence) -> None:
        """Register the full blocks whose tokens are now all in the KV cache."""
        if not self.enable_prefix_caching:
            return
        num_full = min(seq.num_computed // self.block_size, len(seq.block_table))
        self._extend_hashes(seq, num_full)
        for i, key in enumerate(self._keys(seq, num_full)):
            block = self._blocks[seq.block_table[i]]
            if block.key is None and key not in self._cached:
                block.key = key
                self._cached[key] = block.block_id

    def _extend_hashes(self, seq: Sequence, num_blocks: int) -> None:
        """Memoise ``hash(key)`` of the first ``num_blocks`` full blocks of ``seq``."""
        bs = self.block_size
        while len(seq.block_hashes) < num_blocks:
            i = len(seq.block_hashes)
            parent = seq.block_hashes[i - 1] if i else None
            seq.block_hashes.append(hash((parent, tuple(seq.token_ids[i * bs : (i + 1) * bs]), seq.adapter)))

    def _keys(self, seq: Sequence, num_blocks: int) -> list[_BlockKey]:
        # The dict key holds the tokens themselves, so a hash collision can never alias two blocks.
        bs = self.block_size
        return [
            (seq.block_hashes[i - 1] if i else None, tuple(seq.token_ids[i * bs : (i + 1) * bs]), seq.adapter)
            for i in range(num_blocks)
        ]

    # -- allocation --------------------------------------------------------------------------------

    def allocate(
        self, seq: Sequence, num_new_tokens: int, cached_blocks: list[int] | tuple[int, ...] = ()
    ) -> bool:
        """Give ``seq`` blocks for ``cached_blocks`` plus ``num_new_tokens`` more tokens.

        All or nothing: returns False (and changes nothing) when the pool cannot provide them.
        """
        total = seq.num_computed + len(cached_blocks) * self.block_size + num_new_tokens
        need = self.blocks_needed(total) - len(seq.block_table) - len(cached_blocks)
        reusable_free = sum(1 for b in cached_blocks if self._blocks[b].ref_count == 0)
        if need > len(self._free) - reusable_free:
            return False
        for block_id in cached_blocks:
            block = self._blocks[block_id]
            if block.ref_count == 0:
                del self._free[block_id]
            block.ref_count += 1
            seq.block_table.append(block_id)
        for _ in range(max(need, 0)):
            seq.block_table.append(self._take_free())
        return True

    def free(self, seq: Sequence) -> None:
        """Release ``seq``'s blocks; cached ones stay reusable until evicted."""
        # Tail blocks first, so they are evicted before the shared prefix blocks (vLLM's order).
        for block_id in reversed(seq.block_table):
            block = self._blocks[block_id]
            block.ref_count -= 1
            if block.ref_count < 0:
                raise Internal(f"KV block {block_id} freed more often than allocated")
            if block.ref_count == 0:
                self._free[block_id] = None
        seq.block_table = []

    def _take_free(self) -> int:
        block_id, _ = self._free.popitem(last=False)
        block = self._blocks[block_id]
        if block.key is not None:  # evict: the slot is about to be overwritten
            if self._cached.get(block.key) == block_id:
                del self._cached[block.key]
            block.key = None
        block.ref_count = 1
        return block_id

    def reset_prefix_cache(self) -> None:
        """Forget every cached hash (e.g. after an adapter is replaced under the same name)."""
        for block in self._blocks:
            block.key = None
        self._cached.clear()
