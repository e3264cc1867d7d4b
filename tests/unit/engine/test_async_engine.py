"""AsyncLLMEngine: one engine thread serving many concurrent streams, cancellation, deadlines, errors."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard.config import InferenceConfig
from shipyard.engine import AsyncLLMEngine, SamplingParams
from shipyard.engine.batch import ModelInput
from shipyard.errors import DeadlineExceeded, Internal, InvalidArgument, NotFound, ResourceExhausted
from tests.polling import wait_for
from tests.unit.engine.scripted_runner import ScriptedRunner, reference

GREEDY = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)


class GatedRunner(ScriptedRunner):
    """Blocks each step until the test opens the gate, so tests control when steps happen."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def execute(self, batch: ModelInput) -> Any:
        self.entered.set()
        assert self.gate.wait(timeout=30)
        return super().execute(batch)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    wait_for("the engine thread", condition, timeout=timeout, interval=0.005)


def make(tokenizer: Any, runner: ScriptedRunner | None = None, **config: Any) -> AsyncLLMEngine:
    settings = {"max_num_batched_tokens": 32, **config}
    return AsyncLLMEngine(
        runner or ScriptedRunner(), tokenizer, InferenceConfig(**settings), model_name="tiny"
    )


def test_many_concurrent_streams_all_finish_correctly(tokenizer: Any) -> None:
    prompts = {f"r{i}": [3 + (5 * i + j) % 60 for j in range(2 + i % 9)] for i in range(40)}

    async def consume(eng: AsyncLLMEngine, rid: str) -> tuple[list[int], str | None, int]:
        got: list[int] = []
        reason = None
        deltas = 0
        async for out in eng.generate(prompts[rid], GREEDY, request_id=rid):
            got.extend(out.token_ids)
            reason = out.finish_reason
            deltas += 1
        return got, reason, deltas

    async def main(eng: AsyncLLMEngine) -> list[tuple[list[int], str | None, int]]:
        return await asyncio.gather(*(consume(eng, rid) for rid in prompts))

    with make(tokenizer, ScriptedRunner(num_blocks=40), max_num_seqs=16) as eng:
        results = asyncio.run(main(eng))
        assert eng.stats().kv_cache_usage == 0
    for rid, (got, reason, deltas) in zip(prompts, results, strict=True):
        assert got == reference(prompts[rid], 6, 64) and reason == "length" and deltas == 6


def test_closing_a_stream_mid_way_aborts_and_frees_its_blocks(tokenizer: Any) -> None:
    async def main(eng: AsyncLLMEngine) -> int:
        stream = eng.generate(
            list(range(3, 40)), SamplingParams(max_tokens=80, ignore_eos=True), request_id="a"
        )
        seen = 0
        async for _ in stream:
            seen += 1
            if seen == 3:
                assert eng.stats().kv_cache_usage > 0
                break
        await stream.aclose()
        return seen

    with make(tokenizer) as eng:
        assert asyncio.run(main(eng)) == 3
        wait_until(lambda: eng.stats().kv_cache_usage == 0 and eng.stats().num_running == 0)


