"""Loading splits: formats, URIs, limits, and malformed rows that are reported and skipped, never fatal."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.errors import InvalidArgument, NotFound
from shipyard.evaluation.datasets import load_split
from shipyard.evaluation.tasks import TaskRegistry


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    return TaskRegistry.builtin()


def test_malformed_jsonl_rows_are_skipped_counted_and_explained(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "hellaswag").mkdir()
    good = '{"activity_label": "A", "ctx": "x. he", "endings": ["a", "b", "c", "d"], "label": 1}'
    lines = [
        good,
        "{not json",
        '{"activity_label": "A", "ctx": "x. he", "label": 1}',  # no endings
        '{"activity_label": "A", "ctx": "x. he", "endings": ["a", "b"], "label": 7}',
        "[1, 2]",
        "",
        good,
    ]
    (tmp_path / "hellaswag" / "val_first500.jsonl").write_text("\n".join(lines), encoding="utf-8")
    split = load_split(registry.get("hellaswag"), data_root=str(tmp_path))
    assert [s.id for s in split.samples] == ["hellaswag/test/0", "hellaswag/test/6"]
    assert split.num_skipped == 4
    reasons = [str(r) for r in split.skipped_examples]
    assert reasons[0].startswith("row 1: not valid JSON")
    assert reasons[1] == "row 2: missing field 'endings' (from 'endings')"
    assert reasons[2] == "row 3: label 7 is out of range for 2 endings"
    assert reasons[3] == "row 4: expected an object, found list"


def test_csv_rows_with_the_wrong_column_count_are_skipped(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "mmlu" / "test").mkdir(parents=True)
    (tmp_path / "mmlu" / "test" / "anatomy_test.csv").write_text(
        'What is 1+1?,1,2,3,4,B\ntoo,few,columns\n"Quoted, with comma",a,b,c,d,A\n', encoding="utf-8"
    )
    split = load_split(registry.get("mmlu_anatomy"), data_root=str(tmp_path))
    assert [s.doc["question"] for s in split.samples] == ["What is 1+1?", "Quoted, with comma"]
    assert [str(r) for r in split.skipped_examples] == ["row 1: expected 6 columns, found 3"]


def test_only_the_first_few_reasons_are_kept_but_all_are_counted(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test_first200.jsonl").write_text('{"question": "q"}\n' * 12, encoding="utf-8")
    split = load_split(registry.get("gsm8k"), data_root=str(tmp_path))
    assert split.samples == () and split.num_skipped == 12 and len(split.skipped_examples) == 5


def test_gzip_json_lines_load_through_a_file_uri(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    split = load_split(registry.get("humaneval"), data_root=(shared_data / "eval").as_uri(), limit=2)
    assert [s.doc["task_id"] for s in split.samples] == ["HumanEval/0", "HumanEval/1"]
    assert split.uri.startswith("file:///") and split.uri.endswith(".jsonl.gz")


def test_a_json_array_file_loads_every_record(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    split = load_split(registry.get("truthfulqa_mc2"), data_root=str(shared_data / "eval"))
    assert len(split.samples) == 200 and split.num_skipped == 0
    assert split.samples[0].doc["gold"][:7] == [1, 1, 1, 1, 1, 1, 0]


def test_limit_counts_usable_samples(registry: TaskRegistry, tmp_path: pathlib.Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    rows = ['{"question": "q1", "answer": "#### 1"}', "oops", '{"question": "q2", "answer": "#### 2"}']
    (tmp_path / "gsm8k" / "test_first200.jsonl").write_text("\n".join(rows), encoding="utf-8")
    split = load_split(registry.get("gsm8k"), data_root=str(tmp_path), limit=2)
    assert [s.doc["question"] for s in split.samples] == ["q1", "q2"] and split.num_skipped == 1


def test_a_missing_file_is_not_found_and_names_it(registry: TaskRegistry, tmp_path: pathlib.Path) -> None:
    with pytest.raises(NotFound, match="gsm8k/test_first200.jsonl"):
        load_split(registry.get("gsm8k"), data_root=str(tmp_path))


def test_a_split_the_task_lacks_is_an_invalid_argument(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(InvalidArgument, match="task 'humaneval' has no 'fewshot' split"):
        load_split(registry.get("humaneval"), "fewshot", data_root=str(tmp_path))


def test_a_broken_json_array_file_is_an_invalid_argument(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "truthfulqa").mkdir()
    (tmp_path / "truthfulqa" / "mc_task_first200.json").write_text("[{", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="mc_task_first200.json is not valid JSON"):
        load_split(registry.get("truthfulqa_mc1"), data_root=str(tmp_path))
