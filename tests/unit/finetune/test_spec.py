"""The finetune section of a TrainingJob: defaults, cross-field rules with field paths, wire round trip."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.errors import InvalidArgument
from shipyard.finetune.spec import FinetuneMethod
from shipyard.training.spec import JobType, parse_training_spec
from shipyard.wire.training import spec_from_pb, spec_to_pb


def _spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "finetune",
        "model": "smollm2-135m-instruct",
        "data": {"dataset": "/data/alpaca.jsonl"},
        "hyperparameters": {"steps": 10, "globalBatchSize": 8, "microBatchSize": 4},
    }
    spec.update(over)
    return spec


def _violation(spec: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as info:
        parse_training_spec(spec)
    (v,) = info.value.violations
    return v.field, v.description


def test_a_finetune_without_a_finetune_section_gets_lora_defaults() -> None:
    spec = parse_training_spec(_spec())
    assert spec.type is JobType.FINETUNE
    assert spec.finetune is not None and spec.finetune.method is FinetuneMethod.LORA
    assert spec.finetune.lora.target_modules is None and spec.finetune.train_on == "assistant"


def test_a_preset_is_not_a_base_model() -> None:
    field, why = _violation(_spec(model="llama-tiny"))
    assert field == "spec.model" and "not a base model" in why


@pytest.mark.parametrize(
    ("over", "field", "words"),
    [
        ({"finetune": {"method": "dpo", "dataFormat": "alpaca"}}, "spec.finetune.dataFormat", "preference"),
        ({"finetune": {"method": "lora", "dataFormat": "preference"}}, "spec.finetune.dataFormat", "dpo"),
        ({"finetune": {"method": "dpo", "packing": True}}, "spec.finetune.packing", "packing"),
        ({"finetune": {"lora": {"targetModules": []}}}, "spec.finetune.lora.targetModules", "at least one"),
        ({"strategy": {"type": "deepspeed", "zeroStage": 2}}, "spec.strategy.type", "full only"),
        ({"data": {"dataset": "/d.jsonl", "seqLen": 64}}, "spec.data.seqLen", "maxSeqLen"),
        ({"modelOverrides": {"numHiddenLayers": 2}}, "spec.modelOverrides", "architecture"),
    ],
)
def test_cross_field_rules_name_the_field(over: dict[str, Any], field: str, words: str) -> None:
    got_field, why = _violation(_spec(**over))
    assert got_field == field and words in why


def test_full_finetuning_may_use_deepspeed_zero() -> None:
    spec = parse_training_spec(
        _spec(finetune={"method": "full"}, strategy={"type": "deepspeed", "zeroStage": 2})
    )
    assert spec.strategy.zero_stage == 2


def test_a_pretraining_job_rejects_a_finetune_section() -> None:
    field, why = _violation(_spec(type="pretrain", model="llama-tiny", finetune={"method": "lora"}))
    assert field == "spec.finetune" and "type: finetune" in why


def test_bad_enum_values_name_the_nested_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_training_spec(_spec(finetune={"method": "prefix-tuning"}))
    assert [v.field for v in info.value.violations] == ["spec.finetune.method"]


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_a_parsed_spec_parses_again_from_its_dump(method: str) -> None:
    """Workers and the job store re-validate the dumped spec: every valid spec must survive that."""
    spec = parse_training_spec(_spec(finetune={"method": method}))
    assert parse_training_spec(spec.model_dump(mode="json")) == spec


def test_the_finetune_section_survives_the_grpc_round_trip() -> None:
    spec = parse_training_spec(
        _spec(
            finetune={
                "method": "qlora",
                "lora": {"r": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]},
                "chatTemplate": "chatml",
                "packing": True,
                "mergeAdapter": True,
                "badRecords": {"policy": "reject"},
            }
        )
    )
    back = parse_training_spec(spec_from_pb(spec_to_pb(spec.model_dump(mode="json"))))
    assert back == spec


@pytest.mark.parametrize(
    ("finetune", "on"),
    [
        ({"method": "qlora"}, True),
        ({"method": "lora"}, False),
        ({"method": "full"}, False),
        ({"method": "qlora", "gradientCheckpointing": False}, False),
        ({"method": "lora", "gradientCheckpointing": True}, True),
    ],
)
def test_gradient_checkpointing_defaults_on_for_qlora_only(finetune: dict[str, Any], on: bool) -> None:
    ft = parse_training_spec(_spec(finetune=finetune)).finetune
    assert ft is not None and ft.checkpoints_activations is on


def test_gradient_checkpointing_must_be_a_boolean() -> None:
    field, words = _violation(_spec(finetune={"gradientCheckpointing": "sometimes"}))
    assert field == "spec.finetune.gradientCheckpointing" and "bool" in words
