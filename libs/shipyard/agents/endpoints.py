"""Where an agent's model answers: ``spec.model`` resolved to an OpenAI-compatible base URL.

A ``url`` is used as given. A ``deployment`` names a ModelDeployment, which is reached differently in
the two places Shipyard runs: in embedded mode it is a local inference server whose URL only its state
file knows (``local_endpoint``, backed by ``LocalDeployments``); on a cluster it is the Service the
operator made for it, ``http://<deployment>.<namespace>.svc:8000/v1``. One pure function decides, so the
service, the CLI and their tests agree without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.resources.agent import AgentModel

__all__ = ["CLUSTER_HTTP_PORT", "ModelEndpoint", "resolve_endpoint"]

# The port the operator's Service exposes the OpenAI API on (the inference container's http port).
CLUSTER_HTTP_PORT = 8000

DeploymentMode = Literal["local", "cluster"]


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible ``/v1`` base URL and the model name to request (None: the server's first)."""

    base_url: str
    model: str | None = None


def resolve_endpoint(
    model: AgentModel,
    *,
    mode: DeploymentMode = "local",
    namespace: str = "default",
    local_endpoint: Callable[[str], str | None] | None = None,
) -> ModelEndpoint:
    """The endpoint ``model`` names. ``local_endpoint(deployment)`` is the local server's URL (or None).

    A local deployment that does not run here is ``NotFound`` on ``spec.model.deployment``'s name; one
    whose server has not reported an endpoint is ``FailedPrecondition``.
    """
    if model.url is not None:
        return ModelEndpoint(model.url.rstrip("/"), model.name)
    deployment = model.deployment
    if deployment is None:  # the spec type guarantees exactly one; keep the message if it is bypassed
        raise InvalidArgument.field("spec.model", "set exactly one of deployment or url")
    if mode == "cluster":
        return ModelEndpoint(f"http://{deployment}.{namespace}.svc:{CLUSTER_HTTP_PORT}/v1", model.name)
    if local_endpoint is None:
        raise FailedPrecondition(f"spec.model.deployment: no local deployments to resolve {deployment!r}")
    url = local_endpoint(deployment)
    if url is None:
        raise FailedPrecondition(
            f"spec.model.deployment: ModelDeployment {deployment!r} has no endpoint yet (is it running?)"
        )
    # The local server serves the deployment under its own name (served_model_name = metadata.name).
    return ModelEndpoint(url.rstrip("/"), model.name or deployment)


def local_endpoint_of(get_endpoint: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """Wrap a lookup that raises ``NotFound`` so the error names the spec field a user must fix."""

    def lookup(name: str) -> str | None:
        try:
            return get_endpoint(name)
        except NotFound as exc:
            raise NotFound(
                f"spec.model.deployment: ModelDeployment {name!r} does not run here "
                f"(shipyard apply -f its manifest first)"
            ) from exc

    return lookup
