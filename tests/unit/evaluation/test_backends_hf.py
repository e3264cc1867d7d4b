"""The local HF backend: lm-eval's log-likelihood rules, batching that changes nothing, generation."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
import torch.nn.functional as F

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.evaluation.backends import SMOLLM2, open_backend
from shipyard.evaluation.backends.hf import HFBackend
from shipyard.evaluation.types import GenerationRequest, LoglikelihoodRequest, ModelBackend
from tests.unit.evaluation.tiny_hf_model import build_tiny_model


@pytest.fixture(scope="module")
def model_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def backend(model_dir: pathlib.Path) -> HFBackend:
    return HFBackend.load(model_dir, batch_size=3)


def hellaswag_requests(shared_data: pathlib.Path, items: int) -> list[LoglikelihoodRequest]:
    """lm-eval's HellaSwag requests: ``"<label>: <ctx>"`` then each ``" " + ending``."""
    with (shared_data / "eval/hellaswag/val_first500.jsonl").open() as f:
        rows = [json.loads(next(f)) for _ in range(items)]
    return [
        LoglikelihoodRequest(f"{row['activity_label']}: {row['ctx']}", " " + ending)
        for row in rows
        for ending in row["endings"]
    ]


def unbatched(backend: HFBackend, request: LoglikelihoodRequest) -> tuple[float, bool]:
    """The textbook computation: one unpadded forward pass over context + continuation."""
    context, continuation = backend.encode_pair(request.context, request.continuation)
    ids = torch.tensor([context + continuation])
    with torch.inference_mode():
        logprobs = F.log_softmax(backend.model(ids).logits[0].float(), dim=-1)
    rows = logprobs[len(context) - 1 : -1]
    targets = torch.tensor(continuation)
    total = float(rows.gather(1, targets.unsqueeze(1)).sum())
    return total, bool((rows.argmax(-1) == targets).all())


def test_is_a_model_backend(backend: HFBackend, model_dir: pathlib.Path) -> None:
    assert isinstance(backend, ModelBackend)
    assert backend.name == model_dir.name


def test_batched_loglikelihood_equals_unbatched_computation(
    backend: HFBackend, shared_data: pathlib.Path
) -> None:
    requests = hellaswag_requests(shared_data, 3)
    results = backend.loglikelihood(requests)
    assert len(results) == len(requests)
    for request, result in zip(requests, results, strict=True):
        expected, greedy = unbatched(backend, request)
        assert result.logprob == pytest.approx(expected, abs=1e-4)
        assert result.is_greedy == greedy
        assert result.num_tokens == len(backend.encode_pair(request.context, request.continuation)[1])


def test_batch_size_does_not_change_scores(backend: HFBackend, shared_data: pathlib.Path) -> None:
    requests = hellaswag_requests(shared_data, 2)
    one_by_one = HFBackend(backend.model, backend.tokenizer, name="b1", batch_size=1).loglikelihood(requests)
    batched = HFBackend(backend.model, backend.tokenizer, name="b8", batch_size=8).loglikelihood(requests)
    assert [r.logprob for r in batched] == pytest.approx([r.logprob for r in one_by_one], abs=1e-4)


def test_encode_pair_moves_trailing_spaces_into_the_continuation(backend: HFBackend) -> None:
    context, continuation = backend.encode_pair("Answer: ", "yes")
    assert context == backend.encode_pair("Answer:", " yes")[0]
    assert backend.tokenizer.decode(continuation) == " yes"
    empty_context, _ = backend.encode_pair("", "yes")
    assert empty_context == [backend.tokenizer.bos_token_id]


def test_greedy_continuation_is_flagged_and_most_likely(backend: HFBackend) -> None:
    context = "ROMEO: I will"
    greedy_text = backend.generate([GenerationRequest(context, 3)])[0].text
    scored = backend.loglikelihood(
        [LoglikelihoodRequest(context, greedy_text), LoglikelihoodRequest(context, " the king")]
    )
    assert scored[0].is_greedy
    assert not scored[1].is_greedy


