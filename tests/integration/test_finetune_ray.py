"""Finetuning on the Ray training loop (2 CPU workers, gloo) with a tiny Llama base and real data.

What a user sees is checked: eval loss falls, the adapter loads with stock peft and the merged model with
stock transformers (same logits), an interrupted job resumes on exactly the same curve, QLoRA trains on
CPU, DPO widens the chosen-vs-rejected reward margin, and full finetuning under DeepSpeed ZeRO-1/2
follows the DDP run step by step to the same model.
"""

from __future__ import annotations

import json
import pathlib
import threading

import pytest
import torch

from shipyard.errors import Cancelled
from shipyard.storage import from_local_path
from shipyard.storage.local import LocalStorage
from shipyard.training.metrics import MetricsLog
from shipyard.training.spec import TrainingJob
from shipyard.training.trainer import TrainingProgress, TrainingResult, run_training
from tests.fixtures.ray import needs_loopback_netns
from tests.integration.training_fixtures import build_tiny_base, finetune_job, write_alpaca_subset

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow, needs_loopback_netns]

STEPS = 12
LORA = {"lora": {"r": 8, "alpha": 16, "dropout": 0.1}}


@pytest.fixture(scope="module")
def inputs(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("inputs")
    return build_tiny_base(shared_data, root), write_alpaca_subset(shared_data, root / "alpaca.jsonl", 240)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return from_local_path(tmp_path_factory.mktemp("store"))


def _lora_job(name: str, inputs: tuple[str, str], **finetune: object):  # type: ignore[no-untyped-def]
    return finetune_job(
        name,
        *inputs,
        steps=STEPS,
        workers=2,
        finetune={**LORA, **finetune},
        checkpoint={"everySteps": 4},
        learningRate=2e-2,
    )


@pytest.fixture(scope="module")
def reference(
    inputs: tuple[str, str], store_root: str, ray_cluster: None
) -> tuple[TrainingResult, list[TrainingProgress]]:
    seen: list[TrainingProgress] = []
    result = run_training(
        _lora_job("lora-ref", inputs, mergeAdapter=True), storage_root=store_root, on_progress=seen.append
    )
    return result, seen


def _records(result: TrainingResult) -> list[dict]:
    return MetricsLog.read(LocalStorage(), result.metrics_uri)


def test_lora_lowers_the_eval_loss_and_shows_it_in_progress(
    reference: tuple[TrainingResult, list[TrainingProgress]],
) -> None:
    result, seen = reference
    rows = _records(result)
    evals = [r["extras"]["eval_loss"] for r in rows if "eval_loss" in r["extras"]]
    assert [r["step"] for r in rows if "eval_loss" in r["extras"]] == [4, 8, 12]
    assert evals[-1] < evals[0] - 0.3, evals
    assert result.final_metrics["eval_loss"] == pytest.approx(evals[-1])
    assert "eval_loss" in seen[-1].metrics and "eval_loss" in seen[-2].metrics  # carried between evals
    assert result.data_report["format"] == "alpaca" and result.data_report["kept"] > 200


def test_the_adapter_loads_with_peft_and_the_merged_model_matches_it(
    reference: tuple[TrainingResult, list[TrainingProgress]], inputs: tuple[str, str]
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result, _ = reference
    adapter = pathlib.Path(result.output_model_uri.removeprefix("file://"))
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json"} <= {
        p.name for p in adapter.iterdir()
    }
    assert json.loads((adapter / "training.json").read_text())["data"]["kept"] == result.data_report["kept"]
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(inputs[0]), adapter).eval()
    merged_dir = pathlib.Path(str(result.merged_model_uri).removeprefix("file://"))
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    ids = tokenizer("[INST] Name three primary colors. [/INST]", return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(
            merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=1e-4, rtol=1e-4
        )
    assert result.merged_registered and result.merged_registered.startswith("model:lora-ref-merged@")


def test_an_interrupted_finetune_resumes_on_the_same_curve(
    reference: tuple[TrainingResult, list[TrainingProgress]], inputs: tuple[str, str], store_root: str
) -> None:
    cancel = threading.Event()

    def stop_at_5(p: TrainingProgress) -> None:
        if p.step >= 5:
            cancel.set()

    job = _lora_job("lora-resume", inputs, mergeAdapter=True)
    with pytest.raises(Cancelled):
        run_training(job, storage_root=store_root, on_progress=stop_at_5, cancel=cancel)
    resumed = run_training(job, storage_root=store_root)
    expected = [r["loss"] for r in _records(reference[0])]
    got = [r["loss"] for r in _records(resumed)]
    assert len(got) == STEPS
    assert got == pytest.approx(expected, rel=1e-4)
    assert resumed.final_metrics["eval_loss"] == pytest.approx(
        reference[0].final_metrics["eval_loss"], rel=1e-4
    )


def test_qlora_trains_on_cpu(inputs: tuple[str, str], store_root: str, ray_cluster: None) -> None:
    job = finetune_job(
        "qlora", *inputs, steps=6, workers=1, finetune={"method": "qlora", **LORA}, learningRate=2e-2
    )
    result = run_training(job, storage_root=store_root)
    losses = [r["loss"] for r in _records(result)]
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    adapter = pathlib.Path(result.output_model_uri.removeprefix("file://"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and (adapter / "adapter_model.safetensors").exists()
    assert "eval_loss" in result.final_metrics


def test_dpo_widens_the_reward_margin(
    shared_data: pathlib.Path,
    inputs: tuple[str, str],
    store_root: str,
    tmp_path: pathlib.Path,
    ray_cluster: None,
) -> None:
    lines = (shared_data / "sft/hh_rlhf/harmless_base_test_500.jsonl").read_text().splitlines()[:32]
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    job = finetune_job(
        "dpo",
        inputs[0],
        str(tmp_path / "pairs.jsonl"),
        steps=16,  # ~8 epochs of the ~20 training pairs: the margin grows on pairs it has seen
        workers=1,
        finetune={
            "method": "dpo",
            "dataFormat": "preference",
            "maxSeqLen": 256,
            "badRecords": {"maxFraction": 0.5},  # long hh-rlhf dialogues are skipped, not fatal
            "dpo": {"beta": 0.1},
            **LORA,
        },
        learningRate=2e-2,
    )
    result = run_training(job, storage_root=store_root)
    rows = _records(result)
    margins = [r["extras"]["reward_margin"] for r in rows]
    assert abs(margins[0]) < 0.05  # the policy starts as the reference
    assert sum(margins[-3:]) / 3 > 0.2, margins
    assert result.final_metrics["reward_accuracy"] > 0.5 and "eval_reward_margin" in result.final_metrics


FULL_STEPS = 6


def _full_job(name: str, inputs: tuple[str, str], strategy: dict[str, object] | None = None) -> TrainingJob:
    return finetune_job(
        name,
        *inputs,
        steps=FULL_STEPS,
        workers=2,
        finetune={"method": "full"},
        checkpoint={"everySteps": FULL_STEPS},
        strategy=strategy,
        learningRate=1e-3,
    )


@pytest.fixture(scope="module")
def full_ddp(inputs: tuple[str, str], store_root: str, ray_cluster: None) -> TrainingResult:
    return run_training(_full_job("full-ddp", inputs), storage_root=store_root)


@pytest.mark.parametrize("stage", [1, 2])
def test_full_finetuning_under_deepspeed_zero_follows_ddp_to_the_same_model(
    stage: int, full_ddp: TrainingResult, inputs: tuple[str, str], store_root: str
) -> None:
    from transformers import AutoModelForCausalLM

    strategy = {"type": "deepspeed", "zeroStage": stage}
    result = run_training(_full_job(f"full-zero{stage}", inputs, strategy), storage_root=store_root)
    expected = [r["loss"] for r in _records(full_ddp)]
    got = [r["loss"] for r in _records(result)]
    assert len(got) == FULL_STEPS and got[-1] < got[0], got
    # ZeRO partitions the optimizer state (and, at stage 2, the gradients) over the 2 workers but makes
    # the same update as DDP: the same curve, the same eval loss, the same weights.
    assert got == pytest.approx(expected, rel=1e-3)
    assert result.final_metrics["eval_loss"] == pytest.approx(full_ddp.final_metrics["eval_loss"], rel=1e-3)
    out = pathlib.Path(result.output_model_uri.removeprefix("file://"))
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    reference = pathlib.Path(full_ddp.output_model_uri.removeprefix("file://"))
    ids = torch.tensor([[1, 415, 2936, 9060, 285, 1142, 28723]])
    with torch.no_grad():
        zero = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)(input_ids=ids).logits
        ddp = AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)(input_ids=ids).logits
    torch.testing.assert_close(zero, ddp, atol=1e-3, rtol=1e-3)
