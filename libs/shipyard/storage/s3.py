"""``S3Storage``: the ``s3://`` backend (AWS S3, MinIO, or moto in tests) through boto3.

Writes stream into a multipart upload in equal parts of ``multipart_chunk_bytes`` (equal parts keep
ETags stable and satisfy stores that require them), completed when the ``with`` block succeeds and
aborted when it fails; an object smaller than one part is sent with a single ``put_object`` at the end.
Either way nothing is visible under the key until the block exits cleanly.

botocore errors are translated once, here: missing keys/buckets → ``NotFound``, connection failures,
throttling and 5xx → ``Unavailable``, 403 → ``PermissionDenied``, missing credentials →
``Unauthenticated``. Credentials come from boto3's usual chain (``AWS_*`` variables, profiles, IAM roles).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions

from shipyard.errors import (
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ShipyardError,
    Unauthenticated,
    Unavailable,
)
from shipyard.storage import uri as uris
from shipyard.storage.base import ObjectInfo, Storage

if TYPE_CHECKING:
    from shipyard.config import StorageConfig

__all__ = ["S3Storage"]

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NotFound", "404", "NoSuchUpload"}
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
_DELETE_BATCH = 1000  # the DeleteObjects limit


class S3Storage(Storage):
    """An S3-compatible object store; a prefix is ``<key>/`` so listings match ``LocalStorage``'s."""

    scheme = "s3"

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        multipart_chunk_bytes: int = 8 * _MIB,
        list_page_size: int = 1000,
        max_attempts: int = 5,
    ) -> None:
        # The chunk size is not bounded below here (tests use small parts); StorageConfig enforces
        # S3's 5 MiB minimum for user-facing configuration.
        if multipart_chunk_bytes <= 0:
            raise InvalidArgument.field("multipart_chunk_bytes", "must be > 0")
        if not 1 <= list_page_size <= 1000:
            raise InvalidArgument.field("list_page_size", "must be between 1 and 1000")
        self.endpoint_url = endpoint_url
        self.region = region
        self.multipart_chunk_bytes = multipart_chunk_bytes
        self.list_page_size = list_page_size
        self.max_attempts = max_attempts
        self._client: Any = None

    @classmethod
    def from_config(cls, config: StorageConfig) -> S3Storage:
        return cls(
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
            multipart_chunk_bytes=config.multipart_chunk_bytes,
        )

    @property
    def client(self) -> Any:
        """The boto3 client, created on first use (so the storage pickles to Ray workers without it)."""
        if self._client is None:
            cfg = botocore.config.Config(
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
                # Custom endpoints (MinIO, moto, on-prem) rarely have wildcard DNS for virtual hosts.
                s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            )
            session = boto3.session.Session()  # a private session: boto3's default one is global state
            self._client = session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=cfg
            )
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    def open_read(self, uri: str) -> IO[bytes]:
        bucket, key = _object(uri)
        with _translated(uri):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        # A buffered reader over a raw stream gives readline/peek/TextIOWrapper support for free.
        return io.BufferedReader(_BodyReader(body, uri), buffer_size=256 * 1024)

    @contextlib.contextmanager
    def open_write(self, uri: str) -> Iterator[IO[bytes]]:
        bucket, key = _object(uri)
        writer = _MultipartWriter(self.client, bucket, key, uri, self.multipart_chunk_bytes)
        try:
            yield writer  # type: ignore[misc]
            writer.finish()
        except BaseException:
            writer.abort()
            raise

    def write_bytes_if_absent(self, uri: str, data: bytes) -> bool:
        """``PutObject`` with ``If-None-Match: *`` (S3 conditional writes; MinIO and moto too): the
        store answers 412 when the key exists, 409 when a concurrent conditional write is in flight."""
        bucket, key = _object(uri)
        with _translated(uri):
            try:
                self.client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            except botocore.exceptions.ClientError as exc:
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
        return True

    def exists(self, uri: str) -> bool:
        bucket, key = _object(uri)
        try:
            with _translated(uri):
                self.client.head_object(Bucket=bucket, Key=key)
        except NotFound:
            return False
        return True

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        parsed = _parse(prefix_uri, field="prefix_uri")
        prefix = parsed.path if not parsed.path or parsed.path.endswith("/") else parsed.path + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=parsed.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
        )
        found: list[ObjectInfo] = []
        with _translated(prefix_uri):
            for page in pages:
                for obj in page.get("Contents", ()):
                    found.append(ObjectInfo(uri=f"s3://{parsed.bucket}/{obj['Key']}", size=obj["Size"]))
        return sorted(found, key=lambda o: o.uri)

    def delete(self, uri: str) -> None:
        bucket, key = _object(uri)
        with _translated(uri):
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_prefix(self, prefix_uri: str) -> int:
        objects = self.list(prefix_uri)
        bucket = _parse(prefix_uri, field="prefix_uri").bucket
        for start in range(0, len(objects), _DELETE_BATCH):
            batch = [{"Key": _parse(o.uri).path} for o in objects[start : start + _DELETE_BATCH]]
            with _translated(prefix_uri):
                resp = self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise Unavailable(
                    f"could not delete {len(resp['Errors'])} objects under {prefix_uri}: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        return len(objects)


class _BodyReader(io.RawIOBase):
    """Raw stream over a botocore body that reports network failures as ``Unavailable``."""

    def __init__(self, body: Any, uri: str) -> None:
        self._body = body
        self._uri = uri

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _translated(self._uri):
            data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _MultipartWriter(io.RawIOBase):
    """Buffers writes and uploads full parts as they fill; ``finish``/``abort`` end the upload."""

    def __init__(self, client: Any, bucket: str, key: str, uri: str, chunk: int) -> None:
        self._client, self._bucket, self._key, self._uri, self._chunk = client, bucket, key, uri, chunk
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= self._chunk:
            part = bytes(self._buffer[: self._chunk])
            del self._buffer[: self._chunk]
            self._upload_part(part)
        return view.nbytes

    def close(self) -> None:
        # Closing early is allowed (e.g. by a wrapping GzipFile); the upload ends in finish/abort.
        super().close()

    def finish(self) -> None:
        with _translated(self._uri):
            if self._upload_id is None:
                self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        self._buffer.clear()
        self.close()

    def abort(self) -> None:
        self._buffer.clear()
        self.close()
        if self._upload_id is None:
            return
        try:
            with _translated(self._uri):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
        except ShipyardError as exc:
            # The original error matters more; a bucket lifecycle rule reaps orphaned uploads.
            log.warning("could not abort multipart upload %s of %s: %s", self._upload_id, self._uri, exc)

    def _upload_part(self, part: bytes) -> None:
        with _translated(self._uri):
            if self._upload_id is None:
                resp = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
                self._upload_id = resp["UploadId"]
            number = len(self._parts) + 1
            resp = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
            )
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})


