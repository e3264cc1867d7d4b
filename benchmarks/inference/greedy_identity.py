"""Greedy tokens of the engine vs ``transformers`` ``generate()`` one request at a time, per dtype.

The unit tests pin token identity on CPU in float32; this runs the same comparison on any device (CUDA
included) with concurrent requests of mixed prompt lengths, and reports per dtype how many requests
came out token-identical and the mean length of the identical prefix. In bfloat16 the two sides run
differently shaped matmuls, so an occasional late divergence is rounding, not a bug.

    python -m benchmarks.inference.greedy_identity --model DIR --device cuda --dtypes float32,bfloat16
"""

from __future__ import annotations

import argparse
import asyncio

import torch

from benchmarks.inference.workload import Request, mixed_requests
from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.model_runner import load_runner
from shipyard.engine.sampling_params import SamplingParams
from shipyard.models.local import SMOLLM2, resolve_local_model


async def _engine_tokens(engine: AsyncLLMEngine, requests: list[Request], max_tokens: int) -> list[list[int]]:
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)

    async def one(index: int, request: Request) -> list[int]:
        tokens: list[int] = []
        async for out in engine.generate(request.prompt, params, request_id=f"r{index}"):
            tokens.extend(out.token_ids)
        return tokens

    return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))


def compare(model: str, device: str, dtype: str, requests: int, max_tokens: int) -> str:
    config = InferenceConfig(
        device=device, dtype=dtype, kv_cache_memory=2e9, max_num_seqs=16, max_num_batched_tokens=256
    )
    runner, tokenizer = load_runner(resolve_local_model(model), config)
    batch = mixed_requests(tokenizer, requests, prompt_range=(16, 300), output_range=(max_tokens, max_tokens))
    with AsyncLLMEngine(runner, tokenizer, config, model_name=model) as engine:
        ours = asyncio.run(_engine_tokens(engine, batch, max_tokens))
    same = prefix = 0
    for request, tokens in zip(batch, ours, strict=True):
        with torch.inference_mode():
            ids = torch.tensor([request.prompt], device=runner.model.device)
            out = runner.model.generate(
                ids, max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False, pad_token_id=0
            )
        reference = out[0, len(request.prompt) :].tolist()
        same += reference == tokens
        prefix += next(
            (i for i, (a, b) in enumerate(zip(reference, tokens, strict=False)) if a != b), max_tokens
        )
    return (
        f"{dtype}: {same}/{len(batch)} requests token-identical to generate(); "
        f"mean identical prefix {prefix / len(batch):.1f}/{max_tokens} tokens"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=SMOLLM2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    for dtype in args.dtypes.split(","):
        print(compare(args.model, args.device, dtype, args.requests, args.max_tokens), flush=True)


if __name__ == "__main__":
    main()
