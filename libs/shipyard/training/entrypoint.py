"""The command a cluster runs for a TrainingJob (``python -m shipyard.training.entrypoint --job-json``).

The operator puts this in the KubeRay ``RayJob``'s entrypoint, so a cluster run executes exactly the
training code of embedded mode, on the Ray cluster the RayJob created (``ray_address="auto"``), with
storage from the pod's configuration (``SHIPYARD_STORAGE_ROOT``, S3 credentials from its Secret).
Exit codes: 0 succeeded, 2 invalid spec (user error), 1 any other failure (reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from shipyard.config import load_config
from shipyard.errors import Code, ShipyardError
from shipyard.training.spec import parse_training_job
from shipyard.training.trainer import TrainingProgress, run_training

log = logging.getLogger("shipyard.training")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard.training.entrypoint", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--job-json", help="the TrainingJob document as JSON")
    source.add_argument("--job-file", help="a TrainingJob YAML/JSON file")
    parser.add_argument("--ray-address", default="auto", help="Ray cluster address (default: the RayJob's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config()
        if args.job_json is not None:
            job = parse_training_job(json.loads(args.job_json))
        else:
            from shipyard.training.spec import load_training_job_file

            job = load_training_job_file(args.job_file)

        def report(p: TrainingProgress) -> None:
            # One parseable line per step: visible in the RayJob's logs.
            log.info("progress %s", json.dumps({"step": p.step, "totalSteps": p.total_steps, **p.metrics}))

        result = run_training(
            job,
            storage_root=config.storage.root,
            storage_config=config.storage,
            on_progress=report,
            ray_address=args.ray_address,
        )
    except (ShipyardError, json.JSONDecodeError) as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, json.JSONDecodeError) or exc.code is Code.INVALID_ARGUMENT else 1
    outcome = {"outputModel": result.output_model_uri, "registeredModel": result.registered}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
