"""The evaluation core's shared vocabulary: what a model backend and a code sandbox are asked to do.

This module is the contract between the pure core (tasks, prompts, scoring) and the edges that talk to
models (``backends/``) and run untrusted code (``sandbox.py``). It holds plain frozen dataclasses and
``Protocol``s only, so both sides can be written and tested independently; keep it small and stable.

Failure convention: a backend raises (``shipyard.errors.Unavailable`` / ``DeadlineExceeded`` for
endpoint trouble); the runner retries, and a request that still fails is passed to scoring as ``None``
in its slot, which marks its sample failed (counted, excluded from metrics) instead of aborting the run.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``log P(continuation | context)``; the backend tokenizes ``context + continuation``."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    """Summed log-probability of the continuation's tokens; ``is_greedy`` if every token was the argmax."""

    logprob: float
    is_greedy: bool
    num_tokens: int


@dataclass(frozen=True)
class GenerationRequest:
    """Generate from a text prompt (or chat messages ``[{"role", "content"}]``) until a stop string.

    ``stop`` strings are not included in the returned text. ``seed`` makes sampling reproducible when
    ``temperature > 0``; pass@k asks for n completions as n requests with seeds 0..n-1.
    """

    prompt: str | list[dict[str, str]]
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class GenerationResult:
    """The completion text (stop string stripped) and why it ended: ``"stop"`` or ``"length"``."""

    text: str
    finish_reason: str


ModelRequest = LoglikelihoodRequest | GenerationRequest
ModelResult = LoglikelihoodResult | GenerationResult


@runtime_checkable
class ModelBackend(Protocol):
    """Anything that can score and generate: local HF model, the inference service, an OpenAI endpoint.

    Both methods return exactly one result per request, in request order.
    """

    name: str

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...


class ExecutionStatus(enum.StrEnum):
    """How one sandboxed program ended."""

    PASSED = "passed"
    FAILED = "failed"  # an assertion or exception in the program
    TIMEOUT = "timeout"
    MEMORY = "memory"  # killed for exceeding the memory limit
    ERROR = "error"  # the sandbox itself could not run it


@dataclass(frozen=True)
class ExecutionResult:
    """Outcome of running one program; ``detail`` is a short, user-readable reason (last error line)."""

    status: ExecutionStatus
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status is ExecutionStatus.PASSED


@runtime_checkable
class CodeSandbox(Protocol):
    """Runs untrusted Python programs with time and memory limits; one result per program, in order."""

    def run(
        self, programs: Sequence[str], *, timeout_s: float = 10.0, memory_mb: int = 1024
    ) -> list[ExecutionResult]: ...


class OutputType(enum.StrEnum):
    """How a task asks the model: score fixed choices, generate and extract, or generate code to run."""

    MULTIPLE_CHOICE = "multiple_choice"
    GENERATE_UNTIL = "generate_until"
    CODE = "code"


class Dimension(enum.StrEnum):
    """Capability dimensions a task is tagged with; reports average per dimension."""

    LANGUAGE = "language"
    KNOWLEDGE = "knowledge"
    REASONING = "reasoning"
    MATH = "math"
    CODE = "code"
    SAFETY = "safety"


@dataclass(frozen=True)
class Sample:
    """One dataset row after field mapping and preprocessing.

    ``id`` is stable across runs (``<task>/<split>/<row>``) so results can be cached per sample;
    ``doc`` holds the mapped fields the task's templates read.
    """

    id: str
    doc: Mapping[str, Any]


@dataclass(frozen=True)
class SampleRecord:
    """What the report shows for one sample.

    ``correct`` is None when the task has no automatic judgement (``needs_judge``) or the sample failed.
    ``extra`` carries details (choice log-likelihoods, extracted answers, sandbox statuses) and, under
    ``"metrics"``, this sample's value of each metric (what group scores are computed from).
    """

    sample_id: str
    prompt: str
    prediction: str
    target: str
    correct: bool | None
    failed: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """Metrics of one task (or group): mean per metric and its standard error (sample stddev / sqrt(n)).

    ``num_samples`` counts scored samples; ``num_failed`` samples (backend errors) are excluded from the
    metrics. ``needs_judge`` means the metrics are empty until a judge scores the predictions (MT-bench).
    ``primary_metric`` is the one dimension summaries use; ``group`` names the group a subtask belongs to.
    """

    task: str
    metrics: Mapping[str, float]
    stderr: Mapping[str, float]
    num_samples: int
    num_failed: int = 0
    needs_judge: bool = False
    primary_metric: str = ""
    dimensions: tuple[Dimension, ...] = ()
    group: str | None = None
    records: tuple[SampleRecord, ...] = ()
