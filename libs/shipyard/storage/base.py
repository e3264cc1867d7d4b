"""The storage interface every byte in Shipyard goes through.

A ``Storage`` is addressed by URI (``file:///data/x``, ``s3://bucket/prefix/x``). Writes are atomic:
``open_write`` yields a file object and the object becomes visible under its final name only when the
``with`` block exits without an exception (local: write to a temporary sibling then ``os.replace``;
S3: a multipart upload completed at the end, aborted on error). Readers therefore never see a
partial file, and a crash mid-write leaves nothing behind under the final name.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing returns for one object."""

    uri: str
    size: int


class Storage(abc.ABC):
    """One backend (local directory, S3, ...). All paths are full URIs of that backend's scheme."""

    scheme: str

    @abc.abstractmethod
    def open_read(self, uri: str) -> IO[bytes]:
        """Open an object for binary reading. Raises ``shipyard.errors.NotFound`` if it is absent."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def open_write(self, uri: str) -> Iterator[IO[bytes]]:
        """Yield a binary file; the object appears atomically at ``uri`` when the block succeeds."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object exists at exactly ``uri``."""

    @abc.abstractmethod
    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        """All objects under ``prefix_uri`` (recursively), sorted by URI."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Delete one object; deleting an absent object is not an error."""

    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object under ``prefix_uri``; returns how many were deleted."""
        objects = self.list(prefix_uri)
        for obj in objects:
            self.delete(obj.uri)
        return len(objects)

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as f:
            return f.read()

    def write_bytes(self, uri: str, data: bytes) -> None:
        with self.open_write(uri) as f:
            f.write(data)

    def write_bytes_if_absent(self, uri: str, data: bytes) -> bool:
        """Write ``data`` at ``uri`` only if nothing is there yet; True if this call created it.

        Backends override this with an atomic conditional write (local: ``os.link``; S3:
        ``If-None-Match: *``). This fallback checks then writes, which leaves a race window.
        """
        if self.exists(uri):
            return False
        self.write_bytes(uri, data)
        return True

    def read_text(self, uri: str) -> str:
        return self.read_bytes(uri).decode("utf-8")

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def local_path(self, uri: str) -> str | None:
        """A local filesystem path for ``uri`` when the backend has one (lets numpy memmap it)."""
        return None
