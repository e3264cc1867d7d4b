"""Both servers around one engine: the OpenAI HTTP app (uvicorn, own thread) and the gRPC server.

``InferenceServers.start`` binds both (port 0 picks free ports, reported in ``http_port``/``grpc``),
``stop`` drains gRPC calls, stops uvicorn (closing open streams, which aborts their requests) and then
the engine. ``__main__`` and the tests run exactly this.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from dataclasses import dataclass, field

import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from shipyard.api.v1 import inference_pb2, inference_pb2_grpc
from shipyard.errors import Unavailable
from shipyard.rpc.server import ServerOptions, ShipyardServer, build_server
from shipyard_services.inference.openai.app import build_app
from shipyard_services.inference.servicer import InferenceServicer
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["SERVICE_NAME", "HttpServer", "InferenceServers"]

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name
_START_TIMEOUT_SECONDS = 30.0

log = logging.getLogger(__name__)


class HttpServer:
    """uvicorn on a socket bound up front (so port 0 is known at once), served from a daemon thread."""

    def __init__(self, app: object, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host.strip("[]"), port))
        except OSError as exc:
            self._socket.close()
            raise Unavailable(f"cannot listen on {host}:{port} for HTTP: {exc.strerror or exc}") from exc
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_config=None, access_log=False, timeout_graceful_shutdown=5, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="shipyard-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread.start()
        deadline = threading.Event()
        # Poll uvicorn's own flag: it flips once the socket accepts connections.
        for _ in range(int(_START_TIMEOUT_SECONDS / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            raise Unavailable(f"the HTTP server on {self.url} did not start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))


@dataclass
class InferenceServers:
    served: ServedModels
    http: HttpServer
    grpc: ShipyardServer
    _stopped: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(
        cls,
        served: ServedModels,
        registry: CollectorRegistry,
        *,
        http_host: str,
        http_port: int,
        grpc_options: ServerOptions,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> InferenceServers:
        served.engine.start()
        app = build_app(served, registry, tracer_provider=tracer_provider)
        http = HttpServer(app, http_host, http_port).start()
        grpc_server = build_server(
            [(inference_pb2_grpc.add_InferenceServiceServicer_to_server, InferenceServicer(served))],
            [SERVICE_NAME],
            grpc_options,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        ).start()
        log.info("inference serving", extra={"http": http.url, "grpc": grpc_server.address})
        return cls(served, http, grpc_server)

    def stop(self) -> None:
        """gRPC first (drains in-flight calls), then HTTP, then the engine; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.grpc.stop()
        self.http.stop()
        self.served.engine.shutdown()
        self.served.close()
