"""Merging a LoRA adapter shard by shard gives the same model as base + adapter, in stock HF format."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from shipyard.errors import FailedPrecondition
from shipyard.finetune.merge import merge_adapter
from tests.integration.training_fixtures import build_tiny_base


@pytest.fixture(scope="module")
def sharded_base(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The tiny base re-saved in several safetensors shards, so merging really goes shard by shard."""
    root = tmp_path_factory.mktemp("merge")
    model = AutoModelForCausalLM.from_pretrained(build_tiny_base(shared_data, root))
    out = root / "sharded"
    model.save_pretrained(out, max_shard_size="2MB")
    return out


def _adapter(base_dir: pathlib.Path, out: pathlib.Path, **lora: object) -> pathlib.Path:
    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    # init_lora_weights=False: B is random too, so the adapter changes the logits (B = 0 would not).
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM", **lora)  # type: ignore[arg-type]
    get_peft_model(base, config).save_pretrained(out)
    return out


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.arange(5, 45).reshape(2, 20)
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("rslora", [False, True])
def test_merged_logits_match_base_plus_adapter(
    sharded_base: pathlib.Path, tmp_path: pathlib.Path, rslora: bool
) -> None:
    adapter = _adapter(
        sharded_base,
        tmp_path / "adapter",
        target_modules=["q_proj", "v_proj", "down_proj"],
        use_rslora=rslora,
    )
    merged_names = merge_adapter(sharded_base, adapter, tmp_path / "merged")

    assert len(merged_names) == 2 * 3  # 3 modules x 2 layers
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sharded_base), adapter)
    base_only = AutoModelForCausalLM.from_pretrained(sharded_base)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")  # stock HF: no peft needed
    expected = _logits(with_adapter)
    assert not torch.allclose(expected, _logits(base_only), atol=1e-3)  # the adapter matters
    torch.testing.assert_close(_logits(merged), expected, atol=1e-4, rtol=1e-4)


def test_the_merged_model_keeps_the_base_shards_and_index(
    sharded_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    adapter = _adapter(sharded_base, tmp_path / "adapter", target_modules=["q_proj"])
    merge_adapter(sharded_base, adapter, tmp_path / "merged")
    shards = sorted(p.name for p in sharded_base.glob("*.safetensors"))
    assert len(shards) > 1
    assert sorted(p.name for p in (tmp_path / "merged").glob("*.safetensors")) == shards
    index = json.loads((tmp_path / "merged" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)


def test_an_adapter_for_another_architecture_is_refused(
    sharded_base: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    adapter = _adapter(sharded_base, tmp_path / "adapter", target_modules=["q_proj"])
    weights = adapter / "adapter_model.safetensors"
    from safetensors.torch import load_file, save_file

    renamed = {k.replace("layers.0.", "layers.7."): v for k, v in load_file(str(weights)).items()}
    save_file(renamed, str(weights))
    with pytest.raises(FailedPrecondition, match="no matching base weight"):
        merge_adapter(sharded_base, adapter, tmp_path / "merged")
