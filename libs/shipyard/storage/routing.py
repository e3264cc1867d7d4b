"""A ``Storage`` that sends each call to the backend for the URI's scheme.

A job may read its input from one place (``file://``) and write its output to another (``s3://``);
steps hold one storage object and never care which backend a URI lives on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO

from shipyard.config import StorageConfig
from shipyard.storage import open_storage
from shipyard.storage.base import ObjectInfo, Storage
from shipyard.storage.uri import normalize


class RoutingStorage(Storage):
    scheme = "*"

    def __init__(self, config: StorageConfig | None = None) -> None:
        self._config = config
        self._backends: dict[str, Storage] = {}

    def _backend(self, uri: str) -> tuple[Storage, str]:
        norm = normalize(uri)
        scheme = norm.split("://", 1)[0]
        if scheme not in self._backends:
            self._backends[scheme] = open_storage(norm, self._config)
        return self._backends[scheme], norm

    def open_read(self, uri: str) -> IO[bytes]:
        backend, norm = self._backend(uri)
        return backend.open_read(norm)

    @contextlib.contextmanager
    def open_write(self, uri: str) -> Iterator[IO[bytes]]:
        backend, norm = self._backend(uri)
        with backend.open_write(norm) as f:
            yield f

    def write_bytes_if_absent(self, uri: str, data: bytes) -> bool:
        backend, norm = self._backend(uri)
        return backend.write_bytes_if_absent(norm, data)

    def exists(self, uri: str) -> bool:
        backend, norm = self._backend(uri)
        return backend.exists(norm)

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        backend, norm = self._backend(prefix_uri)
        return backend.list(norm)

    def delete(self, uri: str) -> None:
        backend, norm = self._backend(uri)
        backend.delete(norm)

    def local_path(self, uri: str) -> str | None:
        backend, norm = self._backend(uri)
        return backend.local_path(norm)
