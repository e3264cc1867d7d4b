"""Model presets: shapes, the HF config they build, exact parameter counts, FLOPs and hardware peaks."""

from __future__ import annotations

import pathlib

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from shipyard.errors import InvalidArgument
from shipyard.training.presets import (
    DEFAULT_CPU_PEAK_FLOPS,
    PRESETS,
    build_config,
    flops_per_token,
    get_preset,
    parameter_count,
    peak_flops,
)

TINY_VOCAB = 8192


def tiny_config(**overrides: object) -> LlamaConfig:
    return build_config(
        "llama-tiny", vocab_size=TINY_VOCAB, seq_len=256, bos_id=1, eos_id=2, pad_id=0, overrides=overrides
    )


def test_tiny_preset_is_about_five_million_parameters_and_counted_exactly() -> None:
    config = tiny_config()
    model = LlamaForCausalLM(config)

    actual = sum(p.numel() for p in model.parameters())
    assert parameter_count(config) == actual
    assert 4_000_000 <= actual <= 6_000_000


def test_tiny_model_trains_a_step_and_reloads_with_stock_hf_code(tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config())
    batch = torch.randint(3, TINY_VOCAB, (2, 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(reloaded, LlamaForCausalLM)
    assert reloaded.config.vocab_size == TINY_VOCAB
    cfg = reloaded.config
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (1, 2, 0)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(batch).logits, reloaded(batch).logits, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_count_matches_the_model_transformers_builds(name: str) -> None:
    config = build_config(name, vocab_size=32000, seq_len=2048)
    with torch.device("meta"):  # shapes only: no memory for 13B weights
        model = LlamaForCausalLM(config)
    assert parameter_count(config) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "vocab", "published"),
    [
        ("llama-1b", 128_256, 1_235_814_400),  # Llama-3.2-1B
        ("llama-7b", 32_000, 6_738_415_616),  # Llama-2-7B
        ("llama-13b", 32_000, 13_015_864_320),  # Llama-2-13B
    ],
)
def test_large_presets_have_the_published_sizes(name: str, vocab: int, published: int) -> None:
    assert parameter_count(build_config(name, vocab_size=vocab, seq_len=4096)) == published


def test_preset_sizes_grow_in_the_documented_ranges() -> None:
    counts = {name: parameter_count(build_config(name, vocab_size=8192, seq_len=512)) for name in PRESETS}
    assert 25e6 <= counts["llama-small"] <= 40e6
    assert list(counts.values()) == sorted(counts.values())


def test_unknown_preset_names_the_field_lists_presets_and_suggests_the_closest() -> None:
    with pytest.raises(InvalidArgument) as err:
        get_preset("llama-tiy")
    (violation,) = err.value.violations
    assert violation.field == "spec.model"
    assert "did you mean 'llama-tiny'" in violation.description
    assert all(name in violation.description for name in PRESETS)


def test_config_takes_vocabulary_and_special_tokens_from_the_tokenizer() -> None:
    config = build_config("llama-small", vocab_size=5000, seq_len=512, bos_id=3, eos_id=4, pad_id=5)
    assert config.vocab_size == 5000
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (3, 4, 5)
    assert config.architectures == ["LlamaForCausalLM"]
    assert config.num_key_value_heads == get_preset("llama-small").num_kv_heads


def test_context_length_is_raised_to_the_sequence_length() -> None:
    assert build_config("llama-tiny", vocab_size=100, seq_len=8192).max_position_embeddings == 8192
    assert build_config("llama-tiny", vocab_size=100, seq_len=128).max_position_embeddings == 2048


def test_overrides_accept_the_camel_case_a_yaml_spec_uses() -> None:
    config = tiny_config(numHiddenLayers=2, rope_theta=500_000)
    assert config.num_hidden_layers == 2
    assert config.rope_parameters["rope_theta"] == 500_000
    assert parameter_count(config) < parameter_count(tiny_config())


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"numHiddenLayerz": 2}, "spec.modelOverrides.numHiddenLayerz", "did you mean 'num_hidden_layers'"),
        ({"vocabSize": 10}, "spec.modelOverrides.vocabSize", "tokenizer"),
        ({"numAttentionHeads": 3}, "spec.modelOverrides.numAttentionHeads", "not divisible"),
        ({"numKeyValueHeads": 3}, "spec.modelOverrides.numKeyValueHeads", "not a multiple"),
        ({"numHiddenLayers": 0}, "spec.modelOverrides.numHiddenLayers", "positive integer"),
        ({"ropeTheta": "fast"}, "spec.modelOverrides.ropeTheta", "positive number"),
        ({"maxPositionEmbeddings": 128}, "spec.modelOverrides.maxPositionEmbeddings", "shorter than seq_len"),
    ],
)
def test_bad_overrides_name_the_override_and_the_reason(overrides: dict, field: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        tiny_config(**overrides)
    (violation,) = err.value.violations
    assert violation.field == field
    assert reason in violation.description


def test_special_token_outside_the_vocabulary_is_rejected() -> None:
    with pytest.raises(InvalidArgument) as err:
        build_config("llama-tiny", vocab_size=100, seq_len=64, eos_id=100)
    assert [v.field for v in err.value.violations] == ["eos_id"]


def test_flops_per_token_follows_palm_appendix_b() -> None:
    config = tiny_config()
    h, layers, kv_dim, inter = 256, 4, 128, 688
    per_layer = 2 * h * h + 2 * h * kv_dim + 3 * h * inter + 2 * h  # q, o, k, v, mlp, norms
    # The input embedding is a lookup (no FLOPs); the tied output projection still multiplies.
    matmul_weights = layers * per_layer + h + TINY_VOCAB * h
    assert flops_per_token(config, 256) == 6 * matmul_weights + 12 * layers * 256 * h
    # The attention term grows with context; the weight term does not.
    assert flops_per_token(config, 512) - flops_per_token(config, 256) == 12 * layers * 256 * h


def test_flops_per_token_of_a_7b_model_is_close_to_six_times_its_size() -> None:
    config = build_config("llama-7b", vocab_size=32000, seq_len=2048)
    ratio = flops_per_token(config, 2048) / (6 * parameter_count(config))
    assert 1.0 < ratio < 1.1


@pytest.mark.parametrize(
    ("device", "precision", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", "bf16", 312e12),
        ("NVIDIA H100 80GB HBM3", "bf16", 989e12),
        ("NVIDIA H200", "bf16", 989e12),
        ("NVIDIA H100 PCIe", "bf16", 756e12),
        ("cpu", "fp32", DEFAULT_CPU_PEAK_FLOPS),
        ("cpu", "bf16", None),
        ("NVIDIA GeForce GTX 1080", "fp32", None),
    ],
)
def test_peak_flops_table(device: str, precision: str, expected: float | None) -> None:
    assert peak_flops(device, precision) == expected


def test_cpu_peak_is_the_figure_the_caller_configures() -> None:
    assert peak_flops("cpu", "fp32", cpu_flops=1e12) == 1e12
