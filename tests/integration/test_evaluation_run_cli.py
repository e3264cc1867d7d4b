"""``python -m shipyard.evaluation.runner`` as the operator runs it: JSON line out, scores on its Job.

The Kubernetes API is kmock on loopback (``api`` fixture); the runner patches its Job through the real
``kubernetes`` client with a kubeconfig, the same call it makes in-cluster with its ServiceAccount.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from shipyard_operator import contract
from shipyard_operator.kube import KubeClient, object_path
from shipyard_operator.plans.evaluation import _scores
from tests.integration.kmock_harness import NS
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard.evaluation.runner", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_runner_prints_scores_and_annotates_its_job(
    api: tuple[KubeClient, str], shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    client, kubeconfig = api
    model = build_tiny_model(shared_data, tmp_path / "model")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "eval-1", "namespace": NS},
        "spec": {},
    }
    client.request("POST", object_path("batch/v1", "Job", NS), job)
    env = {"KUBECONFIG": kubeconfig, "SHIPYARD_STORAGE_ROOT": (tmp_path / "root").as_uri()}
    out = (tmp_path / "root/evaluations/eval-1").as_uri()
    args = [
        "--model",
        str(model),
        "--tasks",
        "hellaswag,mmlu_anatomy",
        "--batch-size",
        "4",
        "--seed",
        "0",
        "--output-uri",
        out,
        "--limit",
        "2",
        "--data-root",
        (shared_data / "eval").as_uri(),
    ]

    done = run_cli([*args, "--k8s-job", "eval-1", "--k8s-namespace", NS], env)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["reportUri"] == f"{out}/report.json"
    assert set(printed["scores"]) == {"hellaswag/acc", "hellaswag/acc_norm", "mmlu_anatomy/acc", "mmlu/acc"}
    assert "evaluated 4/4 samples" in done.stderr

    annotated = client.get("batch/v1", "Job", NS, "eval-1") or {}
    raw = annotated["metadata"]["annotations"][contract.SCORES_ANNOTATION]
    assert json.loads(raw) == printed
    assert _scores(annotated)["scores"] == printed["scores"]  # what the operator's plan reads back


def test_runner_rejects_bad_input_with_a_message_and_status_2(tmp_path: pathlib.Path) -> None:
    env = {"SHIPYARD_STORAGE_ROOT": (tmp_path / "root").as_uri()}
    done = run_cli(["--model", str(tmp_path), "--tasks", "helaswag"], env)
    assert done.returncode == 2
    assert (
        "unknown task 'helaswag'; did you mean 'hellaswag'" in done.stderr and "Traceback" not in done.stderr
    )
