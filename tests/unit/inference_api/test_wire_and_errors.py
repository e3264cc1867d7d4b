"""Wire conversion and the HTTP error mapping, without servers."""

from __future__ import annotations

import pytest

from shipyard.api.v1 import inference_pb2
from shipyard.engine.outputs import RequestOutput, TokenLogprob
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.structured import StructuredOutput
from shipyard.errors import DeadlineExceeded, InvalidArgument, NotFound, ResourceExhausted
from shipyard.wire import inference as convert
from shipyard_services.inference.openai.errors import HTTP_STATUS, error_body, renamed
from shipyard_services.inference.openai.protocol import ChatCompletionRequest, CompletionRequest


def test_sampling_round_trip_keeps_unset_fields_at_their_defaults() -> None:
    params = SamplingParams(max_tokens=7, temperature=0.0, stop=("\n",), seed=3, logprobs=2)
    back = convert.sampling_from_pb(convert.sampling_to_pb(params))
    assert back == params
    assert convert.sampling_from_pb(inference_pb2.SamplingParams()) == SamplingParams()


@pytest.mark.parametrize(
    "structured",
    [
        StructuredOutput.json_schema({"type": "object"}, field="structured.json_schema"),
        StructuredOutput("json_object", field="structured.json_object"),
        StructuredOutput("regex", "(yes|no)", field="structured.regex"),
        StructuredOutput("lark", 'start: "a"+', field="structured.lark"),
    ],
)
def test_structured_output_round_trips_and_names_its_request_field(structured: StructuredOutput) -> None:
    params = SamplingParams(max_tokens=8, structured=structured)
    back = convert.sampling_from_pb(convert.sampling_to_pb(params))
    assert back == params
    assert convert.request_field(back.structured.field) == f"sampling.{structured.field}"


def test_structured_output_without_a_kind_is_invalid() -> None:
    pb = inference_pb2.SamplingParams(structured=inference_pb2.StructuredOutput())
    with pytest.raises(InvalidArgument) as exc:
        convert.sampling_from_pb(pb)
    assert convert.with_request_fields(exc.value).violations[0].field == "sampling.structured"


def test_prompt_forms_and_missing_prompt() -> None:
    req = inference_pb2.GenerateRequest(tokens=inference_pb2.TokenPrompt(token_ids=[1, 2]))
    assert convert.prompt_from_pb(req).token_ids == (1, 2)
    with pytest.raises(InvalidArgument) as exc:
        convert.prompt_from_pb(inference_pb2.GenerateRequest())
    assert exc.value.violations[0].field == "prompt"
    chat = inference_pb2.GenerateRequest(
        chat=inference_pb2.ChatPrompt(messages=[inference_pb2.ChatMessage()])
    )
    with pytest.raises(InvalidArgument) as exc:
        convert.prompt_from_pb(chat)
    assert exc.value.violations[0].field == "chat.messages[0].role"


def test_engine_fields_become_request_paths() -> None:
    err = convert.with_request_fields(InvalidArgument.field("stop[1]", "must not be empty"))
    assert err.violations[0].field == "sampling.stop[1]" and err.message == "invalid sampling.stop[1]"
    assert convert.request_field("prompt") == "prompt"


def test_deltas_concatenate_into_one_response() -> None:
    def out(text: str, token: int, finished: bool) -> RequestOutput:
        return RequestOutput(
            "r1",
            text,
            (token,),
            (TokenLogprob(token, -0.5, ((token, -0.5),)),),
            finished,
            "length" if finished else None,
            4,
            2 if finished else 1,
            0,
        )

    pb = convert.response_pb([out("a", 5, False), out("b", 6, True)], "tiny", str)
    assert pb.text == "ab" and list(pb.token_ids) == [5, 6]
    assert pb.finish_reason == inference_pb2.FINISH_REASON_LENGTH and pb.usage.total_tokens == 6
    assert [lp.token for lp in pb.logprobs] == ["5", "6"]


def test_http_errors_follow_openai_shape_and_status() -> None:
    body = error_body(renamed(InvalidArgument.field("prompt", "too long"), {"prompt": "messages"}))
    assert body["error"] == {
        "message": "invalid messages: messages: too long",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "invalid_argument",
    }
    assert error_body(NotFound("model 'x' does not exist"))["error"]["code"] == "model_not_found"
    assert HTTP_STATUS[ResourceExhausted.code] == 429 and HTTP_STATUS[DeadlineExceeded.code] == 504


def test_openai_requests_map_onto_sampling_params() -> None:
    chat = ChatCompletionRequest(
        model="m",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        logprobs=True,
        top_logprobs=3,
        stop="END",
    )
    params = chat.sampling_params(default_max_tokens=100)
    assert params.max_tokens == 100 and params.logprobs == 3 and params.stop == ("END",)
    assert chat.message_dicts() == [{"role": "user", "content": "hi"}]
    assert CompletionRequest(prompt="x").sampling_params(100).max_tokens == 16
