"""What the Kubernetes API server does with a CRD schema, reproduced for the tests (there is no cluster).

- ``structural_violations``: the structural-schema rules apiextensions enforces when a CRD is created
  (every node typed, no ``$ref``/``anyOf``/``allOf``/``oneOf``/``not``, ``properties`` and
  ``additionalProperties`` exclusive, no ``additionalProperties: false``, list-map keys required or
  defaulted, null defaults only where nullable, defaults valid against their own node).
- ``admit``: create-time handling of one manifest, in the API server's order: apply schema defaults
  (recursively, into defaulted objects too), validate against the OpenAPI schema with strict field
  validation (unknown fields are errors, as ``kubectl apply`` asks for since 1.27), then evaluate every
  ``x-kubernetes-validations`` rule with a real CEL engine (``common-expression-language``), where, as
  in Kubernetes, a null-valued nullable property counts as absent for ``has()``.

Errors come back as ``(path, message)`` with dotted paths from the object root (``spec.resources``).
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import cel
import jsonschema

_TYPED_EXEMPT = ("x-kubernetes-int-or-string",)
_FORBIDDEN = ("$ref", "anyOf", "allOf", "oneOf", "not", "definitions", "$defs")


def structural_violations(schema: dict[str, Any], path: str = "") -> list[str]:
    """Reasons ``schema`` is not a structural schema; empty when it is."""
    out: list[str] = []
    where = path or "<root>"
    if not schema.get("type") and not any(schema.get(k) for k in _TYPED_EXEMPT):
        out.append(f"{where}: type is required")
    out += [f"{where}: {key} is not allowed" for key in _FORBIDDEN if key in schema]
    if "properties" in schema and "additionalProperties" in schema:
        out.append(f"{where}: properties and additionalProperties are mutually exclusive")
    if schema.get("additionalProperties") is False:
        out.append(f"{where}: additionalProperties: false is not allowed")
    if schema.get("type") == "array" and "items" not in schema:
        out.append(f"{where}: arrays must have items")
    if "default" in schema:
        if schema["default"] is None and not schema.get("nullable"):
            out.append(f"{where}: null default needs nullable: true")
        else:
            try:
                jsonschema.Draft4Validator(to_json_schema(schema)).validate(schema["default"])
            except jsonschema.ValidationError as exc:
                out.append(f"{where}: default does not validate: {exc.message}")
    if schema.get("x-kubernetes-list-type") == "map":
        item = schema.get("items", {})
        for key in schema.get("x-kubernetes-list-map-keys", []):
            sub = item.get("properties", {}).get(key, {})
            if key not in item.get("required", []) and "default" not in sub:
                out.append(f"{where}: list-map key {key} must be required or defaulted")
    for name, sub in schema.get("properties", {}).items():
        out += structural_violations(sub, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), dict):
        out += structural_violations(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += structural_violations(schema["additionalProperties"], f"{path}{{}}")
    return out


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI v3.0 subset as a JSON Schema draft 4 (whose boolean exclusive bounds match OpenAPI)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "default", "format"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        else:
            out[key] = value
    if schema.get("nullable"):
        out["type"] = [schema["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False  # strict field validation: unknown fields are errors
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with schema defaults filled in, the way the API server defaults on decode."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for name, sub in schema.get("properties", {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(sub, out[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out = {k: apply_defaults(extra, v) for k, v in out.items()}
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def schema_errors(schema: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    validator = jsonschema.Draft4Validator(to_json_schema(schema))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [(".".join(map(str, e.absolute_path)), e.message) for e in errors]


@cache
def _program(rule: str) -> Any:
    return cel.compile(rule)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def cel_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
    """``(path, message)`` of every failing (or erroring) CEL rule on ``value`` and its children."""
    if value is None:
        return []
    out: list[tuple[str, str]] = []
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            ok = _program(rule["rule"]).execute({"self": _without_nulls(value)})
        except Exception as exc:  # an evaluation error rejects the object too, with the engine's message
            out.append((path, f"rule {rule['rule']!r} failed to evaluate: {exc}"))
            continue
        if ok is not True:
            where = path + rule.get("fieldPath", "") if path else rule.get("fieldPath", "").lstrip(".")
            message = rule["message"]
            if "messageExpression" in rule:
                message = _program(rule["messageExpression"]).execute({"self": _without_nulls(value)})
            out.append((where, message))
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                out += cel_errors(sub, value[name], f"{path}.{name}" if path else name)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += cel_errors(schema["items"], item, f"{path}[{i}]")
    return out


def openapi_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def admit(crd: dict[str, Any], manifest: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The defaulted object and the errors a create of ``manifest`` would be rejected with."""
    schema = openapi_schema(crd)
    # Every object may carry apiVersion, kind and metadata whether the schema lists them or not.
    implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    schema = {**schema, "properties": {**implicit, **schema.get("properties", {})}}
    obj = apply_defaults(schema, manifest)
    errors = schema_errors(schema, obj)
    return obj, errors or cel_errors(schema, obj)
