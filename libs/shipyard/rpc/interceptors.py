"""Server interceptors every Shipyard service runs: telemetry, bearer-token auth, error mapping.

Each interceptor is one context manager wrapped around the handler (for streaming responses, around the
whole stream), applied the same way to all four RPC shapes. The order ``build_server`` installs them in
is telemetry (outermost: it sees the final status and times everything) → auth (rejects before any
handler runs) → error mapping (innermost: turns exceptions into statuses).

Hand-written rather than ``opentelemetry-instrumentation-grpc``: that interceptor records its own
exception/status handling that would fight our error mapping, emits no metrics, and the span part is
a few lines here.
"""

from __future__ import annotations

import abc
import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator

import grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shipyard.errors import Code, InvalidArgument, ShipyardError, Unauthenticated
from shipyard.rpc.errors import to_status
from shipyard.telemetry.metrics import RpcServerMetrics
from shipyard.telemetry.tracing import current_trace_ids

log = logging.getLogger(__name__)

# W3C trace context on both ends, whatever OTEL_PROPAGATORS says, so traces always cross services.
PROPAGATOR = TraceContextTextMapPropagator()

# Probes and tooling must work without credentials, and are too frequent to be worth a span each.
HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
OPEN_METHOD_PREFIXES = (HEALTH_PREFIX, *REFLECTION_PREFIXES)

# Server-side faults, per the OTel gRPC conventions; client errors leave the span status unset.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

Around = Callable[[str, grpc.ServicerContext], contextlib.AbstractContextManager[None]]


def split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


def _wrap_handler(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    """The same handler with ``around`` wrapped around its behaviour, whatever its RPC shape."""
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary is not None:
        uu = handler.unary_unary

        def unary_unary(request, context):  # type: ignore[no-untyped-def]
            with around(method, context):
                return uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)
    if handler.unary_stream is not None:
        us = handler.unary_stream

        def unary_stream(request, context):  # type: ignore[no-untyped-def]
            with around(method, context):
                yield from us(request, context)

        return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)
    if handler.stream_unary is not None:
        su = handler.stream_unary

        def stream_unary(requests, context):  # type: ignore[no-untyped-def]
            with around(method, context):
                return su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, des, ser)
    ss = handler.stream_stream

    def stream_stream(requests, context):  # type: ignore[no-untyped-def]
        with around(method, context):
            yield from ss(requests, context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)


def _is_non_blocking(handler: grpc.RpcMethodHandler) -> bool:
    # Callback-driven handlers (health Watch) answer after their behaviour returns, so there is nothing
    # to wrap; wrapping would also turn them back into blocking ones, each holding a worker thread for
    # as long as a load balancer watches.
    behaviours = (handler.unary_unary, handler.unary_stream, handler.stream_unary, handler.stream_stream)
    return any(getattr(b, "experimental_non_blocking", False) for b in behaviours if b is not None)


class _AroundInterceptor(grpc.ServerInterceptor, abc.ABC):
    """Base: wraps ``around`` around every handler this interceptor applies to."""

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        if handler is None or _is_non_blocking(handler):
            return handler
        return _wrap_handler(handler, handler_call_details.method, self.around)

    @abc.abstractmethod
    def around(self, method: str, context: grpc.ServicerContext) -> contextlib.AbstractContextManager[None]:
        """What to do before and after the handler."""


def _already_aborted(context: grpc.ServicerContext) -> bool:
    # ``context.abort`` records the status and raises a bare Exception; let that one through untouched.
    code = context.code()
    return code is not None and code != grpc.StatusCode.OK


class ErrorMappingInterceptor(_AroundInterceptor):
    """``ShipyardError`` → its mapped status with field details; anything else → a generic INTERNAL.

    The unexpected exception is logged with its traceback and the trace id; the client gets only the
    trace id, never the exception text (it may hold paths, queries or secrets).
    """

    @contextlib.contextmanager
    def around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        try:
            yield
        except ShipyardError as err:
            if err.code is Code.INTERNAL:  # a broken invariant: worth a traceback
                log.exception("internal error in %s", method, extra={"rpc_method": method})
            else:
                log.info("%s failed: %s", method, err, extra={"rpc_method": method, "code": err.code.name})
            context.abort_with_status(to_status(err))
        except Exception:
            if _already_aborted(context):
                raise
            log.exception("unhandled exception in %s", method, extra={"rpc_method": method})
            trace_id, _ = current_trace_ids()
            suffix = f" (trace_id={trace_id})" if trace_id else ""
            context.abort(grpc.StatusCode.INTERNAL, f"internal error{suffix}")


class AuthInterceptor(_AroundInterceptor):
    """Requires ``authorization: Bearer <token>`` on every method except health checks and reflection."""

    def __init__(self, token: str, *, open_prefixes: tuple[str, ...] = OPEN_METHOD_PREFIXES) -> None:
        if not token:
            raise InvalidArgument.field("auth_token", "must not be empty when set")
        self._token = token.encode()
        self._open_prefixes = open_prefixes

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        if handler_call_details.method.startswith(self._open_prefixes):
            return continuation(handler_call_details)
        return super().intercept_service(continuation, handler_call_details)

    @contextlib.contextmanager
    def around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        header = dict(context.invocation_metadata()).get("authorization")
        if header is None:
            context.abort_with_status(to_status(Unauthenticated("missing bearer token")))
        scheme, _, token = str(header).partition(" ")
        # compare_digest: the time taken must not reveal how much of a guessed token was right.
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            context.abort_with_status(to_status(Unauthenticated("invalid bearer token")))
        yield


class TelemetryInterceptor(_AroundInterceptor):
    """A SERVER span per RPC (continuing the caller's W3C trace) plus duration/request metrics."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        metrics: RpcServerMetrics | None = None,
        *,
        untraced_prefixes: tuple[str, ...] = OPEN_METHOD_PREFIXES,
    ) -> None:
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("shipyard.rpc")
        self._metrics = metrics
        self._untraced = untraced_prefixes

    @contextlib.contextmanager
    def around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        service, name = split_method(method)
        start = time.perf_counter()
        status = grpc.StatusCode.OK
        span_cm: contextlib.AbstractContextManager[trace.Span | None] = contextlib.nullcontext()
        if not method.startswith(self._untraced):
            parent = PROPAGATOR.extract(dict(context.invocation_metadata()))
            span_cm = self._tracer.start_as_current_span(
                method.lstrip("/"),
                context=parent,
                kind=SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
                record_exception=False,
                set_status_on_exception=False,
            )
        with span_cm as span:
            try:
                yield
                status = context.code() or grpc.StatusCode.OK
            except GeneratorExit:  # the client went away mid-stream
                status = grpc.StatusCode.CANCELLED
                raise
            except BaseException:
                status = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                code = status.value[0]
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", code)
                    if status in _SERVER_FAULTS:
                        span.set_status(Status(StatusCode.ERROR, status.name))
                if self._metrics is not None:
                    self._metrics.record(service, name, code, (time.perf_counter() - start) * 1000)
