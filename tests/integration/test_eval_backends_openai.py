"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1.

One server serves a tiny real model (echoed prompt log-probabilities computed by the HF backend's model),
so the endpoint's scores can be checked against the local backend's; another is scripted to time out,
fail with 5xx/429 and recover, or fail for good, to check retries, backoff and failed-sample accounting.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from shipyard.errors import DeadlineExceeded, FailedPrecondition, NotFound, Unavailable
from shipyard.evaluation.backends import OpenAIBackend, RequestsFailed, RetryPolicy, open_backend
from shipyard.evaluation.backends.hf import HFBackend
from shipyard.evaluation.types import GenerationRequest, LoglikelihoodRequest, ModelBackend
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration

Handler = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    """Start a threaded HTTP server whose POST answers come from ``handler(path, body)``; yields its URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: Handler) -> str:
        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = handler(self.path, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a deliberately slow answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hf(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> HFBackend:
    return HFBackend.load(build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny")))


def model_server(hf: HFBackend) -> Handler:
    """``/v1/completions`` (echo + logprobs, or greedy text) and ``/v1/chat/completions`` over ``hf``."""

    def handle(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/chat/completions":
            text = " ".join(m["content"] for m in body["messages"])
            out = hf.generate([GenerationRequest(text, body["max_tokens"], tuple(body.get("stop", ())))])[0]
            return 200, {
                "choices": [
                    {"index": 0, "message": {"content": out.text}, "finish_reason": out.finish_reason}
                ]
            }
        if body.get("echo"):
            enc = hf.tokenizer(body["prompt"], add_special_tokens=False, return_offsets_mapping=True)
            ids = enc["input_ids"]
            with torch.inference_mode():
                logprobs = F.log_softmax(hf.model(torch.tensor([ids])).logits[0], dim=-1)
            values: list[float | None] = [None]
            tops: list[dict[str, float] | None] = [None]
            for i in range(1, len(ids)):
                row = logprobs[i - 1]
                values.append(float(row[ids[i]]))
                best = int(row.argmax())
                tops.append({hf.tokenizer.decode([best]): float(row[best])})
            logprobs_field = {
                "tokens": [hf.tokenizer.decode([t]) for t in ids],
                "token_logprobs": values,
                "top_logprobs": tops,
                "text_offset": [start for start, _ in enc["offset_mapping"]],
            }
            choice = {
                "index": 0,
                "text": body["prompt"],
                "logprobs": logprobs_field,
                "finish_reason": "length",
            }
            return 200, {"choices": [choice]}
        out = hf.generate(
            [GenerationRequest(body["prompt"], body["max_tokens"], tuple(body.get("stop", ())))]
        )[0]
        return 200, {"choices": [{"index": 0, "text": out.text, "finish_reason": out.finish_reason}]}

    return handle


def test_endpoint_scores_equal_the_local_backend(serve: Callable[[Handler], str], hf: HFBackend) -> None:
    backend = open_backend(serve(model_server(hf)), model_name="tiny", concurrency=3)
    assert isinstance(backend, ModelBackend)
    requests = [
        LoglikelihoodRequest("ROMEO: What light through yonder", " window breaks"),
        LoglikelihoodRequest("ROMEO: What light through yonder ", "door"),
        LoglikelihoodRequest("Question: 2+2?\nAnswer:", " four"),
    ]
    remote = backend.loglikelihood(requests)
    local = hf.loglikelihood(requests)
    assert [r.logprob for r in remote] == pytest.approx([r.logprob for r in local], abs=1e-4)
    assert [r.num_tokens for r in remote] == [r.num_tokens for r in local]
    assert [r.is_greedy for r in remote] == [r.is_greedy for r in local]


def test_generation_over_completions_and_chat(serve: Callable[[Handler], str], hf: HFBackend) -> None:
    backend = OpenAIBackend(serve(model_server(hf)), "tiny")
    text_prompt, chat_prompt = (
        GenerationRequest("KING:", 8),
        GenerationRequest([{"role": "user", "content": "KING:"}], 8),
    )
    expected = hf.generate([text_prompt])[0]
    assert backend.generate([text_prompt, chat_prompt]) == [expected, expected]


def flaky(script: list[str], release: threading.Event) -> tuple[Handler, list[str]]:
    """Answers per ``script`` entry in turn ("hang", "500", "429", "ok"), then "ok"; records each call."""
    calls: list[str] = []

    def handle(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        step = script[len(calls)] if len(calls) < len(script) else "ok"
        calls.append(step)
        if step == "hang":
            release.wait(timeout=30)  # the client's timeout fires long before
        if step in ("500", "429"):
            return int(step), {"error": "busy"}
        return 200, {"choices": [{"index": 0, "text": "42", "finish_reason": "stop"}]}

    return handle, calls


def test_timeout_and_server_errors_are_retried_with_backoff(serve: Callable[[Handler], str]) -> None:
    release = threading.Event()
    handler, calls = flaky(["hang", "500", "429"], release)
    waits: list[float] = []
    backend = OpenAIBackend(
        serve(handler),
        "m",
        timeout_s=0.5,
        retry=RetryPolicy(attempts=4, initial_backoff_s=0.25),
        sleep=waits.append,
    )
    try:
        result = backend.generate([GenerationRequest("Q", 4)])
    finally:
        release.set()
    assert result[0].text == "42"
    assert calls == ["hang", "500", "429", "ok"]
    assert waits == [0.25, 0.5, 1.0]


def test_a_request_that_always_fails_is_marked_and_the_others_complete(
    serve: Callable[[Handler], str],
) -> None:
    def handle(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body["prompt"] == "poison":
            return 503, {"error": "overloaded"}
        return 200, {"choices": [{"index": 0, "text": body["prompt"].upper(), "finish_reason": "stop"}]}

    waits: list[float] = []
    backend = OpenAIBackend(
        serve(handle), "m", retry=RetryPolicy(attempts=3), sleep=waits.append, concurrency=2
    )
    prompts = ["a", "poison", "c"]
    with pytest.raises(RequestsFailed) as caught:
        backend.generate([GenerationRequest(p, 4) for p in prompts])
    failure = caught.value
    assert isinstance(failure, Unavailable)
    assert [r.text if r else None for r in failure.results] == ["A", None, "C"]
    assert list(failure.errors) == [1]
    assert "503" in str(failure.errors[1])
    assert "1 of 3 requests failed" in str(failure)


def test_deadline_stops_retrying(serve: Callable[[Handler], str]) -> None:
    release = threading.Event()
    handler, calls = flaky(["hang"] * 10, release)
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    backend = OpenAIBackend(
        serve(handler),
        "m",
        timeout_s=0.3,
        retry=RetryPolicy(attempts=10, initial_backoff_s=1.0, deadline_s=2.5),
        sleep=fake_sleep,
        clock=lambda: now[0],
    )
    try:
        with pytest.raises(RequestsFailed) as caught:
            backend.generate([GenerationRequest("Q", 4)])
    finally:
        release.set()
    assert isinstance(caught.value.errors[0], DeadlineExceeded)
    assert len(calls) == 2  # waits of 1 s then 2 s would pass the 2.5 s deadline: two tries only


def test_wrong_model_fails_the_whole_call_at_once(serve: Callable[[Handler], str]) -> None:
    calls: list[str] = []

    def handle(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        calls.append(path)
        return 404, {"error": f"model {body['model']} not found"}

    backend = OpenAIBackend(serve(handle), "nope", concurrency=1)
    with pytest.raises(NotFound, match="nope"):
        backend.generate([GenerationRequest("Q", 4)] * 3)
    assert len(calls) == 1


def test_endpoint_without_echo_logprobs_is_a_clear_error(serve: Callable[[Handler], str]) -> None:
    def handle(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}

    backend = OpenAIBackend(serve(handle), "m")
    with pytest.raises(FailedPrecondition, match="echo"):
        backend.loglikelihood([LoglikelihoodRequest("a", " b")])
