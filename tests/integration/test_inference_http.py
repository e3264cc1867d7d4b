"""The OpenAI-compatible HTTP API on a real server (tiny Llama) driven by the official ``openai`` client."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable

import openai
import pytest

from shipyard_services.inference.server import InferenceServers
from tests.polling import wait_for

pytestmark = pytest.mark.integration
WAIT = 30.0
HELLO = [{"role": "user", "content": "Say hello"}]


def client(s: InferenceServers) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.http.url + "/v1", api_key="unused", max_retries=0, timeout=WAIT)


def post(s: InferenceServers, path: str, body: bytes | dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", s.http.port, timeout=WAIT)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def wait_until(check: Callable[[], bool]) -> None:
    wait_for("the condition", check, timeout=WAIT)


def test_chat_completion_reports_text_usage_and_finish_reason(servers: InferenceServers) -> None:
    r = client(servers).chat.completions.create(model="tiny", messages=HELLO, max_tokens=6, temperature=0)
    assert r.object == "chat.completion" and r.model == "tiny"
    assert r.choices[0].message.role == "assistant" and r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 6 and r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6
    assert r.usage.prompt_tokens_details.cached_tokens == 0


def test_streamed_chat_equals_the_unary_answer_and_ends_with_usage(servers: InferenceServers) -> None:
    c = client(servers)
    unary = c.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8, temperature=0)
    chunks = list(
        c.chat.completions.create(
            model="tiny",
            messages=HELLO,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == unary.choices[0].message.content
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    # The same prompt again is served from the prefix cache.
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0


def test_completions_with_text_or_tokens_and_logprobs(servers: InferenceServers) -> None:
    c = client(servers)
    r = c.completions.create(model="tiny", prompt="Once upon a time", max_tokens=5, temperature=0, logprobs=2)
    assert r.object == "text_completion" and r.choices[0].finish_reason == "length"
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 5 and len(lp.token_logprobs) == 5 and all(v <= 0 for v in lp.token_logprobs)
    assert all(len(top) <= 3 for top in lp.top_logprobs) and "".join(lp.tokens) == r.choices[0].text
    ids = servers.served.tokenizer("Once upon a time")["input_ids"]
    by_tokens = c.completions.create(model="tiny", prompt=ids, max_tokens=5, temperature=0)
    assert by_tokens.choices[0].text == r.choices[0].text
    streamed = "".join(
        ch.choices[0].text
        for ch in c.completions.create(model="tiny", prompt=ids, max_tokens=5, temperature=0, stream=True)
    )
    assert streamed == r.choices[0].text


def test_many_concurrent_streaming_clients_all_get_the_full_answer(servers: InferenceServers) -> None:
    c = client(servers)
    prompts = [f"Question number {i}?" for i in range(12)]
    expected = {
        p: c.completions.create(model="tiny", prompt=p, max_tokens=10, temperature=0).choices[0].text
        for p in prompts
    }
    got: dict[str, str] = {}

    def run(p: str) -> None:
        stream = c.completions.create(model="tiny", prompt=p, max_tokens=10, temperature=0, stream=True)
        got[p] = "".join(ch.choices[0].text for ch in stream)

    threads = [threading.Thread(target=run, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert got == expected


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 2}, "top_p"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"tools": []}, "tools"),
        ({"messages": [{"role": "user", "content": "word " * 400}]}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ],
)
def test_bad_chat_input_is_a_400_naming_the_param(servers: InferenceServers, body: dict, param: str) -> None:
    status, err = post(servers, "/v1/chat/completions", {"model": "tiny", "messages": HELLO, **body})
    assert status == 400, err
    assert err["error"]["type"] == "invalid_request_error" and err["error"]["param"] == param
    # The server keeps serving.
    ok = client(servers).chat.completions.create(model="tiny", messages=HELLO, max_tokens=2)
    assert ok.usage.completion_tokens == 2


def test_malformed_json_and_unknown_model(servers: InferenceServers) -> None:
    status, err = post(servers, "/v1/completions", b'{"model": "tiny", "prompt": ')
    assert status == 400 and err["error"]["param"] == "body" and "JSON" in err["error"]["message"]
    with pytest.raises(openai.NotFoundError) as exc:
        client(servers).completions.create(model="nope", prompt="hi", max_tokens=2)
    assert exc.value.body["code"] == "model_not_found" and exc.value.body["param"] == "model"


def test_full_queue_is_429_and_a_passed_deadline_is_504(start_servers) -> None:
    s = start_servers(max_num_seqs=1, max_queue_len=1)
    c = client(s)
    long = {"model": "tiny", "prompt": "go", "max_tokens": 200}
    extra = {"extra_body": {"ignore_eos": True}}
    running = c.completions.create(**long, **extra, stream=True)
    next(iter(running))  # the first request holds the only running slot
    waiting = c.completions.create(**long, **extra, stream=True)
    wait_until(lambda: s.served.engine.stats().num_waiting == 1)
    with pytest.raises(openai.RateLimitError) as exc:
        c.completions.create(model="tiny", prompt="hi", max_tokens=2)
    assert exc.value.body["type"] == "rate_limit_error"
    running.close()
    waiting.close()
    wait_until(lambda: s.served.engine.stats().num_waiting == s.served.engine.stats().num_running == 0)
    status, err = post(s, "/v1/completions", {**long, "ignore_eos": True, "request_timeout": 0.05})
    assert status == 504 and err["error"]["type"] == "timeout_error"


def test_client_disconnect_mid_stream_frees_the_kv_blocks(servers: InferenceServers) -> None:
    engine = servers.served.engine
    conn = http.client.HTTPConnection("127.0.0.1", servers.http.port, timeout=WAIT)
    body = {
        "model": "tiny",
        "prompt": "tell a long story",
        "max_tokens": 200,
        "ignore_eos": True,
        "stream": True,
    }
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.readline().startswith(b"data: ")
    assert engine.stats().kv_cache_usage > 0
    conn.sock.close()  # the client goes away mid-stream
    conn.close()
    wait_until(lambda: engine.stats().num_running == 0 and engine.stats().kv_cache_usage == 0)
    assert engine.stats().generation_tokens_total < 200


def test_lora_adapter_is_listed_routed_and_unloaded(servers: InferenceServers, tiny_adapter_dir) -> None:
    status, model = post(
        servers, "/v1/load_lora_adapter", {"lora_name": "pirate", "lora_path": str(tiny_adapter_dir)}
    )
    assert status == 200 and model["id"] == "pirate" and model["parent"] == "tiny"
    c = client(servers)
    assert [m.id for m in c.models.list()] == ["tiny", "pirate"]
    ask = {"messages": HELLO, "max_tokens": 8, "temperature": 0}
    base = c.chat.completions.create(model="tiny", **ask)
    adapted = c.chat.completions.create(model="pirate", **ask)
    assert adapted.model == "pirate" and adapted.choices[0].message.content != base.choices[0].message.content
    status, _ = post(servers, "/v1/unload_lora_adapter", {"lora_name": "pirate"})
    assert status == 200 and [m.id for m in c.models.list()] == ["tiny"]
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="pirate", **ask)


def test_health_and_prometheus_metrics(servers: InferenceServers) -> None:
    client(servers).completions.create(model="tiny", prompt="hi", max_tokens=3)
    conn = http.client.HTTPConnection("127.0.0.1", servers.http.port, timeout=WAIT)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn = http.client.HTTPConnection("127.0.0.1", servers.http.port, timeout=WAIT)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    assert "shipyard_inference_time_to_first_token_seconds_count 1.0" in text
    assert "shipyard_inference_generation_tokens_total 3.0" in text
