"""Evaluating through the running inference service: its OpenAI HTTP API and its gRPC API.

The real servers (one engine behind HTTP and gRPC) serve a tiny model on loopback. Its echoed prompt
log-probabilities must be what ``transformers`` computes, and an evaluation run over either API must
score HellaSwag and GSM8K samples exactly as ``HFBackend`` does on the same model.
"""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Iterator

import openai
import pytest
import torch
from prometheus_client import CollectorRegistry

import shipyard.clients.inference_backend  # noqa: F401 - registers grpc:// with open_backend
from shipyard.clients.inference_backend import InferenceGrpcBackend
from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.errors import NotFound
from shipyard.evaluation.backends import RequestsFailed, RetryPolicy, open_backend
from shipyard.evaluation.backends.hf import HFBackend
from shipyard.evaluation.report import EvaluationReport
from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
from shipyard.evaluation.types import GenerationRequest, LoglikelihoodRequest, ModelBackend
from shipyard.rpc import ServerOptions
from shipyard.storage import LocalStorage, from_local_path
from shipyard_services.inference.server import InferenceServers
from shipyard_services.inference.serving_models import ServedModels
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration

TASKS = ("hellaswag", "gsm8k")
ENGINE = InferenceConfig(kv_cache_memory=8e6, block_size=8, max_num_batched_tokens=64, max_num_seqs=8)


@pytest.fixture(scope="module")
def tiny_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-served"), seq_len=1024)


@pytest.fixture(scope="module")
def hf(tiny_dir: pathlib.Path) -> HFBackend:
    return HFBackend.load(tiny_dir, name="tiny")


@pytest.fixture(scope="module")
def servers(tiny_dir: pathlib.Path) -> Iterator[InferenceServers]:
    engine = AsyncLLMEngine.from_config(str(tiny_dir), ENGINE, served_model_name="tiny")
    started = InferenceServers.start(
        ServedModels(engine, source=str(tiny_dir)),
        CollectorRegistry(),
        http_host="127.0.0.1",
        http_port=0,
        grpc_options=ServerOptions(shutdown_grace_seconds=1.0),
    )
    yield started
    started.stop()


@pytest.fixture(scope="module")
def hf_report(
    hf: HFBackend, tiny_dir: pathlib.Path, shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> EvaluationReport:
    return evaluate(str(tiny_dir), None, shared_data, tmp_path_factory.mktemp("hf"), backend=hf)


def evaluate(
    model: str,
    model_name: str | None,
    shared_data: pathlib.Path,
    root: pathlib.Path,
    backend: ModelBackend | None = None,
) -> EvaluationReport:
    plan = EvaluationPlan(
        model=model,
        model_name=model_name,
        tasks=TASKS,
        data_root=from_local_path(shared_data / "eval"),
        storage_root=from_local_path(root),
        limit=3,
        num_fewshot=0,
        use_cache=False,
    )
    return run_evaluation(plan, storage=LocalStorage(), backend=backend)


def assert_same_report(report: EvaluationReport, reference: EvaluationReport) -> None:
    assert report.num_failed == 0 and reference.num_failed == 0
    assert report.scores() == pytest.approx(reference.scores(), abs=1e-6)
    for name in TASKS:
        ours, theirs = report.task(name).records, reference.task(name).records
        assert len(ours) == 3
        assert [r.prediction for r in ours] == [r.prediction for r in theirs]


def test_completions_echo_returns_the_prompt_logprobs_transformers_computes(
    servers: InferenceServers, hf: HFBackend
) -> None:
    client = openai.OpenAI(base_url=servers.http.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    prompt = "ROMEO: What light through yonder window breaks?"
    scored = client.completions.create(model="tiny", prompt=prompt, echo=True, logprobs=2, max_tokens=0)
    choice = scored.choices[0]
    assert choice.text == prompt and scored.usage is not None and scored.usage.completion_tokens == 0
    lps = choice.logprobs
    assert lps is not None and lps.tokens and lps.token_logprobs and lps.text_offset and lps.top_logprobs
    assert "".join(lps.tokens) == prompt
    assert lps.text_offset == [sum(len(t) for t in lps.tokens[:i]) for i in range(len(lps.tokens))]
    ids = hf.tokenizer(prompt)["input_ids"]
    with torch.inference_mode():
        expected = hf.model(torch.tensor([ids])).logits[0].log_softmax(dim=-1)
    assert lps.token_logprobs[0] is None and lps.top_logprobs[0] is None
    assert lps.token_logprobs[1:] == pytest.approx(
        [float(expected[i - 1, ids[i]]) for i in range(1, len(ids))], abs=1e-4
    )
    assert all(len(top) <= 2 for top in lps.top_logprobs[1:])

    generated = client.completions.create(model="tiny", prompt=prompt, echo=True, logprobs=0, max_tokens=3)
    assert generated.choices[0].text.startswith(prompt) and generated.usage.completion_tokens == 3
    assert len(generated.choices[0].logprobs.tokens) == len(ids) + 3


def test_evaluation_over_the_openai_http_api_scores_as_hf(
    servers: InferenceServers, hf_report: EvaluationReport, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    report = evaluate(servers.http.url, "tiny", shared_data, tmp_path)
    assert_same_report(report, hf_report)


def test_evaluation_over_grpc_scores_as_hf(
    servers: InferenceServers,
    hf: HFBackend,
    hf_report: EvaluationReport,
    tiny_dir: pathlib.Path,
    shared_data: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    backend = open_backend(f"grpc://{servers.grpc.address}", model_name="tiny", concurrency=4)
    assert isinstance(backend, InferenceGrpcBackend)
    requests = [
        LoglikelihoodRequest("ROMEO: What light through yonder", " window breaks"),
        LoglikelihoodRequest("Question: 2+2?\nAnswer: ", "four"),
    ]
    ours, theirs = backend.loglikelihood(requests), hf.loglikelihood(requests)
    assert [r.logprob for r in ours] == pytest.approx([r.logprob for r in theirs], abs=1e-4)
    assert [(r.num_tokens, r.is_greedy) for r in ours] == [(r.num_tokens, r.is_greedy) for r in theirs]
    # The plan names the served directory: the runner's cache identity does not know grpc:// yet.
    report = evaluate(str(tiny_dir), "tiny", shared_data, tmp_path, backend=backend)
    assert_same_report(report, hf_report)


def test_grpc_unknown_model_fails_the_call_and_an_unreachable_service_is_retried(
    servers: InferenceServers,
) -> None:
    with pytest.raises(NotFound, match="nope"):
        InferenceGrpcBackend(servers.grpc.address, "nope").generate([GenerationRequest("KING:", 4)])

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    waits: list[float] = []
    backend = InferenceGrpcBackend(
        dead, "tiny", timeout_s=5, retry=RetryPolicy(attempts=3, initial_backoff_s=0.25), sleep=waits.append
    )
    with pytest.raises(RequestsFailed) as caught:
        backend.generate([GenerationRequest("KING:", 4), GenerationRequest("QUEEN:", 4)])
    assert caught.value.results == [None, None] and sorted(caught.value.errors) == [0, 1]
    # two retries with backoff per request; the two requests run on parallel threads, so order varies
    assert sorted(waits) == [0.25, 0.25, 0.5, 0.5]
