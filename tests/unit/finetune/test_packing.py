"""Packing: rows hold whole examples, and a packed row computes exactly what its examples compute alone."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from shipyard.errors import InvalidArgument
from shipyard.finetune.encode import IGNORE_INDEX, EncodedExample
from shipyard.finetune.packing import PackedRow, collate, pack
from shipyard.finetune.preference import EncodedPair

VOCAB = 128
PAD = 0


def _example(rng: random.Random, length: int) -> EncodedExample:
    ids = [rng.randrange(1, VOCAB) for _ in range(length)]
    prompt = rng.randrange(1, length)
    return EncodedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:])


def _examples(n: int, seed: int = 0, lo: int = 2, hi: int = 12) -> list[EncodedExample]:
    rng = random.Random(seed)
    return [_example(rng, rng.randrange(lo, hi + 1)) for _ in range(n)]


@pytest.mark.parametrize("strategy", ["first_fit_decreasing", "sequential"])
def test_rows_hold_every_example_once_with_restarting_positions(strategy: str) -> None:
    examples = _examples(60)
    rows = pack(examples, 32, strategy=strategy)  # type: ignore[arg-type]
    found = []
    for row in rows:
        assert len(row) <= 32 and len(row.labels) == len(row.position_ids) == len(row)
        start = 0
        for length in row.lengths:
            assert row.position_ids[start : start + length] == list(range(length))
            found.append(
                (tuple(row.input_ids[start : start + length]), tuple(row.labels[start + 1 : start + length]))
            )
            # The first label of each example is never predicted from the example before it.
            assert row.labels[start] == IGNORE_INDEX
            start += length
        assert start == len(row)
    assert sorted(found) == sorted((tuple(e.input_ids), tuple(e.labels[1:])) for e in examples)


def test_first_fit_decreasing_needs_no_more_rows_than_sequential_and_sequential_keeps_order() -> None:
    examples = _examples(200, seed=3)
    tight = pack(examples, 32)
    ordered = pack(examples, 32, strategy="sequential")
    assert len(tight) <= len(ordered)
    assert sum(len(r) for r in tight) == sum(len(e) for e in examples)
    flat = [t for r in ordered for t in r.input_ids]
    assert flat == [t for e in examples for t in e.input_ids]


def test_packing_rejects_what_it_cannot_pack() -> None:
    with pytest.raises(InvalidArgument) as err:
        pack(_examples(3, lo=10, hi=10), 8)
    assert err.value.violations[0].field == "examples[0]" and "seq_len 8" in str(err.value)
    with pytest.raises(InvalidArgument):
        pack([EncodedPair([1], [2], [3])], 8)  # type: ignore[list-item]
    with pytest.raises(InvalidArgument):
        pack(_examples(3), 1)


@pytest.fixture(scope="module")
def tiny_llama() -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    models = {}
    for impl in ("eager", "sdpa"):
        torch.manual_seed(0)
        models[impl] = AutoModelForCausalLM.from_config(config, attn_implementation=impl).eval()
    return models


def _alone(model: Any, example: EncodedExample) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Logits of one example run by itself, and its summed loss and target count."""
    ids = torch.tensor([example.input_ids])
    logits = model(input_ids=ids).logits[0]
    targets = torch.tensor(example.labels[1:])
    loss = torch.nn.functional.cross_entropy(logits[:-1], targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return logits, loss, int((targets != IGNORE_INDEX).sum())


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("mode", ["position_ids", "4d_mask"])
def test_a_packed_batch_gives_each_example_the_logits_and_loss_it_has_alone(
    tiny_llama: dict[str, Any], impl: str, mode: str
) -> None:
    model = tiny_llama[impl]
    examples = _examples(7, seed=1, lo=3, hi=9)
    rows = pack(examples, 16)
    assert len(rows) >= 2 and any(len(r.lengths) > 1 for r in rows)
    with torch.no_grad():
        if mode == "position_ids":
            batch = collate(rows, PAD)
            assert "attention_mask" not in batch  # boundaries come from position_ids
            out = model(**batch, use_cache=False)
        else:
            batch = collate(rows, PAD, packed_mask_dtype=torch.float32)
            assert batch["attention_mask"].shape == (len(rows), 1, 16, 16)
            out = model(**batch)  # an explicit mask needs nothing else from the caller
        by_content = {tuple(e.input_ids): _alone(model, e) for e in examples}
    total_loss, total_targets = torch.tensor(0.0), 0
    for b, row in enumerate(rows):
        start = 0
        for length in row.lengths:
            logits, loss, count = by_content[tuple(row.input_ids[start : start + length])]
            torch.testing.assert_close(out.logits[b, start : start + length], logits, atol=1e-5, rtol=0)
            total_loss, total_targets = total_loss + loss, total_targets + count
            start += length
    torch.testing.assert_close(out.loss, total_loss / total_targets, atol=1e-5, rtol=0)


def test_the_4d_mask_follows_position_ids_when_rows_carry_no_lengths() -> None:
    # Rows rebuilt from stored JSON (the trainer's loader) have position_ids but no lengths.
    row = PackedRow([5, 6, 7, 8, 9], [IGNORE_INDEX, 6, IGNORE_INDEX, 8, 9], [0, 1, 0, 1, 2])
    mask = collate([row], PAD, packed_mask_dtype=torch.float32)["attention_mask"][0, 0]
    allowed = (mask == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]


def test_without_position_ids_packed_examples_would_see_each_other(tiny_llama: dict[str, Any]) -> None:
    # The control for the test above: the same row run as one sequence gives different logits.
    model = tiny_llama["sdpa"]
    first, second = _examples(2, seed=2, lo=6, hi=6)
    row = pack([first, second], 12, strategy="sequential")[0]
    with torch.no_grad():
        leaked = model(input_ids=torch.tensor([row.input_ids])).logits[0, 6:]
        alone = model(input_ids=torch.tensor([second.input_ids])).logits[0]
    assert (leaked - alone).abs().max() > 1e-3


def test_unpacked_examples_are_padded_with_a_mask_only_when_needed(tiny_llama: dict[str, Any]) -> None:
    model = tiny_llama["sdpa"]
    short, long = _examples(2, seed=4, lo=4, hi=4)[0], _examples(1, seed=5, lo=9, hi=9)[0]
    batch = collate([short, long], PAD)
    assert batch["attention_mask"].tolist()[0] == [1] * 4 + [0] * 5
    assert batch["labels"][0, 4:].tolist() == [IGNORE_INDEX] * 5
    assert batch["input_ids"][0, 4:].tolist() == [PAD] * 5
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        torch.testing.assert_close(logits[0, :4], _alone(model, short)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(logits[1], _alone(model, long)[0], atol=1e-5, rtol=0)
    assert "attention_mask" not in collate([long, long], PAD)


def test_collate_pads_to_a_multiple_and_rejects_mixed_batches() -> None:
    row = PackedRow([5, 6, 7], [IGNORE_INDEX, 6, 7], [0, 1, 2], (3,))
    batch = collate([row], PAD, pad_to_multiple_of=8)
    assert batch["input_ids"].shape == (1, 8)
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2, 3, 4]  # padding is its own segment
    with pytest.raises(InvalidArgument):
        collate([row, EncodedExample([1, 2], [1, 2])], PAD)
    with pytest.raises(InvalidArgument):
        collate([], PAD)
