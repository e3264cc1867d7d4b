"""Evaluating through Shipyard's own inference engine in-process (``EngineBackend``) against ``HFBackend``.

Same tiny model, same lm-eval tokenization: log-likelihoods must agree within 1e-4 (prompt logprobs
computed over chunked prefill) and greedy generations must be the same text, on hand-made requests and
on real HellaSwag / GSM8K samples run through ``run_evaluation``.
"""

from __future__ import annotations

import pathlib

import pytest

from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.evaluation.backends import open_backend
from shipyard.evaluation.backends.engine import EngineBackend
from shipyard.evaluation.backends.hf import HFBackend
from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
from shipyard.evaluation.types import GenerationRequest, LoglikelihoodRequest, ModelBackend
from shipyard.models.local import LocalModel
from shipyard.storage import LocalStorage, from_local_path
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration

# A small step budget, so longer prompts are prefilled (and scored) over several chunks.
ENGINE = InferenceConfig(kv_cache_memory=8e6, block_size=8, max_num_batched_tokens=48, max_num_seqs=16)
LOGLIKELIHOOD = [
    LoglikelihoodRequest("ROMEO: What light through yonder", " window breaks"),
    LoglikelihoodRequest("ROMEO: What light through yonder ", "door"),
    LoglikelihoodRequest("Question: 2+2?\nAnswer:", " four"),
    LoglikelihoodRequest("Question: 2+2?\nAnswer:", " four"),  # duplicate input, scored once
    LoglikelihoodRequest("", "KING RICHARD"),  # empty context: scored after BOS
    LoglikelihoodRequest("First Citizen:\nBefore we proceed any further, hear me speak." * 3, "\nAll:"),
]
GENERATION = [
    GenerationRequest("KING:", 12),
    GenerationRequest("First Citizen:\nYou are all resolved", 20, stop=("\n",)),
    GenerationRequest("MENENIUS:\nWhat work's, my countrymen", 16, stop=("e",)),
]


@pytest.fixture(scope="module")
def tiny_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-eval"), seq_len=1024)


@pytest.fixture(scope="module")
def hf(tiny_dir: pathlib.Path) -> HFBackend:
    return HFBackend.load(tiny_dir, name="tiny")


@pytest.fixture(scope="module")
def engine_backend(tiny_dir: pathlib.Path) -> EngineBackend:
    return EngineBackend.load(LocalModel(tiny_dir, "tiny"), ENGINE)


def assert_same_loglikelihoods(backend: ModelBackend, hf: HFBackend) -> None:
    ours, theirs = backend.loglikelihood(LOGLIKELIHOOD), hf.loglikelihood(LOGLIKELIHOOD)
    assert [r.logprob for r in ours] == pytest.approx([r.logprob for r in theirs], abs=1e-4)
    assert [r.num_tokens for r in ours] == [r.num_tokens for r in theirs]
    assert [r.is_greedy for r in ours] == [r.is_greedy for r in theirs]


def test_engine_loglikelihoods_and_greedy_generations_equal_hf(
    engine_backend: EngineBackend, hf: HFBackend
) -> None:
    assert isinstance(engine_backend, ModelBackend)
    assert_same_loglikelihoods(engine_backend, hf)
    generated = engine_backend.generate(GENERATION)
    assert generated == hf.generate(GENERATION)
    assert all("\n" not in r.text for r in generated[1:2])  # the stop string is cut


def test_a_shared_running_async_engine_gives_the_same_scores(tiny_dir: pathlib.Path, hf: HFBackend) -> None:
    # max_queue_len below the number of requests: the backend must wait for room, not fail.
    config = ENGINE.model_copy(update={"max_queue_len": 2})
    with AsyncLLMEngine.from_config(str(tiny_dir), config, served_model_name="tiny") as engine:
        backend = EngineBackend(engine, engine.tokenizer, name="tiny")
        assert_same_loglikelihoods(backend, hf)
        assert backend.generate(GENERATION[:2]) == hf.generate(GENERATION[:2])


def test_open_backend_routes_engine_references(tiny_dir: pathlib.Path) -> None:
    backend = open_backend(f"engine:{tiny_dir}", inference_config=ENGINE)
    assert isinstance(backend, EngineBackend)
    assert backend.loglikelihood(LOGLIKELIHOOD[:1])[0].num_tokens > 0
    assert isinstance(open_backend(str(tiny_dir), engine=True, inference_config=ENGINE), EngineBackend)


def test_real_task_samples_score_the_same_as_hf(
    engine_backend: EngineBackend,
    hf: HFBackend,
    tiny_dir: pathlib.Path,
    shared_data: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    reports = {}
    for label, backend in (("engine", engine_backend), ("hf", hf)):
        plan = EvaluationPlan(
            model=str(tiny_dir),
            tasks=("hellaswag", "gsm8k"),
            data_root=from_local_path(shared_data / "eval"),
            storage_root=from_local_path(tmp_path / label),
            limit=3,
            num_fewshot=0,
            use_cache=False,
        )
        reports[label] = run_evaluation(plan, storage=LocalStorage(), backend=backend)
    engine, reference = reports["engine"], reports["hf"]
    assert engine.num_failed == 0 and reference.num_failed == 0
    assert engine.scores() == pytest.approx(reference.scores(), abs=1e-6)
    for name in ("hellaswag", "gsm8k"):
        ours, theirs = engine.task(name).records, reference.task(name).records
        assert len(ours) == 3
        assert [r.prediction for r in ours] == [r.prediction for r in theirs]
