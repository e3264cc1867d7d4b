"""The gRPC server every Shipyard service runs: health, reflection, interceptors, TLS, graceful stop.

A service's ``__main__`` does ``build_server(...)`` then ``serve_forever()``. Handlers can read the time
left before the caller's deadline with ``context.time_remaining()``; clients built with
``shipyard.rpc.client.connect`` always send one.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider

from shipyard.errors import FailedPrecondition, InvalidArgument, Unavailable
from shipyard.rpc.interceptors import AuthInterceptor, ErrorMappingInterceptor, TelemetryInterceptor
from shipyard.telemetry.metrics import RpcServerMetrics

log = logging.getLogger(__name__)

AddServicerFn = Callable[[Any, grpc.Server], None]

# Clients ping every keepalive_time_seconds (>= 10 s, see ClientOptions) while calls are open; the
# server's default would answer pings more frequent than 5 minutes with GOAWAY and drop long streams.
_MIN_CLIENT_PING_INTERVAL_MS = 10_000


@dataclass(frozen=True)
class ServerOptions:
    """How a service listens; mirrors the ``grpc`` section of ``ShipyardConfig``."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port; ``ShipyardServer.port`` tells which
    max_message_bytes: int = 64 * 1024 * 1024
    auth_token: str | None = field(default=None, repr=False)  # None: no authentication
    tls_cert_file: str | Path | None = None
    tls_key_file: str | Path | None = None
    shutdown_grace_seconds: float = 10.0
    max_workers: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidArgument.field("port", f"{self.port} is not a port (0-65535)")
        if self.max_message_bytes <= 0:
            raise InvalidArgument.field("max_message_bytes", "must be positive")
        if self.shutdown_grace_seconds < 0:
            raise InvalidArgument.field("shutdown_grace_seconds", "must not be negative")
        if self.max_workers < 1:
            raise InvalidArgument.field("max_workers", "must be at least 1")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            raise InvalidArgument.field(missing, "TLS needs both a certificate and a key file")


class ServerState(enum.Enum):
    NEW = "NEW"
    SERVING = "SERVING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


class _HealthServicer(health.HealthServicer):
    """grpc's health servicer without its watch-close deadlock.

    ``set``/``enter_graceful_shutdown`` push updates to watchers while holding the servicer's lock, and a
    push blocks until gRPC's event thread completes the previous send. When a watcher closes at that
    moment, gRPC's event thread runs the close callback, which waits for the same lock: both stall
    forever (seen here as ``stop()`` hanging). Running the cleanup on its own thread frees the event
    thread. Upstream is moving the pushes out of the lock (grpc/grpc#43403).
    """

    def _on_close_callback(self, send_response_callback, service):  # type: ignore[no-untyped-def]
        cleanup = super()._on_close_callback(send_response_callback, service)
        return lambda: threading.Thread(target=cleanup, name="health-watch-close", daemon=True).start()