def test_shared_prompt_choices_match_separate_scoring(backend: HFBackend) -> None:
    prompt = "Question: which?\nAnswer:"
    choices = [LoglikelihoodRequest(prompt, f" {letter}") for letter in "ABCD"]
    together = backend.loglikelihood(choices)
    alone = [backend.loglikelihood([c])[0] for c in choices]
    assert [r.logprob for r in together] == pytest.approx([r.logprob for r in alone], abs=1e-5)


def test_long_context_is_truncated_from_the_left(backend: HFBackend) -> None:
    short = HFBackend(backend.model, backend.tokenizer, name="short", max_length=16)
    request = LoglikelihoodRequest("To be, or not to be, that is the question " * 10, "whether")
    result = short.loglikelihood([request])[0]
    continuation = short.encode_pair(request.context, request.continuation)[1]
    assert result.num_tokens == len(continuation)
    assert result.logprob < 0


def test_greedy_generation_is_deterministic_and_cut_at_stop(backend: HFBackend) -> None:
    first = backend.generate([GenerationRequest("KING:", 12)])[0]
    assert first.finish_reason == "length" and first.text
    stop = first.text[len(first.text) // 2 :][:2]
    cut_at = first.text.find(stop)
    # The same prompt in a batch with others, with a stop string: same text, cut before the stop.
    results = backend.generate(
        [GenerationRequest("KING:", 12, stop=(stop,)), GenerationRequest("A much longer prompt here:", 12)]
    )
    assert results[0].text == first.text[:cut_at]
    assert results[0].finish_reason == "stop"


def test_sampling_is_reproducible_per_seed(backend: HFBackend) -> None:
    request = GenerationRequest("KING:", 10, temperature=1.0, seed=7)
    a = backend.generate([request, GenerationRequest("QUEEN:", 10, temperature=1.0, seed=1)])[0]
    b = backend.generate([request])[0]
    others = {
        backend.generate([GenerationRequest("KING:", 10, temperature=1.0, seed=s)])[0].text for s in range(3)
    }
    assert a == b
    assert len(others) > 1


def test_chat_messages_need_a_chat_template(backend: HFBackend) -> None:
    with pytest.raises(FailedPrecondition, match="no chat template"):
        backend.generate([GenerationRequest([{"role": "user", "content": "hi"}], 4)])


def test_bad_requests_name_the_field(backend: HFBackend) -> None:
    with pytest.raises(InvalidArgument, match=r"requests\[0\].max_tokens"):
        backend.generate([GenerationRequest("x", 0)])
    with pytest.raises(InvalidArgument, match=r"requests\[0\].continuation"):
        backend.loglikelihood([LoglikelihoodRequest("x", "")])


def test_open_backend_resolves_paths_and_uris(model_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    assert isinstance(open_backend(str(model_dir)), HFBackend)
    assert isinstance(open_backend(f"file://{model_dir}"), HFBackend)
    with pytest.raises(NotFound):
        open_backend(str(tmp_path / "missing"))
    with pytest.raises(InvalidArgument, match="no config.json"):
        open_backend(str(tmp_path))
    with pytest.raises(InvalidArgument, match="model_name"):
        open_backend("http://127.0.0.1:1")
    with pytest.raises(InvalidArgument, match="registry"):
        open_backend("model:tiny@1")


@pytest.mark.slow
def test_smollm2_gguf_scores_like_the_unbatched_computation(shared_data: pathlib.Path) -> None:
    backend = open_backend(SMOLLM2, batch_size=4)
    assert isinstance(backend, HFBackend)
    requests = hellaswag_requests(shared_data, 1)
    results = backend.loglikelihood(requests)
    for request, result in zip(requests, results, strict=True):
        assert result.logprob == pytest.approx(unbatched(backend, request)[0], abs=1e-4)
    # The gold ending (label 3) of this item is the likeliest for a real model.
    assert max(range(4), key=lambda i: results[i].logprob / len(requests[i].continuation)) == 3
    reply = backend.generate([GenerationRequest([{"role": "user", "content": "What is 2+2?"}], 16)])[0]
    assert "4" in reply.text
