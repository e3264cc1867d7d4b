"""Shipyard's storage API: one ``Storage`` interface, a backend per URI scheme, and URI helpers.

    from shipyard.storage import open_storage, join
    storage = open_storage(config.storage.root, config.storage)
    with storage.open_write(join(config.storage.root, "datasets", "x", "manifest.json")) as f:
        f.write(b"...")

Backends agree on semantics so code tested on ``file://`` runs unchanged on ``s3://``: writes are
atomic, ``list(prefix)`` treats the prefix as a directory (``s3://b/data`` lists ``data/...``, not
``data-old/...``) and returns canonical URIs sorted, and missing objects raise ``NotFound``.
Nothing is cached globally: each ``open_storage`` call builds a fresh, cheap backend object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import InvalidArgument
from shipyard.storage.base import ObjectInfo, Storage
from shipyard.storage.local import LocalStorage
from shipyard.storage.uri import ParsedURI, basename, from_local_path, join, normalize, parent, parse

if TYPE_CHECKING:
    from shipyard.config import StorageConfig

__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "ParsedURI",
    "Storage",
    "basename",
    "from_local_path",
    "join",
    "normalize",
    "open_storage",
    "parent",
    "parse",
]


def open_storage(uri: str, config: StorageConfig | None = None, *, field: str = "uri") -> Storage:
    """The backend for ``uri``'s scheme. ``config`` supplies the S3 endpoint/region/part size.

    Without ``config``, S3 uses ``StorageConfig()`` defaults (AWS, ``us-east-1``). ``field`` names the
    spec field the URI came from, for the error on an unsupported scheme.
    """
    scheme = parse(uri, field=field).scheme
    if scheme == "file":
        return LocalStorage()
    if scheme == "s3":
        # Imported here so local-only users (and the unit tests) never pay for importing boto3.
        from shipyard.config import StorageConfig
        from shipyard.storage.s3 import S3Storage

        return S3Storage.from_config(config if config is not None else StorageConfig())
    raise InvalidArgument.field(field, f"no storage backend for scheme {scheme!r}")  # parse() guards this
