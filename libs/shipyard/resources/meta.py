"""What every resource kind shares: the API version, the camelCase model base, and ``metadata``."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from shipyard.errors import InvalidArgument

API_VERSION = "shipyard.dev/v1alpha1"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SpecModel(BaseModel):
    """Base of spec sections: camelCase names (snake_case accepted), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


class Metadata(SpecModel):
    name: str = Field(description="DNS-1123 label naming the resource.")
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise PydanticCustomError(
                "dns_label",
                "{name!r} must be a DNS-1123 label (lowercase a-z, 0-9, '-'; at most 63)",
                {"name": name},
            )
        return name


def read_manifest_file(path: str | pathlib.Path) -> Any:
    """The YAML/JSON document in ``path``; a missing or unparsable file is ``InvalidArgument`` on ``file``."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise InvalidArgument.field("file", f"{p} does not exist or is not a file")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidArgument.field("file", f"{p} is not valid YAML/JSON: {exc}") from None
