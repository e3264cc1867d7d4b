"""The FLOPs a finetune's MFU counts: checked against torch's FLOP counter on a real training step, and
against pretraining's PaLM formula where they must agree."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import LlamaConfig, LlamaForCausalLM

from shipyard.errors import InvalidArgument
from shipyard.finetune.flops import finetune_flops_per_token, matmul_weights
from shipyard.finetune.methods import build_model
from shipyard.finetune.prepare import PreparedFinetune
from shipyard.finetune.spec import FinetuneSpec
from shipyard.models.local import LocalModel
from shipyard.training.plans import finetune_plan
from shipyard.training.presets import flops_per_token
from shipyard.training.spec import parse_training_spec

CONFIG = LlamaConfig(
    vocab_size=256,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=128,
    tie_word_embeddings=True,
)
SMOLLM2_LIKE = LlamaConfig(
    vocab_size=49152,
    hidden_size=576,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    intermediate_size=1536,
    tie_word_embeddings=True,
)


def _ft(**over: Any) -> FinetuneSpec:
    return FinetuneSpec.model_validate({"lora": {"dropout": 0.0}, **over})


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    directory = tmp_path_factory.mktemp("flops-base")
    torch.manual_seed(0)
    LlamaForCausalLM(CONFIG).save_pretrained(directory)
    return LocalModel(pathlib.Path(directory), "tiny")


def _measured_flops_per_token(base: LocalModel, ft: FinetuneSpec, rows: int, seq_len: int) -> float:
    model = build_model(base, ft, device=torch.device("cpu"))
    model.train()
    # Eager attention: torch's counter does not see CPU SDPA kernels, but does see eager's matmuls.
    model.set_attn_implementation("eager")
    ids = torch.randint(0, CONFIG.vocab_size, (rows, seq_len))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    return counter.get_total_flops() / (rows * seq_len)


@pytest.mark.parametrize(
    "over",
    [
        {"method": "full"},
        {"method": "lora"},
        {"method": "lora", "gradientCheckpointing": True},
        {"method": "full", "gradientCheckpointing": True},
    ],
    ids=["full", "lora", "lora+ckpt", "full+ckpt"],
)
def test_counted_flops_match_what_a_training_step_computes(base: LocalModel, over: dict[str, Any]) -> None:
    """Within 5%: autograd skips the frozen first layer's q/k/v input gradients and the recompute stops
    before each layer's last projection; the count includes both (documented in flops.py)."""
    ft = _ft(**over)
    counted = finetune_flops_per_token(matmul_weights(CONFIG, ft), ft, 32)
    measured = _measured_flops_per_token(base, ft, rows=2, seq_len=32)
    assert measured == pytest.approx(counted, rel=0.05)
    assert measured <= counted  # never below the work done: MFU is not inflated


def test_full_finetuning_counts_palm_6n_like_pretraining() -> None:
    ft = _ft(method="full")
    counted = finetune_flops_per_token(matmul_weights(SMOLLM2_LIKE, ft), ft, 128)
    assert counted == pytest.approx(flops_per_token(SMOLLM2_LIKE, 128), rel=1e-3)


def test_lora_counts_about_two_thirds_of_full_and_checkpointing_adds_a_forward() -> None:
    weights = matmul_weights(SMOLLM2_LIKE, _ft(method="lora"))
    full = finetune_flops_per_token(matmul_weights(SMOLLM2_LIKE, _ft(method="full")), _ft(method="full"), 128)
    lora = finetune_flops_per_token(weights, _ft(method="lora"), 128)
    lora_ckpt = finetune_flops_per_token(weights, _ft(method="lora", gradientCheckpointing=True), 128)
    qlora = finetune_flops_per_token(weights, _ft(method="qlora"), 128)  # checkpointing on by default
    assert 0.64 < lora / full < 0.72  # 4N (+ adapters) of 6N
    assert lora_ckpt - lora == pytest.approx(2 * weights.decoder + 2 * weights.lora + 4 * 30 * 128 * 576)
    assert qlora == lora_ckpt


def test_dpo_adds_the_reference_forward_unless_reference_free() -> None:
    weights = matmul_weights(SMOLLM2_LIKE, _ft(method="dpo"))
    plain = finetune_flops_per_token(weights, _ft(method="lora"), 64)
    dpo = finetune_flops_per_token(weights, _ft(method="dpo"), 64)
    free = finetune_flops_per_token(weights, _ft(method="dpo", dpo={"referenceFree": True}), 64)
    assert free == plain and dpo - plain == pytest.approx(2 * weights.base + 4 * 30 * 64 * 576)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_the_workers_plan_counts_the_methods_flops_over_the_mean_row(method: str) -> None:
    """What the MFU of a running finetune uses: 6N for LoRA made a 2-core CPU run report over 100%."""
    spec = parse_training_spec(
        {
            "type": "finetune",
            "model": "s3://models/smollm2",
            "data": {"dataset": "s3://data/alpaca.jsonl"},
            "finetune": {"method": method, "maxSeqLen": 512},
            "hyperparameters": {"steps": 4, "globalBatchSize": 4, "microBatchSize": 4},
        }
    )
    prepared = PreparedFinetune(
        "s3://m", "m", "s3://t", "s3://v", 100, 5, 7000, 0, pathlib.Path("/nonexistent"), {}, SMOLLM2_LIKE
    )
    plan = finetune_plan(spec, prepared, "s3://ckpt", 180e9, None)
    assert spec.finetune is not None
    expected = finetune_flops_per_token(matmul_weights(SMOLLM2_LIKE, spec.finetune), spec.finetune, 70)
    assert plan.flops_per_token == pytest.approx(expected)
    assert plan.peak_flops == 180e9
    if method == "lora":
        assert plan.flops_per_token < 0.72 * flops_per_token(SMOLLM2_LIKE, 70)


def test_a_non_positive_row_length_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        finetune_flops_per_token(matmul_weights(CONFIG, _ft()), _ft(), 0)
    assert info.value.violations[0].field == "seq_len"
