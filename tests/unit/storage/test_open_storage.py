"""``open_storage`` picks the backend from the URI scheme and carries the S3 settings over."""

from __future__ import annotations

import pickle

import pytest

from shipyard.config import StorageConfig
from shipyard.errors import InvalidArgument
from shipyard.storage import LocalStorage, open_storage


def test_file_uris_and_paths_open_local_storage(tmp_path) -> None:
    assert isinstance(open_storage(f"file://{tmp_path}"), LocalStorage)
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)


def test_s3_uri_opens_s3_storage_with_the_configured_endpoint() -> None:
    config = StorageConfig(s3_endpoint_url="http://127.0.0.1:9000", s3_region="eu-west-1")

    storage = open_storage("s3://bucket/prefix", config)

    assert storage.scheme == "s3"
    assert (storage.endpoint_url, storage.region) == ("http://127.0.0.1:9000", "eu-west-1")  # type: ignore[attr-defined]
    assert storage.multipart_chunk_bytes == config.multipart_chunk_bytes  # type: ignore[attr-defined]


def test_s3_storage_pickles_without_its_client() -> None:
    # Executors ship steps (and their storage) to worker processes / Ray actors.
    storage = open_storage("s3://bucket/prefix", StorageConfig(s3_endpoint_url="http://127.0.0.1:9"))
    _ = storage.client  # type: ignore[attr-defined]

    clone = pickle.loads(pickle.dumps(storage))

    assert clone.endpoint_url == "http://127.0.0.1:9"  # type: ignore[attr-defined]


def test_unsupported_scheme_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        open_storage("hdfs://nn/x", field="spec.output")

    assert caught.value.violations[0].field == "spec.output"


def test_local_storage_refuses_s3_uris() -> None:
    with pytest.raises(InvalidArgument, match="not a file:// URI"):
        LocalStorage().exists("s3://bucket/x")
