"""``shipyard.v1.InferenceService`` over a real gRPC channel, sharing one engine with the HTTP API."""

from __future__ import annotations

import json

import grpc
import jsonschema
import pytest

from shipyard.api.v1 import inference_pb2, inference_pb2_grpc
from shipyard.errors import InvalidArgument, NotFound
from shipyard.rpc import ClientOptions, connect, from_rpc_error
from shipyard_services.inference.server import InferenceServers
from tests.polling import wait_for

pytestmark = pytest.mark.integration


def stub(s: InferenceServers) -> inference_pb2_grpc.InferenceServiceStub:
    channel = connect(s.grpc.address, ClientOptions(retry_max_attempts=1, default_deadline_seconds=30))
    return inference_pb2_grpc.InferenceServiceStub(channel)


def chat(model: str = "", max_tokens: int = 6, **sampling: object) -> inference_pb2.GenerateRequest:
    return inference_pb2.GenerateRequest(
        model=model,
        chat=inference_pb2.ChatPrompt(messages=[inference_pb2.ChatMessage(role="user", content="Say hello")]),
        sampling=inference_pb2.SamplingParams(max_tokens=max_tokens, temperature=0, **sampling),
    )


def test_generate_and_stream_agree_and_report_usage(servers: InferenceServers) -> None:
    s = stub(servers)
    unary = s.Generate(chat(logprobs=1))
    assert unary.model == "tiny" and unary.finish_reason == inference_pb2.FINISH_REASON_LENGTH
    assert len(unary.token_ids) == 6 and unary.usage.completion_tokens == 6
    assert unary.usage.total_tokens == unary.usage.prompt_tokens + 6
    assert len(unary.logprobs) == 6 and all(len(lp.top_logprobs) == 1 for lp in unary.logprobs)
    parts = list(s.GenerateStream(chat()))
    assert "".join(p.text for p in parts) == unary.text
    assert [t for p in parts for t in p.token_ids] == list(unary.token_ids)
    assert parts[-1].finish_reason == inference_pb2.FINISH_REASON_LENGTH
    assert all(p.finish_reason == 0 for p in parts[:-1])


def test_token_prompt_and_http_share_the_engine(servers: InferenceServers) -> None:
    ids = servers.served.tokenizer("Once upon a time")["input_ids"]
    by_ids = stub(servers).Generate(
        inference_pb2.GenerateRequest(
            tokens=inference_pb2.TokenPrompt(token_ids=ids),
            sampling=inference_pb2.SamplingParams(max_tokens=4, temperature=0),
        )
    )
    by_text = stub(servers).Generate(
        inference_pb2.GenerateRequest(
            text="Once upon a time", sampling=inference_pb2.SamplingParams(max_tokens=4, temperature=0)
        )
    )
    assert by_ids.text == by_text.text and by_text.usage.prompt_tokens == len(ids)


def test_bad_sampling_is_invalid_argument_with_the_field(servers: InferenceServers) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        stub(servers).Generate(chat(max_tokens=6, top_p=1.5))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(exc.value)
    assert isinstance(err, InvalidArgument) and err.violations[0].field == "sampling.top_p"
    with pytest.raises(grpc.RpcError) as exc:
        stub(servers).Generate(inference_pb2.GenerateRequest(model="tiny"))
    assert from_rpc_error(exc.value).violations[0].field == "prompt"
    with pytest.raises(grpc.RpcError) as exc:
        stub(servers).Generate(chat(model="ghost"))
    assert isinstance(from_rpc_error(exc.value), NotFound)
    assert stub(servers).Generate(chat(max_tokens=2)).usage.completion_tokens == 2  # still serving


# Every value is bounded (a boolean, one digit, an enum), so even the random tiny model must close the
# object within a few tokens: the grammar leaves it no other choice.
ANSWER = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "digit": {"type": "integer", "minimum": 0, "maximum": 9},
        "colour": {"enum": ["red", "green"]},
    },
    "required": ["ok", "digit", "colour"],
    "additionalProperties": False,
}


