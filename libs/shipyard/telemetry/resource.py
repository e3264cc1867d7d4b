"""The OpenTelemetry ``Resource`` that names a Shipyard service, shared by its traces and metrics."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource


def service_resource(service_name: str, attributes: Mapping[str, str] | None = None) -> Resource:
    """A resource carrying ``service.name`` (plus any extra attributes, e.g. ``service.version``).

    Built explicitly rather than with ``Resource.create`` so no ``OTEL_*`` environment variable is read
    deep inside the library; deployments that want more attributes pass them in.
    """
    return Resource({**(attributes or {}), SERVICE_NAME: service_name})
