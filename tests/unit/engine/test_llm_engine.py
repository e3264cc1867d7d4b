"""The synchronous step loop over a scripted runner: batching, paging, caching, finishing, failures."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shipyard.config import InferenceConfig
from shipyard.engine import EngineMetrics, LLMEngine, RequestOutput, SamplingParams
from shipyard.errors import Internal, InvalidArgument, NotFound, ResourceExhausted
from tests.unit.engine.scripted_runner import ScriptedRunner, reference

GREEDY = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)


def engine(tokenizer: Any, runner: ScriptedRunner | None = None, **config: Any) -> LLMEngine:
    settings = {"max_num_batched_tokens": 16, "max_num_seqs": 8, **config}
    return LLMEngine(runner or ScriptedRunner(), tokenizer, InferenceConfig(**settings))


def drain(eng: LLMEngine) -> dict[str, list[RequestOutput]]:
    outs: dict[str, list[RequestOutput]] = {}
    for _ in range(1000):
        if not eng.has_unfinished():
            return outs
        for out in eng.step():
            outs.setdefault(out.request_id, []).append(out)
    raise AssertionError("engine did not finish")


def tokens(outs: list[RequestOutput]) -> list[int]:
    return [t for o in outs for t in o.token_ids]


def prompts() -> dict[str, list[int]]:
    return {f"r{i}": [(7 * i + j) % 60 + 3 for j in range(3 + 5 * i)] for i in range(6)}


@pytest.mark.parametrize("num_blocks", [64, 12])  # 12 blocks of 4: preemption is forced
def test_batched_paged_chunked_output_matches_the_unbatched_reference(
    tokenizer: Any, num_blocks: int
) -> None:
    runner = ScriptedRunner(num_blocks=num_blocks)
    eng = engine(tokenizer, runner)
    for rid, prompt in prompts().items():
        eng.add_request(rid, prompt, GREEDY)
    outs = drain(eng)
    for rid, prompt in prompts().items():
        assert tokens(outs[rid]) == reference(prompt, 6, 64), rid
        assert outs[rid][-1].finish_reason == "length" and outs[rid][-1].completion_tokens == 6
    assert max(len(b.chunks) for b in runner.batches) > 1  # batched
    assert any(
        len(c.token_ids) > 1 and not c.needs_logits for b in runner.batches for c in b.chunks
    )  # chunked
    stats = eng.stats()
    assert stats.kv_cache_usage == 0 and stats.num_running == stats.num_waiting == 0
    assert (stats.num_preemptions > 0) == (num_blocks == 12)


def test_shared_system_prompt_hits_prefix_cache_with_identical_output(tokenizer: Any) -> None:
    system = [5 + (i % 50) for i in range(24)]
    questions = {f"q{i}": system + [10 + i, 20 + i, 30 + i] for i in range(4)}
    results = {}
    for caching in (False, True):
        eng = engine(tokenizer, enable_prefix_caching=caching)
        eng.add_request("warm", system + [3], GREEDY)
        drain(eng)
        for rid, prompt in questions.items():
            eng.add_request(rid, prompt, GREEDY)
        outs = drain(eng)
        results[caching] = {rid: tokens(o) for rid, o in outs.items()}
        cached = [outs[rid][-1].cached_tokens for rid in questions]
        assert cached == ([24] * 4 if caching else [0] * 4)
        assert (eng.stats().prefix_cache_hit_rate > 0.5) == caching
    assert results[True] == results[False]
    assert results[True]["q0"] == reference(questions["q0"], 6, 64)


def test_stop_token_eos_and_stop_string_finish_with_stop(tokenizer: Any) -> None:
    prompt = [10, 11, 12]
    expected = reference(prompt, 6, 64)
    eng = engine(tokenizer)
    eng.add_request("tok", prompt, SamplingParams(max_tokens=6, temperature=0, stop_token_ids=[expected[2]]))
    out = drain(eng)["tok"]
    assert tokens(out) == expected[:3] and out[-1].finish_reason == "stop"
    full = "".join(o.text for o in drain_one(eng, prompt, GREEDY))
    stop = full[2:4]
    cut = drain_one(eng, prompt, SamplingParams(max_tokens=6, temperature=0, stop=[stop], ignore_eos=True))
    assert "".join(o.text for o in cut) == full[: full.index(stop)]
    assert cut[-1].finish_reason == "stop"


def test_eos_stops_unless_ignored(tokenizer: Any) -> None:
    prompt = [10, 11, 12]
    first = reference(prompt, 1, 64)[0]
    tokenizer_eos = type("Tok", (), {"eos_token_id": first, "decode": tokenizer.decode})()
    eng = engine(tokenizer_eos)
    out = drain_one(eng, prompt, SamplingParams(max_tokens=6, temperature=0))
    assert tokens(out) == [first] and out[-1].finish_reason == "stop" and out[-1].text == ""
    out = drain_one(eng, prompt, SamplingParams(max_tokens=6, temperature=0, ignore_eos=True))
    assert len(tokens(out)) == 6


def drain_one(eng: LLMEngine, prompt: list[int], params: SamplingParams) -> list[RequestOutput]:
    rid = f"one-{eng.stats().prompt_tokens_total}"
    eng.add_request(rid, prompt, params)
    return drain(eng)[rid]


def test_abort_frees_blocks_at_once(tokenizer: Any) -> None:
    eng = engine(tokenizer)
    eng.add_request("a", list(range(3, 30)), GREEDY)
    eng.step()
    assert eng.stats().kv_cache_usage > 0
    final = eng.abort("a")
    assert final is not None and final.finished and final.finish_reason == "abort"
    assert eng.stats().kv_cache_usage == 0 and not eng.has_unfinished()
    assert eng.abort("a") is None


def test_runner_failure_fails_only_that_steps_requests(tokenizer: Any) -> None:
    runner = ScriptedRunner()
    eng = engine(tokenizer, runner)
    eng.add_request("doomed", [5, 6, 7], GREEDY)
    runner.fail_next = True
    [out] = eng.step()
    assert out.finished and isinstance(out.error, Internal) and "device lost" in str(out.error)
    assert eng.stats().kv_cache_usage == 0
    assert tokens(drain_one(eng, [5, 6, 7], GREEDY)) == reference([5, 6, 7], 6, 64)


def test_admission_errors_are_typed_and_queue_nothing(tokenizer: Any) -> None:
    eng = engine(tokenizer, max_queue_len=2, max_model_len=64)
    with pytest.raises(InvalidArgument) as info:
        eng.add_request("x", [5] * 70, GREEDY)
    assert info.value.violations[0].field == "prompt"
    with pytest.raises(InvalidArgument) as info:
        eng.add_request("x", [5] * 60, SamplingParams(max_tokens=10))
    assert info.value.violations[0].field == "max_tokens"
    with pytest.raises(InvalidArgument) as info:
        eng.add_request("x", [5, 99], GREEDY)
    assert info.value.violations[0].field == "prompt[1]"
    with pytest.raises(InvalidArgument) as info:
        eng.add_request("x", [5], SamplingParams(top_p=2.0))
    assert info.value.violations[0].field == "top_p"
    with pytest.raises(NotFound, match="sql"):
        eng.add_request("x", [5], GREEDY, adapter="sql")
    assert not eng.has_unfinished()
    eng.add_request("a", [5], GREEDY)
    eng.add_request("b", [5], GREEDY)
    with pytest.raises(ResourceExhausted):
        eng.add_request("c", [5], GREEDY)
    with pytest.raises(InvalidArgument):
        eng.add_request("a", [5], GREEDY)  # id in use


def test_adapter_routes_to_its_weights_and_unload_aborts_its_requests(tokenizer: Any) -> None:
    eng = engine(tokenizer)
    eng.load_adapter("sql", "/adapters/sql")
    base = tokens(drain_one(eng, [5, 6, 7], GREEDY))
    eng.add_request("lora", [5, 6, 7], GREEDY, adapter="sql")
    lora = tokens(drain(eng)["lora"])
    assert lora == reference([5, 6, 7], 6, 64, adapter="sql") != base
    eng.add_request("busy", [5, 6, 7], GREEDY, adapter="sql")
    eng.step()
    [aborted] = eng.unload_adapter("sql")
    assert aborted.request_id == "busy" and aborted.finish_reason == "abort"
    assert eng.stats().kv_cache_usage == 0


def test_seeded_requests_reproduce_and_logprobs_stream(tokenizer: Any) -> None:
    eng = engine(tokenizer)
    params = SamplingParams(max_tokens=8, temperature=1.5, seed=11, ignore_eos=True, logprobs=2)
    a = drain_one(eng, [5, 6, 7], params)
    b = drain_one(eng, [5, 6, 7], params)
    assert tokens(a) == tokens(b)
    assert all(o.logprobs is not None and len(o.logprobs) == 1 and len(o.logprobs[0].top) == 2 for o in a)
    other = drain_one(eng, [5, 6, 7], SamplingParams(max_tokens=8, temperature=1.5, seed=12, ignore_eos=True))
    assert tokens(other) != tokens(a)


def test_metrics_record_latencies_tokens_and_load(tokenizer: Any) -> None:
    now = [100.0]
    registry = CollectorRegistry()
    eng = LLMEngine(
        ScriptedRunner(), tokenizer, InferenceConfig(), metrics=EngineMetrics(registry), clock=lambda: now[0]
    )
    eng.add_request("a", [5, 6, 7], GREEDY)
    assert registry.get_sample_value("shipyard_inference_requests_waiting") == 1
    while eng.has_unfinished():
        now[0] += 0.25
        eng.step()
    value = registry.get_sample_value
    assert value("shipyard_inference_time_to_first_token_seconds_count") == 1
    assert value("shipyard_inference_time_to_first_token_seconds_sum") == pytest.approx(0.25)
    assert value("shipyard_inference_inter_token_latency_seconds_count") == 5
    assert value("shipyard_inference_request_latency_seconds_sum") == pytest.approx(1.5)
    assert value("shipyard_inference_prompt_tokens_total") == 3
    assert value("shipyard_inference_generation_tokens_total") == 6
    assert value("shipyard_inference_requests_running") == 0
    assert value("shipyard_inference_kv_cache_usage_ratio") == 0
    assert value("shipyard_inference_preemptions_total") == 0
