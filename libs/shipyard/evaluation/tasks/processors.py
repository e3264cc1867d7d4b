"""Named doc processors a task YAML can ask for (``process: hellaswag``): per-row preprocessing in Python.

A processor takes the mapped fields of one row and returns the doc the templates see. It raises
``MalformedRow`` (or ``KeyError``/``TypeError``/``ValueError``) for a row it cannot use; the loader skips
and counts that row. Each processor reproduces lm-evaluation-harness's ``process_docs`` for its task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Doc = dict[str, Any]
Processor = Callable[[Mapping[str, Any]], Doc]

LETTERS = ("A", "B", "C", "D")


class MalformedRow(ValueError):
    """A row that cannot become a sample; the message says why (shown in the skipped-rows report)."""


def _hellaswag_clean(text: str) -> str:
    # lm-eval's hellaswag preprocess: WikiHow markup brackets are artifacts, not content.
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


# ActivityNet contexts end in a lowercase fragment (ctx_b) after the last full sentence (ctx_a).
_CTX_SPLIT = re.compile(r"^(?P<a>.*[.!?\"'])\s+(?P<b>[a-z][^.!?]*)$", re.DOTALL)


def _hellaswag_ctx(doc: Mapping[str, Any]) -> str:
    if "ctx_a" in doc and "ctx_b" in doc:
        return f"{doc['ctx_a']} {str(doc['ctx_b']).capitalize()}"
    # Copies without ctx_a/ctx_b (the shared slice) only have ctx = ctx_a + " " + ctx_b; recover the split
    # so the query matches lm-eval's ``ctx_a + " " + ctx_b.capitalize()``.
    ctx = str(doc["ctx"])
    match = _CTX_SPLIT.match(ctx)
    if match is None:
        return ctx[:1].upper() + ctx[1:] if ctx[:1].islower() else ctx
    return f"{match['a']} {match['b'].capitalize()}"


def hellaswag(doc: Mapping[str, Any]) -> Doc:
    """lm-eval's hellaswag ``process_docs``: query = "label: ctx", cleaned endings, integer gold."""
    endings = doc["endings"]
    if not isinstance(endings, list) or len(endings) < 2:
        raise MalformedRow("endings must be a list of at least two strings")
    label = int(doc["label"])
    if not 0 <= label < len(endings):
        raise MalformedRow(f"label {label} is out of range for {len(endings)} endings")
    return {
        **doc,
        "query": _hellaswag_clean(f"{doc['activity_label']}: {_hellaswag_ctx(doc)}"),
        "choices": [_hellaswag_clean(str(e)) for e in endings],
        "gold": label,
    }


def letter_answer(doc: Mapping[str, Any]) -> Doc:
    """MMLU/CMMLU rows: the answer letter (A-D) becomes the gold choice index."""
    answer = str(doc["answer"]).strip()
    if answer not in LETTERS:
        raise MalformedRow(f"answer must be one of A, B, C, D, got {answer!r}")
    return {**doc, "gold": LETTERS.index(answer)}


def _targets(value: Any) -> tuple[list[str], list[int]]:
    # Two layouts exist: the original mc_task.json ({answer: label}) and Hugging Face's
    # ({"choices": [...], "labels": [...]}).
    if isinstance(value, Mapping) and set(value) == {"choices", "labels"}:
        choices, labels = list(value["choices"]), [int(x) for x in value["labels"]]
    elif isinstance(value, Mapping):
        choices, labels = [str(k) for k in value], [int(v) for v in value.values()]
    else:
        raise MalformedRow("targets must be an object mapping answers to 0/1 labels")
    if len(choices) != len(labels) or not choices or 1 not in labels or 0 not in labels:
        raise MalformedRow("targets need at least one true and one false answer")
    return choices, labels


def truthfulqa_mc1(doc: Mapping[str, Any]) -> Doc:
    """Single true answer among ``mc1_targets``; gold is its index (lm-eval: always 0)."""
    choices, labels = _targets(doc["mc1_targets"])
    if labels.count(1) != 1:
        raise MalformedRow("mc1_targets must have exactly one true answer")
    return {**doc, "choices": choices, "gold": labels.index(1)}


def truthfulqa_mc2(doc: Mapping[str, Any]) -> Doc:
    """Several true answers among ``mc2_targets``; gold is the 0/1 label list."""
    choices, labels = _targets(doc["mc2_targets"])
    return {**doc, "choices": choices, "gold": labels}


def mt_bench(doc: Mapping[str, Any]) -> Doc:
    """MT-bench questions: the first turn is the prompt; later turns need the model's earlier answers."""
    turns = doc["turns"]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t for t in turns):
        raise MalformedRow("turns must be a non-empty list of strings")
    return {**doc, "question": turns[0]}


PROCESSORS: Mapping[str, Processor] = {
    "hellaswag": hellaswag,
    "letter_answer": letter_answer,
    "truthfulqa_mc1": truthfulqa_mc1,
    "truthfulqa_mc2": truthfulqa_mc2,
    "mt_bench": mt_bench,
}
