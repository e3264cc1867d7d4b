"""Fixtures that run the real inference servers (HTTP + gRPC, one engine) on loopback for the tests."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.rpc import ServerOptions
from shipyard_services.inference.server import InferenceServers
from shipyard_services.inference.serving_models import ServedModels
from tests.unit.inference_api.tiny_model import engine_config

StartServers = Callable[..., InferenceServers]


@pytest.fixture
def start_servers(tiny_model_dir: pathlib.Path) -> Iterator[StartServers]:
    """Start servers on free ports around a fresh engine (``engine_config`` overrides as kwargs)."""
    started: list[InferenceServers] = []

    def start(**overrides: object) -> InferenceServers:
        registry = CollectorRegistry()
        engine = AsyncLLMEngine.from_config(
            str(tiny_model_dir),
            engine_config(**overrides),
            served_model_name="tiny",
            metrics=EngineMetrics(registry),
        )
        servers = InferenceServers.start(
            ServedModels(engine, source=str(tiny_model_dir)),
            registry,
            http_host="127.0.0.1",
            http_port=0,
            grpc_options=ServerOptions(shutdown_grace_seconds=1.0),
        )
        started.append(servers)
        return servers

    yield start
    for servers in started:
        servers.stop()


@pytest.fixture
def servers(start_servers: StartServers) -> InferenceServers:
    return start_servers()
