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

from common import HERE, METHODS, REPO, job_document, steady

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
    job = parse_training_job(job_document("lora", base_dir, str(data), steps=1, batch=batch, seq_len=seq_len))
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
    side: str, method: str, args: argparse.Namespace, base: str, data: str, rows: str, pad: int, n: int
) -> dict[str, Any]:
    out = args.work / f"{side}-{method}-{n}.json"
    if side == "plain":
        cmd = [PYTHON, str(HERE / "plain_side.py"), f"--rows={rows}", f"--pad-id={pad}"]
    else:
        shutil.rmtree(args.work / f"root-{method}-{n}", ignore_errors=True)  # else the job resumes, done
        cmd = [
            PYTHON,
            str(HERE / "shipyard_side.py"),
            f"--data={data}",
            f"--root={args.work / f'root-{method}-{n}'}",
            f"--seq-len={args.seq_len}",
        ]
    cmd += [
        f"--method={method}",
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
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    base, data, rows, pad = setup(args.work, args.records, args.seq_len, args.batch)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for method in args.methods.split(","):
        for n in range(args.repeats):
            for side in ("plain", "shipyard") if n % 2 == 0 else ("shipyard", "plain"):
                r = run_side(side, method, args, base, data, rows, pad, n)
                results.setdefault((side, method), []).append(r)
                rate, peak = r["tokens_per_s"], r["peak_rss_mb"]
                print(
                    f"{method:6s} {side:9s} run {n}: {rate:8.1f} tok/s  peak {peak:7.0f} MB  "
                    f"loss {r['final_loss']:.4f}  load {r['load']:.1f}",
                    flush=True,
                )
    report(results, args)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> None:
    import memory_model as mm

    window = f"window ({args.warmup}, {args.steps}]"
    print(f"\n-- median of {args.repeats} run(s); batch {args.batch} x <= {args.seq_len} tokens, {window}")
    header = (
        "method",
        "plain tok/s",
        "shipyard tok/s",
        "ratio",
        "plain peak MB",
        "shipyard peak MB",
        "load peak p/s",
        "final loss p/s",
    )
    print(f"{header[0]:8s}" + "".join(f"{h:>17s}" for h in header[1:]))
    for m in [m for m in args.methods.split(",") if ("plain", m) in results]:
        p, s = results[("plain", m)], results[("shipyard", m)]
        rate_p, rate_s = _median(p, "tokens_per_s"), _median(s, "tokens_per_s")
        loss = f"{_median(p, 'final_loss'):.4f}/{_median(s, 'final_loss'):.4f}"
        cells = (f"{rate_p:.1f}", f"{rate_s:.1f}", f"{rate_s / rate_p:.3f}x")
        load = f"{_median(p, 'load_peak_rss_mb'):.0f}/{_median(s, 'load_peak_rss_mb'):.0f}"
        cells += (f"{_median(p, 'peak_rss_mb'):.0f}", f"{_median(s, 'peak_rss_mb'):.0f}", load, loss)
        print(f"{m:8s}" + "".join(f"{c:>17s}" for c in cells))
    if ("plain", "qlora") not in results:
        return
    runs = results[("plain", "qlora")]
    tokens = args.batch * args.seq_len  # the longest batch bounds the peak
    static = sum(mm.static_bytes(mm.SMOLLM2_135M, "qlora").values())
    logits = tokens * mm.SMOLLM2_135M.vocab * 4 * 3
    peak, baseline = _median(runs, "peak_rss_mb") * mm.MB, _median(runs, "baseline_rss_mb") * mm.MB
    per_unit = mm.activation_bytes_per_unit(peak, baseline, static, mm.SMOLLM2_135M, tokens, logits)
    activations = (peak - baseline - static - logits) / mm.MB
    print(
        f"\n-- QLoRA memory accounting (plain loop, SmolLM2-135M): baseline {baseline / mm.MB:.0f} MB, "
        f"static {static / mm.MB:.0f} MB, logits {logits / mm.MB:.0f} MB, activations {activations:.0f} MB "
        f"({per_unit:.1f} B per token x layer x (hidden+intermediate))"
    )
    for label, seq, dtype in (
        ("same batch, fp32 (CPU)", tokens, 4),
        ("1 x 2048 tokens, bf16 (XTuner's setting, no grad ckpt)", 2048, 2),
    ):
        parts = mm.estimate(mm.LLAMA_7B, "qlora", per_unit, seq, dtype_bytes=dtype, logits_dtype_bytes=4)
        total = sum(parts.values())
        detail = ", ".join(f"{k} {v / mm.MB / 1024:.2f} GB" for k, v in parts.items())
        print(f"7B QLoRA, {label}: {total / mm.MB / 1024:.2f} GB = {detail}")


if __name__ == "__main__":
    main()
