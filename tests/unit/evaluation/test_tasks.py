"""The task registry: built-in tasks load from the shared data, groups expand, bad names are explained."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.errors import InvalidArgument
from shipyard.evaluation.datasets import load_split
from shipyard.evaluation.prompts import build_requests, flatten
from shipyard.evaluation.tasks import TaskRegistry, load_task_file
from shipyard.evaluation.types import Dimension, GenerationRequest, LoglikelihoodRequest, OutputType

FIXTURES = pathlib.Path(__file__).parent / "data"
MMLU_SUBJECTS_IN_SHARED = [
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
]
SHARED_TASKS = [
    "gsm8k",
    "gsm8k_cot",
    "hellaswag",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "humaneval",
    "mt_bench",
]


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    return TaskRegistry.builtin()


@pytest.mark.parametrize("name", SHARED_TASKS + [f"mmlu_{s}" for s in MMLU_SUBJECTS_IN_SHARED])
def test_every_task_loads_its_slice_and_builds_well_formed_requests(
    registry: TaskRegistry, shared_data: pathlib.Path, name: str
) -> None:
    task = registry.get(name)
    root = str(shared_data / "eval")
    split = load_split(task, "test", data_root=root, limit=4)
    pool = load_split(task, "fewshot", data_root=root).samples if "fewshot" in task.splits else ()
    assert len(split.samples) == 4 and split.num_skipped == 0
    planned = build_requests(task, split.samples, fewshot=pool)
    for item in planned:
        assert item.prompt.strip()
        if task.output_type is OutputType.MULTIPLE_CHOICE:
            assert len(item.requests) >= 2
            assert all(isinstance(r, LoglikelihoodRequest) for r in item.requests)
            assert all(r.context == item.prompt and r.continuation.startswith(" ") for r in item.requests)
        else:
            assert len(item.requests) == task.generation.repeats
            assert all(isinstance(r, GenerationRequest) and r.max_tokens > 0 for r in item.requests)
    assert len(flatten(planned)) == sum(len(p.requests) for p in planned)


def test_cmmlu_loads_the_hand_made_fixture_and_skips_its_bad_row(registry: TaskRegistry) -> None:
    task = registry.get("cmmlu_chinese_history")
    split = load_split(task, "test", data_root=str(FIXTURES))
    assert [s.doc["gold"] for s in split.samples] == [2, 1, 1, 0]
    assert split.num_skipped == 1
    assert "answer must be one of A, B, C, D" in str(split.skipped_examples[0])


def test_every_task_is_tagged_with_capability_dimensions(registry: TaskRegistry) -> None:
    assert registry.get("gsm8k").dimensions == (Dimension.MATH, Dimension.REASONING)
    assert registry.get("humaneval").dimensions == (Dimension.CODE,)
    assert Dimension.SAFETY in registry.get("truthfulqa_mc1").dimensions
    assert all(registry.get(n).dimensions for n in registry.names)


def test_a_group_name_expands_to_all_its_subjects(registry: TaskRegistry) -> None:
    specs = registry.resolve(["mmlu", "gsm8k", "mmlu_anatomy"])
    assert len(specs) == 57 + 1  # mmlu_anatomy is already part of the group
    assert specs[0].name == "mmlu_abstract_algebra" and specs[0].group == "mmlu"
    assert len(registry.groups["cmmlu"]) == 67


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("hellaswg", "'hellaswag'"), ("gsm8", "'gsm8k'"), ("mmlu_anatomi", "'mmlu_anatomy'")],
)
def test_unknown_task_names_suggest_the_closest(registry: TaskRegistry, typo: str, suggestion: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        registry.resolve(["gsm8k", typo])
    assert f"unknown task {typo!r}; did you mean {suggestion}" in str(info.value)
    assert info.value.violations[0].field == "tasks"


def test_a_name_far_from_every_task_gets_no_suggestion(registry: TaskRegistry) -> None:
    with pytest.raises(InvalidArgument, match="unknown task 'zzzzzz'$"):
        registry.get("zzzzzz")


def test_a_new_task_is_one_yaml_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "capitals.jsonl").write_text('{"q": "Capital of France?", "a": "Paris"}\n', encoding="utf-8")
    (tmp_path / "capitals.yaml").write_text(
        "name: capitals\ndimensions: [knowledge]\noutput_type: generate_until\n"
        "splits: {test: {path: capitals.jsonl, format: jsonl}}\nfields: {question: q, answer: a}\n"
        'doc_to_text: "Q: {{question}}\\nA:"\ndoc_to_target: "{{answer}}"\n'
        "metrics: [{name: exact_match, ignore_case: true}]\n",
        encoding="utf-8",
    )
    registry = TaskRegistry.from_dirs(tmp_path)
    split = load_split(registry.get("capitals"), data_root=str(tmp_path))
    assert build_requests(registry.get("capitals"), split.samples)[0].prompt == "Q: Capital of France?\nA:"


def test_a_task_file_with_mistakes_names_each_bad_field(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndimensions: [knowledge, vibes]\noutput_type: multiple_choice\n"
        "splits: {test: {path: x.csv, format: csv}}\nfields: {}\ndoc_to_text: x\nmetrics: [{name: acc}]\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidArgument) as info:
        load_task_file(path)
    assert [v.field for v in info.value.violations] == ["bad.yaml.dimensions[1]"]


def test_a_task_file_naming_an_unknown_processor_is_rejected(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndimensions: [knowledge]\noutput_type: multiple_choice\nprocess: nope\n"
        "splits: {test: {path: x.csv, format: csv}}\nfields: {}\ndoc_to_text: x\nmetrics: [{name: acc}]\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidArgument, match="process: unknown processor 'nope'"):
        load_task_file(path)
