"""Channels to Shipyard services: retries, keepalive, TLS, bearer token, default deadline, trace context.

``connect`` returns an ordinary ``grpc.Channel`` (for generated stubs) whose every call carries a deadline
(``default_deadline_seconds`` unless the caller set one), the caller's W3C ``traceparent`` and, when
configured, ``authorization: Bearer``. Retries of UNAVAILABLE/RESOURCE_EXHAUSTED happen inside gRPC
(service config), so they stay within the call's deadline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from shipyard.errors import InvalidArgument, Unavailable
from shipyard.rpc.interceptors import PROPAGATOR


@dataclass(frozen=True)
class ClientOptions:
    """How a client calls a service; mirrors the client-relevant fields of ``ShipyardConfig.grpc``."""

    # Applied to calls with one response when the caller sets no timeout; None: wait forever.
    default_deadline_seconds: float | None = 30.0
    # Server-streaming calls (watches, operation progress) are open-ended unless this is set.
    default_stream_deadline_seconds: float | None = None
    max_message_bytes: int = 64 * 1024 * 1024
    auth_token: str | None = field(default=None, repr=False)
    tls: bool = False  # TLS with the system trust store; implied by tls_root_cert_file
    tls_root_cert_file: str | Path | None = None  # PEM CA (or self-signed cert) the server must chain to
    tls_server_name: str | None = None  # name to verify when the target is an IP or an alias
    retry_max_attempts: int = 4  # total attempts including the first; gRPC caps this at 5
    retry_initial_backoff_seconds: float = 0.2
    retry_max_backoff_seconds: float = 5.0
    retry_backoff_multiplier: float = 2.0
    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")
    keepalive_time_seconds: float = 30.0
    keepalive_timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.default_deadline_seconds is not None and self.default_deadline_seconds <= 0:
            raise InvalidArgument.field("default_deadline_seconds", "must be positive (or None: no deadline)")
        if self.default_stream_deadline_seconds is not None and self.default_stream_deadline_seconds <= 0:
            raise InvalidArgument.field("default_stream_deadline_seconds", "must be positive (or None)")
        if self.max_message_bytes <= 0:
            raise InvalidArgument.field("max_message_bytes", "must be positive")
        if not 1 <= self.retry_max_attempts <= 5:
            raise InvalidArgument.field("retry_max_attempts", "must be 1 (no retry) to 5 (gRPC's cap)")
        if self.retry_initial_backoff_seconds <= 0 or self.retry_max_backoff_seconds <= 0:
            raise InvalidArgument.field("retry_initial_backoff_seconds", "backoffs must be positive")
        if self.retry_backoff_multiplier <= 0:
            raise InvalidArgument.field("retry_backoff_multiplier", "must be positive")
        unknown = [c for c in self.retryable_status_codes if c not in grpc.StatusCode.__members__]
        if unknown:
            raise InvalidArgument.field("retryable_status_codes", f"unknown gRPC codes {unknown}")
        # Servers built by shipyard.rpc.server accept pings every 10 s; faster gets the channel dropped.
        if self.keepalive_time_seconds < 10:
            raise InvalidArgument.field("keepalive_time_seconds", "must be at least 10 seconds")

    def service_config(self) -> dict[str, Any]:
        """The gRPC service config (retry policy for every method)."""
        if self.retry_max_attempts == 1:
            return {}
        return {
            "methodConfig": [
                {
                    "name": [{}],  # an empty name matches every service and method
                    "retryPolicy": {
                        "maxAttempts": self.retry_max_attempts,
                        "initialBackoff": f"{self.retry_initial_backoff_seconds}s",
                        "maxBackoff": f"{self.retry_max_backoff_seconds}s",
                        "backoffMultiplier": self.retry_backoff_multiplier,
                        "retryableStatusCodes": list(self.retryable_status_codes),
                    },
                }
            ]
        }


class _CallDetails(
    NamedTuple(
        "_CallDetails",
        [
            ("method", str),
            ("timeout", Any),
            ("metadata", Any),
            ("credentials", Any),
            ("wait_for_ready", Any),
            ("compression", Any),
        ],
    ),
    grpc.ClientCallDetails,
):
    pass


class ShipyardClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the default deadline, the trace context and the bearer token to every call."""

    def __init__(
        self,
        default_deadline_seconds: float | None,
        auth_token: str | None,
        default_stream_deadline_seconds: float | None = None,
    ) -> None:
        self._deadline = default_deadline_seconds
        self._stream_deadline = default_stream_deadline_seconds
        self._authorization = f"Bearer {auth_token}" if auth_token else None

    def _details(
        self, details: grpc.ClientCallDetails, default_timeout: float | None
    ) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)  # nothing is added outside a span
        metadata += carrier.items()
        if self._authorization and not any(key == "authorization" for key, _ in metadata):
            metadata.append(("authorization", self._authorization))
        timeout = details.timeout if details.timeout is not None else default_timeout
        return _CallDetails(
            details.method,
            timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details, self._deadline), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details, self._stream_deadline), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details, self._deadline), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # type: ignore[no-untyped-def]
        return continuation(self._details(client_call_details, self._stream_deadline), request_iterator)


def channel_options(options: ClientOptions) -> list[tuple[str, Any]]:
    """The low-level gRPC channel arguments ``connect`` uses."""
    args: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", options.max_message_bytes),
        ("grpc.max_receive_message_length", options.max_message_bytes),
        ("grpc.keepalive_time_ms", int(options.keepalive_time_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(options.keepalive_timeout_seconds * 1000)),
        ("grpc.enable_retries", 1 if options.retry_max_attempts > 1 else 0),
        ("grpc.service_config", json.dumps(options.service_config())),
    ]
    if options.tls_server_name:
        args.append(("grpc.ssl_target_name_override", options.tls_server_name))
    return args


def connect(
    target: str,
    options: ClientOptions | None = None,
    *,
    interceptors: Sequence[grpc.UnaryUnaryClientInterceptor] = (),
) -> grpc.Channel:
    """A channel to ``target`` (``host:port``); connects lazily, see ``wait_ready``.

    Extra ``interceptors`` run after Shipyard's (so they see the deadline and metadata it added).
    """
    options = options or ClientOptions()
    args = channel_options(options)
    if options.tls or options.tls_root_cert_file is not None:
        root = None
        if options.tls_root_cert_file is not None:
            try:
                root = Path(options.tls_root_cert_file).read_bytes()
            except OSError as exc:
                raise InvalidArgument.field(
                    "tls_root_cert_file", f"cannot read {options.tls_root_cert_file}: {exc.strerror or exc}"
                ) from exc
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root), args)
    else:
        channel = grpc.insecure_channel(target, args)
    ours = ShipyardClientInterceptor(
        options.default_deadline_seconds, options.auth_token, options.default_stream_deadline_seconds
    )
    return grpc.intercept_channel(channel, ours, *interceptors)


def wait_ready(channel: grpc.Channel, timeout: float) -> None:
    """Block until ``channel`` is connected; ``Unavailable`` if it is not within ``timeout`` seconds."""
    ready = grpc.channel_ready_future(channel)
    try:
        ready.result(timeout=timeout)
    except grpc.FutureTimeoutError as exc:
        ready.cancel()
        raise Unavailable(f"channel not ready within {timeout} s") from exc
