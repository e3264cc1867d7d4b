"""The baseline: a plain ``transformers`` + ``peft`` (+ ``bitsandbytes``) training loop, one process.

Same base model directory, same encoded rows in the same order, same batch, optimizer (AdamW over the
trainable parameters, constant LR, grad clip 1.0), LoRA settings and gradient checkpointing as the
Shipyard job; batches are padded with ``packing.collate`` exactly as Shipyard's workers do. Only the
harness differs: no Ray, no progress channel, no checkpoints. Prints a JSON result: per-step records,
the peak RSS, and where it comes from (``phases``: the resident set at load, and per training step the
peak above the step's starting RSS during forward, backward and the optimizer step).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import reset_hwm, vm_hwm_mb, vm_rss_mb, write_result

from shipyard.finetune.loader import collate_rows, read_rows
from shipyard.storage.local import LocalStorage
from shipyard.training.data_loader import ShuffledRows


def build(method: str, base: str, checkpointing: bool) -> torch.nn.Module:
    """The model as a peft user writes it (``prepare_model_for_kbit_training`` turns checkpointing on for
    QLoRA, ``gradient_checkpointing_enable`` for the others), non-reentrant as Shipyard's."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, object] = {}
    if method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.float32,
        )
        kwargs["device_map"] = "cpu"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, **kwargs)
    reentrant = {"use_reentrant": False}
    if method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs=reentrant
        )
    elif checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=reentrant)
    if method == "full":
        return model
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--method", "--base", "--rows", "--out"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--pad-id", type=int, required=True)
    parser.add_argument("--checkpointing", type=int, choices=(0, 1), required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = read_rows(LocalStorage(), args.rows)
    baseline = vm_hwm_mb()  # interpreter + torch/transformers/peft imports, before any weights
    model = build(args.method, args.base, bool(args.checkpointing))
    model.train()
    loaded = vm_rss_mb()  # weights (+ what loading left resident)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.0)
    order = ShuffledRows(len(rows), rank=0, world_size=1, micro_batch_size=args.batch, grad_accum=1, seed=0)
    records, phases = [], {"forward": [], "backward": [], "optimizer": [], "step_start": []}
    load_peak, train_peak = vm_hwm_mb(), 0.0
    for step in range(1, args.steps + 1):
        t0 = time.monotonic()
        (indices,) = order.take_step()
        chosen = [rows[int(i)] for i in indices]
        batch = collate_rows(chosen, args.pad_id)
        start = vm_rss_mb()
        reset_hwm()  # from here: each phase's peak, relative to the step's starting RSS
        loss = model(**batch, use_cache=False).loss  # as Shipyard's objective: no KV cache to build
        forward = vm_hwm_mb()
        reset_hwm()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        backward = vm_hwm_mb()
        reset_hwm()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        opt = vm_hwm_mb()
        dt = time.monotonic() - t0
        if step == 1:  # as on Shipyard's side: model load + step 1 is the load peak, then training
            load_peak = max(load_peak, forward, backward, opt)
        else:
            train_peak = max(train_peak, forward, backward, opt)
            for key, value in (("forward", forward), ("backward", backward), ("optimizer", opt)):
                phases[key].append(value - start)
            phases["step_start"].append(start)
        tokens = sum(len(r["input_ids"]) for r in chosen)
        records.append({"step": step, "loss": float(loss.detach()), "step_time_s": dt, "tokens": tokens})
    result = {
        "records": records,
        "train_peak_rss_mb": train_peak,
        "load_peak_rss_mb": load_peak,
        "baseline_rss_mb": baseline,
        "phases": {
            "loaded_rss": loaded,
            **{f"{k}_max": max(v) for k, v in phases.items()},
            **{f"{k}_median": statistics.median(v) for k, v in phases.items()},
        },
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
