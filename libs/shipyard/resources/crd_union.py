"""A discriminated union (``Field(discriminator="type")``) as one structural schema node plus CEL rules.

A structural schema cannot say "one of these object shapes" (``oneOf`` is not allowed to introduce
fields), so the variants are merged into one object: every variant's fields, the tag as an enum, and
what differs between variants moved into CEL rules that only fire for the variant they belong to:

- a field only some variants have is forbidden for the others (pydantic's ``extra="forbid"``);
- a field required by some variants is required for them;
- a constraint (bounds, lengths, enum, pattern) that differs between variants is checked per variant;
  a differing default is dropped (pydantic fills it in when the operator parses the object);
- each variant's own CEL rules apply only when the tag says that variant.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["merge_tagged"]

_CONSTRAINTS = (
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "enum",
    "pattern",
)


def merge_tagged(variants: list[dict[str, Any]], tag: str, description: str | None = None) -> dict[str, Any]:
    """One object schema accepting every variant (structural ``variants``, told apart by ``tag``)."""
    values = [v["properties"][tag]["enum"][0] for v in variants]
    by_value = dict(zip(values, variants, strict=True))
    names: list[str] = []
    for variant in variants:
        names += [n for n in variant["properties"] if n not in names]
    properties: dict[str, Any] = {}
    rules: list[dict[str, Any]] = []
    for name in names:
        having = {value: v["properties"][name] for value, v in by_value.items() if name in v["properties"]}
        if name == tag:
            properties[name] = {
                "description": f"Which variant this is: {', '.join(values)}.",
                "type": "string",
                "enum": values,
            }
            continue
        properties[name], constraint_rules = _merge_property(tag, name, having, len(having) == len(variants))
        rules += constraint_rules
        if len(having) < len(variants):
            allowed = ", ".join(f"'{v}'" for v in having)
            rules.append(
                {
                    "rule": f"!has(self.{name}) || self.{tag} in [{allowed}]",
                    "message": f"{name} applies only to {tag} {', '.join(having)}",
                    "fieldPath": f".{name}",
                    "reason": "FieldValueForbidden",
                }
            )
    required_everywhere = set.intersection(*(set(v.get("required", [])) for v in variants))
    for value, variant in by_value.items():
        for name in variant.get("required", []):
            if name not in required_everywhere:
                rules.append(
                    {
                        "rule": f"self.{tag} != '{value}' || has(self.{name})",
                        "message": f"{tag} {value} needs {name}",
                        "fieldPath": f".{name}",
                        "reason": "FieldValueRequired",
                    }
                )
        for rule in variant.get("x-kubernetes-validations", []):
            rules.append({**rule, "rule": f"self.{tag} != '{value}' || ({rule['rule']})"})
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["required"] = [n for n in names if n in required_everywhere]
    out["properties"] = properties
    if rules:
        out["x-kubernetes-validations"] = rules
    return out


def _merge_property(
    tag: str, name: str, having: dict[str, dict[str, Any]], everywhere: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The field's schema common to the variants having it, and CEL rules for what differs.

    A field some variants lack gets no default: the API server would fill it into every variant, where
    it is forbidden.
    """
    schemas = list(having.values())
    types = {s.get("type") for s in schemas}
    if len(types) != 1:
        raise TypeError(
            f"union field {name!r} has different types across variants: {sorted(map(str, types))}"
        )
    keys = list(dict.fromkeys(k for s in schemas for k in s))
    merged: dict[str, Any] = {}
    for key in keys:
        same = all(key in s and s[key] == schemas[0][key] for s in schemas)
        if key == "default" and not everywhere:
            continue
        if same:
            merged[key] = schemas[0][key]
        elif key == "description":
            merged[key] = "; ".join(f"{v}: {s[key]}" for v, s in having.items() if key in s)
        elif key in ("properties", "items", "additionalProperties"):
            raise TypeError(f"union field {name!r} has different nested schemas across variants")
        elif key == "nullable":
            merged[key] = True
        # A differing default or constraint is left out here and checked per variant below.
    rules = []
    for value, schema in having.items():
        checks = [
            _check(name, key, schema[key], schema)
            for key in _CONSTRAINTS
            if key in schema and key not in merged and not key.startswith("exclusive")
        ]
        if checks:
            condition = " && ".join(c for c, _ in checks)
            rules.append(
                {
                    "rule": f"self.{tag} != '{value}' || !has(self.{name}) || ({condition})",
                    "message": f"{name} of {tag} {value} must be {' and '.join(m for _, m in checks)}",
                    "fieldPath": f".{name}",
                    "reason": "FieldValueInvalid",
                }
            )
    return merged, rules


def _check(name: str, key: str, bound: Any, schema: dict[str, Any]) -> tuple[str, str]:
    """A CEL check of ``self.<name>`` against one constraint, and how a message says it."""
    field = f"self.{name}"
    if key in ("minimum", "maximum"):
        exclusive = schema.get("exclusiveMinimum" if key == "minimum" else "exclusiveMaximum") is True
        op = (">" if exclusive else ">=") if key == "minimum" else ("<" if exclusive else "<=")
        if schema.get("type") == "number":
            # double(): an integer written in YAML for a number field compares as a double either way.
            return f"double({field}) {op} {float(bound)!r}", f"{op} {bound:g}"
        return f"{field} {op} {int(bound)}", f"{op} {bound}"
    if key in ("minLength", "minItems"):
        return f"{field}.size() >= {bound}", f"at least {bound} long"
    if key in ("maxLength", "maxItems"):
        return f"{field}.size() <= {bound}", f"at most {bound} long"
    if key == "enum":
        return f"{field} in {json.dumps(bound)}", f"one of {', '.join(map(str, bound))}"
    return f"{field}.matches({json.dumps(bound)})", f"matching {bound}"
