"""Loading finetune datasets: every file type, the bad-record policy, the report, the validation split."""

from __future__ import annotations

import gzip
import json
import pathlib
from typing import Any

import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.finetune.dataset import BadRecordPolicy, load_finetune_data, read_records
from shipyard.finetune.encode import IGNORE_INDEX, EncodedExample
from shipyard.finetune.formats import DataFormat, UnreadableRecord
from shipyard.finetune.preference import EncodedPair
from shipyard.storage import LocalStorage

STORAGE = LocalStorage()
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _write_jsonl(path: pathlib.Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_shared_alpaca_file_loads_with_its_empty_outputs_reported(
    shared_data: pathlib.Path, smollm_tokenizer: Any
) -> None:
    data = load_finetune_data(
        STORAGE, str(shared_data / "sft/alpaca_libre/alpaca_libre.jsonl"), smollm_tokenizer, max_len=1024
    )
    report = data.report
    assert (report.format, report.total, report.bad, report.kept) == (DataFormat.ALPACA, 2000, 33, 1967)
    assert report.reasons == {"empty_content": 33}
    assert report.template == "tokenizer"
    assert len(report.bad_examples) == 5
    first = report.bad_examples[0]
    assert first.field == "output" and '"output": ""' in first.excerpt
    assert len(data.validation) == round(1967 * 0.05) and len(data.train) + len(data.validation) == 1967
    assert all(isinstance(e, EncodedExample) and e.trained_tokens > 0 for e in data.train)


def test_the_shared_sharegpt_array_loads_whole(shared_data: pathlib.Path, smollm_tokenizer: Any) -> None:
    uri = str(shared_data / "sft/sharegpt_dummy/dummy_conversation.json")
    data = load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=1024, validation_fraction=0.1)
    assert (data.report.format, data.report.kept, data.report.bad) == (DataFormat.SHAREGPT, 500, 0)
    assert (len(data.train), len(data.validation)) == (450, 50)


def test_the_shared_hh_file_loads_as_pairs_and_counts_too_long_ones(
    shared_data: pathlib.Path, smollm_tokenizer: Any
) -> None:
    uri = str(shared_data / "sft/hh_rlhf/harmless_base_test_500.jsonl")
    data = load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=256, max_bad_fraction=0.5)
    report = data.report
    assert report.format == DataFormat.PREFERENCE and report.reasons["empty_content"] == 1
    assert report.reasons["too_long"] > 0 and report.kept + report.bad == 500
    assert all(isinstance(p, EncodedPair) and len(p) <= 256 for p in data.train + data.validation)
    truncated = load_finetune_data(
        STORAGE, uri, smollm_tokenizer, max_len=256, truncation="truncate", validation_fraction=0
    )
    assert truncated.report.truncated == report.reasons["too_long"]
    assert truncated.report.kept == 499 and truncated.validation == []


def test_the_split_is_the_same_for_a_seed_and_differs_across_seeds(
    shared_data: pathlib.Path, smollm_tokenizer: Any
) -> None:
    uri = str(shared_data / "sft/self_instruct/seed_tasks.jsonl")

    def validation(seed: int) -> list[list[int]]:
        data = load_finetune_data(
            STORAGE, uri, smollm_tokenizer, max_len=2048, validation_fraction=0.2, seed=seed
        )
        assert data.report.kept == 175
        return [e.input_ids for e in data.validation]  # type: ignore[union-attr]

    assert validation(7) == validation(7)
    assert validation(7) != validation(8)
    assert len(validation(7)) == 35


def test_malformed_lines_and_bad_records_are_skipped_counted_and_located(
    tmp_path: pathlib.Path, smollm_tokenizer: Any
) -> None:
    lines = [json.dumps(GOOD)] * 6 + [
        '{"messages": [{"role": "user", "content": "Hi"}',  # line 7: truncated JSON
        "[1, 2, 3]",
        json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
        "",
        json.dumps({"messages": [{"role": "user", "content": "Hi"}]}),
    ]
    uri = _write_jsonl(tmp_path / "chat.jsonl", lines)
    data = load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=128, max_bad_fraction=0.5)
    report = data.report
    assert (report.total, report.kept, report.bad) == (10, 6, 4)
    assert report.reasons == {
        "malformed_json": 1,
        "not_an_object": 1,
        "not_alternating": 1,
        "no_assistant_turn": 1,
    }
    malformed = report.bad_examples[0]
    assert (
        malformed.index == 6 and "line 7" in malformed.detail and malformed.excerpt.startswith('{"messages"')
    )
    assert [b.index for b in report.bad_examples] == [6, 7, 8, 10]
    assert report.bad_examples[2].field == "messages[1]"


def test_reject_policy_fails_on_the_first_bad_record_naming_it(
    tmp_path: pathlib.Path, smollm_tokenizer: Any
) -> None:
    rows = [{"instruction": "Say hi.", "output": "Hi!"}, {"instruction": "x", "output": 5}, {"oops": 1}]
    uri = _write_jsonl(tmp_path / "a.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(InvalidArgument) as err:
        load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=128, policy=BadRecordPolicy.REJECT)
    violation = err.value.violations[0]
    assert violation.field == "data[1].output" and "wrong_type" in violation.description


def test_too_many_bad_records_fail_the_dataset_with_the_reasons(
    tmp_path: pathlib.Path, smollm_tokenizer: Any
) -> None:
    uri = _write_jsonl(tmp_path / "a.jsonl", [json.dumps(GOOD), "{nope", "{nope", json.dumps(GOOD)])
    with pytest.raises(InvalidArgument) as err:
        load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=128, max_bad_fraction=0.25)
    message = str(err.value)
    assert (
        "2 of 4 records" in message and "malformed_json: 2" in message and "max_bad_fraction=0.25" in message
    )
    assert [v.field for v in err.value.violations] == ["data[1]", "data[2]"]