def _parse(uri: str, *, field: str = "uri") -> uris.ParsedURI:
    parsed = uris.parse(uri, field=field)
    if parsed.scheme != "s3":
        raise InvalidArgument.field(field, f"{uri!r} is not an s3:// URI (S3Storage)")
    return parsed


def _object(uri: str) -> tuple[str, str]:
    parsed = _parse(uri)
    if not parsed.path or parsed.path.endswith("/"):
        raise InvalidArgument.field("uri", f"{uri!r} names a bucket or prefix, not an object")
    return parsed.bucket, parsed.path


@contextlib.contextmanager
def _translated(uri: str) -> Iterator[None]:
    """Re-raise botocore failures as Shipyard's typed errors, naming ``uri``."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{uri}: {code or status} {error.get('Message', '')}".rstrip()
        if code in _NOT_FOUND_CODES or status == 404:
            raise NotFound(f"no object at {uri}" if code != "NoSuchBucket" else message) from exc
        if code in _UNAVAILABLE_CODES or status >= 500 or status == 429:
            raise Unavailable(message) from exc
        if status == 403:
            raise PermissionDenied(message) from exc
        raise Internal(f"S3 request failed: {message}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise Unauthenticated(
            f"{uri}: no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)"
        ) from exc
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
        raise Unavailable(f"{uri}: S3 endpoint unreachable: {exc}") from exc
