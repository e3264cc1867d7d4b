"""``AsyncLLMEngine``: what servers call. The step loop runs on ONE background thread.

Callers (an asyncio server, or gRPC thread-pool servicers) never touch ``LLMEngine`` directly: their
requests are validated on the caller's thread — so bad input raises before anything is queued — and
then handed to the engine thread as commands through an inbox. Everything that mutates engine state
(adding, aborting, stepping, loading adapters) runs on that thread, in order, so the engine needs no
locks of its own. Outputs flow back through each request's stream.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelRunner
from shipyard.engine.llm_engine import LLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.engine.outputs import EngineStats, RequestOutput
from shipyard.engine.request_stream import AsyncRequestStream, SyncRequestStream
from shipyard.engine.sampling_params import SamplingParams
from shipyard.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    ShipyardError,
    Unavailable,
)
from shipyard.telemetry.tracing import tracer

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from shipyard.config import StorageConfig
    from shipyard.models.registry import ModelRegistry

__all__ = ["AsyncLLMEngine"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_Stream = AsyncRequestStream | SyncRequestStream


class AsyncLLMEngine:
    def __init__(
        self,
        runner: ModelRunner,
        tokenizer: Any,
        config: InferenceConfig,
        *,
        model_name: str,
        metrics: EngineMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.engine = LLMEngine(runner, tokenizer, config, metrics=metrics)
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.config = config
        self.metrics = metrics
        self.max_model_len = self.engine.max_model_len
        self._cond = threading.Condition()
        self._inbox: deque[Callable[[], None]] = deque()
        self._streams: dict[str, _Stream] = {}
        self._queued_adds = 0  # adds in the inbox, counted against max_queue_len
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._tracer = tracer(__name__, tracer_provider)

    @classmethod
    def from_config(
        cls,
        model: str,
        config: InferenceConfig,
        *,
        served_model_name: str | None = None,
        storage_config: StorageConfig | None = None,
        registry: ModelRegistry | None = None,
        metrics: EngineMetrics | None = None,
    ) -> AsyncLLMEngine:
        """Resolve ``model`` (name, ``model:NAME``, path, URI), load it, build an engine (not started)."""
        from shipyard.engine.model_runner import load_runner
        from shipyard.models.local import resolve_local_model

        local = resolve_local_model(model, registry=registry, storage_config=storage_config)
        runner, tokenizer = load_runner(local, config)
        return cls(runner, tokenizer, config, model_name=served_model_name or local.name, metrics=metrics)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._stopped:
                raise Unavailable("the inference engine was shut down")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shipyard-engine", daemon=True)
                self._thread.start()

    def shutdown(self) -> None:
        with self._cond:
            self._stopped = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.put(Unavailable("the inference engine shut down"))

    def __enter__(self) -> AsyncLLMEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- requests ----------------------------------------------------------------------------------

    def generate(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        *,
        request_id: str,
        adapter: str | None = None,
        deadline: float | None = None,
    ) -> AsyncRequestStream:
        """Submit a request; ``async for out in engine.generate(...)`` streams its deltas.

        Must be called on the event loop that consumes it. Validation errors, a full queue and an
        unknown adapter raise here, before anything is queued. ``deadline`` is ``time.monotonic()``
        based: when it passes the request is aborted and iteration raises ``DeadlineExceeded``.
        """
        return self._submit(AsyncRequestStream, prompt_token_ids, params, request_id, adapter, deadline)

    def generate_sync(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams,
        *,
        request_id: str,
        adapter: str | None = None,
        deadline: float | None = None,
    ) -> SyncRequestStream:
        """``generate`` for threads: a blocking iterator; ``close()`` aborts the request."""
        return self._submit(SyncRequestStream, prompt_token_ids, params, request_id, adapter, deadline)

    async def abort(self, request_id: str) -> None:
        """Abort a request; its stream ends with ``finish_reason == "abort"``. Unknown ids are ignored."""
        self._push(functools.partial(self._abort_and_deliver, request_id))

    def _submit(
        self,
        stream_cls: type[AsyncRequestStream] | type[SyncRequestStream],
        prompt_token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        adapter: str | None,
        deadline: float | None,
    ) -> Any:
        if not isinstance(request_id, str) or not request_id:
            raise InvalidArgument.field("request_id", "must be a non-empty string")
        self.engine.validate_request(prompt_token_ids, params, adapter)
        if deadline is not None and deadline <= time.monotonic():
            raise DeadlineExceeded(f"request {request_id!r} arrived after its deadline")
        self.start()
        prompt = list(prompt_token_ids)
        with self._cond:
            if request_id in self._streams:
                raise InvalidArgument.field("request_id", f"{request_id!r} is already in use")
            if self.engine.num_waiting + self._queued_adds >= self.config.max_queue_len:
                raise ResourceExhausted(
                    f"the inference queue is full ({self.config.max_queue_len} waiting requests); retry later"
                )
            span = self._tracer.start_span(
                "inference.request",
                attributes={
                    "shipyard.inference.request_id": request_id,
                    "shipyard.inference.model": adapter or self.model_name,
                    "shipyard.inference.prompt_tokens": len(prompt),
                    "shipyard.inference.max_tokens": params.max_tokens,
                },
            )
            stream = stream_cls(request_id, deadline, span, self._abort_quietly)
            self._streams[request_id] = stream
            self._queued_adds += 1
            self._inbox.append(
                functools.partial(self._add, request_id, prompt, params, adapter, time.monotonic())
            )
            self._cond.notify()
        return stream

    # -- adapters and stats ------------------------------------------------------------------------

    def load_adapter(self, name: str, path: str) -> None:
        """Load a PEFT LoRA adapter served as model ``name`` (blocks until loaded)."""
        self._call(lambda: self.engine.load_adapter(name, path))

    def unload_adapter(self, name: str) -> None:
        """Unload adapter ``name``; requests still using it end with ``finish_reason == "abort"``."""
        for out in self._call(lambda: self.engine.unload_adapter(name)):
            self._deliver(out)

    def adapters(self) -> list[str]:
        return list(self.engine.runner.adapters())

    def stats(self) -> EngineStats:
        return self.engine.stats()

    # -- the engine thread -------------------------------------------------------------------------

    def _push(self, command: Callable[[], None]) -> None:
        with self._cond:
            self._inbox.append(command)
            self._cond.notify()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the engine thread (between steps) and return its result."""
        with self._cond:
            running = self._thread is not None and self._thread.is_alive()
        if not running:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def command() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                future.set_exception(exc)

        self._push(command)
        return future.result()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._inbox and not self.engine.has_unfinished() and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                commands = list(self._inbox)
                self._inbox.clear()
            for command in commands:
                try:
                    command()
                except Exception:  # noqa: BLE001 - one bad command must not stop the engine thread
                    log.exception("engine command failed")
            if self.engine.has_unfinished():
                try:
                    outputs = self.engine.step()
                except Exception as exc:  # noqa: BLE001 - a bug in a step must not stop serving
                    log.exception("engine step crashed; aborting the requests in flight")
                    outputs = self._fail_all(Internal(f"the inference engine failed: {exc}"))
                for out in outputs:
                    self._deliver(out)

    def _add(
        self, request_id: str, prompt: list[int], params: SamplingParams, adapter: str | None, arrival: float
    ) -> None:
        with self._cond:
            self._queued_adds -= 1
            if request_id not in self._streams:  # closed before it reached the engine
                return
        try:
            self.engine.add_request(request_id, prompt, params, adapter, arrival_time=arrival)
        except ShipyardError as exc:  # e.g. the adapter was unloaded meanwhile
            with self._cond:
                stream = self._streams.pop(request_id, None)
            if stream is not None:
                stream.put(exc)

    def _deliver(self, out: RequestOutput) -> None:
        with self._cond:
            stream = self._streams.get(out.request_id)
            if out.finished:
                self._streams.pop(out.request_id, None)
        if stream is not None:
            stream.put(out)

    def _abort_and_deliver(self, request_id: str) -> None:
        out = self.engine.abort(request_id)
        if out is not None:
            self._deliver(out)

    def _abort_quietly(self, request_id: str) -> None:
        """A stream's caller left: drop its stream and free its blocks on the engine thread."""
        with self._cond:
            self._streams.pop(request_id, None)
        self._push(functools.partial(self.engine.abort, request_id))

    def _fail_all(self, error: ShipyardError) -> list[RequestOutput]:
        outputs = []
        for request_id in self.engine.request_ids():
            out = self.engine.abort(request_id)
            if out is not None:
                outputs.append(dataclasses.replace(out, error=error))
        return outputs
