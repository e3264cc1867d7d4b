"""Shipyard's side: ``run_training`` of a ``type: finetune`` TrainingJob, 1 Ray worker with 2 CPUs.

Peak memory is the training worker's resident-set high-water mark (``VmHWM`` of the PID the progress
channel reports, read at every step and at the last one), so it covers the model, optimizer, activations
and the Ray worker runtime. Prints a JSON result (per-step records + peak RSS).
"""

from __future__ import annotations

import argparse
import contextlib
import json

from common import job_document, reset_hwm, vm_hwm_mb, write_result

from shipyard.storage import from_local_path
from shipyard.training.spec import parse_training_job
from shipyard.training.trainer import TrainingProgress, run_training


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--method", "--base", "--data", "--root", "--out"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--seq-len", type=int, required=True)
    parser.add_argument("--checkpointing", type=int, choices=(0, 1), required=True)
    args = parser.parse_args()
    doc = job_document(
        args.method,
        args.base,
        args.data,
        steps=args.steps,
        batch=args.batch,
        seq_len=args.seq_len,
        checkpointing=bool(args.checkpointing),
    )
    peak = {"load": 0.0, "train": 0.0}

    def watch(p: TrainingProgress) -> None:
        for pid in p.worker_pids:
            with contextlib.suppress(FileNotFoundError):  # the worker already exited
                if p.step == 1:  # model load + step 1; from here on the training peak
                    peak["load"] = vm_hwm_mb(pid)
                    reset_hwm(pid)
                else:
                    peak["train"] = max(peak["train"], vm_hwm_mb(pid))

    result = run_training(parse_training_job(doc), storage_root=from_local_path(args.root), on_progress=watch)
    records, previous = [], 0
    for r in result.history:
        records.append(
            {
                "step": r["step"],
                "loss": r["loss"],
                "step_time_s": r["step_time_s"],
                "tokens": r["tokens_seen"] - previous,
            }
        )
        previous = r["tokens_seen"]
    write_result(
        args.out,
        {
            "records": records,
            "train_peak_rss_mb": peak["train"],
            "load_peak_rss_mb": peak["load"],
            "output": result.output_model_uri,
            "metrics": json.loads(json.dumps(result.final_metrics)),
        },
    )


if __name__ == "__main__":
    main()
