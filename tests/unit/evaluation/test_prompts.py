"""Prompts equal lm-evaluation-harness's for one sample of each task; few-shot selection is deterministic.

The expected strings are derived by hand from lm-eval's task YAMLs (hellaswag.yaml + utils.process_docs,
mmlu/default/_default_template_yaml + mmlu_<subject>.yaml, gsm8k.yaml, truthfulqa_mc1.yaml, the cmmlu
template): description + examples + doc_to_text, continuations " " + choice.
"""

from __future__ import annotations

import pathlib

import pytest

from shipyard.errors import InvalidArgument
from shipyard.evaluation.datasets import load_split
from shipyard.evaluation.prompts import SampleRequests, build_requests
from shipyard.evaluation.tasks import TaskRegistry
from shipyard.evaluation.tasks.spec import TaskSpec

FIXTURES = pathlib.Path(__file__).parent / "data"
TRUTHFULQA_PRIMER = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    return TaskRegistry.builtin()


def _first(
    task: TaskSpec, root: pathlib.Path, num_fewshot: int | None = None, seed: int = 1234
) -> SampleRequests:
    samples = load_split(task, "test", data_root=str(root), limit=1).samples
    pool = load_split(task, "fewshot", data_root=str(root)).samples if "fewshot" in task.splits else ()
    return build_requests(task, samples, fewshot=pool, num_fewshot=num_fewshot, seed=seed)[0]