def _read(path: str | Path, field_name: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument.field(field_name, f"cannot read {path}: {exc.strerror or exc}") from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ShipyardServer:
    """A built gRPC server: ``start``, ``stop(grace)``, ``wait_for_termination``, signal handling."""

    def __init__(
        self,
        server: grpc.Server,
        health_servicer: health.HealthServicer,
        service_names: Sequence[str],
        host: str,
        port: int,
        options: ServerOptions,
    ) -> None:
        self._server = server
        self.health = health_servicer  # services may flip their own status, e.g. while warming up
        self._service_names = list(service_names)
        self.host = host
        self.port = port
        self._options = options
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.state = ServerState.NEW

    @property
    def address(self) -> str:
        """``host:port`` to dial (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> ShipyardServer:
        """Start accepting RPCs and report every service SERVING."""
        with self._lock:
            if self.state is not ServerState.NEW:
                raise FailedPrecondition(f"server is {self.state.value}; it can only be started once")
            self._server.start()
            for name in ["", *self._service_names]:
                self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
            self.state = ServerState.SERVING
        log.info("gRPC server listening", extra={"address": self.address, "services": self._service_names})
        return self

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, refuse new RPCs, let in-flight ones finish for ``grace`` seconds, then end.

        Blocks until the server has terminated. Safe to call again (e.g. a second SIGTERM): later calls
        just wait for the first to finish.
        """
        grace = self._options.shutdown_grace_seconds if grace is None else grace
        with self._lock:
            if self.state in (ServerState.STOPPING, ServerState.STOPPED):
                first = False
            else:
                first = True
                self.state = ServerState.STOPPING
                # Health first, so watchers and load balancers see NOT_SERVING before connections drop.
                self.health.enter_graceful_shutdown()
                log.info("gRPC server stopping", extra={"grace_seconds": grace})
        self._server.stop(grace).wait()
        if first:
            self.state = ServerState.STOPPED
            self._stopped.set()
            log.info("gRPC server stopped")
        else:
            self._stopped.wait()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until ``stop`` has finished (True) or ``timeout`` passes (False).

        Signal handlers still run while the main thread waits here.
        """
        return self._stopped.wait(timeout)

    def install_signal_handlers(
        self, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    ) -> Callable[[], None]:
        """On SIGTERM/SIGINT, stop gracefully (in a thread; the handler must return quickly).

        Must be called from the main thread. Returns a function that restores the previous handlers.
        """
        previous = {sig: signal.getsignal(sig) for sig in signals}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            threading.Thread(target=self.stop, name="shipyard-grpc-stop", daemon=True).start()

        for sig in signals:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def serve_forever(self) -> None:
        """What a ``__main__`` calls: start, stop gracefully on SIGTERM/SIGINT, return once stopped."""
        self.start()
        restore = self.install_signal_handlers()
        try:
            self.wait_for_termination()
        finally:
            restore()

    def __enter__(self) -> ShipyardServer:
        return self.start() if self.state is ServerState.NEW else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def build_server(
    servicers: Sequence[tuple[AddServicerFn, Any]],
    service_names: Sequence[str],
    options: ServerOptions,
    *,
    generic_handlers: Sequence[grpc.GenericRpcHandler] = (),
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> ShipyardServer:
    """A server (not started) bound to ``options.host:options.port`` with ``servicers`` registered.

    ``servicers`` are ``(add_XServicer_to_server, servicer)`` pairs from generated code;
    ``service_names`` their full names (``shipyard.v1.IngestService``) for health and reflection.
    Without TLS files the server is plaintext (meant for loopback or a mesh that provides mTLS).
    """
    metrics = RpcServerMetrics(meter_provider.get_meter("shipyard.rpc")) if meter_provider else None
    interceptors: list[grpc.ServerInterceptor] = [TelemetryInterceptor(tracer_provider, metrics)]
    if options.auth_token is not None:
        interceptors.append(AuthInterceptor(options.auth_token))
    interceptors.append(ErrorMappingInterceptor())

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=options.max_workers, thread_name_prefix="grpc-handler"),
        interceptors=interceptors,
        options=[
            ("grpc.max_send_message_length", options.max_message_bytes),
            ("grpc.max_receive_message_length", options.max_message_bytes),
            # Without this a second server on the same explicit port silently shares it.
            ("grpc.so_reuseport", 0),
            ("grpc.http2.min_ping_interval_without_data_ms", _MIN_CLIENT_PING_INTERVAL_MS),
        ],
    )
    health_servicer = _HealthServicer()
    for name in ["", *service_names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)  # until start()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for add, servicer in servicers:
        add(servicer, server)
    if generic_handlers:
        server.add_generic_rpc_handlers(tuple(generic_handlers))
    reflected = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(reflected, server)

    host = options.host.strip("[]")
    bind = f"[{host}]:{options.port}" if ":" in host else f"{host}:{options.port}"
    try:
        if options.tls_cert_file is not None and options.tls_key_file is not None:
            key = _read(options.tls_key_file, "tls_key_file")
            cert = _read(options.tls_cert_file, "tls_cert_file")
            port = server.add_secure_port(bind, grpc.ssl_server_credentials([(key, cert)]))
        else:
            if not _is_loopback(host):
                log.warning("serving plaintext gRPC on a non-loopback address", extra={"address": bind})
            port = server.add_insecure_port(bind)
    except RuntimeError as exc:  # grpc raises RuntimeError("Failed to bind ...")
        raise Unavailable(f"cannot listen on {bind}: {exc}") from exc
    if port == 0:
        raise Unavailable(f"cannot listen on {bind}")
    return ShipyardServer(server, health_servicer, service_names, host, port, options)
