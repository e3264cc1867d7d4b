"""The decode view beside the paged KV cache: rows follow sequences, stale rows are re-read, memory capped."""

from __future__ import annotations

import pathlib

import pytest
import torch

from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.kv_cache import DecodeKVView, PagedKVCache
from shipyard.engine.model_runner import PagedModelRunner
from tests.unit.engine.model_runner_support import BlockPool, build_tiny_llama, make_runner

TOKENIZER = ("tokenizer", "mistral_7b_v1")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("tiny-llama-view")
    build_tiny_llama(directory, shared_data.joinpath(*TOKENIZER))
    return directory


def _hf_last_logits(runner: PagedModelRunner, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return runner.model(torch.tensor([tokens])).logits[0, -1].float()


def _cache(num_blocks: int = 64) -> PagedKVCache:
    return PagedKVCache(
        num_layers=2,
        num_kv_heads=2,
        head_dim=8,
        block_size=4,
        num_blocks=num_blocks,
        dtype=torch.float32,
        device=torch.device("cpu"),
    )


def test_sequences_leaving_and_joining_mid_decode_each_get_their_own_logits(tiny_dir: pathlib.Path) -> None:
    runner = make_runner(tiny_dir)
    generator = torch.Generator().manual_seed(7)
    seqs = [torch.randint(0, 32000, (n,), generator=generator).tolist() for n in (9, 5, 13, 6)]
    pool = BlockPool(runner)
    tables = [pool.table(len(s) + 4) for s in seqs]
    # Sequences 0-2 prefill all but their last token, then decode one token at a time.
    runner.execute(ModelInput([SequenceChunk(i, seqs[i][:-1], 0, tables[i], False) for i in range(3)]))
    fed = [len(s) - 1 for s in seqs]

    def decode(ids: list[int]) -> torch.Tensor:
        chunks = [SequenceChunk(i, seqs[i][fed[i] : fed[i] + 1], fed[i], tables[i], True) for i in ids]
        for i in ids:
            fed[i] += 1
        return runner.execute(ModelInput(chunks))

    def extend(ids: list[int], logits: torch.Tensor) -> None:
        for row, i in enumerate(ids):
            torch.testing.assert_close(logits[row], _hf_last_logits(runner, seqs[i]), atol=1e-4, rtol=1e-4)
            seqs[i].append(int(logits[row].argmax()))

    extend([0, 1, 2], decode([0, 1, 2]))
    extend([0, 1, 2], decode([0, 1, 2]))
    # Sequence 1 finishes; sequence 3 (prefilled meanwhile) takes its place: the rows are no longer
    # in chunk order, and the new sequence is read in from the paged cache.
    runner.execute(ModelInput([SequenceChunk(3, seqs[3][:-1], 0, tables[3], False)]))
    extend([2, 0, 3], decode([2, 0, 3]))
    extend([3, 2, 0], decode([3, 2, 0]))
    assert runner.decode_view is not None and runner.decode_view.nbytes > 0


def test_a_reused_sequence_id_with_other_blocks_is_read_again_not_served_stale(
    tiny_dir: pathlib.Path,
) -> None:
    runner = make_runner(tiny_dir)
    generator = torch.Generator().manual_seed(8)
    first, second = (torch.randint(0, 32000, (n,), generator=generator).tolist() for n in (7, 8))
    pool = BlockPool(runner)
    tables = [pool.table(7), pool.table(8)]
    prefills = [
        SequenceChunk(0, first[:6], 0, tables[0], False),
        SequenceChunk(1, second[:7], 0, tables[1], False),
    ]
    runner.execute(ModelInput(prefills))
    runner.execute(ModelInput([SequenceChunk(0, first[6:], 6, tables[0], True)]))
    # Id 0 now names a sequence whose length follows on from the first one's: only its blocks differ.
    logits = runner.execute(ModelInput([SequenceChunk(0, second[7:], 7, tables[1], True)]))
    torch.testing.assert_close(logits[0], _hf_last_logits(runner, second), atol=1e-4, rtol=1e-4)


def test_decodes_beyond_the_view_memory_cap_fall_back_to_the_paged_cache(tiny_dir: pathlib.Path) -> None:
    runner = make_runner(tiny_dir)
    assert runner.decode_view is not None
    runner.decode_view.max_bytes = 1  # no decode fits: every step must gather from the paged cache
    tokens = torch.randint(0, 32000, (10,), generator=torch.Generator().manual_seed(9)).tolist()
    table = BlockPool(runner).table(len(tokens))
    runner.execute(ModelInput([SequenceChunk(0, tokens[:-1], 0, table, False)]))
    logits = runner.execute(ModelInput([SequenceChunk(0, tokens[-1:], 9, table, True)]))
    torch.testing.assert_close(logits[0], _hf_last_logits(runner, tokens), atol=1e-4, rtol=1e-4)
    assert runner.decode_view.nbytes == 0


def test_view_rows_are_reused_and_freed_when_nothing_decodes() -> None:
    view = DecodeKVView(_cache(), max_bytes=10**6)
    first = view.prepare([10, 11, 12], [[0], [1], [2]], [1, 1, 1])
    assert first is not None and first.rows.tolist() == [0, 1, 2] and first.in_order
    # 11 left; 13 joins and takes the free row; the rows are now out of chunk order.
    second = view.prepare([12, 13, 10], [[2], [3], [0]], [2, 1, 2])
    assert second is not None and second.rows.tolist() == [2, 1, 0] and not second.in_order
    assert second.bias.shape == (3, 1, 1, 2)
    assert torch.isinf(second.bias[1, 0, 0, 1]) and float(second.bias[0, 0, 0, 1]) == 0.0
    assert view.nbytes > 0
    assert view.prepare([], [], []) is None
    assert view.nbytes == 0


def test_a_view_that_would_exceed_its_memory_cap_declines() -> None:
    cache = _cache()
    per_token = 2 * 2 * 2 * 8 * 4  # layers x K/V x kv_heads x head_dim x fp32
    view = DecodeKVView(cache, max_bytes=4 * 13 * per_token)
    tables = [list(range(4 * i, 4 * i + 4)) for i in range(5)]  # 16 positions each
    assert view.prepare(list(range(4)), tables[:4], [13] * 4) is not None
    assert view.prepare(list(range(5)), tables, [13] * 5) is None
    assert view.nbytes == 0


def test_a_view_near_its_cap_grows_in_steps_not_a_token_at_a_time() -> None:
    """Each growth copies the whole view: decoding up to the cap must not reallocate every step."""
    per_token = 2 * 2 * 2 * 8 * 4
    view = DecodeKVView(_cache(num_blocks=256), max_bytes=8 * 100 * per_token, max_rows=8)
    tables = [list(range(32 * i, 32 * i + 32)) for i in range(8)]  # 128 positions each
    sizes = []
    for length in range(2, 101):
        assert view.prepare(list(range(8)), tables, [length] * 8) is not None
        sizes.append(view.nbytes)
    assert len(set(sizes)) <= 3
    assert max(sizes) <= view.max_bytes


def test_an_int8_cache_keeps_no_full_precision_copy_beside_it(tiny_dir: pathlib.Path) -> None:
    assert make_runner(tiny_dir, kv_cache_dtype="int8").decode_view is None
    assert make_runner(tiny_dir).decode_view is not None
