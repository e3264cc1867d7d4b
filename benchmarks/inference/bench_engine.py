"""Shipyard's engine vs ``transformers`` ``generate()``: 64 concurrent requests on SmolLM2-135M (CPU, fp32).

Sides, all on the same loaded model, greedy, each request generating exactly its ``max_tokens``:

* ``shipyard``: every request submitted at once to ``AsyncLLMEngine`` (continuous batching, paged KV
  cache, chunked prefill), token times taken from each request's stream;
* ``hf_sequential``: ``generate()`` one request at a time, in arrival order;
* ``hf_static``: ``generate()`` on batches of ``--static-batch`` requests (left padding); a batch runs
  until its longest request is done and only each request's own tokens are counted.

All requests arrive at t=0, so TTFT includes queueing. HF token times come from a logits processor
that stamps each generation step. Then the prefix-cache run: requests sharing a long system prompt,
through the engine with and without prefix caching.

    /tmp/venv-probe/bin/python -m benchmarks.inference.bench_engine [--requests 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from benchmarks.inference.workload import (
    Request,
    Timeline,
    mixed_requests,
    shared_prefix_requests,
    summarize,
)
from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.engine.sampling_params import SamplingParams
from shipyard.models.local import SMOLLM2, resolve_local_model

METRICS = (
    "output_tok_s",
    "wall_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "output_tokens",
)


class _StepClock(LogitsProcessor):
    """Stamps each generation step: step k's logits are ready just before token k is picked."""

    def __init__(self, t0: float) -> None:
        self.t0, self.times = t0, []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.times.append(time.perf_counter() - self.t0)
        return scores


def run_engine(
    runner: PagedModelRunner, tokenizer: Any, config: InferenceConfig, requests: list[Request]
) -> tuple[list[Timeline], float]:
    async def drive(engine: AsyncLLMEngine) -> tuple[list[Timeline], float]:
        t0 = time.perf_counter()

        async def one(index: int, request: Request) -> Timeline:
            timeline = Timeline()
            params = SamplingParams(max_tokens=request.max_tokens, temperature=0.0, ignore_eos=True)
            async for out in engine.generate(request.prompt, params, request_id=f"r{index}"):
                timeline.token_times.extend([time.perf_counter() - t0] * len(out.token_ids))
            return timeline

        timelines = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
        return list(timelines), time.perf_counter() - t0

    with AsyncLLMEngine(runner, tokenizer, config, model_name=SMOLLM2) as engine:
        return asyncio.run(drive(engine))


def run_hf(model: Any, requests: list[Request], batch_size: int, pad_id: int) -> tuple[list[Timeline], float]:
    timelines: list[Timeline] = []
    t0 = time.perf_counter()
    for begin in range(0, len(requests), batch_size):
        batch = requests[begin : begin + batch_size]
        width = max(len(r.prompt) for r in batch)
        ids = torch.tensor(
            [[pad_id] * (width - len(r.prompt)) + r.prompt for r in batch], device=model.device
        )
        mask = torch.tensor(
            [[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in batch], device=model.device
        )
        steps = max(r.max_tokens for r in batch)
        clock = _StepClock(t0)
        with torch.inference_mode():
            model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=steps,
                min_new_tokens=steps,
                do_sample=False,
                pad_token_id=pad_id,
                logits_processor=LogitsProcessorList([clock]),
            )
        timelines.extend(Timeline(clock.times[: r.max_tokens]) for r in batch)
    return timelines, time.perf_counter() - t0


def print_table(rows: list[dict[str, Any]], ratios: list[tuple[str, str]]) -> None:
    names = [str(r["system"]) for r in rows]
    by_name = {str(r["system"]): r for r in rows}
    header = f"{'metric':<16}" + "".join(f"{n:>16}" for n in names)
    header += "".join(f"{a + '/' + b:>28}" for a, b in ratios)
    print(header)
    for metric in METRICS:
        line = f"{metric:<16}" + "".join(f"{float(by_name[n][metric]):>16.1f}" for n in names)
        line += "".join(f"{float(by_name[a][metric]) / float(by_name[b][metric]):>27.2f}x" for a, b in ratios)
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--prompt-range", type=int, nargs=2, default=(32, 256))
    parser.add_argument("--output-range", type=int, nargs=2, default=(16, 96))
    parser.add_argument("--static-batch", type=int, default=16)
    parser.add_argument("--prefix-requests", type=int, default=32)
    parser.add_argument("--prefix-tokens", type=int, default=512)
    parser.add_argument(
        "--skip", default="", help="comma-separated sides to skip: hf_sequential,hf_static,prefix"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch threads for every side (default: the usable cores; see README)",
    )
    parser.add_argument("--model", default=SMOLLM2, help="a model name, path or URI (default: SmolLM2)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    parser.add_argument("--kv-cache-memory", type=float, default=1.5e9, help="bytes, or a fraction (<= 1)")
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--max-num-batched-tokens", type=int, default=512)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))

    config = InferenceConfig(
        device=args.device,
        dtype=args.dtype,
        kv_cache_memory=args.kv_cache_memory,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
    )
    runner, tokenizer = load_runner(resolve_local_model(args.model), config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    requests = mixed_requests(
        tokenizer, args.requests, prompt_range=tuple(args.prompt_range), output_range=tuple(args.output_range)
    )
    print(
        f"device={runner.placement.device} dtype={runner.placement.dtype} "
        f"threads={torch.get_num_threads()} requests={len(requests)} KV blocks={runner.num_blocks} "
        f"load average={os.getloadavg()[0]:.1f}",
        flush=True,
    )
    run_engine(runner, tokenizer, config, requests[:2])  # warm-up: first-call allocations
    results = [summarize("shipyard", *run_engine(runner, tokenizer, config, requests))]
    print("shipyard done", results[-1], flush=True)
    ratios = []
    if "hf_static" not in skip:
        results.append(summarize("hf_static", *run_hf(runner.model, requests, args.static_batch, pad_id)))
        ratios.append(("shipyard", "hf_static"))
        print("hf_static done", results[-1], flush=True)
    if "hf_sequential" not in skip:
        results.append(summarize("hf_sequential", *run_hf(runner.model, requests, 1, pad_id)))
        ratios.insert(0, ("shipyard", "hf_sequential"))
        print("hf_sequential done", results[-1], flush=True)
    print()
    print_table(results, ratios)

    prefix_rows: list[dict[str, Any]] = []
    if "prefix" not in skip:
        shared = shared_prefix_requests(
            tokenizer,
            args.prefix_requests,
            prefix_tokens=args.prefix_tokens,
            question_tokens=24,
            max_tokens=16,
        )
        for enabled in (True, False):
            variant = config.model_copy(update={"enable_prefix_caching": enabled})
            name = "prefix_cache_on" if enabled else "prefix_cache_off"
            prefix_rows.append(summarize(name, *run_engine(runner, tokenizer, variant, shared)))
        print(f"\nprefix caching: {len(shared)} requests sharing a {args.prefix_tokens}-token system prompt")
        print_table(prefix_rows, [("prefix_cache_on", "prefix_cache_off")])
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "mixed": results, "prefix": prefix_rows}, out, indent=2)


if __name__ == "__main__":
    main()
