"""The ``torchrun`` DDP baseline: ``plain_loop.train`` on every rank, the model in a stock
``DistributedDataParallel`` over gloo, the loss averaged with one ``all_reduce`` (as Shipyard's worker
does). Rank 0 writes the result.

    torchrun --nproc_per_node 2 --master_addr 127.0.0.1 --master_port 29533 \\
        benchmarks/training/torchrun_ddp.py --dataset file:///... --shape llama-tiny --out ddp.json
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.distributed as dist
from bench_setup import add_config_args, build_trainee, config_from_args
from plain_loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    cfg = config_from_args(args)
    trainee = build_trainee(cfg, rank=rank, world=world)
    wrapped = torch.nn.parallel.DistributedDataParallel(trainee.model)

    def mean_over_ranks(value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / world

    dist.barrier()  # every rank built its model: the loop starts together
    result = train(trainee, wrapped, cfg.steps, mean_over_ranks)
    dist.barrier()
    if rank == 0:
        result |= {"threads": torch.get_num_threads(), "processes": world, "accum": trainee.accum}
        result |= {"flops_per_token": trainee.flops_per_token, "params": trainee.params}
        with open(args.out, "w") as f:
            json.dump(result, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
