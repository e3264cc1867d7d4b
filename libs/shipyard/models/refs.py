"""Model names and ``model:NAME[@VERSION]`` references: their syntax, parsed without touching storage.

A name is one storage path segment (it becomes ``registry/models/<name>/``), so it is limited to
lowercase letters, digits, ``.``, ``_`` and ``-`` — the characters a Kubernetes job name also allows —
and can never be confused with a URI (no ``/`` or ``:``) or a version (no ``@``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from shipyard.errors import InvalidArgument

__all__ = ["MODEL_REF_PREFIX", "ModelRef", "is_uri", "parse_model_ref", "validate_model_name"]

MODEL_REF_PREFIX = "model:"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$")


class ModelRef(NamedTuple):
    """A parsed reference: ``version`` is None for "the latest"."""

    name: str
    version: int | None

    def __str__(self) -> str:
        suffix = f"@{self.version}" if self.version is not None else ""
        return f"{MODEL_REF_PREFIX}{self.name}{suffix}"


def validate_model_name(name: str, *, field: str = "name") -> str:
    """``name`` if it is a valid model name, else ``InvalidArgument`` on ``field``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument.field(
            field,
            f"{name!r} is not a valid model name (1-128 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit)",
        )
    return name


def is_uri(ref: str) -> bool:
    """Whether ``ref`` is a storage address (``scheme://...`` or an absolute path) rather than a name."""
    return "://" in ref or ref.startswith("/")


def parse_model_ref(ref: str, *, field: str = "ref") -> ModelRef:
    """Parse ``model:NAME``, ``model:NAME@VERSION`` or a bare ``NAME``; malformed → ``InvalidArgument``."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument.field(field, "must be a model reference (model:NAME[@VERSION]) or a URI")
    body = ref.removeprefix(MODEL_REF_PREFIX)
    name, sep, version = body.partition("@")
    if not name:
        raise InvalidArgument.field(field, f"{ref!r} has no model name (expected model:NAME[@VERSION])")
    validate_model_name(name, field=field)
    if not sep:
        return ModelRef(name, None)
    if not version.isascii() or not version.isdigit() or int(version) < 1:
        raise InvalidArgument.field(field, f"{ref!r}: version {version!r} must be a positive integer")
    return ModelRef(name, int(version))
