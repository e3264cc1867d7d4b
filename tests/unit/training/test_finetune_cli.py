"""``shipyard finetune``'s one-liner builds the same validated TrainingJob a manifest would."""

from __future__ import annotations

import pytest
from rich.console import Console

from shipyard.cli.finetune import data_report_table, one_liner_job
from shipyard.errors import InvalidArgument
from shipyard.finetune.spec import FinetuneMethod


def test_the_one_liner_is_a_finetune_job_with_its_options() -> None:
    job = one_liner_job(
        model="smollm2-135m-instruct",
        data="/data/alpaca.jsonl",
        method="qlora",
        steps=7,
        target_modules="q_proj, v_proj",
        merge=True,
    )
    assert job.metadata.name == "smollm2-135m-instruct-qlora"
    ft = job.spec.finetune
    assert ft is not None and ft.method is FinetuneMethod.QLORA and ft.merge_adapter
    assert ft.lora.target_modules == ["q_proj", "v_proj"] and job.spec.hyperparameters.steps == 7


def test_dpo_one_liners_read_preference_data() -> None:
    job = one_liner_job(model="/models/base", data="/data/pairs.jsonl", method="dpo")
    assert job.spec.finetune is not None and job.spec.finetune.data_format == "preference"


def test_missing_data_and_a_preset_model_are_reported_by_field() -> None:
    with pytest.raises(InvalidArgument, match="--data"):
        one_liner_job(model="smollm2-135m-instruct", data=None, method="lora")
    with pytest.raises(InvalidArgument) as info:
        one_liner_job(model="llama-tiny", data="/d.jsonl", method="lora")
    assert info.value.violations[0].field == "spec.model"


def test_the_data_report_table_shows_counts_reasons_and_examples() -> None:
    report = {
        "format": "alpaca",
        "total": 300,
        "kept": 280,
        "bad": 20,
        "truncated": 0,
        "reasons": {"too_long": 18, "missing_field": 2},
        "bad_examples": [{"index": 7, "reason": "missing_field", "detail": "no 'output'"}],
    }
    console = Console(width=160, record=True)
    console.print(data_report_table(report))
    text = console.export_text()
    assert "280" in text and "too_long=18" in text and "[7] missing_field: no 'output'" in text