def constrained(
    structured: inference_pb2.StructuredOutput, max_tokens: int = 40
) -> inference_pb2.GenerateRequest:
    request = chat(max_tokens=max_tokens)
    request.sampling.structured.CopyFrom(structured)
    return request


def test_json_schema_output_parses_and_validates(servers: InferenceServers) -> None:
    s = stub(servers)
    request = constrained(inference_pb2.StructuredOutput(json_schema=json.dumps(ANSWER)))
    unary = s.Generate(request)
    assert unary.finish_reason == inference_pb2.FINISH_REASON_STOP
    jsonschema.validate(json.loads(unary.text), ANSWER)
    streamed = list(s.GenerateStream(request))
    assert "".join(p.text for p in streamed) == unary.text  # greedy: the stream agrees
    regex = s.Generate(constrained(inference_pb2.StructuredOutput(regex="(yes|no)")))
    assert regex.text in ("yes", "no") and regex.finish_reason == inference_pb2.FINISH_REASON_STOP


def test_bad_schema_is_invalid_argument_naming_the_field(servers: InferenceServers) -> None:
    s = stub(servers)
    for bad in ("{not json", json.dumps({"type": "no-such-type"})):
        with pytest.raises(grpc.RpcError) as exc:
            s.Generate(constrained(inference_pb2.StructuredOutput(json_schema=bad)))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = from_rpc_error(exc.value)
        assert isinstance(err, InvalidArgument)
        assert err.violations[0].field == "sampling.structured.json_schema", err
    with pytest.raises(grpc.RpcError) as exc:
        s.Generate(constrained(inference_pb2.StructuredOutput()))
    assert from_rpc_error(exc.value).violations[0].field == "sampling.structured"
    assert s.Generate(chat(max_tokens=2)).usage.completion_tokens == 2  # still serving


def test_full_queue_is_resource_exhausted(start_servers) -> None:
    s = start_servers(max_num_seqs=1, max_queue_len=1)
    long = inference_pb2.GenerateRequest(
        text="go", sampling=inference_pb2.SamplingParams(max_tokens=200, ignore_eos=True)
    )
    first = stub(s).GenerateStream(long)
    next(first)
    second = stub(s).GenerateStream(long)
    # the second request is queued behind the first
    wait_for("a queued request", lambda: s.served.engine.stats().num_waiting == 1, timeout=30)
    with pytest.raises(grpc.RpcError) as exc:
        stub(s).Generate(chat(max_tokens=1))
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
    second.cancel()


def test_load_adapter_changes_the_output_and_lists_it(servers: InferenceServers, tiny_adapter_dir) -> None:
    s = stub(servers)
    model = s.LoadAdapter(inference_pb2.LoadAdapterRequest(name="pirate", uri=str(tiny_adapter_dir)))
    assert model.kind == inference_pb2.MODEL_KIND_ADAPTER and model.base_model == "tiny"
    listed = s.ListModels(inference_pb2.ListModelsRequest()).models
    assert [(m.name, m.kind) for m in listed] == [
        ("tiny", inference_pb2.MODEL_KIND_BASE),
        ("pirate", inference_pb2.MODEL_KIND_ADAPTER),
    ]
    base, adapted = s.Generate(chat()), s.Generate(chat(model="pirate"))
    assert adapted.model == "pirate" and adapted.token_ids != base.token_ids
    s.UnloadAdapter(inference_pb2.UnloadAdapterRequest(name="pirate"))
    assert [m.name for m in s.ListModels(inference_pb2.ListModelsRequest()).models] == ["tiny"]
    with pytest.raises(grpc.RpcError) as exc:
        s.LoadAdapter(inference_pb2.LoadAdapterRequest(name="Bad Name", uri=str(tiny_adapter_dir)))
    assert from_rpc_error(exc.value).violations[0].field == "name"
