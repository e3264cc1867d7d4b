"""The OpenAI-compatible HTTP app: routes, one error mapping, per-request spans, ``/metrics``.

``build_app`` takes the shared ``ServedModels`` (the engine) and the Prometheus registry the engine's
metrics live in; the gRPC servicer uses the same ``ServedModels`` in the same process.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shipyard.telemetry.tracing import tracer
from shipyard.wire.inference import ModelInfo
from shipyard_services.inference.openai.errors import install_error_handlers
from shipyard_services.inference.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    LoadLoraAdapterRequest,
    UnloadLoraAdapterRequest,
)
from shipyard_services.inference.openai.serving_chat import create_chat_completion
from shipyard_services.inference.openai.serving_completions import create_completion
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["build_app"]


def build_app(
    served: ServedModels,
    registry: CollectorRegistry,
    *,
    tracer_provider: trace.TracerProvider | None = None,
) -> FastAPI:
    app = FastAPI(title="Shipyard inference", version="v1", docs_url="/docs", redoc_url=None)
    app.state.served = served
    install_error_handlers(app)
    spans = tracer("shipyard.inference.http", tracer_provider)
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        with spans.start_as_current_span("POST /v1/chat/completions", kind=trace.SpanKind.SERVER) as span:
            span.set_attributes(
                {"shipyard.inference.model": body.model, "shipyard.inference.stream": body.stream}
            )
            return await create_chat_completion(body, served)

    @router.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> Any:
        with spans.start_as_current_span("POST /v1/completions", kind=trace.SpanKind.SERVER) as span:
            span.set_attributes(
                {"shipyard.inference.model": body.model, "shipyard.inference.stream": body.stream}
            )
            return await create_completion(body, served)

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_object(m) for m in served.list()]}

    @router.get("/v1/models/{name:path}")
    async def get_model(name: str) -> dict[str, Any]:
        return _model_object(served.get(name))

    @router.post("/v1/load_lora_adapter")
    async def load_lora_adapter(body: LoadLoraAdapterRequest) -> dict[str, Any]:
        # Loading reads and checks weights (maybe downloads them): keep it off the event loop.
        info = await run_in_threadpool(served.load_adapter, body.lora_name, body.lora_path)
        return _model_object(info)

    @router.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(body: UnloadLoraAdapterRequest) -> dict[str, Any]:
        await run_in_threadpool(served.unload_adapter, body.lora_name)
        return {"id": body.lora_name, "object": "model", "deleted": True}

    @router.get("/health")
    async def health() -> JSONResponse:
        stats = served.engine.stats()
        return JSONResponse({"status": "ok", "waiting": stats.num_waiting, "running": stats.num_running})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return app


def _model_object(info: ModelInfo) -> dict[str, Any]:
    """An OpenAI ``Model`` plus vLLM's ``root``/``parent``/``max_model_len``."""
    return {
        "id": info.name,
        "object": "model",
        "created": 0,
        "owned_by": "shipyard",
        "root": info.source or info.name,
        "parent": info.base_model or None,
        "max_model_len": info.max_model_len,
    }
