"""Test harness for the shared gRPC server and client: a generic probe service, servers, channels.

No Shipyard proto is needed: servers carry grpc's own health service plus a generic
``shipyard.test.v1.Probe`` service (raw bytes in and out) whose methods fail in each way a real
servicer can: typed errors, unexpected exceptions, transient unavailability, blocking. The fixtures
(``probe``, ``serve``, ``channels``) are registered for every test through ``tests/conftest.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shipyard import errors
from shipyard.errors import FieldViolation
from shipyard.rpc import (
    ClientOptions,
    ServerOptions,
    ShipyardServer,
    build_server,
    connect,
)

SERVICE = "shipyard.test.v1.Probe"
WAIT = 5.0  # upper bound for anything that should happen "now"; never reached when tests pass
FAST_RETRY = {"retry_initial_backoff_seconds": 0.01, "retry_max_backoff_seconds": 0.05}


class Probe:
    """Handlers for the generic test service; events let tests step through in-flight calls."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.flaky_calls = 0
        self.remaining_at_entry: float | None = None

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        logging.getLogger("shipyard.test.probe").info("echoing", extra={"size": len(request)})
        return request

    def invalid(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise errors.InvalidArgument(
            "invalid request",
            violations=[
                FieldViolation("spec.name", "must not be empty"),
                FieldViolation("spec.shards", "< 1"),
            ],
        )

    def missing(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise errors.NotFound("dataset 'web' not found")

    def crash(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("password=hunter2 leaked in a bug")

    def flaky(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.flaky_calls += 1
        if self.flaky_calls <= 2:
            raise errors.Unavailable("warming up")
        return b"ok"

    def block(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.remaining_at_entry = context.time_remaining()
        self.entered.set()
        self.release.wait(WAIT)
        return b"released"

    def count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"1"
        yield b"2"
        raise errors.NotFound("no third item")

    def collect(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"+".join(requests)

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for request in requests:
            if request == b"bad":
                raise errors.InvalidArgument.field("message", "must not be 'bad'")
            yield request.upper()

    def handler(self) -> grpc.GenericRpcHandler:
        unary = {
            "Echo": self.echo,
            "Invalid": self.invalid,
            "Missing": self.missing,
            "Crash": self.crash,
            "Flaky": self.flaky,
            "Block": self.block,
        }
        handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in unary.items()}
        handlers["Count"] = grpc.unary_stream_rpc_method_handler(self.count)
        handlers["Collect"] = grpc.stream_unary_rpc_method_handler(self.collect)
        handlers["Chat"] = grpc.stream_stream_rpc_method_handler(self.chat)
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


@pytest.fixture
def probe() -> Iterator[Probe]:
    probe = Probe()
    yield probe
    probe.release.set()  # never leave a handler thread blocked


ServeFn = Callable[..., ShipyardServer]


@pytest.fixture
def serve(probe: Probe) -> Iterator[ServeFn]:
    """Start a server with the probe service; every server started is stopped at teardown."""
    started: list[ShipyardServer] = []

    def start(**kwargs: object) -> ShipyardServer:
        telemetry = {k: kwargs.pop(k) for k in ("tracer_provider", "meter_provider") if k in kwargs}
        options = ServerOptions(**{"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 0, **kwargs})  # type: ignore[arg-type]
        server = build_server([], [SERVICE], options, generic_handlers=[probe.handler()], **telemetry)  # type: ignore[arg-type]
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop(0)


@pytest.fixture
def channels() -> Iterator[Callable[..., grpc.Channel]]:
    opened: list[grpc.Channel] = []

    def open_channel(target: str, **kwargs: object) -> grpc.Channel:
        channel = connect(target, ClientOptions(**kwargs))  # type: ignore[arg-type]
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()


def call(channel: grpc.Channel, method: str, request: bytes = b"hi", **kwargs: object) -> bytes:
    return channel.unary_unary(f"/{SERVICE}/{method}")(request, **kwargs)


def health(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status


def rpc_error(fn: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value  # type: ignore[return-value]
