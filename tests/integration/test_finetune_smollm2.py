"""LoRA finetuning of the real pretrained SmolLM2-135M-Instruct on a few hundred Alpaca instructions.

Kept to a few minutes on 2 cores: 300 records, maxSeqLen 128, LoRA on q/v only, 16 steps of 4. What a user
would notice: the eval loss on held-out Alpaca answers falls, and for held-out prompts the model moves
toward Alpaca's answers (their likelihood rises) and its greedy answer changes.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import torch

from shipyard.finetune.loader import eval_batches, read_rows
from shipyard.models.local import SMOLLM2
from shipyard.storage import from_local_path, join
from shipyard.storage.local import LocalStorage
from shipyard.training.trainer import run_training
from tests.fixtures.ray import needs_loopback_netns
from tests.integration.training_fixtures import finetune_job, write_alpaca_subset

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow, needs_loopback_netns]

HELD_OUT = range(1900, 1910)  # alpaca records far from the 300 trained on


def _eval_loss(model: Any, rows: list[dict[str, list[int]]], pad_id: int) -> float:
    """The eval loss as the workers compute it: batches of 4, mean over rows."""
    total = 0.0
    with torch.no_grad():
        for batch in eval_batches(rows, pad_id=pad_id, rank=0, world_size=1, batch_size=4):
            total += float(model(**batch).loss) * batch["input_ids"].shape[0]
    return total / len(rows)


def _answer_nll(model: Any, tokenizer: Any, record: dict[str, str]) -> float:
    """Mean negative log-likelihood of the reference answer's tokens after the chat prompt."""
    prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    messages = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    answer = tokenizer(record["output"], add_special_tokens=False).input_ids[:48]
    ids = torch.tensor([head + answer])
    labels = torch.tensor([[-100] * len(head) + answer])
    with torch.no_grad():
        return float(model(input_ids=ids, labels=labels).loss)


def _greedy(model: Any, tokenizer: Any, prompt: str) -> str:
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False)
    return str(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


def test_lora_on_alpaca_lowers_eval_loss_and_moves_answers_toward_alpaca(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, ray_cluster: None
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = write_alpaca_subset(shared_data, tmp_path / "alpaca.jsonl", 300)
    root = from_local_path(tmp_path / "store")
    job = finetune_job(
        "smollm2-alpaca",
        SMOLLM2,
        data,
        steps=16,
        workers=1,
        finetune={
            "chatTemplate": None,  # SmolLM2's own chatml template
            "maxSeqLen": 128,
            "badRecords": {"maxFraction": 0.7},  # alpaca answers longer than 128 tokens are skipped
            "validationFraction": 0.1,
            "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targetModules": ["q_proj", "v_proj"]},
        },
        checkpoint={"everySteps": 16},
        globalBatchSize=4,
        microBatchSize=4,
        learningRate=2e-3,
    )
    job.spec.resources.cpus_per_worker = 2
    result = run_training(job, storage_root=root)

    base_dir = pathlib.Path(join(root, "cache", "base-models", SMOLLM2).removeprefix("file://"))
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    validation = read_rows(
        LocalStorage(), join(root, "checkpoints", job.metadata.name, "data", "validation.jsonl")
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    base_eval = _eval_loss(base, validation, pad)
    records = [
        json.loads(line)
        for line in (shared_data / "sft/alpaca_libre/alpaca_libre.jsonl").read_text().splitlines()
    ]
    held_out = [records[i] for i in HELD_OUT]
    nll_before = [_answer_nll(base, tokenizer, r) for r in held_out]
    answer_before = _greedy(base, tokenizer, held_out[0]["instruction"])

    tuned = PeftModel.from_pretrained(base, result.output_model_uri.removeprefix("file://")).eval()
    assert result.final_metrics["eval_loss"] < base_eval - 0.05, (base_eval, result.final_metrics)
    nll_after = [_answer_nll(tuned, tokenizer, r) for r in held_out]
    assert sum(nll_after) < sum(nll_before), (nll_before, nll_after)
    assert _greedy(tuned, tokenizer, held_out[0]["instruction"]) != answer_before
