"""The declarative task format: what a task YAML file under ``tasks/`` may say, validated by pydantic.

Field names follow lm-evaluation-harness where a counterpart exists (``doc_to_text``, ``doc_to_target``,
``target_delimiter``, ``fewshot_delimiter``, ``num_fewshot``), so a task can be ported by reading its lm-eval
YAML. Templates are Jinja2 over the sample's mapped fields, rendered like lm-eval renders them.

Multiple-choice tasks produce ``choices`` (a list) and ``gold`` (an index, or for MC2 the labels) in the
doc, either through ``doc_to_choice``/``gold_field`` or through a named processor (``process``).
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.evaluation.types import Dimension, OutputType


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFormat(enum.StrEnum):
    """File formats a split may be stored in (``.gz`` is detected from the path, any format)."""

    JSONL = "jsonl"
    JSON = "json"  # one JSON array of objects
    CSV = "csv"  # with a header row, unless ``columns`` names the columns


class SplitSource(_Strict):
    """Where one split lives, relative to the data root given at run time (or an absolute URI)."""

    path: str
    format: DataFormat
    columns: tuple[str, ...] = Field(default=(), description="Column names of a CSV without a header.")


class FewshotSampler(enum.StrEnum):
    """``random``: a seeded draw per sample; ``first_n``: the split's first rows (MMLU, CMMLU)."""

    RANDOM = "random"
    FIRST_N = "first_n"


class Generation(_Strict):
    """Generation settings; ``repeats`` completions per sample (pass@k needs repeats >= k)."""

    until: tuple[str, ...] = ()
    max_tokens: int = Field(default=256, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    repeats: int = Field(default=1, gt=0)


class Extractor(_Strict):
    """Pull the answer out of a completion: ``regex`` match number ``group_select`` (-1 = the last)."""

    name: str
    regex: str
    group_select: int = 0
    fallback: str = "[invalid]"


class Metric(enum.StrEnum):
    """Per-sample metrics a task may ask for."""

    ACC = "acc"
    ACC_NORM = "acc_norm"
    MC2 = "mc2"  # truthfulqa_mc2: normalized probability mass on the true answers
    EXACT_MATCH = "exact_match"
    PASS_AT_K = "pass@k"
    JUDGE = "judge"  # scored later by a judge model; no automatic metric


class MetricSpec(_Strict):
    """One metric and its options (exact-match normalization as lm-eval's ``exact_match``, pass@k's k)."""

    name: Metric
    ignore_case: bool = False
    regexes_to_ignore: tuple[str, ...] = ()
    k: tuple[int, ...] = (1,)


class Subtasks(_Strict):
    """Expand one file into one task per value (MMLU subjects): ``{name}_{key}``, grouped under ``name``.

    Templates and paths see ``subject`` (the key) and ``subject_name`` (the value, a display name).
    """

    values: dict[str, str]
    weight_by_size: bool = Field(default=True, description="Group score weights subtasks by sample count.")


class TaskSpec(_Strict):
    """One benchmark task, as declared in its YAML file."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    dimensions: Annotated[tuple[Dimension, ...], Field(min_length=1)]
    output_type: OutputType
    splits: dict[Literal["test", "fewshot"], SplitSource]
    fields: dict[str, str] = Field(
        description="Required doc fields: name -> source column/key (other columns are kept as they are)."
    )
    process: str | None = Field(default=None, description="Name of a doc processor in processors.py.")
    description: str = ""
    doc_to_text: str
    doc_to_target: str = ""
    doc_to_choice: tuple[str, ...] | str | None = Field(
        default=None, description="Literal choices, or the doc field holding the list of choices."
    )
    gold_field: str = "gold"
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    num_fewshot: int = Field(default=0, ge=0)
    fewshot_sampler: FewshotSampler = FewshotSampler.RANDOM
    fewshot_examples: tuple[dict[str, str], ...] = Field(
        default=(), description="Fixed exemplar docs (chain-of-thought); used instead of the fewshot split."
    )
    chat: bool = Field(default=False, description="Send the prompt as one user chat message.")
    generation: Generation = Generation()
    extract: tuple[Extractor, ...] = ()
    metrics: Annotated[tuple[MetricSpec, ...], Field(min_length=1)]
    code_program: str = Field(default="", description="Template of the program the sandbox runs.")
    subtasks: Subtasks | None = None
    group: str | None = Field(default=None, description="Set on expanded subtasks: the group's name.")
    subject: str | None = None
    subject_name: str | None = None

    @property
    def primary_metric(self) -> str:
        """The metric reports and dimension summaries use for this task."""
        first = self.metrics[0]
        if first.name is Metric.PASS_AT_K:
            return f"pass@{first.k[0]}"
        return first.name.value
