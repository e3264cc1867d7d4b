"""``LocalStorage``: the ``file://`` backend, used in embedded mode and by every unit test.

Writes are atomic: bytes go to a hidden temporary sibling (``.<name>.<random>.shipyard-tmp``), are
fsynced, then ``os.replace``d onto the final name, so a reader sees the old object or the whole new
one and never a prefix. Temporary files are removed when the ``with`` block fails and are never listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from typing import IO

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.storage import uri as uris
from shipyard.storage.base import ObjectInfo, Storage

__all__ = ["TEMP_SUFFIX", "LocalStorage"]

TEMP_SUFFIX = ".shipyard-tmp"


class LocalStorage(Storage):
    """Objects are plain files; a prefix is a directory. Accepts ``file://`` URIs and bare paths."""

    scheme = "file"

    def open_read(self, uri: str) -> IO[bytes]:
        path = self._path(uri)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller owns the file object
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no object at {uris.from_local_path(path)}") from exc
        except IsADirectoryError as exc:
            raise NotFound(f"{uris.from_local_path(path)} is a directory, not an object") from exc

    @contextlib.contextmanager
    def open_write(self, uri: str) -> Iterator[IO[bytes]]:
        path = self._path(uri)
        directory, name = os.path.split(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise FailedPrecondition(f"cannot write {uri}: a parent of it is a file") from exc
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TEMP_SUFFIX)
        f = os.fdopen(fd, "wb")
        try:
            yield f
            if f.closed:
                # The caller closed it early: the data reached the OS but was not fsynced yet.
                _fsync_path(tmp, os.O_RDONLY)
            else:
                f.flush()
                os.fsync(f.fileno())
                f.close()
            os.replace(tmp, path)
        except BaseException:
            # BaseException: a KeyboardInterrupt mid-write must not leave a temp file behind either.
            f.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        # Persist the rename itself; without this a power loss can forget the new directory entry.
        _fsync_path(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def exists(self, uri: str) -> bool:
        return os.path.isfile(self._path(uri))

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        root = self._path(prefix_uri, field="prefix_uri")
        found: list[ObjectInfo] = []
        for dirpath, _dirnames, filenames in os.walk(root):
            for filename in filenames:
                if filename.startswith(".") and filename.endswith(TEMP_SUFFIX):
                    continue
                full = os.path.join(dirpath, filename)
                try:
                    size = os.stat(full).st_size
                except FileNotFoundError:  # deleted between walk and stat
                    continue
                found.append(ObjectInfo(uri=uris.from_local_path(full), size=size))
        return sorted(found, key=lambda o: o.uri)

    def delete(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(uri))

    def write_bytes_if_absent(self, uri: str, data: bytes) -> bool:
        """Atomic on POSIX: the bytes go to a temporary sibling, then ``os.link`` gives it the final
        name, which fails with ``EEXIST`` when the name is taken (``os.replace`` would overwrite)."""
        path = self._path(uri)
        directory, name = os.path.split(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise FailedPrecondition(f"cannot write {uri}: a parent of it is a file") from exc
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=TEMP_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def local_path(self, uri: str) -> str | None:
        return self._path(uri)

    @staticmethod
    def _path(uri: str, *, field: str = "uri") -> str:
        parsed = uris.parse(uri, field=field)
        if parsed.scheme != "file":
            raise InvalidArgument.field(field, f"{uri!r} is not a file:// URI (LocalStorage)")
        return parsed.path


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems (and all directories on a few platforms) refuse fsync; durability is best-effort.
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
