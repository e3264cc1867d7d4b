"""Tokens/s and peak memory of LoRA, QLoRA and full finetuning of SmolLM2-135M-Instruct on CPU:
Shipyard's ``run_training`` (Ray worker) vs a plain ``transformers`` + ``peft`` loop on the same data.

Setup (once, cached under ``--work``): SmolLM2's GGUF converted to an HF safetensors directory (the
finetune driver's base-model cache), the first ``--records`` Alpaca-libre records, and their encoding by
``prepare_finetune`` (chat template, assistant-only labels, rows of at most ``--seq-len`` tokens). Then
per method each side runs as its own child process (``plain_side.py``, ``shipyard_side.py``), alternating
which goes first across repeats. Tokens/s = real (unpadded) tokens / step time over the steps after
``--warmup``. Peak memory = VmHWM of the process that trains (the Ray worker for Shipyard) over the
training steps from step 2 on (``reset_hwm``); the load peak (model load + step 1) is shown too. Then the
7B QLoRA memory by the same accounting (``memory_model.py``). Ray binds every interface, so run it in a
loopback-only network namespace:

    unshare -n bash -c 'ip link set lo up && /tmp/venv-probe/bin/python benchmarks/finetune/bench_finetune.py'
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
from typing import Any

from common import HERE, REPO, VARIANTS, job_document, parse_variant, steady

PYTHON = sys.executable


def setup(work: pathlib.Path, records: int, seq_len: int, batch: int) -> tuple[str, str, str, int]:
    """(base model dir, dataset file, encoded train rows URI, pad id), built once."""
    from shipyard.finetune.base_model import resolve_base_model
    from shipyard.finetune.prepare import prepare_finetune
    from shipyard.models.local import SMOLLM2
    from shipyard.storage import from_local_path
    from shipyard.storage.routing import RoutingStorage
    from shipyard.training.spec import parse_training_job

    work.mkdir(parents=True, exist_ok=True)
    storage, root = RoutingStorage(), from_local_path(work / "store")
    base = resolve_base_model(
        SMOLLM2, storage=storage, storage_root=root, storage_config=None, cache_dir=work / "tmp"
    )
    base_dir = base.uri.removeprefix("file://")
    data = work / f"alpaca-{records}.jsonl"
    lines = (REPO.parent / "shared/data/sft/alpaca_libre/alpaca_libre.jsonl").read_text().splitlines()
    data.write_text("\n".join(lines[:records]) + "\n")
    doc = job_document("lora", base_dir, str(data), steps=1, batch=batch, seq_len=seq_len, checkpointing=True)
    job = parse_training_job(doc)
    prepared = prepare_finetune(
        job.spec,
        storage=storage,
        storage_root=root,
        storage_config=None,
        work_uri=from_local_path(work / "prepared"),
        tmp=work / "tmp",
    )
    print(
        f"data: {prepared.report['kept']} of {prepared.report['total']} records kept (<= {seq_len} tokens), "
        f"{prepared.num_train} training rows, {prepared.train_tokens / prepared.num_train:.0f} tokens/row",
        flush=True,
    )
    return base_dir, str(data), prepared.train_uri.removeprefix("file://"), prepared.pad_id


def run_side(
    side: str, variant: str, args: argparse.Namespace, base: str, data: str, rows: str, pad: int, n: int
) -> dict[str, Any]:
    method, checkpointing = parse_variant(variant)
    out = args.work / f"{side}-{variant}-{n}.json"
    if side == "plain":
        cmd = [PYTHON, str(HERE / "plain_side.py"), f"--rows={rows}", f"--pad-id={pad}"]
    else:
        shutil.rmtree(args.work / f"root-{variant}-{n}", ignore_errors=True)  # else the job resumes, done
        cmd = [
            PYTHON,
            str(HERE / "shipyard_side.py"),
            f"--data={data}",
            f"--root={args.work / f'root-{variant}-{n}'}",
            f"--seq-len={args.seq_len}",
        ]
    cmd += [
        f"--method={method}",
        f"--checkpointing={int(checkpointing)}",
        f"--base={base}",
        f"--steps={args.steps}",
        f"--batch={args.batch}",
        f"--out={out}",
    ]
    load = os.getloadavg()[0]
    subprocess.run(cmd, check=True, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    return {
        **steady(result["records"], args.warmup),
        "peak_rss_mb": result["train_peak_rss_mb"],
        "load_peak_rss_mb": result["load_peak_rss_mb"],
        "baseline_rss_mb": result.get("baseline_rss_mb"),
        "phases": result.get("phases"),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/shipyard-bench-finetune"))
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--methods", default=",".join(VARIANTS), help="variants: a method, +gc/-gc to force checkpointing"
    )
    args = parser.parse_args()
    base, data, rows, pad = setup(args.work, args.records, args.seq_len, args.batch)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    # Repeats are the outer loop, so a burst of load from other jobs hits every variant, not all the runs
    # of one; within a repeat the sides alternate which goes first.
    for n in range(args.repeats):
        for variant in args.methods.split(","):
            for side in ("plain", "shipyard") if n % 2 == 0 else ("shipyard", "plain"):
                r = run_side(side, variant, args, base, data, rows, pad, n)
                results.setdefault((side, variant), []).append(r)
                rate, peak = r["tokens_per_s"], r["peak_rss_mb"]
                print(
                    f"{variant:8s} {side:9s} run {n}: {rate:8.1f} tok/s  peak {peak:7.0f} MB  "
                    f"loss {r['final_loss']:.4f}  load {r['load']:.1f}",
                    flush=True,
                )
    report(results, args)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    window = f"window ({args.warmup}, {args.steps}]"
    print(f"\n-- median of {args.repeats} run(s); batch {args.batch} x <= {args.seq_len} tokens, {window}")
    header = (
        "variant",
        "plain tok/s",
        "shipyard tok/s",
        "ratio",
        "plain peak MB",
        "shipyard peak MB",
        "load peak p/s",
        "final loss p/s",
    )
    print(f"{header[0]:9s}" + "".join(f"{h:>17s}" for h in header[1:]))
    variants = [v for v in args.methods.split(",") if ("plain", v) in results]
    for v in variants:
        p, s = results[("plain", v)], results[("shipyard", v)]
        rate_p, rate_s = _median(p, "tokens_per_s"), _median(s, "tokens_per_s")
        loss = f"{_median(p, 'final_loss'):.4f}/{_median(s, 'final_loss'):.4f}"
        cells = (f"{rate_p:.1f}", f"{rate_s:.1f}", f"{rate_s / rate_p:.3f}x")
        load = f"{_median(p, 'load_peak_rss_mb'):.0f}/{_median(s, 'load_peak_rss_mb'):.0f}"
        cells += (f"{_median(p, 'peak_rss_mb'):.0f}", f"{_median(s, 'peak_rss_mb'):.0f}", load, loss)
        print(f"{v:9s}" + "".join(f"{c:>17s}" for c in cells))
    ratios = {
        v: [s["tokens_per_s"] / p["tokens_per_s"] for p, s in zip(*_pair(results, v), strict=True)]
        for v in variants
    }
    print(
        "per-repeat speed ratios: "
        + "; ".join(f"{v} " + ", ".join(f"{r:.2f}" for r in rs) for v, rs in ratios.items())
    )
    phases(results, variants)
    accounting(results, args)


def _pair(results: dict[tuple[str, str], list[dict[str, Any]]], v: str) -> tuple[list[Any], list[Any]]:
    return results[("plain", v)], results[("shipyard", v)]


def phases(results: dict[tuple[str, str], list[dict[str, Any]]], variants: list[str]) -> None:
    """Where the plain loop's peak comes from: RSS after load, each phase's peak above the step start."""
    print("\n-- plain loop, MB: RSS after load | per step: peak above the step's starting RSS (max of steps)")
    names = ("loaded", "step start", "forward", "backward", "optimizer")
    print(f"{'variant':9s}" + "".join(f"{n:>12s}" for n in names))
    for v in variants:
        runs = [r["phases"] for r in results[("plain", v)]]
        cells = [
            statistics.median(r[k] for r in runs)
            for k in ("loaded_rss", "step_start_max", "forward_max", "backward_max", "optimizer_max")
        ]
        print(f"{v:9s}" + "".join(f"{c:>12.0f}" for c in cells))


def accounting(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Calibrate activations on the plain QLoRA run without checkpointing, check the checkpointed
    prediction against the measured QLoRA run, and apply both to a 7B Llama."""
    import memory_model as mm

    if ("plain", "qlora-gc") not in results:
        print("\n(7B accounting needs variant qlora-gc: activations are calibrated without checkpointing)")
        return
    tokens = args.batch * args.seq_len  # the longest batch bounds the peak
    arch = mm.SMOLLM2_135M
    static = sum(mm.static_bytes(arch, "qlora").values())
    logits = tokens * arch.vocab * 4 * 3
    runs = results[("plain", "qlora-gc")]
    peak, baseline = _median(runs, "peak_rss_mb") * mm.MB, _median(runs, "baseline_rss_mb") * mm.MB
    # What loading leaves resident beyond the weights (glibc keeps the freed fp32 copies the 4-bit ones
    # were made from): measured, not scaled to 7B, where the loader streams one shard at a time.
    loaded = statistics.median(r["phases"]["loaded_rss"] for r in runs) * mm.MB
    residue = loaded - baseline - static
    per_unit = mm.activation_bytes_per_unit(peak, loaded - static, static, arch, tokens, logits)
    print(
        f"\n-- QLoRA memory accounting (plain loop, SmolLM2-135M, no checkpointing): baseline "
        f"{baseline / mm.MB:.0f} MB, static {static / mm.MB:.0f} MB, load residue {residue / mm.MB:.0f} MB, "
        f"logits {logits / mm.MB:.0f} MB, activations {(peak - loaded - logits) / mm.MB:.0f} MB "
        f"({per_unit:.1f} B per token x layer x (hidden+intermediate))"
    )
    if ("plain", "qlora") in results:
        ckpt = results[("plain", "qlora")]
        loaded_ckpt = statistics.median(r["phases"]["loaded_rss"] for r in ckpt) * mm.MB
        parts = mm.estimate(arch, "qlora", per_unit, tokens, dtype_bytes=4, checkpointing=True)
        predicted = loaded_ckpt + parts["activations"] + parts["logits"]
        measured = _median(ckpt, "peak_rss_mb") * mm.MB
        print(
            f"QLoRA with checkpointing at 135M: predicted {predicted / mm.MB:.0f} MB (RSS after load "
            f"{loaded_ckpt / mm.MB:.0f} + activations + logits), measured {measured / mm.MB:.0f} MB"
        )
    for label, seq, dtype, ckpt in (
        ("same batch, fp32 (CPU), no grad ckpt", tokens, 4, False),
        ("same batch, fp32 (CPU), grad ckpt", tokens, 4, True),
        ("1 x 2048 tokens, bf16, no grad ckpt", 2048, 2, False),
        ("1 x 2048 tokens, bf16, grad ckpt (XTuner's setting)", 2048, 2, True),
    ):
        parts = mm.estimate(mm.LLAMA_7B, "qlora", per_unit, seq, dtype_bytes=dtype, checkpointing=ckpt)
        total = sum(parts.values())
        detail = ", ".join(f"{k} {v / mm.MB / 1024:.2f} GB" for k, v in parts.items())
        print(f"7B QLoRA, {label}: {total / mm.MB / 1024:.2f} GB = {detail}")


if __name__ == "__main__":
    main()