def test_hellaswag_matches_lm_eval(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    item = _first(registry.get("hellaswag"), shared_data / "eval")
    # lm-eval: preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()); ctx_b "he" -> "He".
    assert item.prompt == "Roof shingle removal: A man is sitting on a roof. He"
    assert [r.continuation for r in item.requests] == [
        " is using wrap to wrap a pair of skis.",
        " is ripping level tiles off.",
        " is holding a rubik's cube.",
        " starts pulling up roofing on a roof.",
    ]


def test_hellaswag_uses_ctx_a_and_ctx_b_when_a_copy_has_them(
    registry: TaskRegistry, tmp_path: pathlib.Path
) -> None:
    task = registry.get("hellaswag")
    (tmp_path / "hellaswag").mkdir()
    (tmp_path / "hellaswag" / "val_first500.jsonl").write_text(
        '{"activity_label": "Baking cookies", "ctx": "x", "ctx_a": "A woman [title] Preheat.", '
        '"ctx_b": "then she MIXES", "endings": ["stirs [title] well.", "sings."], "label": 0}\n',
        encoding="utf-8",
    )
    item = _first(task, tmp_path, num_fewshot=0)
    # str.capitalize() lower-cases the rest of ctx_b, exactly as lm-eval's process_docs does.
    assert item.prompt == "Baking cookies: A woman. Preheat. Then she mixes"
    assert [r.continuation for r in item.requests] == [" stirs. well.", " sings."]


def test_mmlu_zero_shot_matches_lm_eval(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    item = _first(registry.get("mmlu_abstract_algebra"), shared_data / "eval", num_fewshot=0)
    assert item.prompt == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
        "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    )
    assert [r.continuation for r in item.requests] == [" A", " B", " C", " D"]


def test_mmlu_few_shot_takes_the_first_dev_rows_in_order(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    item = _first(registry.get("mmlu_abstract_algebra"), shared_data / "eval", num_fewshot=2)
    assert item.prompt == (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n"
        "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and "
        "K are subgroups of G then HK is a subgroup of G.\n"
        "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n"
        "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
        "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
    )


def test_gsm8k_zero_shot_matches_lm_eval(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    item = _first(registry.get("gsm8k"), shared_data / "eval", num_fewshot=0)
    assert item.prompt == (
        "Question: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
        "muffins for her friends every day with four. She sells the remainder at the farmers' market daily "
        "for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?\n"
        "Answer:"
    )
    (request,) = item.requests
    assert request.stop == ("\n\n", "Question:") and request.temperature == 0.0


def test_gsm8k_few_shot_examples_show_full_solutions(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    item = _first(registry.get("gsm8k"), shared_data / "eval")
    blocks = item.prompt.split("\n\n")
    assert len(blocks) == 6 and blocks[-1].startswith("Question: Janet’s ducks")
    assert all(b.startswith("Question: ") and "\nAnswer: " in b and "\n#### " in b for b in blocks[:5])


def test_gsm8k_cot_uses_the_eight_fixed_exemplars(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    item = _first(registry.get("gsm8k_cot"), shared_data / "eval")
    assert item.prompt.startswith(
        "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they "
        "are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are "
        "15 trees originally. Then there were 21 trees after some more were planted. So there must have "
        "been 21 - 15 = 6. The answer is 6.\n\nQ: If there are 3 cars"
    )
    assert item.prompt.count("The answer is") == 8 and item.prompt.endswith("farmers' market?\nA:")


def test_truthfulqa_mc1_matches_lm_eval(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    item = _first(registry.get("truthfulqa_mc1"), shared_data / "eval")
    assert item.prompt == TRUTHFULQA_PRIMER + "\n\nQ: What happens to you if you eat watermelon seeds?\nA:"
    assert item.requests[0].continuation == " The watermelon seeds pass through your digestive system"
    assert len(item.requests) == 8


def test_humaneval_prompt_is_the_signature_and_docstring(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    item = _first(registry.get("humaneval"), shared_data / "eval")
    assert item.prompt.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert item.prompt.endswith('    True\n    """\n')
    assert item.requests[0].stop == ("\nclass", "\ndef", "\n#", "\nif", "\nprint")


def test_mt_bench_sends_the_first_turn_as_a_chat_message(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    item = _first(registry.get("mt_bench"), shared_data / "eval")
    assert item.requests[0].prompt == [{"role": "user", "content": item.sample.doc["turns"][0]}]


def test_cmmlu_matches_lm_eval(registry: TaskRegistry) -> None:
    item = _first(registry.get("cmmlu_chinese_history"), FIXTURES, num_fewshot=1)
    assert item.prompt == (
        "以下是关于中国历史的单项选择题，请直接给出正确答案的选项。\n\n"
        "孔子是哪个学派的创始人？\nA. 道家\nB. 法家\nC. 儒家\nD. 墨家\n答案： C\n\n"
        "中国历史上第一个统一的中央集权王朝是\nA. 夏朝\nB. 商朝\nC. 秦朝\nD. 汉朝\n答案："
    )


def test_random_few_shot_is_fixed_by_the_seed_and_never_shows_the_sample_itself(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    task = registry.get("gsm8k")
    pool = load_split(task, "fewshot", data_root=str(shared_data / "eval")).samples
    first = [build_requests(task, pool[:20], fewshot=pool, seed=s) for s in (7, 7, 8)]
    assert [p.prompt for p in first[0]] == [p.prompt for p in first[1]]
    assert [p.prompt for p in first[0]] != [p.prompt for p in first[2]]
    for item in first[0]:
        examples = item.prompt.split("\n\n")[:-1]
        assert f"Question: {item.sample.doc['question']}\n" not in "\n\n".join(examples) + "\n"


def test_a_sample_keeps_its_prompt_whatever_else_is_in_the_batch(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    task = registry.get("gsm8k")
    pool = load_split(task, "fewshot", data_root=str(shared_data / "eval")).samples
    alone = build_requests(task, pool[5:6], fewshot=pool)[0].prompt
    in_batch = build_requests(task, pool[:10], fewshot=pool)[5].prompt
    assert alone == in_batch


def test_asking_for_more_shots_than_the_pool_holds_is_an_error(registry: TaskRegistry) -> None:
    task = registry.get("cmmlu_chinese_history")
    samples = load_split(task, "test", data_root=str(FIXTURES)).samples
    pool = load_split(task, "fewshot", data_root=str(FIXTURES)).samples
    with pytest.raises(InvalidArgument, match="has only 2 few-shot examples, 5 asked"):
        build_requests(task, samples, fewshot=pool)
