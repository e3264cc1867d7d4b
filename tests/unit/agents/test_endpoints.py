"""Where an agent's model answers: a URL as given, a deployment locally or as its cluster Service."""

from __future__ import annotations

import pytest

from shipyard.agents.endpoints import ModelEndpoint, local_endpoint_of, resolve_endpoint
from shipyard.errors import FailedPrecondition, NotFound
from shipyard.resources.agent import AgentModel


def test_a_url_is_used_as_given() -> None:
    model = AgentModel(url="http://10.0.0.5:8000/v1/", name="m")
    assert resolve_endpoint(model, mode="cluster") == ModelEndpoint("http://10.0.0.5:8000/v1", "m")


def test_a_deployment_on_a_cluster_is_its_service() -> None:
    endpoint = resolve_endpoint(AgentModel(deployment="tiny-serve"), mode="cluster", namespace="ml")
    assert endpoint == ModelEndpoint("http://tiny-serve.ml.svc:8000/v1", None)


def test_a_local_deployment_is_its_servers_url_under_the_deployments_name() -> None:
    endpoint = resolve_endpoint(
        AgentModel(deployment="tiny-serve"), local_endpoint=lambda name: f"http://127.0.0.1:4321/v1/#{name}"
    )
    assert endpoint == ModelEndpoint("http://127.0.0.1:4321/v1/#tiny-serve", "tiny-serve")


def test_a_local_deployment_that_is_not_running_names_the_field() -> None:
    def missing(name: str) -> str | None:
        raise NotFound(f"ModelDeployment {name!r} does not run here")

    with pytest.raises(NotFound, match=r"spec\.model\.deployment.*'gone'"):
        resolve_endpoint(AgentModel(deployment="gone"), local_endpoint=local_endpoint_of(missing))
    with pytest.raises(FailedPrecondition, match="no endpoint yet"):
        resolve_endpoint(AgentModel(deployment="starting"), local_endpoint=lambda name: None)