def test_cancelling_the_consumer_task_aborts_the_request(tokenizer: Any) -> None:
    runner = GatedRunner()

    async def main(eng: AsyncLLMEngine) -> None:
        async def consume() -> None:
            async for _ in eng.generate([5, 6, 7], GREEDY, request_id="c"):
                pass

        task = asyncio.create_task(consume())
        await asyncio.to_thread(runner.entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with make(tokenizer, runner) as eng:
        asyncio.run(main(eng))
        runner.gate.set()
        wait_until(lambda: not eng.engine.has_unfinished() and eng.stats().kv_cache_usage == 0)


def test_deadline_aborts_and_raises_deadline_exceeded(tokenizer: Any) -> None:
    runner = GatedRunner()

    async def main(eng: AsyncLLMEngine) -> None:
        stream = eng.generate([5, 6, 7], GREEDY, request_id="d", deadline=time.monotonic() + 0.2)
        with pytest.raises(DeadlineExceeded):
            async for _ in stream:
                pass

    with make(tokenizer, runner) as eng:
        asyncio.run(main(eng))
        runner.gate.set()
        wait_until(lambda: not eng.engine.has_unfinished() and eng.stats().kv_cache_usage == 0)
        with pytest.raises(DeadlineExceeded):
            eng.generate_sync([5], GREEDY, request_id="late", deadline=time.monotonic() - 1)


def test_full_queue_is_resource_exhausted(tokenizer: Any) -> None:
    runner = GatedRunner()
    with make(tokenizer, runner, max_queue_len=2, max_num_seqs=1) as eng:
        first = eng.generate_sync([5, 6], GREEDY, request_id="first")
        assert runner.entered.wait(10)  # the engine thread is busy with "first"
        queued = [eng.generate_sync([5, 6], GREEDY, request_id=f"q{i}") for i in range(2)]
        with pytest.raises(ResourceExhausted, match="queue is full"):
            eng.generate_sync([5, 6], GREEDY, request_id="over")
        runner.gate.set()
        for stream in [first, *queued]:
            assert [t for out in stream for t in out.token_ids] == reference([5, 6], 6, 64)


def test_bad_requests_raise_before_queueing_and_the_engine_keeps_serving(tokenizer: Any) -> None:
    runner = ScriptedRunner()
    with make(tokenizer, runner) as eng:
        with pytest.raises(InvalidArgument) as info:
            eng.generate_sync([5], SamplingParams(temperature=-1), request_id="t")
        assert info.value.violations[0].field == "temperature"
        with pytest.raises(NotFound):
            eng.generate_sync([5], GREEDY, request_id="t", adapter="nope")
        runner.fail_next = True
        with pytest.raises(Internal, match="device lost"):
            list(eng.generate_sync([5, 6], GREEDY, request_id="boom"))
        assert [
            t for o in eng.generate_sync([5, 6], GREEDY, request_id="ok") for t in o.token_ids
        ] == reference([5, 6], 6, 64)
        assert eng.stats().kv_cache_usage == 0


def test_abort_ends_the_stream_with_finish_reason_abort(tokenizer: Any) -> None:
    runner = GatedRunner()

    async def main(eng: AsyncLLMEngine) -> list[Any]:
        stream = eng.generate([5, 6, 7], SamplingParams(max_tokens=100, ignore_eos=True), request_id="x")
        await asyncio.to_thread(runner.entered.wait, 10)
        await eng.abort("x")
        runner.gate.set()
        return [out async for out in stream]

    with make(tokenizer, runner) as eng:
        outs = asyncio.run(main(eng))
    assert outs[-1].finished and outs[-1].finish_reason == "abort"
    assert len(outs) <= 2


def test_adapters_load_route_and_unload_through_the_engine_thread(tokenizer: Any) -> None:
    with make(tokenizer) as eng:
        eng.load_adapter("sql", "/adapters/sql")
        assert eng.adapters() == ["sql"]
        out = [
            t for o in eng.generate_sync([5, 6], GREEDY, request_id="l", adapter="sql") for t in o.token_ids
        ]
        assert out == reference([5, 6], 6, 64, adapter="sql")
        eng.unload_adapter("sql")
        assert eng.adapters() == []
        with pytest.raises(InvalidArgument, match="path"):
            eng.load_adapter("bad", "")


def test_one_span_per_request_with_usage(tokenizer: Any) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    eng = AsyncLLMEngine(
        ScriptedRunner(), tokenizer, InferenceConfig(), model_name="tiny", tracer_provider=provider
    )
    with eng:
        list(eng.generate_sync([5, 6], GREEDY, request_id="s1"))
        stream = eng.generate_sync([5, 6], GREEDY, request_id="s2")
        next(stream)
        stream.close()
    spans = {s.attributes["shipyard.inference.request_id"]: s for s in exporter.get_finished_spans()}
    assert spans["s1"].attributes["shipyard.inference.completion_tokens"] == 6
    assert spans["s1"].attributes["shipyard.inference.finish_reason"] == "length"
    assert spans["s2"].attributes["shipyard.inference.finish_reason"] == "abort"
    eng.shutdown()  # idempotent
