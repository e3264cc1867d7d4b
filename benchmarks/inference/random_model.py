"""Write a model with random weights in the shape of an existing one (its config and tokenizer files).

For GPU machines that cannot fetch or carry the real weights: throughput and token-identity checks do
not depend on what the weights are. Greedy tokens of random weights are as deterministic as trained ones.

    python -m benchmarks.inference.random_model SRC_DIR DST_DIR
"""

from __future__ import annotations

import argparse
import pathlib
import shutil

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=pathlib.Path, help="a model directory: config.json and tokenizer files")
    parser.add_argument("dst", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.src), dtype=torch.float32)
    model.save_pretrained(args.dst)
    for f in args.src.iterdir():
        if f.is_file() and f.name != "config.json" and not f.name.endswith((".safetensors", ".bin", ".gguf")):
            shutil.copy(f, args.dst / f.name)
    print(f"{args.dst}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, random")


if __name__ == "__main__":
    main()
