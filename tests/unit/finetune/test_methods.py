"""Building the model of each finetune method: which weights train, 4-bit QLoRA on CPU, target modules."""

from __future__ import annotations

import pathlib

import pytest
import torch

from shipyard.errors import InvalidArgument
from shipyard.finetune.methods import build_model, check_target_modules, load_config
from shipyard.finetune.spec import FinetuneSpec
from shipyard.models.local import LocalModel
from tests.integration.training_fixtures import build_tiny_base

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def base(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    directory = pathlib.Path(build_tiny_base(shared_data, tmp_path_factory.mktemp("base")))
    return LocalModel(directory, "tiny")


def _trainable(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_default_targets_are_every_linear_projection_but_the_head(base: LocalModel) -> None:
    assert check_target_modules(load_config(base), FinetuneSpec()) == LLAMA_LINEARS


def test_unknown_target_modules_are_rejected_listing_the_valid_ones(base: LocalModel) -> None:
    ft = FinetuneSpec.model_validate({"lora": {"targetModules": ["q_proj", "qkv_proj"]}})
    with pytest.raises(InvalidArgument) as info:
        check_target_modules(load_config(base), ft)
    (v,) = info.value.violations
    assert v.field == "spec.finetune.lora.targetModules"
    assert "qkv_proj" in v.description and all(name in v.description for name in LLAMA_LINEARS)


def test_lora_trains_only_adapter_weights_on_the_chosen_modules(base: LocalModel) -> None:
    ft = FinetuneSpec.model_validate({"lora": {"r": 4, "targetModules": ["q_proj", "v_proj"]}})
    model = build_model(base, ft, device=CPU)
    names = _trainable(model)
    assert names and all("lora_" in n for n in names)
    assert {n.split(".")[-4] for n in names} == {"q_proj", "v_proj"}


def test_full_finetuning_trains_every_weight(base: LocalModel) -> None:
    model = build_model(base, FinetuneSpec.model_validate({"method": "full"}), device=CPU)
    assert all(p.requires_grad for p in model.parameters())


def test_qlora_stores_the_base_in_4_bit_and_trains_on_cpu(base: LocalModel) -> None:
    import bitsandbytes as bnb

    model = build_model(base, FinetuneSpec.model_validate({"method": "qlora", "lora": {"r": 4}}), device=CPU)
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == 2 * len(LLAMA_LINEARS)  # every projection of both layers
    assert quantized[0].weight.dtype == torch.uint8 and quantized[0].weight.quant_type == "nf4"
    full = build_model(base, FinetuneSpec.model_validate({"method": "full"}), device=CPU)
    linear_bytes = sum(m.weight.numel() * m.weight.element_size() for m in quantized)
    fp32_bytes = sum(p.numel() * 4 for n, p in full.named_parameters() if "proj" in n)
    assert linear_bytes * 6 < fp32_bytes  # 4-bit codes: ~1/8 of fp32

    torch.manual_seed(0)
    ids = torch.randint(3, 1000, (4, 24))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.05, losses
    assert not any(m.weight.requires_grad for m in quantized)  # the 4-bit base never trains


@pytest.mark.parametrize("method", ["lora", "full"])
def test_gradient_checkpointing_trains_the_same_weights_with_the_same_gradients(
    base: LocalModel, method: str
) -> None:
    """Recomputing activations is a memory/compute trade, never a change in what is learned."""
    torch.manual_seed(0)
    ids = torch.randint(3, 1000, (2, 16))
    grads = []
    for checkpointing in (False, True):
        doc = {"method": method, "gradientCheckpointing": checkpointing, "lora": {"dropout": 0.0}}
        torch.manual_seed(0)  # the same LoRA init
        model = build_model(base, FinetuneSpec.model_validate(doc), device=CPU)
        model.train()
        assert model.is_activation_checkpointing is checkpointing
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        assert grads[1][name] is not None, f"{name} got no gradient under checkpointing"
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6)


def test_qlora_checkpoints_activations_unless_turned_off(base: LocalModel) -> None:
    on = build_model(base, FinetuneSpec.model_validate({"method": "qlora"}), device=CPU)
    off = FinetuneSpec.model_validate({"method": "qlora", "gradientCheckpointing": False})
    assert on.is_activation_checkpointing
    assert not build_model(base, off, device=CPU).is_activation_checkpointing
