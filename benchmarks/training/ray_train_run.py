"""The Ray Train side: Shipyard's ``run_training`` (2 Ray workers, DDP over gloo) on the shared job.

Checkpoints only at the end (``everySteps`` > steps). The step records are the ``metrics.jsonl`` that
``run_training`` writes (``TrainingResult.metrics_uri``). When the loop began is not reported by the
workers, so it is bounded from the progress callback: a report of step k arriving at wall time ``t``
means the loop began at or before ``t - elapsed_k``; the smallest such bound is taken.

    python benchmarks/training/ray_train_run.py --dataset file:///... --shape llama-tiny --out ray.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from bench_setup import add_config_args, config_from_args, job_document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from shipyard.storage import from_local_path
    from shipyard.storage.routing import RoutingStorage
    from shipyard.training.metrics import MetricsLog
    from shipyard.training.spec import parse_training_job
    from shipyard.training.trainer import TrainingProgress, run_training

    cfg = config_from_args(args)
    arrivals: list[tuple[int, float]] = []

    def record(p: TrainingProgress) -> None:
        arrivals.append((p.step, time.time()))

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        job = parse_training_job(job_document(cfg, workers=cfg.workers))
        called = time.time()
        result = run_training(job, storage_root=from_local_path(tmp), on_progress=record)
        returned = time.time()
        records = MetricsLog.read(RoutingStorage(None), result.metrics_uri)
    elapsed = {int(r["step"]): float(r["elapsed"]) for r in records}
    began = min(t - elapsed[s] for s, t in arrivals)
    out = {
        "records": records,
        "loop_began_wall": began,
        "loop_ended_wall": began + elapsed[max(elapsed)],
        "run_training_called_wall": called,
        "run_training_returned_wall": returned,
        "processes": cfg.workers,
        "restarts": result.restarts,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