def test_an_empty_file_or_one_with_nothing_usable_is_refused(
    tmp_path: pathlib.Path, smollm_tokenizer: Any
) -> None:
    empty = _write_jsonl(tmp_path / "empty.jsonl", [""])
    with pytest.raises(InvalidArgument, match="holds no records"):
        load_finetune_data(STORAGE, empty, smollm_tokenizer, max_len=128)
    junk = _write_jsonl(tmp_path / "junk.jsonl", ['{"question": "q"}'])
    with pytest.raises(InvalidArgument, match="no record is usable"):
        load_finetune_data(STORAGE, junk, smollm_tokenizer, max_len=128, max_bad_fraction=1.0)


def test_a_declared_format_holds_for_every_record(tmp_path: pathlib.Path, smollm_tokenizer: Any) -> None:
    uri = _write_jsonl(tmp_path / "mixed.jsonl", [json.dumps(GOOD), json.dumps({"text": "hello world"})])
    data = load_finetune_data(STORAGE, uri, smollm_tokenizer, max_len=128, max_bad_fraction=0.5)
    assert data.report.format == DataFormat.MESSAGES  # detected from the first record, then held
    assert data.report.reasons == {"missing_field": 1}


def test_gzip_json_lines_parquet_and_a_json_array_read_the_same_records(tmp_path: pathlib.Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"text": f"document {i}"} for i in range(5)]
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "d.parquet")
    (tmp_path / "d.json").write_text(json.dumps(records))
    for name in ("d.jsonl.gz", "d.parquet", "d.json"):
        assert list(read_records(STORAGE, str(tmp_path / name))) == list(enumerate(records)), name


def test_unreadable_files_are_invalid_arguments_on_the_data_field(tmp_path: pathlib.Path) -> None:
    (tmp_path / "d.csv").write_text("a,b\n")
    (tmp_path / "d.json").write_text('{"text": "not an array"}')
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "d.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "d.jsonl.gz").write_bytes(b"not gzip")
    for name in ("d.csv", "d.json", "bad.json", "d.parquet", "d.jsonl.gz"):
        with pytest.raises(InvalidArgument) as err:
            list(read_records(STORAGE, str(tmp_path / name)))
        assert err.value.violations[0].field == "data", name
    with pytest.raises(NotFound):
        list(read_records(STORAGE, str(tmp_path / "missing.jsonl")))


def test_bad_utf8_on_one_line_is_one_unreadable_record(tmp_path: pathlib.Path) -> None:
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff\xfe"}\n')
    records = list(read_records(STORAGE, str(tmp_path / "d.jsonl")))
    assert records[0] == (0, {"text": "ok"})
    assert isinstance(records[1][1], UnreadableRecord) and "line 2" in records[1][1].error


def test_plain_text_needs_no_chat_template(tmp_path: pathlib.Path, mistral_tokenizer: Any) -> None:
    uri = _write_jsonl(tmp_path / "t.jsonl", [json.dumps({"text": "word " * 100})] * 3)
    data = load_finetune_data(STORAGE, uri, mistral_tokenizer, max_len=32, validation_fraction=0.34)
    assert data.report.template is None and data.report.format == DataFormat.TEXT
    # One document's chunks stay together: 1 of 3 documents is held out, with all its chunks.
    assert len(data.validation) * 2 == len(data.train)
    assert all(e.labels == e.input_ids for e in data.train)  # type: ignore[union-attr]


def test_a_named_template_on_a_tokenizer_without_one(tmp_path: pathlib.Path, mistral_tokenizer: Any) -> None:
    uri = _write_jsonl(tmp_path / "c.jsonl", [json.dumps(GOOD)] * 2)
    with pytest.raises(InvalidArgument) as err:
        load_finetune_data(STORAGE, uri, mistral_tokenizer, max_len=64)
    assert err.value.violations[0].field == "template"
    data = load_finetune_data(STORAGE, uri, mistral_tokenizer, max_len=64, template="zephyr")
    example = data.train[0]
    assert isinstance(example, EncodedExample)
    trained = [label for label in example.labels if label != IGNORE_INDEX]
    assert mistral_tokenizer.decode(trained) == "Hello!</s>"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fmt": "csv"}, "format"),
        ({"policy": "ignore"}, "policy"),
        ({"max_bad_fraction": 1.5}, "max_bad_fraction"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"template": "nope"}, "template"),
        ({"truncation": "middle"}, "truncation"),
        ({"max_len": 0}, "max_len"),
    ],
)
def test_bad_options_are_refused_before_reading(
    tmp_path: pathlib.Path, smollm_tokenizer: Any, kwargs: dict[str, Any], field: str
) -> None:
    options: dict[str, Any] = {"max_len": 64} | kwargs
    with pytest.raises(InvalidArgument) as err:
        load_finetune_data(STORAGE, str(tmp_path / "never-read.jsonl"), smollm_tokenizer, **options)
    assert err.value.violations[0].field == field


@pytest.mark.integration
def test_a_dataset_on_s3_loads_like_a_local_one(s3_env: Any, smollm_tokenizer: Any) -> None:
    uri = f"{s3_env.root}/sft/chat.jsonl"
    s3_env.storage.write_text(uri, "".join(json.dumps(GOOD) + "\n" for _ in range(4)))
    data = load_finetune_data(s3_env.storage, uri, smollm_tokenizer, max_len=64, validation_fraction=0.25)
    assert (data.report.kept, len(data.train), len(data.validation)) == (4, 3, 1)
