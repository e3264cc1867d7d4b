"""``S3Storage`` against a real S3 API (moto server on loopback): multipart, aborts, listing, errors."""

from __future__ import annotations

import io
import os
import socket

import pytest

from shipyard.errors import InvalidArgument, NotFound, Unavailable
from shipyard.storage import ObjectInfo, join, open_storage
from shipyard.storage.s3 import S3Storage
from tests.fixtures.s3 import S3TestEnv

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


class Boom(Exception):
    pass


def _small_parts(env: S3TestEnv, chunk: int = 5 * MIB, **kwargs) -> S3Storage:
    # 5 MiB is the smallest part S3 (and moto) accepts for every part but the last.
    return S3Storage(
        endpoint_url=env.endpoint_url, region=env.config.s3_region, multipart_chunk_bytes=chunk, **kwargs
    )


def test_small_object_round_trips(s3_env: S3TestEnv) -> None:
    uri = join(s3_env.root, "datasets", "wiki", "manifest.json")

    s3_env.storage.write_text(uri, '{"docs": 3}')

    assert s3_env.storage.exists(uri)
    assert s3_env.storage.read_text(uri) == '{"docs": 3}'
    assert s3_env.storage.local_path(uri) is None


def test_open_storage_with_the_fixture_config_reaches_the_bucket(s3_env: S3TestEnv) -> None:
    storage = open_storage(s3_env.config.root, s3_env.config)
    storage.write_bytes(join(s3_env.config.root, "x.bin"), b"abc")

    assert s3_env.storage.list(s3_env.root) == [ObjectInfo(join(s3_env.root, "x.bin"), 3)]


def test_object_larger_than_a_part_is_uploaded_in_parts_and_reads_back(s3_env: S3TestEnv) -> None:
    storage = _small_parts(s3_env)
    uri = join(s3_env.root, "shards", "big.bin")
    payload = os.urandom(11 * MIB + 123)

    with storage.open_write(uri) as f:
        for start in range(0, len(payload), 3 * MIB):  # writes that straddle part boundaries
            f.write(payload[start : start + 3 * MIB])
        assert not storage.exists(uri)  # parts uploaded, object not yet visible

    head = s3_env.client.head_object(Bucket=s3_env.bucket, Key="shipyard/shards/big.bin", PartNumber=1)
    assert head["PartsCount"] == 3
    assert storage.read_bytes(uri) == payload


def test_failed_multipart_write_leaves_no_object_and_no_open_upload(s3_env: S3TestEnv) -> None:
    storage = _small_parts(s3_env)
    uri = join(s3_env.root, "torn.bin")

    with pytest.raises(Boom), storage.open_write(uri) as f:
        f.write(b"\0" * (6 * MIB))  # one part already uploaded
        raise Boom

    assert not storage.exists(uri)
    assert storage.list(s3_env.root) == []
    assert s3_env.client.list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []


def test_failed_overwrite_keeps_the_previous_object(s3_env: S3TestEnv) -> None:
    uri = join(s3_env.root, "checkpoint.bin")
    s3_env.storage.write_bytes(uri, b"good")

    with pytest.raises(Boom), s3_env.storage.open_write(uri) as f:
        f.write(b"torn")
        raise Boom

    assert s3_env.storage.read_bytes(uri) == b"good"


def test_read_stream_supports_lines_and_text(s3_env: S3TestEnv) -> None:
    uri = join(s3_env.root, "docs.jsonl")
    s3_env.storage.write_text(uri, '{"id": 1}\n{"id": 2}\n')

    with s3_env.storage.open_read(uri) as f:
        lines = list(io.TextIOWrapper(f, encoding="utf-8"))

    assert lines == ['{"id": 1}\n', '{"id": 2}\n']


def test_list_paginates_treats_prefix_as_directory_and_sorts(s3_env: S3TestEnv) -> None:
    storage = _small_parts(s3_env, list_page_size=2)
    names = ["b/2", "a", "b/1", "c/d/e", "b/10"]
    for name in names:
        storage.write_bytes(join(s3_env.root, "run", name), name.encode())
    storage.write_bytes(join(s3_env.root, "run-old", "x"), b"x")  # same key prefix, other "directory"

    listed = storage.list(join(s3_env.root, "run"))

    assert [o.uri for o in listed] == [join(s3_env.root, "run", n) for n in sorted(names)]
    assert [o.size for o in listed] == [len(n) for n in sorted(names)]
    assert storage.list(join(s3_env.root, "nothing")) == []


def test_delete_and_delete_prefix(s3_env: S3TestEnv) -> None:
    storage = s3_env.storage
    for name in ("run/a", "run/b", "keep"):
        storage.write_bytes(join(s3_env.root, name), b"x")

    storage.delete(join(s3_env.root, "never-existed"))  # not an error
    assert storage.delete_prefix(join(s3_env.root, "run")) == 2

    assert [o.uri for o in storage.list(s3_env.root)] == [join(s3_env.root, "keep")]


def test_missing_key_and_missing_bucket_are_not_found(s3_env: S3TestEnv) -> None:
    with pytest.raises(NotFound, match="missing.bin"):
        s3_env.storage.open_read(join(s3_env.root, "missing.bin"))
    with pytest.raises(NotFound, match="NoSuchBucket"):
        s3_env.storage.list("s3://no-such-bucket-here/x")
    assert not s3_env.storage.exists(join(s3_env.root, "missing.bin"))


def test_bucket_uri_is_not_an_object(s3_env: S3TestEnv) -> None:
    with pytest.raises(InvalidArgument, match="names a bucket or prefix"):
        s3_env.storage.open_read(f"s3://{s3_env.bucket}")


def test_unreachable_endpoint_is_unavailable(aws_credentials: None) -> None:
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = S3Storage(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)

    with pytest.raises(Unavailable, match="unreachable"):
        storage.exists("s3://bucket/key")
