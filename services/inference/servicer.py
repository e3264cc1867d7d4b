"""gRPC servicer for ``shipyard.v1.InferenceService``: translate, delegate to the engine, translate back.

Handlers run on the gRPC thread pool, so they use the engine's blocking ``generate_sync``. The call's
deadline becomes the request's deadline; a cancelled call (client gone) closes the stream, which aborts
the request and frees its KV blocks. Typed errors go through the server's error interceptor, with
engine field names turned into request paths (``temperature`` -> ``sampling.temperature``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2

from shipyard.api.v1 import inference_pb2, inference_pb2_grpc
from shipyard.engine.outputs import RequestOutput
from shipyard.engine.request_stream import SyncRequestStream
from shipyard.errors import InvalidArgument
from shipyard.wire import inference as convert
from shipyard_services.inference.prompting import encode
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["InferenceServicer"]

_NO_DEADLINE = 365 * 24 * 3600.0


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, served: ServedModels) -> None:
        self._served = served

    def Generate(
        self, request: inference_pb2.GenerateRequest, context: grpc.ServicerContext
    ) -> inference_pb2.GenerateResponse:
        model, prompt, stream = self._submit(request, context)
        with stream:
            outputs = list(stream)
        return self._response(outputs, model, prompt)

    def GenerateStream(
        self, request: inference_pb2.GenerateRequest, context: grpc.ServicerContext
    ) -> Iterator[inference_pb2.GenerateResponse]:
        model, prompt, stream = self._submit(request, context)
        # A cancelled call stops pulling from this generator; closing it (finally) aborts the request.
        context.add_callback(stream.close)
        with stream:
            for out in stream:
                yield self._response([out], model, prompt)

    def ListModels(
        self, request: inference_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> inference_pb2.ListModelsResponse:
        return inference_pb2.ListModelsResponse(models=[convert.model_to_pb(m) for m in self._served.list()])

    def LoadAdapter(
        self, request: inference_pb2.LoadAdapterRequest, context: grpc.ServicerContext
    ) -> inference_pb2.Model:
        return convert.model_to_pb(self._served.load_adapter(request.name, request.uri))

    def UnloadAdapter(
        self, request: inference_pb2.UnloadAdapterRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._served.unload_adapter(request.name)
        return empty_pb2.Empty()

    def _submit(
        self, request: inference_pb2.GenerateRequest, context: grpc.ServicerContext
    ) -> tuple[str, list[int], SyncRequestStream]:
        prompt = convert.prompt_from_pb(request)
        field = {"text": "text", "tokens": "tokens.token_ids", "chat": "chat.messages"}
        token_ids = encode(
            self._served.tokenizer, prompt, field=field[request.WhichOneof("prompt") or "text"]
        )
        adapter = self._served.resolve(request.model)
        params = convert.sampling_from_pb(request.sampling)
        remaining = context.time_remaining()
        # Without a deadline gRPC reports a huge remaining time (larger than a time_t): treat as none.
        deadline = (
            time.monotonic() + remaining if remaining is not None and remaining < _NO_DEADLINE else None
        )
        try:
            stream = self._served.engine.generate_sync(
                token_ids,
                params,
                request_id=request.request_id or f"gen-{uuid.uuid4().hex}",
                adapter=adapter,
                deadline=deadline,
            )
        except InvalidArgument as exc:
            raise convert.with_request_fields(exc) from None
        return adapter or self._served.base_name, token_ids, stream

    def _response(
        self, outputs: list[RequestOutput], model: str, prompt: list[int]
    ) -> inference_pb2.GenerateResponse:
        if not any(out.prompt_logprobs for out in outputs):
            return convert.response_pb(outputs, model, self._decode)
        texts = convert.prompt_token_texts(self._served.tokenizer, prompt)
        return convert.response_pb(outputs, model, self._decode, prompt_token_ids=prompt, prompt_texts=texts)

    def _decode(self, token_id: int) -> str:
        return self._served.tokenizer.decode([token_id])
