"""The driver's half of a finetune, before any worker starts: base model, tokenizer, encoded data.

``prepare_finetune`` resolves the base model into an HF directory in storage (``base_model.py``),
checks ``lora.targetModules`` against its architecture, reads and encodes the dataset once
(``load_finetune_data``: format detection, bad-record policy, chat template, assistant-only labels,
validation split), packs the training rows when asked, and writes them next to the checkpoints as JSON
lines for the workers (``loader.py``). Bad data fails here with the data report's reasons.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

from shipyard.config import StorageConfig
from shipyard.errors import InvalidArgument
from shipyard.finetune.base_model import resolve_base_model
from shipyard.finetune.loader import Row, write_rows
from shipyard.finetune.methods import check_target_modules, load_config
from shipyard.finetune.spec import FinetuneMethod, FinetuneSpec
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.training.spec import TrainingJobSpec

__all__ = ["PreparedFinetune", "prepare_finetune"]


@dataclass(frozen=True)
class PreparedFinetune:
    base_model_uri: str
    base_lineage: str
    train_uri: str
    validation_uri: str
    num_train: int
    num_validation: int
    train_tokens: int  # real tokens of the training rows (one epoch)
    pad_id: int
    tokenizer_dir: pathlib.Path
    report: dict[str, Any]  # the DataReport as plain data
    config: Any  # the base model's PretrainedConfig


def prepare_finetune(
    spec: TrainingJobSpec,
    *,
    storage: Storage,
    storage_root: str,
    storage_config: StorageConfig | None,
    work_uri: str,
    tmp: pathlib.Path,
) -> PreparedFinetune:
    from transformers import AutoTokenizer

    ft = spec.finetune
    assert ft is not None  # the spec validator fills it for type: finetune
    base = resolve_base_model(
        spec.model, storage=storage, storage_root=storage_root, storage_config=storage_config, cache_dir=tmp
    )
    config = load_config(base.local)
    if ft.uses_lora:
        check_target_modules(config, ft)
    tokenizer = AutoTokenizer.from_pretrained(base.local.directory, **base.local.from_pretrained_kwargs())
    tokenizer_dir = tmp / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    data = _load(storage, spec, ft, tokenizer)
    train = _rows(data.train, ft)
    validation = _rows(data.validation, ft, pack=False)
    if len(train) < spec.hyperparameters.global_batch_size:
        raise InvalidArgument.field(
            "spec.hyperparameters.globalBatchSize",
            f"{spec.hyperparameters.global_batch_size} is more than the {len(train)} training rows "
            f"left after the validation split{' and packing' if ft.packing else ''}",
        )
    train_uri = uris.join(work_uri, "data", "train.jsonl")
    validation_uri = uris.join(work_uri, "data", "validation.jsonl")
    write_rows(storage, train_uri, train)
    write_rows(storage, validation_uri, validation)
    return PreparedFinetune(
        base_model_uri=base.uri,
        base_lineage=base.lineage,
        train_uri=train_uri,
        validation_uri=validation_uri,
        num_train=len(train),
        num_validation=len(validation),
        train_tokens=sum(len(v) for r in train for k, v in r.items() if k.endswith("input_ids")),
        pad_id=int(pad_id if pad_id is not None else 0),
        tokenizer_dir=tokenizer_dir,
        report=_report_dict(data.report),
        config=config,
    )


def _load(storage: Storage, spec: TrainingJobSpec, ft: FinetuneSpec, tokenizer: Any) -> Any:
    from shipyard.finetune.dataset import BadRecordPolicy, load_finetune_data
    from shipyard.finetune.formats import DataFormat

    return load_finetune_data(
        storage,
        spec.data.dataset,
        tokenizer,
        fmt=DataFormat(ft.data_format),
        template=ft.chat_template,
        max_len=ft.max_seq_len,
        policy=BadRecordPolicy(ft.bad_records.policy),
        max_bad_fraction=ft.bad_records.max_fraction,
        validation_fraction=ft.validation_fraction,
        seed=spec.hyperparameters.seed,
        train_on=ft.train_on,
        field_name="spec.data.dataset",
    )


def _rows(examples: list[Any], ft: FinetuneSpec, *, pack: bool = True) -> list[Row]:
    if ft.method is FinetuneMethod.DPO:
        return [_pair_row(p) for p in examples]
    if pack and ft.packing:
        from shipyard.finetune.packing import pack as pack_rows

        return [
            {"input_ids": list(r.input_ids), "labels": list(r.labels), "position_ids": list(r.position_ids)}
            for r in pack_rows(examples, ft.max_seq_len)
        ]
    return [{"input_ids": list(e.input_ids), "labels": list(e.labels)} for e in examples]


def _pair_row(pair: Any) -> Row:
    return {
        "chosen_input_ids": list(pair.chosen.input_ids),
        "chosen_labels": list(pair.chosen.labels),
        "rejected_input_ids": list(pair.rejected.input_ids),
        "rejected_labels": list(pair.rejected.labels),
    }


def _report_dict(report: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return dataclasses.asdict(report)
    return dict(report.model_dump(mode="json")) if hasattr(report, "model_dump") else {}
