"""Quality and memory of int8 weights and the int8 KV cache on SmolLM2-135M, against fp32 (CPU).

Teacher-forced scoring of text slices from the shared corpus through the paged runner: each slice's
first token is prefilled, then every further token is fed as a decode step, so every position reads
its whole prefix back from the (possibly int8) KV cache. Per variant: perplexity and its delta, greedy
(argmax) agreement with fp32, logit error vs fp32, bytes of the linear weights and of one token's K/V,
and decode tokens/s over the scoring loop.

    /tmp/venv-probe/bin/python -m benchmarks.inference.bench_int8 [--slices 8] [--tokens 128]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from benchmarks.inference.workload import corpus_tokens
from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelInput, SequenceChunk
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.models.local import SMOLLM2, resolve_local_model

VARIANTS = {
    "fp32": {},
    "int8_weights": {"quantization": "int8"},
    "int8_kv": {"kv_cache_dtype": "int8"},
    "int8_both": {"quantization": "int8", "kv_cache_dtype": "int8"},
}


def score(runner: PagedModelRunner, slices: list[list[int]]) -> tuple[torch.Tensor, float]:
    """Logits ``[slices, tokens - 1, vocab]`` predicting tokens 1.., and decode tokens/s."""
    per_seq = math.ceil(len(slices[0]) / runner.block_size)
    tables = [list(range(i * per_seq, (i + 1) * per_seq)) for i in range(len(slices))]
    steps = []
    t0 = time.perf_counter()
    for pos in range(len(slices[0]) - 1):
        chunks = [SequenceChunk(i, [s[pos]], pos, tables[i], True) for i, s in enumerate(slices)]
        steps.append(runner.execute(ModelInput(chunks)))
    elapsed = time.perf_counter() - t0
    return torch.stack(steps, dim=1), len(slices) * (len(slices[0]) - 1) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = InferenceConfig(device="cpu", kv_cache_memory=2e8)
    reference = None
    rows = []
    for name, overrides in VARIANTS.items():
        runner, tokenizer = load_runner(resolve_local_model(SMOLLM2), base.model_copy(update=overrides))
        tokens = corpus_tokens(tokenizer, limit=args.slices * args.tokens * 4)
        stride = len(tokens) // args.slices
        slices = [tokens[i * stride : i * stride + args.tokens] for i in range(args.slices)]
        logits, tok_s = score(runner, slices)
        targets = torch.tensor([s[1:] for s in slices])
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        if reference is None:
            reference = logits
        linear = sum(
            b.nbytes for n, b in runner.model.named_buffers() if n.endswith("qweight") or n.endswith("scales")
        ) + sum(p.nbytes for n, p in runner.model.named_parameters() if "_proj" in n)
        rows.append(
            {
                "variant": name,
                "ppl": math.exp(float(nll)),
                "greedy_agree": float((logits.argmax(-1) == reference.argmax(-1)).float().mean()),
                "max_logit_err": float((logits - reference).abs().max()),
                "mean_logit_err": float((logits - reference).abs().mean()),
                "linear_MB": linear / 1e6,
                "kv_bytes_per_token": runner.bytes_per_block / runner.block_size,
                "decode_tok_s": tok_s,
            }
        )
        print(rows[-1], flush=True)
        del runner
    ppl0 = rows[0]["ppl"]
    print()
    print(f"{args.slices} slices x {args.tokens} tokens of pride_and_prejudice, threads={args.threads}")
    print(
        f"{'variant':<14}{'ppl':>8}{'d_ppl':>8}{'agree':>8}{'max_err':>9}{'mean_err':>9}"
        f"{'linear_MB':>10}{'kv_B/tok':>10}{'tok/s':>8}"
    )
    for r in rows:
        print(
            f"{r['variant']:<14}{r['ppl']:>8.3f}{r['ppl'] - ppl0:>+8.3f}{r['greedy_agree']:>8.3f}"
            f"{r['max_logit_err']:>9.3f}{r['mean_logit_err']:>9.4f}{r['linear_MB']:>10.1f}"
            f"{r['kv_bytes_per_token']:>10.0f}{r['decode_tok_s']:>8.1f}"
        )


if __name__ == "__main__":
    main()
