"""Storage URIs: parsing, normalising and joining ``file://`` and ``s3://`` addresses.

Accepted forms: ``file:///abs/path``, bare absolute or relative paths (taken as local files, relative to
the current directory), and ``s3://bucket/key``. The canonical string of a URI is ``file:///abs/path``
or ``s3://bucket/key``; every backend returns canonical URIs from ``list``.

URIs are taken literally: there is no percent-decoding and ``?``/``#`` are ordinary characters, so any
local file name or S3 key round-trips unchanged (``Path.as_uri()`` output with ``%20`` is not decoded).
Every function takes a ``field`` name so a bad URI is reported against the spec field it came from.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from shipyard.errors import InvalidArgument

__all__ = ["SCHEMES", "ParsedURI", "basename", "from_local_path", "join", "normalize", "parent", "parse"]

SCHEMES = ("file", "s3")

# S3 bucket naming rules (3-63 chars, lowercase letters, digits, dots, hyphens, alnum at both ends).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class ParsedURI:
    """A parsed URI. ``bucket`` is empty for files; ``path`` is the absolute path or the S3 key."""

    scheme: str
    bucket: str
    path: str

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        return f"s3://{self.bucket}/{self.path}" if self.path else f"s3://{self.bucket}"


def parse(uri: str, *, field: str = "uri") -> ParsedURI:
    """Parse ``uri``; raises ``InvalidArgument`` on ``field`` for empty, malformed or unsupported URIs."""
    if not isinstance(uri, str) or not uri:
        raise InvalidArgument.field(
            field, "must be a non-empty URI (file:///path, s3://bucket/key or a path)"
        )
    if "://" not in uri:
        return ParsedURI("file", "", _abs_path(uri))
    scheme, rest = uri.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        # file://host/path is legal RFC 8089 but almost always a typo for file:///path here.
        host, sep, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise InvalidArgument.field(
                field, f"{uri!r} has a host part {host!r}; use an absolute path: file:///{rest}"
            )
        return ParsedURI("file", "", _abs_path(sep + path))
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise InvalidArgument.field(
                field,
                f"{uri!r}: bucket {bucket!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, dots or hyphens)",
            )
        return ParsedURI("s3", bucket, key)
    raise InvalidArgument.field(
        field, f"{uri!r}: unsupported scheme {scheme!r} (expected one of: {', '.join(SCHEMES)})"
    )


def normalize(uri: str, *, field: str = "uri") -> str:
    """The canonical string of ``uri`` (bare paths become ``file:///abs/path``)."""
    return str(parse(uri, field=field))


def join(uri: str, *parts: str, field: str = "uri") -> str:
    """Append path segments to ``uri``; parts may contain ``/`` but never ``..`` (no escaping the base)."""
    base = parse(uri, field=field)
    segments = [base.path.rstrip("/")] if base.path.rstrip("/") else []
    for part in parts:
        for segment in part.split("/"):
            if segment == "..":
                raise InvalidArgument.field(field, f"path part {part!r} must not contain '..'")
            if segment and segment != ".":
                segments.append(segment)
    if base.scheme == "file":
        path = "/".join(segments) if segments else "/"
        path = path if path.startswith("/") else "/" + path
    else:
        path = "/".join(segments)
    return str(ParsedURI(base.scheme, base.bucket, path))


def parent(uri: str, *, field: str = "uri") -> str:
    """The URI one level up (``s3://b/a/x`` → ``s3://b/a``); the root is its own parent."""
    p = parse(uri, field=field)
    if p.scheme == "file":
        return str(ParsedURI("file", "", posixpath.dirname(p.path.rstrip("/")) or "/"))
    key = p.path.rstrip("/")
    return str(ParsedURI("s3", p.bucket, key.rpartition("/")[0]))


def basename(uri: str, *, field: str = "uri") -> str:
    """The last segment of ``uri`` (``""`` for a bucket or the filesystem root)."""
    return parse(uri, field=field).path.rstrip("/").rpartition("/")[2]


def from_local_path(path: str | os.PathLike[str]) -> str:
    """The canonical ``file://`` URI of a local path."""
    return str(ParsedURI("file", "", _abs_path(os.fspath(path))))


def _abs_path(path: str) -> str:
    # normpath folds "a/./b" and "a//b"; a trailing slash is dropped so a directory has one spelling.
    return posixpath.normpath(os.path.abspath(path)).replace("//", "/", 1) if path else "/"
