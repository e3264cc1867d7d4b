"""URI parsing and joining: canonical forms, bare paths, and clear errors for bad URIs."""

from __future__ import annotations

import os

import pytest

from shipyard.errors import InvalidArgument
from shipyard.storage import basename, from_local_path, join, normalize, parent, parse


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("file:///data/x", "file:///data/x"),
        ("file://localhost/data/x", "file:///data/x"),
        ("/data//y/./z/", "file:///data/y/z"),
        ("s3://bucket/a/b.txt", "s3://bucket/a/b.txt"),
        ("S3://bucket", "s3://bucket"),
        ("/data/a#b?c", "file:///data/a#b?c"),  # literal: no query/fragment splitting
    ],
)
def test_normalize(given: str, canonical: str) -> None:
    assert normalize(given) == canonical


def test_relative_path_is_a_local_file_under_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert normalize("out/x.bin") == f"file://{os.getcwd()}/out/x.bin"


def test_parse_splits_bucket_and_key() -> None:
    parsed = parse("s3://my-bucket/datasets/wiki/manifest.json")

    assert (parsed.scheme, parsed.bucket, parsed.path) == ("s3", "my-bucket", "datasets/wiki/manifest.json")


@pytest.mark.parametrize(
    ("base", "parts", "joined"),
    [
        ("s3://b1b/root", ("datasets", "x/manifest.json"), "s3://b1b/root/datasets/x/manifest.json"),
        ("s3://b1b", ("a",), "s3://b1b/a"),
        ("s3://b1b/root/", ("/a/", "b"), "s3://b1b/root/a/b"),
        ("file:///", ("tmp", "x"), "file:///tmp/x"),
        ("/data", ("shard-0001.bin",), "file:///data/shard-0001.bin"),
    ],
)
def test_join(base: str, parts: tuple[str, ...], joined: str) -> None:
    assert join(base, *parts) == joined


def test_join_refuses_to_escape_the_base() -> None:
    with pytest.raises(InvalidArgument, match="must not contain '..'"):
        join("s3://bucket/root", "../other")


def test_parent_and_basename() -> None:
    assert parent("s3://bucket/a/b.txt") == "s3://bucket/a"
    assert parent("s3://bucket/a") == "s3://bucket"
    assert parent("s3://bucket") == "s3://bucket"
    assert parent("file:///a/b") == "file:///a"
    assert parent("file:///") == "file:///"
    assert basename("s3://bucket/a/b.txt") == "b.txt"
    assert basename("file:///a/dir/") == "dir"
    assert basename("s3://bucket") == ""


def test_from_local_path_round_trips() -> None:
    assert parse(from_local_path("/tmp/a b/c")).path == "/tmp/a b/c"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("gs://bucket/x", "unsupported scheme 'gs'"),
        ("", "non-empty"),
        ("file://data/x", "has a host part 'data'"),
        ("s3://Bad_Bucket/x", "not a valid S3 bucket name"),
        ("s3:///key", "not a valid S3 bucket name"),
    ],
)
def test_bad_uris_name_the_field(bad: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(bad, field="spec.output_uri")

    (violation,) = caught.value.violations
    assert violation.field == "spec.output_uri"
    assert reason in violation.description
