"""What ``LabelledTokenLoss`` saves: the LM head on labelled positions only vs the model's own loss.

One process, one LoRA (or full) model built as ``plain_side.build`` does, the bench's encoded rows in the
bench's order; every step is run twice on the same batch, once per objective, alternating which goes
first, with the learning rate at 0 so both see the same weights throughout. Prints tokens/s of each, the
ratio, and the losses of the first steps (they must agree). The base model, rows and pad id come from
``bench_finetune.setup`` (built once under ``--work``, shared with the bench):

    /tmp/venv-probe/bin/python benchmarks/finetune/labelled_head.py --method lora
"""

from __future__ import annotations

import argparse
import pathlib
import time

import torch
from bench_finetune import setup
from plain_side import build

from shipyard.finetune.loader import collate_rows, read_rows
from shipyard.storage.local import LocalStorage
from shipyard.training.data_loader import ShuffledRows
from shipyard.training.objective import LabelledTokenLoss, causal_lm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/shipyard-bench-finetune"))
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--method", choices=("lora", "full"), default="lora")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    base, _, rows_path, pad_id = setup(args.work, args.records, args.seq_len, args.batch)
    rows = read_rows(LocalStorage(), rows_path)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = build(args.method, base, False).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=0.0)  # same work as training, weights unchanged
    objectives = {"full logits": causal_lm, "labelled only": LabelledTokenLoss(model)}
    seconds = dict.fromkeys(objectives, 0.0)
    losses: dict[str, list[float]] = {name: [] for name in objectives}
    tokens = 0
    order = ShuffledRows(len(rows), rank=0, world_size=1, micro_batch_size=args.batch, grad_accum=1, seed=0)
    for step in range(1, args.steps + 1):
        (indices,) = order.take_step()
        chosen = [rows[int(i)] for i in indices]
        batch = collate_rows(chosen, pad_id)
        names = list(objectives) if step % 2 else list(objectives)[::-1]
        for name in names:
            t0 = time.monotonic()
            loss, _ = objectives[name](model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step > args.warmup:
                seconds[name] += time.monotonic() - t0
            losses[name].append(float(loss.detach()))
        if step > args.warmup:
            tokens += sum(len(r["input_ids"]) for r in chosen)
    labelled = sum(sum(1 for t in r["labels"][1:] if t != -100) for r in rows)
    share = labelled / sum(len(r["input_ids"]) for r in rows)
    print(f"{args.method}: {share:.2f} of the rows' tokens are labelled (before padding)")
    for name in objectives:
        ratio = seconds["full logits"] / seconds[name]
        first = ", ".join(f"{v:.5f}" for v in losses[name][:4])
        print(f"{name:14} {tokens / seconds[name]:7.1f} tok/s  {ratio:.3f}x  losses {first}")


if __name__ == "__main__":
    main()
