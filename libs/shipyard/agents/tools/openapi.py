"""HTTP tools from an OpenAPI 3 document: one tool per operation, callable only on allowed hosts.

Each operation becomes a ``Tool`` named by its ``operationId`` whose arguments are one object: the path
and query parameters plus the properties of a JSON request body (a non-object body, or one whose
names clash with a parameter, is the ``body`` argument). ``$ref``s are resolved by ``jsonschema-path``
(the resolver ``openapi-core`` uses) and the document is checked by ``openapi-spec-validator`` first,
so a broken document is an ``InvalidArgument`` naming what is wrong, not a tool that fails later.

Calls go through ``httpx2`` with the environment's proxies ignored. Every request, redirects
included, passes a hook that refuses a host not on ``allowed_hosts`` before any connection is made;
the base URL's host must be allowed when the tools are built. Responses are cut to ``max_chars``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx2
import yaml
from jsonschema_path import SchemaPath
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec
from shipyard.errors import InvalidArgument, PermissionDenied
from shipyard.storage.base import Storage

__all__ = ["OpenApiTool", "OpenApiToolset", "Operation"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_DEPTH = 12  # recursive schemas are cut here into "any value"
_OPENAPI_ONLY = ("nullable", "discriminator", "xml", "externalDocs", "example")
_BAD_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class Operation:
    """One operation: where it goes and which arguments go where."""

    tool_name: str
    method: str
    path: str
    description: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_fields: tuple[str, ...]  # properties of an object body, merged into the arguments
    body_whole: bool  # the body is the ``body`` argument itself
    parameters: dict[str, Any]


class OpenApiToolset:
    """The tools of one document, sharing one HTTP client; ``close()`` ends it."""

    def __init__(
        self,
        operations: Iterable[Operation],
        *,
        base_url: str,
        allowed_hosts: Iterable[str],
        timeout_s: float = 10.0,
        max_chars: int = 8000,
        field: str = "openapi",
    ) -> None:
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        if not self.allowed_hosts:
            raise InvalidArgument.field(f"{field}.allowed_hosts", "must name at least one host")
        url = httpx2.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidArgument.field(
                f"{field}.base_url", f"must be an absolute http(s) URL, got {base_url!r}"
            )
        if not self._allowed(url):
            raise InvalidArgument.field(
                f"{field}.allowed_hosts", f"the API's host {url.host!r} is not on allowed_hosts"
            )
        self.base_url = base_url.rstrip("/")
        self.max_chars = max_chars
        self.client = httpx2.Client(
            timeout=timeout_s,
            follow_redirects=True,
            max_redirects=5,
            trust_env=False,
            event_hooks={"request": [self._refuse_other_hosts]},
        )
        self.tools = [OpenApiTool(self, op) for op in operations]

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        allowed_hosts: Iterable[str],
        base_url: str | None = None,
        operations: Iterable[str] = (),
        timeout_s: float = 10.0,
        max_chars: int = 8000,
        field: str = "openapi",
    ) -> OpenApiToolset:
        try:
            validate(dict(document))
        except OpenAPIValidationError as exc:
            raise InvalidArgument.field(
                f"{field}.spec", f"not a valid OpenAPI document: {exc.message}"
            ) from exc
        if not str(document.get("openapi", "")).startswith("3"):
            raise InvalidArgument.field(f"{field}.spec", "only OpenAPI 3 documents are supported")
        if base_url is None:
            servers = document.get("servers") or []
            base_url = _server_url(servers[0]) if servers else ""
            if not base_url.startswith(("http://", "https://")):
                raise InvalidArgument.field(
                    f"{field}.base_url", f"the document's server {base_url!r} is not absolute; set base_url"
                )
        ops = _operations(SchemaPath.from_dict(dict(document)))
        wanted = list(operations)
        if wanted:
            missing = sorted(set(wanted) - {op.tool_name for op in ops})
            if missing:
                raise InvalidArgument.field(
                    f"{field}.operations", f"no operation named {', '.join(missing)} in the document"
                )
            ops = [op for op in ops if op.tool_name in wanted]
        return cls(
            ops,
            base_url=base_url,
            allowed_hosts=allowed_hosts,
            timeout_s=timeout_s,
            max_chars=max_chars,
            field=field,
        )

    @classmethod
    def load(cls, storage: Storage, uri: str, **kwargs: Any) -> OpenApiToolset:
        """From a JSON or YAML document at ``uri`` (any storage URI or a local path)."""
        field = kwargs.get("field", "openapi")
        try:
            document = yaml.safe_load(storage.read_text(uri))  # JSON is YAML
        except yaml.YAMLError as exc:
            raise InvalidArgument.field(f"{field}.spec", f"{uri} is neither JSON nor YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidArgument.field(f"{field}.spec", f"{uri} does not hold an OpenAPI object")
        return cls.from_document(document, **kwargs)

    def _allowed(self, url: httpx2.URL) -> bool:
        host = (url.host or "").lower()
        return host in self.allowed_hosts or f"{host}:{url.port}" in self.allowed_hosts

    def _refuse_other_hosts(self, request: httpx2.Request) -> None:
        if not self._allowed(request.url):
            raise PermissionDenied(f"refused to call {request.url.host!r}: it is not on allowed_hosts")

    def call(self, op: Operation, args: dict[str, Any]) -> ToolResult:
        path = op.path
        for name in op.path_params:
            # Encoded, so a value cannot add path segments or change the host.
            path = path.replace("{" + name + "}", quote(str(args[name]), safe=""))
        query = {k: _query_value(args[k]) for k in op.query_params if k in args}
        body: Any = None
        if op.body_whole and "body" in args:
            body = args["body"]
        elif op.body_fields:
            body = {k: args[k] for k in op.body_fields if k in args}
        try:
            response = self.client.request(
                op.method.upper(), self.base_url + path, params=query, json=body if body is not None else None
            )
        except PermissionDenied as exc:
            return ToolResult.failure(str(exc))
        except httpx2.TimeoutException:
            return ToolResult.failure(f"{op.method.upper()} {op.path} timed out")
        except httpx2.HTTPError as exc:
            return ToolResult.failure(f"{op.method.upper()} {op.path} failed: {exc}")
        text = response.text
        if len(text) > self.max_chars:
            text = text[: self.max_chars] + f"\n[response cut at {self.max_chars} characters]"
        data = _json_or_none(response)
        if response.status_code >= 400:
            return ToolResult.failure(f"HTTP {response.status_code}: {text}", data=data)
        return ToolResult(content=text, data=data)

    def close(self) -> None:
        self.client.close()


class OpenApiTool:
    """One operation of an ``OpenApiToolset``."""

    def __init__(self, toolset: OpenApiToolset, operation: Operation) -> None:
        self.toolset = toolset
        self.operation = operation
        self.spec = ToolSpec(operation.tool_name, operation.description, operation.parameters)

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return self.toolset.call(self.operation, args)


def _query_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _server_url(server: Mapping[str, Any]) -> str:
    url = str(server.get("url", ""))
    for name, var in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(var.get("default", "")))
    return url


def _resolved(path: SchemaPath, depth: int = 0) -> Any:
    """The value at ``path`` with every ``$ref`` below it followed (the library follows each one)."""
    value = path.read_value()
    if depth > _MAX_DEPTH:
        return {}
    if isinstance(value, dict):
        return {k: _resolved(path / k, depth + 1) for k in value if k not in _OPENAPI_ONLY}
    if isinstance(value, list):
        return [_resolved(path / i, depth + 1) for i in range(len(value))]
    return value


def _operations(doc: SchemaPath) -> list[Operation]:
    ops: list[Operation] = []
    if "paths" not in doc:
        return ops
    for route in (doc / "paths").read_value():
        item = doc / "paths" / route
        shared = _resolved(item / "parameters") if "parameters" in item else []
        for method in _METHODS:
            if method in item:
                ops.append(_operation(route, method, item / method, shared))
    return ops


def _operation(route: str, method: str, op_path: SchemaPath, shared: list[dict[str, Any]]) -> Operation:
    op = _resolved(op_path)
    name = _BAD_NAME.sub("_", op.get("operationId") or f"{method}_{route}").strip("_")[:64]
    params = {(p["name"], p["in"]): p for p in [*shared, *op.get("parameters", [])]}
    properties: dict[str, Any] = {}
    required: list[str] = []
    path_params, query_params = [], []
    for (pname, where), p in params.items():
        if where not in ("path", "query"):
            continue  # headers and cookies are the API's business, not the model's
        schema = dict(p.get("schema") or {})
        if p.get("description"):
            schema.setdefault("description", p["description"])
        properties[pname] = schema
        (path_params if where == "path" else query_params).append(pname)
        if p.get("required") or where == "path":
            required.append(pname)
    body_fields: list[str] = []
    body_whole = False
    body = op.get("requestBody") or {}
    schema = ((body.get("content") or {}).get("application/json") or {}).get("schema")
    if schema is not None:
        fields = schema.get("properties") if schema.get("type", "object") == "object" else None
        if fields and not set(fields) & set(properties):
            properties.update(fields)
            body_fields = list(fields)
            if body.get("required"):
                required += [f for f in schema.get("required", []) if f in fields]
        else:
            properties["body"] = schema
            body_whole = True
            if body.get("required"):
                required.append("body")
    summary = op.get("summary") or op.get("description") or ""
    return Operation(
        tool_name=name,
        method=method,
        path=route,
        description=f"{summary} ({method.upper()} {route})".strip(),
        path_params=tuple(path_params),
        query_params=tuple(query_params),
        body_fields=tuple(body_fields),
        body_whole=body_whole,
        parameters={"type": "object", "properties": properties, "required": sorted(set(required))},
    )
