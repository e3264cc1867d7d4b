"""The model runner's paged forward pass against Hugging Face's own forward and ``generate()``."""

from __future__ import annotations

import pathlib

import pytest
import torch

from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.kv_cache import kv_bytes_per_block
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.errors import InvalidArgument
from shipyard.models.local import LocalModel
from tests.unit.engine.model_runner_support import (
    BlockPool,
    build_tiny_llama,
    greedy_generate,
    hf_generate,
    make_runner,
    prefill_logits,
    until_eos,
)

TOKENIZER = ("tokenizer", "mistral_7b_v1")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(directory, shared_data.joinpath(*TOKENIZER))
    return directory


@pytest.fixture(scope="module")
def runner(tiny_dir: pathlib.Path) -> PagedModelRunner:
    return make_runner(tiny_dir)


def _hf_logits(runner: PagedModelRunner, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return runner.model(torch.tensor([tokens])).logits[0].float()


@pytest.mark.parametrize(
    ("block_size", "chunk_sizes"),
    [(1, [30]), (4, [7, 1, 3]), (16, [5]), (16, [1]), (8, [40])],
)
def test_chunked_paged_logits_match_hf_full_forward(
    tiny_dir: pathlib.Path, block_size: int, chunk_sizes: list[int]
) -> None:
    runner = make_runner(tiny_dir, block_size=block_size)
    tokens = torch.randint(0, 32000, (40,), generator=torch.Generator().manual_seed(block_size)).tolist()
    reference = _hf_logits(runner, tokens)
    table = BlockPool(runner).table(len(tokens))
    for position, logits in prefill_logits(runner, tokens, chunk_sizes, table):
        assert logits.dtype == torch.float32
        torch.testing.assert_close(logits, reference[position], atol=1e-4, rtol=1e-4)


def test_mixed_step_of_prefills_and_decodes_gives_each_sequence_its_own_logits(
    runner: PagedModelRunner,
) -> None:
    generator = torch.Generator().manual_seed(3)
    seqs = [torch.randint(0, 32000, (n,), generator=generator).tolist() for n in (12, 9, 17, 1)]
    pool = BlockPool(runner)
    tables = [pool.table(len(s)) for s in seqs]
    # Step 1: the first two sequences prefill all but their last token; nothing asks for logits.
    warmup = [SequenceChunk(i, seqs[i][:-1], 0, tables[i], False) for i in (0, 1)]
    assert runner.execute(ModelInput(warmup)).shape == (0, runner.vocab_size)
    # Step 2: decodes of 0 and 1 interleaved with a fresh prefill (2) and a one-token prompt (3).
    step = [
        SequenceChunk(0, seqs[0][-1:], 11, tables[0], True),
        SequenceChunk(2, seqs[2][:10], 0, tables[2], False),
        SequenceChunk(1, seqs[1][-1:], 8, tables[1], True),
        SequenceChunk(3, seqs[3], 0, tables[3], True),
    ]
    logits = runner.execute(ModelInput(step))
    assert logits.shape == (3, runner.vocab_size)
    for row, i in enumerate((0, 1, 3)):
        torch.testing.assert_close(logits[row], _hf_logits(runner, seqs[i])[-1], atol=1e-4, rtol=1e-4)
    # Step 3: the rest of sequence 2 continues its cached prefix.
    rest = runner.execute(ModelInput([SequenceChunk(2, seqs[2][10:], 10, tables[2], True)]))
    torch.testing.assert_close(rest[0], _hf_logits(runner, seqs[2])[-1], atol=1e-4, rtol=1e-4)


def test_batched_greedy_output_is_token_identical_to_hf_generate(runner: PagedModelRunner) -> None:
    generator = torch.Generator().manual_seed(4)
    prompts = [torch.randint(0, 32000, (n,), generator=generator).tolist() for n in (3, 11, 6, 1, 20)]
    ours = greedy_generate(runner, prompts, max_new_tokens=12, chunk_size=4)
    assert [until_eos(o, runner.model) for o in ours] == [hf_generate(runner.model, p, 12) for p in prompts]


def test_kv_cache_is_sized_in_whole_blocks_from_the_byte_budget(tiny_dir: pathlib.Path) -> None:
    runner = make_runner(tiny_dir, kv_cache_memory=1_000_000, block_size=8)
    per_block = 2 * 2 * 8 * 2 * 16 * 4  # layers x K/V x block_size x kv_heads x head_dim x fp32
    assert runner.bytes_per_block == per_block
    assert runner.num_blocks == 1_000_000 // per_block
    assert runner.cache.nbytes == runner.num_blocks * per_block <= 1_000_000


def test_kv_cache_is_capped_at_what_the_running_batch_can_use(tiny_dir: pathlib.Path) -> None:
    runner = make_runner(tiny_dir, kv_cache_memory=0.5, max_num_seqs=2, max_model_len=64, block_size=16)
    assert runner.num_blocks == 2 * 4


def test_int8_kv_cache_holds_more_blocks_and_stays_close(tiny_dir: pathlib.Path) -> None:
    full = make_runner(tiny_dir, kv_cache_memory=1e6)
    int8 = make_runner(tiny_dir, kv_cache_memory=1e6, kv_cache_dtype="int8")
    expected = kv_bytes_per_block(
        num_layers=2, num_kv_heads=2, head_dim=16, block_size=4, dtype=torch.float32, int8=True
    )
    assert int8.bytes_per_block == expected < full.bytes_per_block / 3
    assert int8.num_blocks > 3 * full.num_blocks
    tokens = torch.randint(0, 32000, (24,), generator=torch.Generator().manual_seed(5)).tolist()
    # One-token chunks: every step reads the whole (quantized) prefix back from the cache.
    exact = prefill_logits(full, tokens, [1], BlockPool(full).table(24))
    approx = prefill_logits(int8, tokens, [1], BlockPool(int8).table(24))
    errors = [float((a - b).abs().max()) for (_, a), (_, b) in zip(exact, approx, strict=True)]
    assert 0 < max(errors) < 0.05 * float(torch.stack([e for _, e in exact]).abs().max())
    same = sum(int(a.argmax() == b.argmax()) for (_, a), (_, b) in zip(exact, approx, strict=True))
    assert same >= 0.9 * len(exact)


def test_int8_weights_quarter_the_projection_memory_and_match_generate(tiny_dir: pathlib.Path) -> None:
    full = make_runner(tiny_dir)
    quantized = make_runner(tiny_dir, quantization="int8")
    projection_bytes = sum(
        p.nbytes for n, p in full.model.named_parameters() if "proj" in n and n.endswith("weight")
    )
    assert quantized.weight_bytes_saved > 0.7 * projection_bytes
    tokens = torch.randint(0, 32000, (16,), generator=torch.Generator().manual_seed(6)).tolist()
    exact = _hf_logits(full, tokens)
    approx = _hf_logits(quantized, tokens)
    assert 0 < float((exact - approx).abs().max()) < 0.05 * float(exact.abs().max())
    # The paged pass over int8 weights computes what HF computes over the same int8 modules.
    ours = greedy_generate(quantized, [tokens], max_new_tokens=8)
    assert [until_eos(ours[0], quantized.model)] == [hf_generate(quantized.model, tokens, 8)]


def test_non_llama_architecture_is_rejected_naming_the_model_field(tmp_path: pathlib.Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100)).save_pretrained(tmp_path)
    with pytest.raises(InvalidArgument) as caught:
        load_runner(LocalModel(tmp_path, "gpt2-tiny"), InferenceConfig())
    assert caught.value.violations[0].field == "model"
    assert "LlamaForCausalLM" in str(caught.value) and "gpt2" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "field"),
    [({"kv_cache_memory": 100}, "kv_cache_memory"), ({"max_model_len": 4096}, "max_model_len")],
)
def test_unusable_settings_are_rejected_naming_the_field(
    tiny_dir: pathlib.Path, config: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_runner(tiny_dir, **config)
    assert caught.value.violations[0].field == field


@pytest.mark.parametrize(
    ("chunk", "field"),
    [
        (SequenceChunk(0, [1, 2, 3], 0, [0], True), "chunks[0].block_table"),  # 1 block of 4 is enough...
        (SequenceChunk(0, [1] * 5, 0, [0], True), "chunks[0].block_table"),  # ...5 positions need 2
        (SequenceChunk(0, [1], 0, [10**9], True), "chunks[0].block_table"),
        (SequenceChunk(0, [40000], 0, [0], True), "chunks.token_ids"),
        (SequenceChunk(0, [1], 300, list(range(76)), True), "chunks[0]"),
        (SequenceChunk(0, [1], 0, [0], True, "nope"), "chunks[0].adapter"),
    ],
)
def test_malformed_step_raises_a_typed_error_and_the_runner_keeps_working(
    runner: PagedModelRunner, chunk: SequenceChunk, field: str
) -> None:
    if chunk.token_ids == [1, 2, 3]:  # the well-formed control case
        assert runner.execute(ModelInput([chunk])).shape == (1, runner.vocab_size)
        return
    with pytest.raises(InvalidArgument) as caught:
        runner.execute(ModelInput([chunk]))
    assert caught.value.violations[0].field == field
    assert runner.execute(ModelInput([SequenceChunk(0, [5, 6], 0, [0], True)])).shape == (
        1,
        runner.vocab_size,
    )
