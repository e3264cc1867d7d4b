"""Multi-LoRA in the model runner: each chunk's tokens get their own adapter, exactly as peft computes it."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import torch

from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.model_runner import PagedModelRunner
from shipyard.errors import AlreadyExists, InvalidArgument, ResourceExhausted
from tests.unit.engine.model_runner_support import BlockPool, build_tiny_llama, greedy_generate, make_runner

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("tiny-llama-lora")
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1")
    return directory


def _make_adapter(
    base_dir: pathlib.Path, out: pathlib.Path, *, seed: int, rank: int = 4, **config: Any
) -> Any:
    """A PEFT adapter saved with peft itself; B is random so the delta is non-zero. Returns the PeftModel."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True)
    settings = {"r": rank, "lora_alpha": 2 * rank, "target_modules": TARGETS, "init_lora_weights": False}
    peft_model = get_peft_model(base, LoraConfig(**(settings | config))).eval()
    peft_model.save_pretrained(out)
    return peft_model


@pytest.fixture(scope="module")
def adapters(
    tiny_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[pathlib.Path, Any]]:
    made = {}
    for name, seed, extra in (("alpha", 1, {}), ("beta", 2, {"use_rslora": True, "rank": 8})):
        path = tmp_path_factory.mktemp(name)
        made[name] = (path, _make_adapter(tiny_dir, path, seed=seed, **extra))
    return made


@pytest.fixture(scope="module")
def runner(tiny_dir: pathlib.Path, adapters: dict[str, tuple[pathlib.Path, Any]]) -> PagedModelRunner:
    runner = make_runner(tiny_dir, max_loras=2, max_lora_rank=8)
    for name, (path, _) in adapters.items():
        runner.load_adapter(name, str(path))
    return runner


def _peft_logits(peft_model: Any, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return peft_model(torch.tensor([tokens])).logits[0, -1].float()


def test_two_adapters_and_the_base_in_one_step_each_match_their_own_model(
    runner: PagedModelRunner, adapters: dict[str, tuple[pathlib.Path, Any]]
) -> None:
    generator = torch.Generator().manual_seed(7)
    prompts = [torch.randint(0, 32000, (n,), generator=generator).tolist() for n in (9, 1, 13, 6)]
    names = ["alpha", "beta", None, "beta"]
    pool = BlockPool(runner)
    chunks = [
        SequenceChunk(i, p, 0, pool.table(len(p)), True, name)
        for i, (p, name) in enumerate(zip(prompts, names, strict=True))
    ]
    logits = runner.execute(ModelInput(chunks))
    for row, (prompt, name) in enumerate(zip(prompts, names, strict=True)):
        if name is None:
            with torch.no_grad():
                expected = runner.model(torch.tensor([prompt])).logits[0, -1]
        else:
            expected = _peft_logits(adapters[name][1], prompt)
        torch.testing.assert_close(logits[row], expected, atol=1e-4, rtol=1e-4)
    # The adapters change the output: the same prompt without them gives other logits.
    base = runner.execute(ModelInput([SequenceChunk(9, prompts[0], 0, pool.table(9), True)]))[0]
    assert float((base - logits[0]).abs().max()) > 1e-2


def test_adapter_routing_changes_greedy_output_and_decode_steps_keep_it(
    runner: PagedModelRunner, adapters: dict[str, tuple[pathlib.Path, Any]]
) -> None:
    prompt = torch.randint(0, 32000, (8,), generator=torch.Generator().manual_seed(8)).tolist()
    outs = greedy_generate(
        runner, [prompt, prompt, prompt], max_new_tokens=6, adapters=[None, "alpha", "beta"]
    )
    assert len({tuple(o) for o in outs}) == 3
    # Token by token, the "alpha" continuation is what the PeftModel itself picks.
    sequence = list(prompt)
    for token in outs[1]:
        assert int(_peft_logits(adapters["alpha"][1], sequence).argmax()) == token
        sequence.append(token)


def test_adapter_limits_and_lifecycle(
    tiny_dir: pathlib.Path, adapters: dict[str, tuple[pathlib.Path, Any]], tmp_path: pathlib.Path
) -> None:
    runner = make_runner(tiny_dir, max_loras=1, max_lora_rank=4)
    with pytest.raises(InvalidArgument) as caught:
        runner.load_adapter("beta", str(adapters["beta"][0]))  # rank 8
    assert caught.value.violations[0].field == "max_lora_rank"
    runner.load_adapter("alpha", str(adapters["alpha"][0]))
    with pytest.raises(AlreadyExists):
        runner.load_adapter("alpha", str(adapters["alpha"][0]))
    with pytest.raises(ResourceExhausted, match="max_loras"):
        runner.load_adapter("other", str(adapters["alpha"][0]))
    assert runner.adapters() == ["alpha"]
    runner.unload_adapter("alpha")
    assert runner.adapters() == []
    with pytest.raises(InvalidArgument) as caught:
        runner.execute(ModelInput([SequenceChunk(0, [1], 0, [0], True, "alpha")]))
    assert caught.value.violations[0].field == "chunks[0].adapter"


def test_adapter_of_another_base_model_or_no_adapter_at_all_is_rejected(
    tiny_dir: pathlib.Path, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    other_base = tmp_path / "wider"
    build_tiny_llama(other_base, shared_data / "tokenizer" / "mistral_7b_v1", hidden_size=96)
    _make_adapter(other_base, tmp_path / "wider-adapter", seed=3)
    runner = make_runner(tiny_dir)
    with pytest.raises(InvalidArgument, match="wrong base model") as caught:
        runner.load_adapter("wider", str(tmp_path / "wider-adapter"))
    assert caught.value.violations[0].field == "path"
    with pytest.raises(InvalidArgument, match="adapter_config.json") as caught:
        runner.load_adapter("missing", str(tmp_path / "nowhere"))
    assert caught.value.violations[0].field == "path"
    assert runner.adapters() == []
