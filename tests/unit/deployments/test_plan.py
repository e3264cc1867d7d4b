"""The embedded ModelDeployment reconcile decision and the server command it runs."""

from __future__ import annotations

import os

from shipyard.deployments.local import Action, DeploymentRecord, ServerLaunch, plan_action, server_command
from shipyard.resources.model_deployment import ModelDeployment

LAUNCH = ServerLaunch(model="/models/tiny", served_model_name="tiny")


def record(launch: ServerLaunch, pid: int | None) -> DeploymentRecord:
    return DeploymentRecord("tiny", launch.to_json(), pid=pid)


def test_a_new_deployment_starts_and_a_running_identical_one_is_kept() -> None:
    assert plan_action(LAUNCH, None, alive=False) is Action.START
    assert plan_action(LAUNCH, record(LAUNCH, 1), alive=True) is Action.KEEP


def test_a_changed_model_or_a_dead_server_is_replaced() -> None:
    changed = ServerLaunch(model="/models/tiny-v2", served_model_name="tiny")
    assert plan_action(changed, record(LAUNCH, 1), alive=True) is Action.REPLACE
    assert plan_action(LAUNCH, record(LAUNCH, 1), alive=False) is Action.REPLACE


def test_scaling_to_zero_stops_the_server_and_forgets_it() -> None:
    assert plan_action(None, record(LAUNCH, 1), alive=True) is Action.STOP
    assert plan_action(None, record(LAUNCH, 1), alive=False) is Action.STOP
    assert plan_action(None, None, alive=False) is Action.KEEP


def test_a_pid_that_is_not_an_inference_server_is_not_taken_for_one() -> None:
    assert not record(LAUNCH, os.getpid()).alive()  # pytest, not shipyard_services.inference


def test_the_server_runs_with_the_operators_flags_and_the_specs_serving_options() -> None:
    deployment = ModelDeployment.model_validate(
        {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "chat"},
            "spec": {
                "model": "model:tiny",
                "adapters": [{"name": "sql", "uri": "file:///adapters/sql"}],
                "serving": {"maxNumSeqs": 8, "quantization": "int8", "maxModelLen": 512},
            },
        }
    )
    cmd = server_command(ServerLaunch.from_deployment(deployment, "/models/tiny"), python="python")
    assert cmd[:3] == ["python", "-m", "shipyard_services.inference"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert flags["--model"] == "/models/tiny" and flags["--served-model-name"] == "chat"
    assert flags["--max-num-seqs"] == "8" and flags["--quantization"] == "int8"
    assert flags["--max-model-len"] == "512" and flags["--adapter"] == "sql=file:///adapters/sql"
    assert flags["--http-port"] == "0" and flags["--grpc-port"] == "0"
