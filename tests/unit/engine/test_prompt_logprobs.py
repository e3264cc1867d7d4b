"""Prompt log-probabilities (vLLM's ``prompt_logprobs``) against Hugging Face's forward on the same prompt.

The engine scores a prompt while prefilling it, chunk by chunk, through the paged runner; every chunk
of such a request returns all its rows. The values must equal ``log_softmax`` of the HF model's logits,
whatever the chunking, batching or prefix cache did.
"""

from __future__ import annotations

import pathlib

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from shipyard.config import InferenceConfig
from shipyard.engine.llm_engine import LLMEngine
from shipyard.engine.model_runner import load_runner
from shipyard.engine.outputs import RequestOutput
from shipyard.engine.sampling_params import SamplingParams
from shipyard.errors import InvalidArgument
from shipyard.models.local import LocalModel
from tests.unit.engine.model_runner_support import build_tiny_llama


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("tiny-llama-plp")
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1")
    return directory


@pytest.fixture(scope="module")
def hf_model(tiny_dir: pathlib.Path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(tiny_dir, local_files_only=True).eval()


def make_engine(tiny_dir: pathlib.Path, **config: object) -> LLMEngine:
    settings: dict[str, object] = {"kv_cache_memory": 8e6, "block_size": 4, "max_num_batched_tokens": 7}
    cfg = InferenceConfig(**(settings | config))  # type: ignore[arg-type]
    runner, tokenizer = load_runner(LocalModel(tiny_dir, tiny_dir.name), cfg)
    return LLMEngine(runner, tokenizer, cfg)


def run(engine: LLMEngine) -> dict[str, list[RequestOutput]]:
    outputs: dict[str, list[RequestOutput]] = {}
    while engine.has_unfinished():
        for out in engine.step():
            outputs.setdefault(out.request_id, []).append(out)
    return outputs


def hf_logprobs(model: torch.nn.Module, prompt: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([prompt])).logits[0].float().log_softmax(dim=-1)


def prompt_ids(tiny_dir: pathlib.Path, text: str) -> list[int]:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir, local_files_only=True)
    return list(tokenizer(text)["input_ids"])


def test_prompt_logprobs_equal_hf_log_softmax_under_chunked_prefill_and_batching(
    tiny_dir: pathlib.Path, hf_model: torch.nn.Module
) -> None:
    engine = make_engine(tiny_dir)
    long = prompt_ids(tiny_dir, "The quick brown fox jumps over the lazy dog while the cat sleeps soundly.")
    short = prompt_ids(tiny_dir, "Hello there, general")
    assert len(long) > 2 * engine.config.max_num_batched_tokens  # prefilled over several steps
    engine.add_request("other", short, SamplingParams(max_tokens=6, temperature=0))  # decodes meanwhile
    engine.add_request("long", long, SamplingParams(max_tokens=2, temperature=0, prompt_logprobs=3))
    engine.add_request("short", short, SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0))
    outputs = run(engine)

    for name, prompt, top_n in (("long", long, 3), ("short", short, 0)):
        first, *rest = outputs[name]
        scored = first.prompt_logprobs
        assert scored is not None and len(scored) == len(prompt)
        assert scored[0] is None
        assert all(out.prompt_logprobs is None for out in rest)  # delivered once
        expected = hf_logprobs(hf_model, prompt)
        for position in range(1, len(prompt)):
            entry = scored[position]
            assert entry is not None and entry.token_id == prompt[position]
            assert entry.logprob == pytest.approx(float(expected[position - 1, prompt[position]]), abs=1e-4)
            assert len(entry.top) == top_n
            if top_n:
                best = expected[position - 1].topk(top_n)
                assert [t for t, _ in entry.top] == best.indices.tolist()
                assert [v for _, v in entry.top] == pytest.approx(best.values.tolist(), abs=1e-4)
    assert outputs["other"][0].prompt_logprobs is None  # not asked for


def test_scored_requests_bypass_the_prefix_cache_and_still_generate_the_same(
    tiny_dir: pathlib.Path, hf_model: torch.nn.Module
) -> None:
    engine = make_engine(tiny_dir, max_num_batched_tokens=64)
    prompt = prompt_ids(tiny_dir, "A shared system prompt that is long enough to fill a few blocks.")
    engine.add_request("warm", prompt, SamplingParams(max_tokens=4, temperature=0))
    plain = run(engine)["warm"]
    engine.add_request("scored", prompt, SamplingParams(max_tokens=4, temperature=0, prompt_logprobs=1))
    scored = run(engine)["scored"]
    assert scored[-1].cached_tokens == 0  # cached positions would have had no logits
    assert [t for o in scored for t in o.token_ids] == [t for o in plain for t in o.token_ids]
    first = scored[0].prompt_logprobs
    assert first is not None
    expected = hf_logprobs(hf_model, prompt)
    assert first[-1] is not None
    assert first[-1].logprob == pytest.approx(float(expected[-2, prompt[-1]]), abs=1e-4)
    engine.add_request("again", prompt, SamplingParams(max_tokens=4, temperature=0))
    assert run(engine)["again"][-1].cached_tokens > 0  # the cache still serves plain requests


def test_prompt_logprobs_out_of_range_name_the_field(tiny_dir: pathlib.Path) -> None:
    engine = make_engine(tiny_dir)
    for bad in (-1, 21):
        with pytest.raises(InvalidArgument) as caught:
            engine.add_request(f"bad{bad}", [1, 2, 3], SamplingParams(prompt_logprobs=bad))
        assert caught.value.violations[0].field == "prompt_logprobs"
