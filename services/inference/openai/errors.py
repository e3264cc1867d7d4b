"""The one mapping from Shipyard's typed errors to OpenAI-style HTTP error responses.

Like ``shipyard.rpc.errors`` for gRPC: each ``Code`` has one HTTP status (Google's gRPC → HTTP
table) and an OpenAI error ``type``; the body is ``{"error": {"message", "type", "param", "code"}}``
with ``param`` naming the first bad field. Each endpoint renames engine fields to its own request's
names (``prompt`` is ``messages`` in a chat request) through ``ParamNames``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import Code, FieldViolation, InvalidArgument, NotFound, ShipyardError

__all__ = ["HTTP_STATUS", "ParamNames", "error_body", "error_response", "install_error_handlers", "renamed"]

log = logging.getLogger(__name__)

HTTP_STATUS: dict[Code, int] = {
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.CANCELLED: 499,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}

_TYPES: dict[Code, str] = {
    Code.INVALID_ARGUMENT: "invalid_request_error",
    Code.FAILED_PRECONDITION: "invalid_request_error",
    Code.UNAUTHENTICATED: "authentication_error",
    Code.PERMISSION_DENIED: "permission_error",
    Code.NOT_FOUND: "invalid_request_error",
    Code.ALREADY_EXISTS: "invalid_request_error",
    Code.RESOURCE_EXHAUSTED: "rate_limit_error",
    Code.CANCELLED: "cancelled_error",
    Code.INTERNAL: "server_error",
    Code.UNAVAILABLE: "server_error",
    Code.DEADLINE_EXCEEDED: "timeout_error",
}

ParamNames = Mapping[str, str]  # engine field (first path segment) -> request field


def renamed(error: ShipyardError, names: ParamNames) -> ShipyardError:
    """``error`` with violation fields renamed for the endpoint (``prompt`` -> ``messages``)."""
    if not isinstance(error, InvalidArgument) or not names:
        return error
    violations = []
    for v in error.violations:
        head, sep, rest = v.field.partition(".")
        base, bracket, index = head.partition("[")
        new_head = names.get(base, base) + bracket + index
        violations.append(FieldViolation(new_head + sep + rest, v.description))
    message = error.message
    if len(violations) == 1 and message == f"invalid {error.violations[0].field}":
        message = f"invalid {violations[0].field}"
    return InvalidArgument(message, violations=violations)


def error_body(error: ShipyardError) -> dict[str, Any]:
    param = error.violations[0].field if error.violations else None
    if error.code is Code.NOT_FOUND and "model" in error.message:
        code = "model_not_found"
        param = param or "model"
    else:
        code = error.code.value.lower()
    return {"error": {"message": str(error), "type": _TYPES[error.code], "param": param, "code": code}}


def error_response(error: ShipyardError) -> JSONResponse:
    return JSONResponse(error_body(error), status_code=HTTP_STATUS[error.code])


def install_error_handlers(app: FastAPI) -> None:
    """Typed errors, request validation failures and unknown routes all answer in OpenAI's shape."""

    @app.exception_handler(ShipyardError)
    async def _shipyard(_: Request, exc: ShipyardError) -> JSONResponse:
        if exc.code is Code.INTERNAL:
            log.error("request failed", exc_info=exc)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_from_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no such endpoint: {exc.detail}"))
        body = {
            "error": {
                "message": str(exc.detail),
                "type": "invalid_request_error",
                "param": None,
                "code": str(exc.status_code),
            }
        }
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug must not leak a traceback (or secrets in it) to the client; the log keeps it.
        log.exception("unexpected error serving a request")
        return error_response(ShipyardError("internal error; see the server log"))


def _from_validation(exc: RequestValidationError) -> InvalidArgument:
    violations = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if p != "body"]
        if err.get("type") == "json_invalid":
            violations.append(FieldViolation("body", f"malformed JSON: {err.get('msg', 'invalid JSON')}"))
            continue
        path = ""
        for part in loc:
            # Union branches add their type name to the location (e.g. "str", "list[int]"): skip them.
            if isinstance(part, int):
                path += f"[{part}]"
            elif not (part[:1].islower() and ("[" in part or part in {"str", "int", "float", "bool"})):
                path = f"{path}.{part}" if path else str(part)
        path = path or "body"
        # A union (``prompt: str | list[int]``) reports one error per branch: keep the first per field.
        if all(v.field != path for v in violations):
            violations.append(FieldViolation(path, err.get("msg", "invalid value")))
    return InvalidArgument("invalid request", violations=violations)
