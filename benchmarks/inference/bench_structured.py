"""The cost of constrained decoding: N concurrent SmolLM2-135M chat requests with and without a JSON schema.

Both sides send the same chat prompts (asking for a JSON record), greedy, to ``AsyncLLMEngine`` on the
same loaded model; the constrained side adds ``StructuredOutput.json_schema`` (llguidance masks each
step's logits). Throughput is output tokens per second of wall time; "valid" is the share of outputs
that parse as JSON and validate against the schema (``jsonschema``).

    /tmp/venv-probe/bin/python -m benchmarks.inference.bench_structured [--requests 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import jsonschema
import torch

from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.structured import StructuredOutput
from shipyard.models.local import SMOLLM2, resolve_local_model

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "city": {"type": "string"},
        "hobbies": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "age", "city", "hobbies"],
    "additionalProperties": False,
}
PEOPLE = ["Alice", "Bob", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
CITIES = ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Pune", "Quito", "Rome"]


def prompts(tokenizer: Any, count: int) -> list[list[int]]:
    out = []
    for i in range(count):
        question = (
            f"Describe {PEOPLE[i % len(PEOPLE)]}, who lives in {CITIES[i % len(CITIES)]}, as a JSON object "
            'with the keys "name", "age", "city" and "hobbies".'
        )
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=True
        )
        out.append(list(ids["input_ids"]) if hasattr(ids, "keys") else list(ids))
    return out


def run(
    runner: PagedModelRunner,
    tokenizer: Any,
    config: InferenceConfig,
    batch: list[list[int]],
    params: SamplingParams,
) -> dict[str, Any]:
    async def drive(engine: AsyncLLMEngine) -> tuple[list[str], int, float]:
        t0 = time.perf_counter()

        async def one(index: int, prompt: list[int]) -> tuple[str, int]:
            text, tokens = "", 0
            async for out in engine.generate(prompt, params, request_id=f"r{index}"):
                text += out.text
                tokens += len(out.token_ids)
            return text, tokens

        results = await asyncio.gather(*(one(i, p) for i, p in enumerate(batch)))
        return [t for t, _ in results], sum(n for _, n in results), time.perf_counter() - t0

    with AsyncLLMEngine(runner, tokenizer, config, model_name=SMOLLM2) as engine:
        texts, tokens, wall = asyncio.run(drive(engine))
    return {
        "output_tokens": tokens,
        "wall_s": wall,
        "output_tok_s": tokens / wall,
        "valid_pct": 100.0 * sum(_valid(t) for t in texts) / len(texts),
        "example": texts[0],
    }


def _valid(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), SCHEMA)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see README)")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = InferenceConfig(device="cpu", kv_cache_memory=1.5e9, max_num_seqs=64, max_num_batched_tokens=512)
    runner, tokenizer = load_runner(resolve_local_model(SMOLLM2), config)
    batch = prompts(tokenizer, args.requests)
    free = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
    constrained = SamplingParams(
        max_tokens=args.max_tokens, temperature=0.0, structured=StructuredOutput.json_schema(SCHEMA)
    )
    run(runner, tokenizer, config, batch[:2], constrained)  # warm-up: allocations, grammar compile
    sides = {"unconstrained": run(runner, tokenizer, config, batch, free)}
    sides["json_schema"] = run(runner, tokenizer, config, batch, constrained)
    print(f"threads={torch.get_num_threads()} requests={len(batch)} max_tokens={args.max_tokens}\n")
    names = list(sides)
    print(f"{'metric':<14}" + "".join(f"{n:>16}" for n in names) + f"{'json_schema/unconstrained':>28}")
    for metric in ("output_tok_s", "wall_s", "output_tokens", "valid_pct"):
        a, b = sides["json_schema"][metric], sides["unconstrained"][metric]
        ratio = f"{a / b:>27.2f}x" if b else f"{'-':>28}"
        print(f"{metric:<14}" + "".join(f"{float(sides[n][metric]):>16.1f}" for n in names) + ratio)
    for name in names:
        print(f"\n{name} example: {sides[name]['example']!r}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "sides": sides}, out, indent=2)


if __name__ == "__main__":
    main()
