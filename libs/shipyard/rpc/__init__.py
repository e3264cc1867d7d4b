"""The gRPC edge shared by every service: server, client, interceptors and the error mapping.

Only this package imports grpc; domain cores raise ``shipyard.errors`` and never see the wire.
"""

from __future__ import annotations

from shipyard.rpc.client import ClientOptions, connect, wait_ready
from shipyard.rpc.errors import from_rpc_error, grpc_code, to_status
from shipyard.rpc.server import ServerOptions, ServerState, ShipyardServer, build_server

__all__ = [
    "ClientOptions",
    "ServerOptions",
    "ServerState",
    "ShipyardServer",
    "build_server",
    "connect",
    "from_rpc_error",
    "grpc_code",
    "to_status",
    "wait_ready",
]
