"""Create-if-absent writes: put an object only when nothing is at its URI yet, atomically.

The registry numbers versions ``max + 1``; two concurrent registrations compute the same number, and
a plain (atomic, but last-writer-wins) ``Storage.write_bytes`` would let the second silently replace
the first. The ``Storage`` interface has no conditional write, so this module provides one per backend:

* ``file://``: the bytes go to a hidden temporary sibling, then ``os.link`` gives it the final name;
  ``link`` fails with ``EEXIST`` when the name is taken, which is atomic on POSIX filesystems.
* ``s3://``: ``PutObject`` with ``If-None-Match: *`` (S3 conditional writes, also in MinIO and moto);
  the store answers 412 when the key exists (409 when a concurrent conditional write is in flight).
* any other backend: check ``exists`` then write — a race window remains, documented here.

This belongs in the ``Storage`` ABC (``write_bytes_if_absent``); it lives here until it moves there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from shipyard.errors import FailedPrecondition
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage
from shipyard.storage.local import TEMP_SUFFIX, LocalStorage

__all__ = ["write_bytes_if_absent"]

_S3_CONFLICT_STATUS = (409, 412)


def write_bytes_if_absent(storage: Storage, uri: str, data: bytes) -> bool:
    """Write ``data`` at ``uri`` unless an object is already there; True if this call created it."""
    if isinstance(storage, LocalStorage):
        return _local(storage, uri, data)
    if storage.scheme == "s3":
        return _s3(storage, uri, data)
    if storage.exists(uri):
        return False
    storage.write_bytes(uri, data)
    return True


def _local(storage: LocalStorage, uri: str, data: bytes) -> bool:
    path = storage.local_path(uri)
    assert path is not None  # LocalStorage always has one
    directory, name = os.path.split(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise FailedPrecondition(f"cannot write {uri}: a parent of it is a file") from exc
    # The temp name follows LocalStorage's convention, so listings skip it while it exists.
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


def _s3(storage: Storage, uri: str, data: bytes) -> bool:
    import botocore.exceptions

    # Private helpers of the S3 backend, used until the conditional write moves into it.
    from shipyard.storage.s3 import S3Storage, _translated

    assert isinstance(storage, S3Storage)
    parsed = uris.parse(uri)
    with _translated(uri):
        try:
            storage.client.put_object(Bucket=parsed.bucket, Key=parsed.path, Body=data, IfNoneMatch="*")
        except botocore.exceptions.ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if status in _S3_CONFLICT_STATUS or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
    return True
